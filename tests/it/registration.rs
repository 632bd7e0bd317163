//! Services that register themselves, and the console that governs them: an administrator
//! mints an initial access token in the console (real Chromium, by clicks); a service
//! registers with it (RFC 7591) and is `pending`, so its token creates nothing; the
//! administrator approves it, narrowing its scopes, and it can create only what was
//! approved; a used-up, expired or forged initial token registers nothing. Registration
//! management (RFC 7592): read with the registration access token only, rotation with an
//! overlap, deletion that revokes every grant. Suspension keeps or revokes grants by
//! choice. Every step is audited and no token reaches the logs.

use crate::common;

use common::browser::Chrome;
use common::{API_KEY_PROVIDER, GOOD_KEY, TestApp, assert_problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `POST /v1/register` with `initial` as the bearer.
async fn register(app: &TestApp, initial: &str, body: Value) -> reqwest::Response {
    app.post_json(initial, "/v1/register", body).await
}

fn manifest(name: &str) -> Value {
    json!({
        "client_name": name,
        "contacts": ["mcp-ops@example.com"],
        "requested_scopes": {API_KEY_PROVIDER: ["read", "write"]},
        "resource": "https://mcp.example.com/mcp",
    })
}

async fn create(app: &TestApp, token: &str, scopes: &[&str]) -> reqwest::Response {
    app.create(
        token,
        json!({"subject": "alice", "provider": API_KEY_PROVIDER, "scopes": scopes}),
    )
    .await
}

fn count(actions: &[(String, String)], action: &str, outcome: &str) -> usize {
    actions
        .iter()
        .filter(|(a, o)| a == action && o == outcome)
        .count()
}

/// Reads the token the page shows once.
async fn shown_token(chrome: &Chrome) -> String {
    chrome
        .client
        .execute(
            "return document.querySelector('code.token').textContent",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_self_registered_service_waits_until_an_administrator_approves_it_in_the_console() {
    common::logs::capture();
    let app = TestApp::spawn_mode(true, |_| {}).await;
    let mut admin = Chrome::start("registration").await;
    admin.goto(&app.url("/admin/services")).await;
    admin
        .wait_for_url("sign-in", |u| u.path() == "/login")
        .await;
    admin.type_into("#username", "root").await;
    admin.click("#admin").await;
    admin.click_button("Sign in").await;
    admin
        .wait_for_url("the services tab", |u| u.path() == "/admin/services")
        .await;
    admin.type_into("#t-label", "Partner team").await;
    admin.type_into("#t-uses", "1").await;
    admin.click_button("Mint a registration token").await;
    admin
        .assert_shows("Registration token “Partner team”")
        .await;
    admin.shot("initial-token").await;
    let initial = shown_token(&admin).await;
    assert!(initial.starts_with("cbi_"), "{initial}");

    // The service registers: pending, and its token can do nothing yet.
    let r = register(&app, &initial, manifest("Reports MCP")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let registered: Value = r.json().await.unwrap();
    assert_eq!(registered["status"], "pending", "{registered}");
    assert_eq!(registered["allowed_scopes"], json!({}));
    let id = registered["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("reports-mcp-"), "{id}");
    let token = registered["client_secret"].as_str().unwrap().to_owned();
    let registration = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        registered["registration_client_uri"],
        app.url(&format!("/v1/register/{id}"))
    );
    assert_problem(
        create(&app, &token, &["read"]).await,
        StatusCode::FORBIDDEN,
        "service_pending",
    )
    .await;

    // The initial token was for one registration; a forged one registers nothing.
    for used in [
        initial.as_str(),
        "cbi_forged0000000000000000000000000000000000",
    ] {
        assert_problem(
            register(&app, used, manifest("Another")).await,
            StatusCode::UNAUTHORIZED,
            "registration_token_rejected",
        )
        .await;
    }
    // The registration reads back with its own token only.
    let read = app
        .api
        .get(app.url(&format!("/v1/register/{id}")))
        .bearer_auth(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.json::<Value>().await.unwrap()["status"], "pending");
    let with_service_token = app
        .api
        .get(app.url(&format!("/v1/register/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(
        with_service_token,
        StatusCode::UNAUTHORIZED,
        "registration_token_rejected",
    )
    .await;

    // The administrator approves it by clicks, leaving `write` out.
    admin.goto(&app.url("/admin/services")).await;
    admin.assert_shows("1 waiting for approval").await;
    admin
        .click(&format!("a[href='/admin/services/{id}']"))
        .await;
    admin
        .assert_shows("Reports MCP registered itself and can do nothing until you approve it.")
        .await;
    admin
        .click(&format!("input[name='scope.{API_KEY_PROVIDER}.write']"))
        .await;
    admin.shot("approve").await;
    admin.click_button("Approve Reports MCP").await;
    admin
        .assert_shows(&format!(
            "Approved: Reports MCP may now ask users for {API_KEY_PROVIDER}: read."
        ))
        .await;
    admin.shot("approved").await;
    admin.close().await;

    assert_problem(
        create(&app, &token, &["write"]).await,
        StatusCode::FORBIDDEN,
        "scope_not_allowed",
    )
    .await;
    let created = create(&app, &token, &["read"]).await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let actions = app.audit_actions().await;
    for action in [
        "initial_token_minted",
        "service_registered",
        "service_approved",
    ] {
        assert_eq!(
            count(&actions, action, "success"),
            1,
            "{action}: {actions:?}"
        );
    }
    assert_eq!(
        count(&actions, "registration_refused", "denied"),
        3,
        "two refused registrations and one refused read: {actions:?}"
    );
    let logs = common::logs::text();
    for secret in [&initial, &token, &registration] {
        assert!(!logs.contains(secret.as_str()), "a token was logged");
    }
}

/// An approved service's whole journey, then its registration token rotates its token
/// (the old one works for the overlap), an administrator suspends it keeping its grants,
/// resumes it, and finally it deletes itself: its grant is revoked.
#[tokio::test]
async fn a_registered_service_rotates_is_suspended_and_resumed_and_its_deletion_revokes_its_grants()
{
    let app = TestApp::spawn_mode(true, |_| {}).await;
    let root = consent_broker::domain::Subject::parse("root").unwrap();
    let (initial, _) = app
        .broker
        .mint_initial_token(&root, "ci", 1, 1)
        .await
        .unwrap();
    let registered: Value = register(&app, &initial, manifest("Reports MCP"))
        .await
        .json()
        .await
        .unwrap();
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let token = registered["client_secret"].as_str().unwrap().to_owned();
    let registration = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let service = consent_broker::domain::ServiceId::parse(id.as_str()).unwrap();
    let asked = app
        .broker
        .registered_service(&service)
        .await
        .unwrap()
        .requested;
    app.broker
        .approve_service(&root, &service, asked)
        .await
        .unwrap();

    // A journey: create, consent with the API key, redeem.
    let created: Value = create(&app, &token, &["read"]).await.json().await.unwrap();
    app.browser()
        .open_as(created["url"].as_str().unwrap(), "alice")
        .await
        .assert_shows("Reports MCP");
    let done = app
        .consent_api_key_of(&token, &created, "alice", GOOD_KEY)
        .await;
    let handle = done["handle"].as_str().unwrap().to_owned();
    assert_eq!(app.redeem(&token, &handle).await.status(), StatusCode::OK);

    // Rotation: the new token works, and the old one too, for the overlap.
    let rotated: Value = app
        .api
        .post(app.url(&format!("/v1/register/{id}/rotate")))
        .bearer_auth(&registration)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_token = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    for t in [&new_token, &token] {
        assert_eq!(app.redeem(t, &handle).await.status(), StatusCode::OK);
    }
    app.broker
        .clock()
        .advance(std::time::Duration::from_secs(25 * 3600));
    assert_problem(
        app.redeem(&token, &handle).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Suspended, keeping its grants: refused with its own problem, then resumed.
    let browser = app.browser();
    let page = browser
        .open_as_admin(&format!("/admin/services/{id}/suspend"), "root")
        .await;
    page.assert_shows("Keep its grants: resuming it restores its access as it was.");
    let after = browser
        .submit(
            &format!("/admin/services/{id}/suspend"),
            &[("csrf", &page.csrf()), ("choice", "keep")],
        )
        .await;
    after.assert_shows("Suspended Reports MCP. Its grants are kept.");
    assert_problem(
        app.redeem(&new_token, &handle).await,
        StatusCode::FORBIDDEN,
        "service_suspended",
    )
    .await;
    let resumed = browser
        .submit(
            &format!("/admin/services/{id}/resume"),
            &[("csrf", &after.csrf())],
        )
        .await;
    resumed.assert_shows("Reports MCP is active again.");
    assert_eq!(
        app.redeem(&new_token, &handle).await.status(),
        StatusCode::OK
    );

    // The service deletes itself: its grant is revoked, its tokens stop working.
    let deleted = app
        .api
        .delete(app.url(&format!("/v1/register/{id}")))
        .bearer_auth(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.redeem(&new_token, &handle).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let grant_id =
        consent_broker::domain::GrantId::parse(done["grant_id"].as_str().unwrap()).unwrap();
    let grant = app.broker.grant(&grant_id).await.unwrap().unwrap();
    assert_eq!(grant.status.as_str(), "revoked");
    let actions = app.audit_actions().await;
    for action in [
        "service_token_rotated",
        "service_suspended",
        "service_resumed",
        "service_deleted",
    ] {
        assert_eq!(
            count(&actions, action, "success"),
            1,
            "{action}: {actions:?}"
        );
    }
}

/// A webhook set on a registered service in the console: its signing secret is shown once,
/// sealed by the vault and counted as a sealed record of its key, rewrapped with the
/// grants when the key rotates, and a completed consent is pushed signed with it after the old key is
/// gone.
#[tokio::test]
async fn a_registered_services_webhook_is_signed_with_the_secret_shown_once_across_a_key_rotation()
{
    let (url, mut deliveries) = crate::webhooks::receiver(0).await;
    let app = TestApp::spawn_mode(true, |_| {}).await;
    let root = consent_broker::domain::Subject::parse("root").unwrap();
    let description = consent_broker::broker::ServiceDescription {
        name: "Reports MCP".into(),
        scopes: [(API_KEY_PROVIDER.to_owned(), vec!["read".to_owned()])].into(),
        ..Default::default()
    };
    let issued = app
        .broker
        .register_by_admin(&root, &description)
        .await
        .unwrap();
    let (id, token) = (issued.service.id.to_string(), issued.token.clone());
    let browser = app.browser();
    let page = browser
        .open_as_admin(&format!("/admin/services/{id}"), "root")
        .await;
    page.assert_shows("none: it polls");
    // A proof setting that is not one of the three words is refused, not read as off.
    browser
        .submit(
            &format!("/admin/services/{id}/edit"),
            &[
                ("csrf", &page.csrf()),
                ("name", "Reports MCP"),
                ("scopes", "acme: read"),
                ("subject_proof", "sometimes"),
            ],
        )
        .await
        .assert_shows("Not saved: Choose off, optional or required for the proof of the user.");
    let shown = browser
        .submit(
            &format!("/admin/services/{id}/edit"),
            &[
                ("csrf", &page.csrf()),
                ("name", "Reports MCP"),
                ("scopes", "acme: read"),
                ("subject_proof", "off"),
                ("webhook_url", &url),
            ],
        )
        .await;
    shown.assert_shows("Saved: Reports MCP&#39;s webhook has a new signing secret");
    let secret = shown.shown_token();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let again = browser.open(&format!("/admin/services/{id}")).await;
    assert!(!again.html.contains(&secret), "the secret is shown once");

    // An administrator rotates its token: the new one works, the old one still does.
    let rotated = browser
        .submit(
            &format!("/admin/services/{id}/rotate"),
            &[("csrf", &again.csrf())],
        )
        .await;
    rotated.assert_shows("Its old token keeps working until");
    let new_token = rotated.shown_token();
    assert!(new_token.starts_with("cbs_") && new_token != token);
    for t in [&new_token, &token] {
        assert_eq!(
            create(&app, t, &["read"]).await.status(),
            StatusCode::CREATED
        );
    }

    // A new key seals from now on; rewrap moves the webhook secret too; the old key goes.
    let (new_id, new_key) = consent_broker::config::keyring::new_key_entry();
    let app = app
        .restart_with(|c| {
            c.keyring
                .keys
                .insert(new_id.clone(), new_key.to_string().into());
            c.keyring.active = Some(new_id.clone());
        })
        .await;
    // The broker rewraps in the background at start (an instance may race another: the
    // compare-and-set keeps one write); wait for it, bounded.
    let mut after = app.broker.sealed_per_key().await.unwrap();
    for _ in 0..100 {
        if after.contains_key(&new_id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        after = app.broker.sealed_per_key().await.unwrap();
    }
    assert_eq!(
        after,
        [(new_id.clone(), 1)].into(),
        "the webhook secret, now under the new key"
    );
    assert_eq!(app.broker.rewrap_all().await.unwrap().current, 1);
    let app = app
        .restart_with(|c| c.keyring.keys.retain(|k, _| *k == new_id))
        .await;

    let created: Value = create(&app, &token, &["read"]).await.json().await.unwrap();
    let eid = created["id"].as_str().unwrap();
    app.consent_api_key_of(&token, &created, "alice", GOOD_KEY)
        .await;
    let d = tokio::time::timeout(std::time::Duration::from_secs(10), deliveries.recv())
        .await
        .expect("a delivery within 10 s")
        .unwrap();
    let verifier = consent_broker_client::WebhookSecret::parse(&secret).unwrap();
    let event = consent_broker_client::verify_webhook(
        &verifier,
        &d.headers,
        &d.body,
        std::time::SystemTime::now(),
        std::time::Duration::from_secs(300),
    )
    .expect("signed with the secret shown");
    assert_eq!(event.elicitation_id, eid);
}

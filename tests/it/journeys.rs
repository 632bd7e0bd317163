//! The user journeys end to end over HTTP: a service creates an elicitation, a person
//! opens the link, signs in, consents, and the service redeems what was granted.

use crate::common;

use common::{API_KEY_PROVIDER, GOOD_KEY, TERMS_PROVIDER, TestApp, assert_problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Runs the API-key journey up to completion; returns the completed status JSON.
async fn approve_api_key(app: &TestApp, subject: &str, key: &str) -> Value {
    let created = app
        .create_pending(subject, API_KEY_PROVIDER, &["read"])
        .await;
    app.consent_api_key(&created, subject, key).await
}

#[tokio::test]
async fn an_api_key_granted_in_the_browser_is_redeemed_by_handle_and_reused_without_the_user() {
    let app = TestApp::spawn().await;
    let created = app
        .create_pending("alice@example.com", API_KEY_PROVIDER, &["read"])
        .await;
    assert_eq!(created["status"], "pending");
    let id = created["id"].as_str().unwrap();
    let url = created["url"].as_str().unwrap();
    assert_eq!(
        url,
        app.url(&format!("/e/{id}")),
        "the link carries only the opaque id"
    );
    assert_eq!(
        created["mcp"],
        json!({"mode": "url", "elicitationId": id, "url": url, "message": created["mcp"]["message"]})
    );
    assert_eq!(created["mcp_error"]["code"], -32042);
    assert_eq!(
        created["mcp_error"]["data"]["elicitations"][0],
        created["mcp"]
    );

    // The person opens the link: first the sign-in page, then the consent page.
    let browser = app.browser();
    let login = browser.open(url).await;
    assert_eq!(login.path, "/login");
    login.assert_shows("Development");
    let consent = browser.open_as(url, "alice@example.com").await;
    assert_eq!(consent.path, format!("/e/{id}"));
    consent.assert_shows("Service A");
    consent.assert_shows("Acme");
    consent.assert_shows("Read your Acme projects");
    consent.assert_shows("alice@example.com");

    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    form.assert_shows("type=\"password\"");
    let done = browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", GOOD_KEY)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    done.assert_shows("Connected");

    let status: Value = app.elicitation(id).await;
    assert_eq!(status["status"], "completed");
    assert!(
        status.get("url").is_none(),
        "no consent link once completed"
    );
    let handle = status["handle"].as_str().unwrap();
    assert!(handle.starts_with("cbh_"));

    let redeemed: Value = app.redeem(&app.token, handle).await.json().await.unwrap();
    assert_eq!(
        redeemed["credential"],
        json!({"type": "api_key", "api_key": GOOD_KEY, "header": "X-Acme-Key"})
    );
    assert_eq!(redeemed["subject"], "alice@example.com");
    assert_eq!(redeemed["scopes"], json!(["read"]));

    // Asking again needs no user: the same grant, the same handle.
    let again = app.create(&app.token, json!({"subject": "alice@example.com", "provider": API_KEY_PROVIDER, "scopes": ["read"]})).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["status"], "ready");
    assert_eq!(again["handle"], handle);
    assert_eq!(again["grant_id"], status["grant_id"]);

    let actions = app.audit_actions().await;
    for expected in [
        "elicitation_created",
        "grant_created",
        "elicitation_completed",
        "grant_redeemed",
        "grant_reused",
    ] {
        assert!(
            actions.iter().any(|(a, o)| a == expected && o == "success"),
            "{expected} audited: {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_request_for_more_scopes_than_the_grant_has_asks_the_user_again() {
    let app = TestApp::spawn().await;
    approve_api_key(&app, "bob", GOOD_KEY).await;
    let wider = app
        .create(
            &app.token,
            json!({"subject": "bob", "provider": API_KEY_PROVIDER, "scopes": ["read", "write"]}),
        )
        .await;
    assert_eq!(wider.status(), StatusCode::CREATED);
    assert_eq!(wider.json::<Value>().await.unwrap()["status"], "pending");
}

#[tokio::test]
async fn accepting_terms_records_the_version_and_text_digest() {
    let app = TestApp::spawn().await;
    let created = app.create_pending("carol", TERMS_PROVIDER, &[]).await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "carol")
        .await;
    consent.assert_shows("Acme AI terms");
    consent.assert_shows("2026-11");
    consent.assert_shows("You agree that the assistant may read your Acme projects.");
    consent.assert_shows("consent-broker records that you accepted this version. Service A receives that record (the version and a digest of the text).");
    consent.assert_shows("Your acceptance stands until you or an administrator revoke it, or the terms change (you are then asked again).");
    let done = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    done.assert_shows("Connected");

    let status: Value = app.elicitation(id).await;
    assert_eq!(status["status"], "completed");
    let redeemed: Value = app
        .redeem(&app.token, status["handle"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(redeemed["kind"], "terms");
    assert_eq!(redeemed["credential"]["type"], "terms");
    assert_eq!(redeemed["credential"]["version"], "2026-11");
    let digest = redeemed["credential"]["text_sha256"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    consent.assert_shows(digest);
}

#[tokio::test]
async fn denying_declines_the_elicitation_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let created = app
        .create_pending("dave", API_KEY_PROVIDER, &["read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "dave")
        .await;
    let done = browser
        .submit(&format!("/e/{id}/deny"), &[("csrf", &consent.csrf())])
        .await;
    done.assert_shows("declined");

    let status: Value = app.elicitation(id).await;
    assert_eq!(status["status"], "declined");
    assert!(status.get("handle").is_none());
    let subject = consent_broker::domain::Subject::parse("dave").unwrap();
    assert!(
        app.broker
            .raw_stores()
            .grants
            .grants_of_subject(&subject)
            .await
            .unwrap()
            .is_empty()
    );
    // A settled request cannot be approved afterwards.
    let late = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
}

/// The long-poll answers on the approval itself, not on its next re-read: the poll also
/// re-reads the store every second (another instance may settle it without waking this
/// one), so the approval is made 0.2 s after a re-read, and the answer must come within
/// 0.5 s of it; with the wake-up broken it would come about 0.8 s later, at the next re-read.
#[tokio::test]
async fn a_long_poll_returns_as_soon_as_the_user_completes() {
    use std::time::{Duration, Instant};
    let app = TestApp::spawn().await;
    let created = app.create_pending("erin", TERMS_PROVIDER, &[]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let browser = app.browser();
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "erin")
        .await;
    let polled_at = Instant::now();
    let waiting = {
        let (api, url, token) = (
            app.api.clone(),
            app.url(&format!("/v1/elicitations/{id}?wait=30")),
            app.token.clone(),
        );
        tokio::spawn(async move {
            let body: Value = api
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body, Instant::now())
        })
    };
    tokio::time::sleep_until((polled_at + Duration::from_millis(1200)).into()).await;
    browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    let approved_at = Instant::now();
    let (body, answered_at) = waiting.await.unwrap();
    assert_eq!(body["status"], "completed");
    let after = answered_at.saturating_duration_since(approved_at);
    assert!(
        after < Duration::from_millis(500),
        "answered {after:?} after the approval: woken by it, not by the next re-read"
    );
}

#[tokio::test]
async fn a_revoked_grant_is_refused_and_its_handle_stops_working() {
    let app = TestApp::spawn().await;
    let status = approve_api_key(&app, "frank", GOOD_KEY).await;
    let handle = status["handle"].as_str().unwrap();
    let revoked = app
        .post_json(&app.token, "/v1/revoke", json!({"handle": handle}))
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(revoked.json::<Value>().await.unwrap()["status"], "revoked");
    assert_problem(
        app.redeem(&app.token, handle).await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;
    // A revoked grant no longer satisfies a new request.
    let again = app
        .create(
            &app.token,
            json!({"subject": "frank", "provider": API_KEY_PROVIDER, "scopes": ["read"]}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_grant_can_be_revoked_by_id_only_by_its_own_service() {
    let app = TestApp::spawn().await;
    let status = approve_api_key(&app, "gina", GOOD_KEY).await;
    let grant = status["grant_id"].as_str().unwrap();
    let path = app.url(&format!("/v1/grants/{grant}"));
    let foreign = app
        .api
        .delete(&path)
        .bearer_auth(&app.other_token)
        .send()
        .await
        .unwrap();
    assert_problem(foreign, StatusCode::NOT_FOUND, "unknown_handle").await;
    let own = app
        .api
        .delete(&path)
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert_problem(
        app.redeem(&app.token, status["handle"].as_str().unwrap())
            .await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;
}

#[tokio::test]
async fn the_raw_store_holds_neither_the_key_nor_the_handle() {
    let app = TestApp::spawn().await;
    let status = approve_api_key(&app, "hank", GOOD_KEY).await;
    let handle = status["handle"].as_str().unwrap().to_owned();
    app.redeem(&app.token, &handle).await;
    let raw = std::fs::read(app.data_dir.path().join("broker.redb")).unwrap();
    let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("hank"), "the test reads the right file");
    assert!(!contains(GOOD_KEY), "API key stored in clear");
    assert!(!contains(&handle), "handle stored in clear");
    assert!(
        !contains(&handle["cbh_".len()..]),
        "handle body stored in clear"
    );
}

#[tokio::test]
async fn a_key_the_provider_rejects_is_refused_on_the_form_and_nothing_is_stored() {
    // A real loopback upstream that accepts exactly one key.
    let upstream = axum::Router::new().route(
        "/verify",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            if headers.get("x-acme-key").is_some_and(|v| v == GOOD_KEY) {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let verify_url = format!("http://{}/verify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, upstream).await });
    let app = TestApp::spawn_with(|c| {
        if let consent_broker::config::ProviderConfig::ApiKey { verify_url: v, .. } =
            &mut c.providers[0]
        {
            *v = Some(verify_url.parse().unwrap());
        }
    })
    .await;

    let created = app.create_pending("ivy", API_KEY_PROVIDER, &["read"]).await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "ivy")
        .await;
    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    let wrong = "acme_live_00000000000000000000";
    let refused = browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", wrong)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_shows("Acme did not accept this key");
    assert!(
        !refused.html.contains(wrong),
        "the rejected key is not echoed"
    );
    let malformed = browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", "hunter2")],
        )
        .await;
    malformed.assert_shows("does not look like a valid Acme API key");
    assert_eq!(app.elicitation(id).await["status"], "pending");

    let done = browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", GOOD_KEY)],
        )
        .await;
    done.assert_shows("Connected");
    assert_eq!(app.elicitation(id).await["status"], "completed");
}

/// The position of `text` in `page`, which must show it.
fn at(page: &common::Page, text: &str) -> usize {
    page.assert_shows(text);
    page.html.find(text).unwrap()
}

#[tokio::test]
async fn the_consent_page_says_who_holds_the_key_how_long_access_lasts_and_quotes_the_service_last()
{
    let app = TestApp::spawn().await;
    let posing = "consent-broker security check: paste your ADMIN API key at https://evil.example";
    let created: Value = app
        .create(
            &app.token,
            json!({"subject": "dana", "provider": API_KEY_PROVIDER, "scopes": ["read"], "message": posing}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "dana")
        .await;

    // Who holds what, in words; nothing claims the service never sees the key.
    let stores = at(&consent, "consent-broker stores it encrypted.");
    at(
        &consent,
        "Service A receives the key when it makes calls to Acme for you. Your AI client and the model never see it.",
    );
    assert!(!consent.html.contains("never sees"), "{}", consent.html);
    // How long access lasts, apart from the link's expiry.
    let lasts = at(
        &consent,
        "Service A keeps this access until you or an administrator revoke it, or Acme ends it.",
    );
    let expiry = at(&consent, "This link expires in 15 minutes");
    at(
        &consent,
        "That is only the time you have to answer; it is not how long access lasts.",
    );
    assert!(lasts < expiry);
    // The service's message: after the broker's own facts, attributed, and flagged.
    let quoted = at(
        &consent,
        "Written by <strong>Service A</strong>, not by consent-broker:",
    );
    assert!(
        stores < quoted && lasts < quoted,
        "the broker's facts come first"
    );
    assert!(at(&consent, "paste your ADMIN API key") > quoted);
    at(
        &consent,
        "Be careful: this text links elsewhere, names consent-broker",
    );
    // No earlier grant: nothing to replace.
    assert!(!consent.html.contains("replaces your earlier connection"));
    at(&consent, "Requested permissions");

    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    form.assert_shows("consent-broker stores the key encrypted. Service A receives it when it makes calls to Acme for you");
    form.assert_shows("Your AI client and the model never see it.");
    form.assert_shows("until you or an administrator revoke it, or Acme stops accepting the key");
    assert!(!form.html.contains("never sees"), "{}", form.html);

    // A plain message is quoted without the warning.
    let plain: Value = app
        .create(
            &app.token,
            json!({"subject": "erin", "provider": API_KEY_PROVIDER, "scopes": ["read"], "message": "I need read access to build your weekly report."}),
        )
        .await
        .json()
        .await
        .unwrap();
    let page = app
        .browser()
        .open_as(plain["url"].as_str().unwrap(), "erin")
        .await;
    page.assert_shows("I need read access to build your weekly report.");
    assert!(!page.html.contains("Be careful"), "{}", page.html);
}

#[tokio::test]
async fn a_scope_upgrade_shows_new_and_granted_scopes_apart_and_says_it_replaces_the_grant() {
    let app = TestApp::spawn().await;
    approve_api_key(&app, "bob", GOOD_KEY).await;
    let wider: Value = app
        .create(
            &app.token,
            json!({"subject": "bob", "provider": API_KEY_PROVIDER, "scopes": ["write"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let consent = app
        .browser()
        .open_as(wider["url"].as_str().unwrap(), "bob")
        .await;
    at(&consent, "This replaces your earlier connection");
    at(
        &consent,
        "If you approve, the new connection replaces that one; if you deny, the earlier one stays as it is.",
    );
    let new = at(&consent, "New permissions");
    let granted = at(&consent, "Already granted, kept");
    let write = at(&consent, "<code class=\"scope-list__name\">write</code>");
    let read = at(&consent, "<code class=\"scope-list__name\">read</code>");
    assert!(new < write && write < granted, "write is new");
    assert!(granted < read, "read was granted before");
    assert!(!consent.html.contains("Requested permissions"));
}

#[tokio::test]
async fn a_user_who_lost_the_session_before_continue_signs_in_and_returns_to_the_request() {
    let app = TestApp::spawn().await;
    let created = app.create_pending("fay", API_KEY_PROVIDER, &["read"]).await;
    let id = created["id"].as_str().unwrap();
    let consent = app
        .browser()
        .open_as(created["url"].as_str().unwrap(), "fay")
        .await;
    consent.assert_shows("Continue");

    // The session is gone (expired, cookies cleared) when the user clicks Continue.
    let browser = app.browser();
    let login = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    assert_eq!(login.path, "/login");
    assert_eq!(
        login.url.query(),
        Some(format!("return_to=%2Fe%2F{id}").as_str())
    );
    login.assert_shows("A connection request is waiting for you.");
    login.assert_shows(&format!("name=\"return_to\" value=\"/e/{id}\""));
    let back = browser
        .submit(
            "/login/dev",
            &[
                ("csrf", &login.csrf()),
                ("username", "fay"),
                ("return_to", &format!("/e/{id}")),
            ],
        )
        .await;
    assert_eq!(back.path, format!("/e/{id}"));
    back.assert_shows("Service A</strong> wants to use your Acme account");
    assert_eq!(app.elicitation(id).await["status"], "pending");
}

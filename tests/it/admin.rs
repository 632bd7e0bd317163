//! The admin console and "Your connections" over HTTP, with sign-in at the real IdP
//! (`oidc-provider`), where "root" is an admin and everyone else is not: who may see and
//! revoke what, confirmation before every revocation, and the audit trail it leaves.

use crate::common;

use common::idp::OAuthWorld;
use common::{API_KEY_PROVIDER, Browser, GOOD_KEY, TERMS_PROVIDER, assert_problem};
use reqwest::StatusCode;
use serde_json::Value;

/// `login` grants an API key to svc-a (signing in at the IdP when the browser is not yet);
/// returns the grant id and the handle the service got.
async fn grant_key(world: &OAuthWorld, browser: &Browser, login: &str) -> (String, String) {
    let app = &world.app;
    let created = app.create_pending(login, API_KEY_PROVIDER, &["read"]).await;
    let id = created["id"].as_str().unwrap();
    let url = created["url"].as_str().unwrap();
    let first = browser.open(url).await;
    let consent = if first.path == "/login" {
        world.open_signed_in(browser, url, login).await
    } else {
        first
    };
    assert_eq!(consent.path, format!("/e/{id}"));
    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    let done = browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", GOOD_KEY)],
        )
        .await;
    done.assert_shows("Connected");
    let status: Value = app.elicitation(id).await;
    (
        status["grant_id"].as_str().unwrap().to_owned(),
        status["handle"].as_str().unwrap().to_owned(),
    )
}

/// Accepts the terms provider's terms in `browser` (signed in as `login`).
async fn accept_terms(world: &OAuthWorld, browser: &Browser, login: &str) -> (String, String) {
    let app = &world.app;
    let created = app.create_pending(login, TERMS_PROVIDER, &[]).await;
    let id = created["id"].as_str().unwrap();
    let consent = browser.open(created["url"].as_str().unwrap()).await;
    assert_eq!(consent.path, format!("/e/{id}"));
    browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await
        .assert_shows("Connected");
    let status: Value = app.elicitation(id).await;
    (
        status["grant_id"].as_str().unwrap().to_owned(),
        status["handle"].as_str().unwrap().to_owned(),
    )
}

/// A browser signed in at the IdP as `login`.
async fn signed_in(world: &OAuthWorld, login: &str) -> Browser {
    let browser = world.app.browser();
    let home = world.sign_in(&browser, login).await;
    home.assert_shows(&format!("Signed in as <strong>{login}</strong>"));
    browser
}

#[tokio::test]
async fn a_signed_in_non_admin_gets_403_on_every_admin_route_and_a_visitor_is_sent_to_sign_in() {
    let world = OAuthWorld::start().await;
    let alice = signed_in(&world, "alice").await;
    let (grant, _) = grant_key(&world, &alice, "alice").await;
    let home = alice.open("/").await;
    home.assert_shows("href=\"/connections\"");
    assert!(
        !home.html.contains("href=\"/admin\""),
        "no Admin link for a non-admin"
    );
    let csrf = home.csrf();

    let gets = [
        "/admin".to_owned(),
        "/admin/grants".to_owned(),
        "/admin/grants?user=alice".to_owned(),
        format!("/admin/grants/{grant}"),
        format!("/admin/grants/{grant}/revoke"),
        "/admin/users/revoke?user=alice".to_owned(),
        format!("/admin/providers/{API_KEY_PROVIDER}/revoke"),
        "/admin/audit".to_owned(),
        "/admin/audit.jsonl".to_owned(),
        "/admin/no-such-page".to_owned(),
    ];
    for path in &gets {
        let page = alice.open(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "GET {path}");
        page.assert_shows("Administrators only");
        assert!(!page.html.contains(&grant) || path.contains(&grant));
    }
    let posts = [
        format!("/admin/grants/{grant}/revoke"),
        "/admin/users/revoke".to_owned(),
        format!("/admin/providers/{API_KEY_PROVIDER}/revoke"),
    ];
    for path in &posts {
        let page = alice
            .submit(path, &[("csrf", &csrf), ("user", "alice")])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "POST {path}");
        page.assert_shows("Administrators only");
    }
    let mine = alice.open("/connections").await;
    mine.assert_shows("Active <span class=\"count\">(1)</span>");

    // Not signed in: the sign-in page, then back to the console.
    let visitor = world.app.browser();
    let r = visitor
        .client
        .get(world.app.url("/admin/grants"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/login?return_to=%2Fadmin%2Fgrants"
    );

    // The same routes open for root, an admin by the IdP's groups claim.
    let root = signed_in(&world, "root").await;
    root.open("/").await.assert_shows("href=\"/admin\"");
    for path in &gets[..gets.len() - 1] {
        let page = root.open(path).await;
        assert_eq!(page.status, StatusCode::OK, "GET {path} as admin");
    }
    assert_eq!(
        root.open("/admin/no-such-page").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_user_sees_and_revokes_only_their_own_connections() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let alice = signed_in(&world, "alice").await;
    let bob = signed_in(&world, "bob").await;
    let (alice_grant, alice_handle) = grant_key(&world, &alice, "alice").await;
    let (bob_grant, bob_handle) = grant_key(&world, &bob, "bob").await;

    let mine = alice.open("/connections").await;
    assert_eq!(mine.status, StatusCode::OK);
    mine.assert_shows("Your connections");
    mine.assert_shows("<strong>Service A</strong>");
    mine.assert_shows("Acme");
    mine.assert_shows("<code>read</code>");
    mine.assert_shows(&format!("/connections/{alice_grant}/revoke"));
    assert!(!mine.html.contains(&bob_grant), "bob's grant is not listed");
    assert!(!mine.html.contains(GOOD_KEY) && !mine.html.contains(&alice_handle));

    // Guessing bob's id: the same 404 as an unknown id, and bob's grant still works.
    let csrf = mine.csrf();
    for id in [bob_grant.as_str(), "AAAAAAAAAAAAAAAAAAAAAA", "not-an-id"] {
        let page = alice
            .submit(&format!("/connections/{id}/revoke"), &[("csrf", &csrf)])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{id}");
        page.assert_shows("Connection not found");
    }
    assert_eq!(
        app.redeem(&app.token, &bob_handle).await.status(),
        StatusCode::OK
    );

    // Without the CSRF token nothing happens.
    let refused = alice
        .submit(
            &format!("/connections/{alice_grant}/revoke"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.redeem(&app.token, &alice_handle).await.status(),
        StatusCode::OK
    );

    let after = alice
        .submit(
            &format!("/connections/{alice_grant}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(after.path, "/connections");
    after.assert_shows("Revoked: Service A can no longer use your Acme access.");
    after.assert_shows("Active <span class=\"count\">(0)</span>");
    after.assert_shows("Revoked <span class=\"count\">(1)</span>");
    assert_problem(
        app.redeem(&app.token, &alice_handle).await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;
    let events = app.broker.raw_stores().audit.recent(100).await.unwrap();
    let revoked = events
        .iter()
        .find(|e| e.action.as_str() == "grant_revoked")
        .expect("revocation audited");
    assert_eq!(
        serde_json::to_value(&revoked.actor).unwrap(),
        serde_json::json!({"kind": "user", "id": "alice"})
    );
}

#[tokio::test]
async fn an_admin_finds_a_grant_revokes_it_offboards_a_user_and_kills_a_provider() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let alice = signed_in(&world, "alice").await;
    let bob = signed_in(&world, "bob").await;
    let (alice_grant, alice_handle) = grant_key(&world, &alice, "alice").await;
    let (_, bob_handle1) = grant_key(&world, &bob, "bob").await;
    // A second grant of bob's, for another provider (a second grant for the same service
    // and provider would supersede the first).
    let (_, bob_handle2) = accept_terms(&world, &bob, "bob").await;
    assert_eq!(
        app.redeem(&app.token, &alice_handle).await.status(),
        StatusCode::OK
    );

    let root = signed_in(&world, "root").await;
    let overview = root.open("/admin").await;
    overview.assert_shows(
        "<span class=\"stat__value\">3</span> <span class=\"stat__label\">active grants</span>",
    );
    overview.assert_shows("grant_redeemed");

    // Find alice's grant by user; its detail shows metadata and the audit trail only.
    let list = root.open("/admin/grants?user=alice").await;
    list.assert_shows(&format!("/admin/grants/{alice_grant}"));
    assert!(!list.html.contains(">bob<"), "only alice's grants");
    let detail = root.open(&format!("/admin/grants/{alice_grant}")).await;
    detail.assert_shows("<dt>Uses</dt><dd>1</dd>");
    detail.assert_shows("<code>read</code>");
    detail.assert_shows("grant_redeemed");
    detail.assert_shows("grant_created");
    for secret in [GOOD_KEY, alice_handle.as_str()] {
        assert!(!detail.html.contains(secret), "no secret on the page");
    }
    // The search box jumps straight to a grant by id.
    let jumped = root
        .open(&format!("/admin/grants?user={alice_grant}"))
        .await;
    assert_eq!(jumped.path, format!("/admin/grants/{alice_grant}"));

    // Revoke: a confirmation page first; the POST needs the CSRF token.
    let confirm = root
        .open(&format!("/admin/grants/{alice_grant}/revoke"))
        .await;
    confirm.assert_shows("Revoke this grant?");
    assert_eq!(
        app.redeem(&app.token, &alice_handle).await.status(),
        StatusCode::OK
    );
    let forged = root
        .submit(
            &format!("/admin/grants/{alice_grant}/revoke"),
            &[("csrf", "x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let revoked = root
        .submit(
            &format!("/admin/grants/{alice_grant}/revoke"),
            &[("csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(revoked.path, format!("/admin/grants/{alice_grant}"));
    revoked.assert_shows("Revoked the Acme grant of alice for Service A.");
    revoked.assert_shows("pill--revoked");
    assert_problem(
        app.redeem(&app.token, &alice_handle).await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;

    // Offboarding bob: the confirmation counts his two grants, then both stop working.
    let confirm = root.open("/admin/users/revoke?user=bob").await;
    confirm.assert_shows("Revoke all grants of bob?");
    confirm.assert_shows("<dt>Grants to revoke</dt><dd>2</dd>");
    let done = root
        .submit(
            "/admin/users/revoke",
            &[("csrf", &confirm.csrf()), ("user", "bob")],
        )
        .await;
    done.assert_shows("Revoked 2 grants of bob.");
    for h in [&bob_handle1, &bob_handle2] {
        assert_problem(
            app.redeem(&app.token, h).await,
            StatusCode::GONE,
            "grant_revoked",
        )
        .await;
    }

    // Kill switch: every remaining grant of the provider.
    let carol = signed_in(&world, "carol").await;
    let (_, carol_handle) = grant_key(&world, &carol, "carol").await;
    let confirm = root
        .open(&format!("/admin/providers/{API_KEY_PROVIDER}/revoke"))
        .await;
    confirm.assert_shows("<dt>Grants to revoke</dt><dd>1</dd>");
    let done = root
        .submit(
            &format!("/admin/providers/{API_KEY_PROVIDER}/revoke"),
            &[("csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(done.path, "/admin");
    done.assert_shows("Revoked 1 grants for provider acme.");
    done.assert_shows(
        "<span class=\"stat__value\">0</span> <span class=\"stat__label\">active grants</span>",
    );
    assert_problem(
        app.redeem(&app.token, &carol_handle).await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;

    // The audit log shows the admin's actions; the export is JSON lines of the same.
    let log = root
        .open("/admin/audit?actor=admin&action=grant_revoked")
        .await;
    log.assert_shows("root");
    assert_eq!(log.html.matches("<code>grant_revoked</code>").count(), 4);
    let r = root
        .client
        .get(app.url("/admin/audit.jsonl?actor=admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/jsonl")
    );
    let body = r.text().await.unwrap();
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "grant_revoked").count(), 4);
    assert!(actions.contains(&"user_grants_revoked"));
    assert!(actions.contains(&"provider_grants_revoked"));
    assert!(
        actions.contains(&"audit_exported"),
        "the export itself is audited"
    );
    assert!(
        events
            .iter()
            .all(|e| e["actor"] == serde_json::json!({"kind": "admin", "id": "root"}))
    );
    assert!(!body.contains(GOOD_KEY));
}

#[tokio::test]
async fn an_oauth_grant_page_shows_the_providers_details_and_what_revoking_there_did() {
    // The upstream's `scope` member, kept as metadata (as Salesforce's `instance_url` is).
    let world = OAuthWorld::start_with(|c| {
        for p in &mut c.providers {
            if let consent_broker::config::ProviderConfig::Oauth2(o) = p {
                o.metadata = Some(vec!["scope".into()]);
            }
        }
    })
    .await;
    let done = world.connect("alice").await;
    let grant = done["grant_id"].as_str().unwrap();
    let root = signed_in(&world, "root").await;
    let detail = root.open(&format!("/admin/grants/{grant}")).await;
    detail.assert_shows("<dt>Provider's <code>scope</code></dt><dd>api:read</dd>");
    assert!(
        !detail.html.contains("At the provider"),
        "nothing revoked yet"
    );

    let confirm = root.open(&format!("/admin/grants/{grant}/revoke")).await;
    let revoked = root
        .submit(
            &format!("/admin/grants/{grant}/revoke"),
            &[("csrf", &confirm.csrf())],
        )
        .await;
    revoked.assert_shows("<dt>At the provider</dt><dd>Revoked at the provider.</dd>");
    revoked.assert_shows("This grant is revoked: its handle no longer works here.");
}

//! Upstream OAuth 2 and enterprise sign-in against a real authorization server
//! (`oidc-provider`): the IdP users sign in at, and the upstream whose tokens the broker
//! obtains, holds and hands to the bound service.

use crate::common;

use common::idp::{
    OAUTH_PROVIDER, OAuthWorld, RESOURCE, UPSTREAM_CLIENT, is_oauth_callback, through_idp,
};
use common::{Browser, assert_problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `url` with the query parameter `name` set to `value` (a forged callback).
fn with_param(url: &reqwest::Url, name: &str, value: &str) -> reqwest::Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let mut forged = url.clone();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    forged
}

/// Signs `login` in at the IdP, approves the elicitation and signs in at the upstream too;
/// stops just before the upstream's redirect reaches the broker's callback.
async fn approve_until_callback(
    world: &OAuthWorld,
    browser: &Browser,
    created: &Value,
    login: &str,
) -> reqwest::Url {
    let id = created["id"].as_str().unwrap();
    let consent = world
        .open_signed_in(browser, created["url"].as_str().unwrap(), login)
        .await;
    assert_eq!(
        consent.path,
        format!("/e/{id}"),
        "back on the consent page after sign-in"
    );
    let upstream = browser
        .submit_until(
            &format!("/e/{id}/approve"),
            &[("csrf", &consent.csrf())],
            is_oauth_callback,
        )
        .await
        .page();
    through_idp(browser, upstream, login, is_oauth_callback)
        .await
        .stopped()
}

#[tokio::test]
async fn an_oauth_grant_goes_from_sign_in_to_a_token_the_upstream_accepts() {
    common::logs::capture();
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();

    // Enterprise sign-in at the IdP brings alice back to her consent page.
    let login = browser.open(created["url"].as_str().unwrap()).await;
    login.assert_shows("Continue with Example SSO");
    assert!(
        !login.html.contains("name=\"username\""),
        "no dev sign-in outside --dev"
    );
    let consent = world
        .open_signed_in(&browser, created["url"].as_str().unwrap(), "alice")
        .await;
    consent.assert_shows("Service A");
    consent.assert_shows("Acme Cloud");
    consent.assert_shows("Read your Acme Cloud data");
    consent.assert_shows("Connect Acme Cloud");
    let csp = browser
        .client
        .get(app.url(&format!("/e/{id}")))
        .send()
        .await
        .unwrap()
        .headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action 'self';"), "{csp}");

    // Approve answers a page of the broker's that says where the user is going and sends
    // the browser there by a plain navigation: `form-action` stays 'self' and does not
    // govern the authorization server's own redirects (browser::a_consent_completes_…).
    let approved = browser
        .client
        .post(app.url(&format!("/e/{id}/approve")))
        .form(&[("csrf", consent.csrf())])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::OK);
    let csp = approved.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action 'self';"), "{csp}");
    let page = approved.text().await.unwrap();
    let upstream_host = world.upstream.issuer.trim_start_matches("http://");
    assert!(page.contains("Continuing to Acme Cloud"), "{page}");
    assert!(
        page.contains(&format!("<strong>{upstream_host}</strong>")),
        "{page}"
    );
    let marker = "http-equiv=\"refresh\" content=\"0;url=";
    let start = page.find(marker).expect("a refresh") + marker.len();
    let refresh = &page[start..][..page[start..].find('"').unwrap()];
    assert!(
        page.contains(&format!("href=\"{refresh}\"")),
        "the link goes where the refresh goes: {page}"
    );

    // It sends the browser to the upstream with PKCE S256, state and the resource.
    let to_upstream = reqwest::Url::parse(&refresh.replace("&#38;", "&")).unwrap();
    assert_eq!(to_upstream.path(), "/auth");
    let params: std::collections::HashMap<String, String> =
        to_upstream.query_pairs().into_owned().collect();
    assert!(to_upstream.as_str().starts_with(&world.upstream.issuer));
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43);
    assert_eq!(params["resource"], RESOURCE);
    assert_eq!(params["scope"], "api:read");
    assert_eq!(params["redirect_uri"], app.url("/oauth/callback"));
    assert!(params["state"].len() >= 43);
    assert!(
        !to_upstream.as_str().contains("alice"),
        "no personal data in the URL"
    );

    let upstream_page = browser.open(to_upstream.as_str()).await;
    let callback = through_idp(&browser, upstream_page, "alice", is_oauth_callback)
        .await
        .stopped();
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let state = params["state"].clone();
    let done = browser.open(callback.as_str()).await;
    assert_eq!(done.path, format!("/e/{id}"));
    done.assert_shows("Connected");

    let status: Value = app.status(&app.token, id, 5).await.json().await.unwrap();
    assert_eq!(status["status"], "completed");
    let redeemed: Value = app
        .redeem(&app.token, status["handle"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(redeemed["kind"], "oauth2");
    assert_eq!(redeemed["scopes"], json!(["api:read"]));
    let credential = &redeemed["credential"];
    assert_eq!(credential["type"], "oauth2");
    assert!(
        credential.get("refresh_token").is_none(),
        "the refresh token stays in the vault"
    );
    assert!(credential["expires_at"].is_string());
    let token = credential["access_token"].as_str().unwrap();

    // The upstream itself confirms: a live token for alice, for the resource, with the scope.
    let introspection = world
        .upstream
        .introspect(UPSTREAM_CLIENT, &world.upstream_secret, token)
        .await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["sub"], "alice");
    assert_eq!(introspection["aud"], RESOURCE);
    assert_eq!(introspection["scope"], "api:read");
    assert_eq!(introspection["client_id"], UPSTREAM_CLIENT);

    let actions = app.audit_actions().await;
    for expected in [
        "signed_in",
        "oauth_authorization_started",
        "grant_created",
        "grant_redeemed",
    ] {
        assert!(
            actions.iter().any(|(a, _)| a == expected),
            "{expected} audited: {actions:?}"
        );
    }

    // No token, code, state or client secret reached the logs of the whole journey.
    let logs = common::logs::text();
    assert!(
        logs.contains("oauth_authorization_started"),
        "the logs were captured"
    );
    for (what, secret) in [
        ("access token", token),
        ("authorization code", code.as_str()),
        ("state", state.as_str()),
        ("upstream client secret", world.upstream_secret.as_str()),
        ("sign-in client secret", world.login_secret.as_str()),
        ("handle", status["handle"].as_str().unwrap()),
    ] {
        assert!(!logs.contains(secret), "the {what} reached the logs");
    }
}

#[tokio::test]
async fn a_replayed_callback_is_refused_and_changes_nothing() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let browser = app.browser();
    let callback = approve_until_callback(&world, &browser, &created, "alice").await;
    browser
        .open(callback.as_str())
        .await
        .assert_shows("Connected");
    let replay = browser.open(callback.as_str()).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    replay.assert_shows("flow_state_rejected");
    let subject = consent_broker::domain::Subject::parse("alice").unwrap();
    assert_eq!(
        app.broker
            .raw_stores()
            .grants
            .grants_of_subject(&subject)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&("oauth_callback_rejected".into(), "denied".into()))
    );
}

#[tokio::test]
async fn a_callback_from_another_browser_session_is_refused() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let alice = app.browser();
    let callback = approve_until_callback(&world, &alice, &created, "alice").await;

    // Someone else's browser, signed in as alice too (a stolen callback URL).
    let thief = app.browser();
    world.sign_in(&thief, "alice").await;
    let stolen = thief.open(callback.as_str()).await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);
    stolen.assert_shows("flow_state_rejected");
    // The state is spent: the flow cannot finish anywhere now, and nothing was granted.
    assert_eq!(
        alice.open(callback.as_str()).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.elicitation(id).await["status"], "pending");
}

#[tokio::test]
async fn a_callback_without_state_is_refused() {
    let world = OAuthWorld::start().await;
    let browser = world.app.browser();
    world.sign_in(&browser, "alice").await;
    for query in [
        "?code=abc",
        "",
        "?state=&code=abc",
        "?state=made-up&code=abc",
    ] {
        let page = browser.open(&format!("/oauth/callback{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        page.assert_shows("did not match a sign-in this browser started");
    }
}

#[tokio::test]
async fn an_authorization_code_cannot_be_used_twice() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let browser = app.browser();
    let first = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let callback = approve_until_callback(&world, &browser, &first, "alice").await;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    browser
        .open(callback.as_str())
        .await
        .assert_shows("Connected");
    // Revoke that grant so the next request needs the user again.
    let handle = app
        .status(&app.token, first["id"].as_str().unwrap(), 0)
        .await
        .json::<Value>()
        .await
        .unwrap()["handle"]
        .clone();
    assert_eq!(
        app.post_json(&app.token, "/v1/revoke", json!({ "handle": handle }))
            .await
            .status(),
        StatusCode::OK
    );

    // A second request; its callback carries its own state, but the first code.
    let second = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let consent = browser.open(second["url"].as_str().unwrap()).await;
    let id2 = second["id"].as_str().unwrap();
    let upstream = browser
        .submit_until(
            &format!("/e/{id2}/approve"),
            &[("csrf", &consent.csrf())],
            is_oauth_callback,
        )
        .await;
    let callback2 = match upstream {
        common::Step::Stopped(u) => u,
        common::Step::Page(p) => through_idp(&browser, p, "alice", is_oauth_callback)
            .await
            .stopped(),
    };
    let forged = with_param(&callback2, "code", &code);
    let page = browser.open(forged.as_str()).await;
    page.assert_shows("The connection failed");
    let status: Value = app.elicitation(id2).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["reason"], "invalid_grant");
    assert!(status.get("handle").is_none());
}

#[tokio::test]
async fn a_user_signed_in_at_the_idp_as_someone_else_is_refused() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let bob = app.browser();
    let page = world
        .open_signed_in(&bob, created["url"].as_str().unwrap(), "bob")
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.assert_shows("This link is for another account");
    page.assert_shows("bob");
}

#[tokio::test]
async fn scopes_beyond_the_service_policy_are_refused_at_creation() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let r = app.create(&app.token, json!({"subject": "alice", "provider": OAUTH_PROVIDER, "scopes": ["api:read", "api:write"]})).await;
    assert_problem(r, StatusCode::FORBIDDEN, "scope_not_allowed").await;
}

#[tokio::test]
async fn denying_at_the_upstream_declines_the_request() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = world
        .open_signed_in(&browser, created["url"].as_str().unwrap(), "alice")
        .await;
    let login = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    // The upstream's own "cancel" link answers access_denied.
    let declined = browser
        .open(&login.link(&format!("{}/interaction/", world.upstream.issuer)))
        .await;
    assert_eq!(declined.path, format!("/e/{id}"));
    declined.assert_shows("Request declined");
    assert_eq!(app.elicitation(id).await["status"], "declined");
}

#[tokio::test]
async fn an_authorization_server_without_pkce_s256_is_refused_before_any_redirect() {
    let metadata = axum::Router::new().route(
        "/.well-known/oauth-authorization-server",
        axum::routing::get(
            |axum::extract::State(issuer): axum::extract::State<String>| async move {
                axum::Json(json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{issuer}/authorize"),
                    "token_endpoint": format!("{issuer}/token"),
                    "code_challenge_methods_supported": ["plain"],
                }))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.4:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, metadata.with_state(issuer.clone())).into_future());
    let world = OAuthWorld::start_with(|c| {
        c.providers
            .push(consent_broker::config::ProviderConfig::Oauth2(
                consent_broker::config::OAuth2Config {
                    id: "legacy".into(),
                    name: "Legacy Corp".into(),
                    issuer: Some(issuer.parse().unwrap()),
                    client_id: "broker".into(),
                    client_secret: Some("legacy-secret".to_owned().into()),
                    ..Default::default()
                },
            ));
        c.services[0].allow.insert("legacy".into(), vec![]);
    })
    .await;
    let app = &world.app;
    let created = app.create_pending("alice", "legacy", &[]).await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = world
        .open_signed_in(&browser, created["url"].as_str().unwrap(), "alice")
        .await;
    let step = browser
        .submit_until(
            &format!("/e/{id}/approve"),
            &[("csrf", &consent.csrf())],
            |u| !u.as_str().starts_with(&app.base),
        )
        .await;
    let page = step.page();
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    page.assert_shows("does not support PKCE with S256");
    let status: Value = app.elicitation(id).await;
    assert_eq!(
        (status["status"].as_str(), status["reason"].as_str()),
        (Some("failed"), Some("provider_unsupported"))
    );
}

#[tokio::test]
async fn sign_in_takes_the_subject_and_admin_role_from_the_verified_id_token() {
    let world = OAuthWorld::start().await;
    let root = world.app.browser();
    let home = world.sign_in(&root, "root").await;
    home.assert_shows("Signed in as <strong>root</strong>");
    home.assert_shows("administrator");
    let alice = world.app.browser();
    let home = world.sign_in(&alice, "alice").await;
    home.assert_shows("Signed in as <strong>alice</strong>");
    assert!(
        !home.html.contains("administrator"),
        "alice is not in the admin group"
    );
}

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused_as_a_mix_up() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let browser = app.browser();
    let callback = approve_until_callback(&world, &browser, &created, "alice").await;
    let forged = with_param(&callback, "iss", "https://attacker.example");
    let page = browser.open(forged.as_str()).await;
    page.assert_shows("The connection failed");
    let status: Value = app
        .status(&app.token, created["id"].as_str().unwrap(), 0)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (status["status"].as_str(), status["reason"].as_str()),
        (Some("failed"), Some("issuer_mismatch"))
    );
    assert!(
        status.get("handle").is_none(),
        "the code was never exchanged"
    );
}

#[tokio::test]
async fn a_callback_carrying_iss_completes_when_no_issuer_is_configured() {
    // Explicit endpoints and no issuer: the `iss` the server sends (RFC 9207) cannot be
    // checked, and the flow record binding the code to this provider is the defence.
    let world = OAuthWorld::start_with(|c| {
        for p in &mut c.providers {
            if let consent_broker::config::ProviderConfig::Oauth2(o) = p
                && let Some(issuer) = o.issuer.take()
            {
                let discovery = common::idp::discovery_document(&issuer);
                let url = |k: &str| discovery[k].as_str().unwrap().parse().unwrap();
                o.authorization_endpoint = Some(url("authorization_endpoint"));
                o.token_endpoint = Some(url("token_endpoint"));
            }
        }
    })
    .await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let browser = app.browser();
    let callback = approve_until_callback(&world, &browser, &created, "alice").await;
    assert!(
        callback.query_pairs().any(|(k, _)| k == "iss"),
        "the server sends iss: {callback}"
    );
    let done = browser.open(callback.as_str()).await;
    done.assert_shows("Connected");
}

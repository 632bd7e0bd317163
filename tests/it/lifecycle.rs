//! Token lifecycle against the real authorization server: refresh at redemption (one
//! upstream request however many redemptions race, across instances), revocation that
//! reaches the upstream, re-authorization when the upstream forgets the grant, scope
//! upgrades and new terms that replace a grant.

use crate::common;

use std::time::Duration;

use common::idp::{OAuthWorld, RESOURCE, UPSTREAM_CLIENT};
use common::redis::RedisServer;
use common::{API_KEY_PROVIDER, GOOD_KEY, TERMS_PROVIDER, TestApp, assert_problem, use_redis};
use consent_broker::config::ProviderConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Upstream access tokens live this long; with the default 60 s skew capped at half the
/// lifetime, a token is due for refresh after `TTL / 2` seconds.
const TTL: u64 = 8;

/// Moves the clock of each broker instance past the moment its tokens are due for refresh
/// (instead of sleeping through it). The upstream's own clock does not move, so the old
/// token is still valid there: what changes is only the broker's decision to refresh.
fn until_refresh_is_due(instances: &[&TestApp]) {
    for app in instances {
        app.broker.clock().advance(Duration::from_secs(TTL / 2 + 1));
    }
}

async fn access_token(r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["credential"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_access_token_due_for_refresh_is_refreshed_at_redemption_and_works_upstream() {
    common::logs::capture();
    let world = OAuthWorld::start_custom(TTL, |_| {}).await;
    let app = &world.app;
    let status = world.connect("alice").await;
    let handle = status["handle"].as_str().unwrap();

    let first = access_token(app.redeem(&app.token, handle).await).await;
    let again = access_token(app.redeem(&app.token, handle).await).await;
    assert_eq!(first, again, "a fresh token is handed out as it is");
    assert_eq!(world.upstream.stats().await["refreshes"], 0);

    until_refresh_is_due(&[&world.app]);
    let refreshed = access_token(app.redeem(&app.token, handle).await).await;
    assert_ne!(refreshed, first);
    assert_eq!(world.upstream.stats().await["refreshes"], 1);
    let introspection = world
        .upstream
        .introspect(UPSTREAM_CLIENT, &world.upstream_secret, &refreshed)
        .await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["aud"], RESOURCE);
    assert!(
        app.audit_actions()
            .await
            .contains(&("grant_refreshed".into(), "success".into()))
    );
}

#[tokio::test]
async fn fifty_concurrent_redemptions_on_two_instances_cause_exactly_one_refresh() {
    let redis = RedisServer::start();
    let world = OAuthWorld::start_custom(TTL, |c| use_redis(c, &redis.url())).await;
    let other = world.another_instance().await;
    let status = world.connect("alice").await;
    let handle = status["handle"].as_str().unwrap().to_owned();
    until_refresh_is_due(&[&world.app, &other]);
    let before = world.upstream.stats().await["tokenRequests"]
        .as_u64()
        .unwrap();

    let mut tasks = Vec::new();
    for i in 0..50 {
        let (api, token, handle) = (
            world.app.api.clone(),
            world.app.token.clone(),
            handle.clone(),
        );
        let url = if i % 2 == 0 {
            world.app.url("/v1/redeem")
        } else {
            other.url("/v1/redeem")
        };
        tasks.push(tokio::spawn(async move {
            access_token(
                api.post(url)
                    .bearer_auth(token)
                    .json(&json!({ "handle": handle }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    let after = world.upstream.stats().await["tokenRequests"]
        .as_u64()
        .unwrap();
    assert_eq!(after - before, 1, "one token request for fifty redemptions");
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "everyone got the one fresh token");
    let introspection = world
        .upstream
        .introspect(UPSTREAM_CLIENT, &world.upstream_secret, &tokens[0])
        .await;
    assert_eq!(introspection["active"], true);
}

#[tokio::test]
async fn revoking_disables_the_grant_and_both_tokens_upstream() {
    common::logs::capture();
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let status = world.connect("alice").await;
    let grant = status["grant_id"].as_str().unwrap();
    let (access, refresh) = world.sealed_tokens(grant).await;
    let refresh = refresh.expect("the upstream issued a refresh token");
    let world = &world;
    let introspect = |token: String| async move {
        world
            .upstream
            .introspect(UPSTREAM_CLIENT, &world.upstream_secret, &token)
            .await["active"]
            .clone()
    };
    assert_eq!(introspect(access.clone()).await, true);
    assert_eq!(introspect(refresh.clone()).await, true);

    let r = app
        .api
        .delete(app.url(&format!("/v1/grants/{grant}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (
            body["status"].as_str(),
            body["upstream_revocation"].as_str()
        ),
        (Some("revoked"), Some("revoked"))
    );
    assert_eq!(
        introspect(access).await,
        false,
        "the access token is dead upstream"
    );
    assert_eq!(
        introspect(refresh).await,
        false,
        "the refresh token is dead upstream"
    );
    assert_problem(
        app.redeem(&app.token, status["handle"].as_str().unwrap())
            .await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;
    assert!(
        app.audit_actions()
            .await
            .contains(&("upstream_revocation".into(), "success".into()))
    );
}

#[tokio::test]
async fn a_refresh_token_revoked_upstream_leads_to_reauthorization_with_a_working_link() {
    let world = OAuthWorld::start_custom(TTL, |_| {}).await;
    let app = &world.app;
    let status = world.connect("alice").await;
    let old_handle = status["handle"].as_str().unwrap().to_owned();
    let (_, refresh) = world
        .sealed_tokens(status["grant_id"].as_str().unwrap())
        .await;
    // The user (or the upstream's admin) revokes the broker's access at the upstream.
    let revoked = reqwest::Client::new()
        .post(format!("{}/token/revocation", world.upstream.issuer))
        .basic_auth(UPSTREAM_CLIENT, Some(&world.upstream_secret))
        .form(&[
            ("token", refresh.unwrap().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    until_refresh_is_due(&[&world.app]);

    let problem = assert_problem(
        app.redeem(&app.token, &old_handle).await,
        StatusCode::CONFLICT,
        "reauthorization_required",
    )
    .await;
    let elicitation = &problem["elicitation"];
    assert_eq!(elicitation["status"], "pending");
    assert_eq!(elicitation["mcp"]["mode"], "url");
    assert_eq!(elicitation["scopes"], json!(["api:read"]));
    let again = assert_problem(
        app.redeem(&app.token, &old_handle).await,
        StatusCode::CONFLICT,
        "reauthorization_required",
    )
    .await;
    assert_eq!(
        again["elicitation"]["id"], elicitation["id"],
        "the open link is reused, not multiplied"
    );

    // The link works: the user connects again, and the service gets a working grant.
    let done = world.consent_to(&app.browser(), elicitation, "alice").await;
    assert_eq!(done["status"], "completed");
    let new_handle = done["handle"].as_str().unwrap();
    let token = access_token(app.redeem(&app.token, new_handle).await).await;
    assert_eq!(
        world
            .upstream
            .introspect(UPSTREAM_CLIENT, &world.upstream_secret, &token)
            .await["active"],
        true
    );
    assert_problem(
        app.redeem(&app.token, &old_handle).await,
        StatusCode::GONE,
        "grant_superseded",
    )
    .await;
}

#[tokio::test]
async fn an_upstream_outage_during_refresh_is_retryable_and_leaves_the_grant_alone() {
    let mut world = OAuthWorld::start_custom(TTL, |_| {}).await;
    let status = world.connect("alice").await;
    let handle = status["handle"].as_str().unwrap().to_owned();
    until_refresh_is_due(&[&world.app]);
    world.upstream.kill();
    let r = world.app.redeem(&world.app.token, &handle).await;
    assert_eq!(r.headers()["retry-after"], "5");
    assert_problem(r, StatusCode::BAD_GATEWAY, "upstream_unavailable").await;
    let id = consent_broker::domain::GrantId::parse(status["grant_id"].as_str().unwrap()).unwrap();
    let grant = world
        .app
        .broker
        .raw_stores()
        .grants
        .grant(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        grant.status,
        consent_broker::domain::GrantStatus::Active,
        "not marked for re-authorization"
    );
    assert!(
        world
            .app
            .audit_actions()
            .await
            .contains(&("grant_refresh_failed".into(), "failure".into()))
    );
}

#[tokio::test]
async fn a_scope_upgrade_asks_for_the_union_and_the_new_grant_replaces_the_old() {
    let app = TestApp::spawn().await;
    let read = app.create_pending("bob", API_KEY_PROVIDER, &["read"]).await;
    let old = app.consent_api_key(&read, "bob", GOOD_KEY).await;
    let old_handle = old["handle"].as_str().unwrap();

    let upgrade = app
        .create(
            &app.token,
            json!({"subject": "bob", "provider": API_KEY_PROVIDER, "scopes": ["write"]}),
        )
        .await;
    assert_eq!(upgrade.status(), StatusCode::CREATED);
    let upgrade: Value = upgrade.json().await.unwrap();
    assert_eq!(
        upgrade["scopes"],
        json!(["read", "write"]),
        "consent covers what was granted and what is asked"
    );
    let new = app.consent_api_key(&upgrade, "bob", GOOD_KEY).await;

    assert_problem(
        app.redeem(&app.token, old_handle).await,
        StatusCode::GONE,
        "grant_superseded",
    )
    .await;
    let ready: Value = app
        .create(
            &app.token,
            json!({"subject": "bob", "provider": API_KEY_PROVIDER, "scopes": ["read"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["handle"].as_str()),
        (Some("ready"), new["handle"].as_str())
    );
    assert_eq!(ready["scopes"], json!(["read", "write"]));
    assert!(
        app.audit_actions()
            .await
            .contains(&("grant_superseded".into(), "success".into()))
    );
}

#[tokio::test]
async fn a_new_terms_version_must_be_accepted_again() {
    let app = TestApp::spawn().await;
    let created = app.create_pending("carol", TERMS_PROVIDER, &[]).await;
    let browser = app.browser();
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "carol")
        .await;
    browser
        .submit(
            &format!("/e/{}/approve", created["id"].as_str().unwrap()),
            &[("csrf", &consent.csrf())],
        )
        .await;
    let v1_handle = app
        .status(&app.token, created["id"].as_str().unwrap(), 0)
        .await
        .json::<Value>()
        .await
        .unwrap()["handle"]
        .as_str()
        .unwrap()
        .to_owned();

    // The operator publishes version 2027-01 and restarts the broker.
    let app = app
        .restart_with(|c| {
            for p in &mut c.providers {
                if let ProviderConfig::Terms { version, text, .. } = p {
                    *version = "2027-01".into();
                    *text = Some(
                        "You agree that the assistant may read and summarise your Acme projects."
                            .into(),
                    );
                }
            }
        })
        .await;
    let renewed = app
        .create(
            &app.token,
            json!({"subject": "carol", "provider": TERMS_PROVIDER}),
        )
        .await;
    assert_eq!(
        renewed.status(),
        StatusCode::CREATED,
        "the old acceptance no longer satisfies"
    );
    let renewed: Value = renewed.json().await.unwrap();
    let browser = app.browser();
    let consent = browser
        .open_as(renewed["url"].as_str().unwrap(), "carol")
        .await;
    consent.assert_shows("The terms have changed");
    consent.assert_shows("You accepted version 2026-11 on");
    consent.assert_shows("Version 2027-01 below replaces it");
    consent.assert_shows("read and summarise");
    browser
        .submit(
            &format!("/e/{}/approve", renewed["id"].as_str().unwrap()),
            &[("csrf", &consent.csrf())],
        )
        .await;

    let redeemed: Value = {
        let status: Value = app
            .status(&app.token, renewed["id"].as_str().unwrap(), 0)
            .await
            .json()
            .await
            .unwrap();
        app.redeem(&app.token, status["handle"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap()
    };
    assert_eq!(redeemed["credential"]["version"], "2027-01");
    assert_problem(
        app.redeem(&app.token, &v1_handle).await,
        StatusCode::GONE,
        "grant_superseded",
    )
    .await;
}

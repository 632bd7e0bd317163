//! Brokers on Redis as an enterprise runs them: several stateless instances on one Redis,
//! any of which serves any step; a Redis outage seen as 503 everywhere and healed without
//! a restart; grants surviving a Redis restart when Redis persists them. Every test starts
//! its own redis-server.

use crate::common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{
    API_KEY_PROVIDER, Browser, GOOD_KEY, TestApp, assert_problem, test_config, use_redis,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Consents in `browser` (already signed in) on the instance it talks to; returns the
/// completed status as the service sees it on `app`.
async fn approve_key(browser: &Browser, app: &TestApp, id: &str) -> Value {
    let consent = browser.open(&format!("/e/{id}")).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
    consent.assert_shows("Service A");
    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    assert_eq!(form.path, format!("/e/{id}/api-key"));
    let done = browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", GOOD_KEY)],
        )
        .await;
    done.assert_shows("Connected");
    app.elicitation(id).await
}

/// Polls `probe` until it yields a value, for at most 20 s.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_flow_started_on_one_instance_is_finished_redeemed_and_revoked_across_instances() {
    let redis = RedisServer::start();
    let mut shared = test_config();
    use_redis(&mut shared.config, &redis.url());
    let a = TestApp::spawn_from(&shared).await;
    let b = TestApp::spawn_from(&shared).await;

    // The service asks instance A; the person signs in on A ...
    let created = a.create_pending("alice", API_KEY_PROVIDER, &["read"]).await;
    let id = created["id"].as_str().unwrap();
    let on_a = a.browser();
    let first = on_a
        .open_as(created["url"].as_str().unwrap(), "alice")
        .await;
    assert_eq!(first.status, StatusCode::OK);
    first.assert_shows("Service A");

    // ... and continues on B, already signed in: the session lives in Redis.
    let on_b = on_a.on(&b);
    let completed = approve_key(&on_b, &b, id).await;
    assert_eq!(completed["status"], "completed");
    let handle = completed["handle"].as_str().unwrap().to_owned();
    assert_eq!(
        a.elicitation(id).await["status"],
        "completed",
        "A sees what B settled"
    );

    // Either instance redeems it.
    for app in [&a, &b] {
        let r = app.redeem(&app.token, &handle).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["credential"]["api_key"], GOOD_KEY);
    }

    // Revoked on A, refused on B at once.
    let revoked = a
        .post_json(&a.token, "/v1/revoke", json!({ "handle": handle }))
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_problem(
        b.redeem(&b.token, &handle).await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;

    // Both instances write one audit trail.
    let trail = b.audit_actions().await;
    let count = |action: &str| trail.iter().filter(|(a, _)| a == action).count();
    assert_eq!(count("grant_redeemed"), 3, "{trail:?}");
    assert_eq!(count("grant_revoked"), 1, "{trail:?}");
}

#[tokio::test]
async fn while_redis_is_down_everything_answers_503_and_the_broker_recovers_without_restart() {
    let mut redis = RedisServer::start();
    let app = TestApp::spawn_with(|c| use_redis(c, &redis.url())).await;
    let created = app.create_pending("bob", API_KEY_PROVIDER, &["read"]).await;
    let url = created["url"].as_str().unwrap().to_owned();
    let browser = app.browser();
    assert_eq!(browser.open_as(&url, "bob").await.status, StatusCode::OK);

    redis.stop();

    let body = json!({"subject": "bob", "provider": API_KEY_PROVIDER, "scopes": ["read"]});
    assert_problem(
        app.create(&app.token, body.clone()).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    )
    .await;
    let page = browser.open(&url).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    page.assert_shows("try again shortly");
    let ready = app.api.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    redis.restart();

    eventually("readiness after Redis restarted", || async {
        let r = app.api.get(app.url("/readyz")).send().await.ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    let again = app.create(&app.token, body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    // Redis kept nothing, so the person signs in again, and the new link works.
    let fresh: Value = again.json().await.unwrap();
    let page = browser.open_as(fresh["url"].as_str().unwrap(), "bob").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_shows("Service A");
}

#[tokio::test]
async fn grants_survive_a_restart_of_a_redis_that_keeps_an_append_only_file() {
    let mut redis = RedisServer::start_with_aof();
    let app = TestApp::spawn_with(|c| use_redis(c, &redis.url())).await;
    let created = app
        .create_pending("carol", API_KEY_PROVIDER, &["read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    browser
        .open_as(created["url"].as_str().unwrap(), "carol")
        .await;
    let completed = approve_key(&browser, &app, id).await;
    let handle = completed["handle"].as_str().unwrap().to_owned();

    redis.restart();

    let body: Value = eventually("a redemption after Redis restarted", || async {
        let r = app.redeem(&app.token, &handle).await;
        (r.status() == StatusCode::OK).then_some(r.json().await.ok()?)
    })
    .await;
    assert_eq!(body["credential"]["api_key"], GOOD_KEY);
    assert_eq!(body["grant_id"], completed["grant_id"]);
}

#[tokio::test]
async fn a_redis_that_accepts_but_never_answers_is_unavailable_rather_than_a_hang() {
    // A listener that takes connections into its backlog and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", silent.local_addr().unwrap());
    let app = TestApp::spawn_with(|c| {
        use_redis(c, &url);
        c.store.connect_timeout_ms = 200;
        c.store.response_timeout_ms = 200;
    })
    .await;
    // The client gives up far later than the store should; a hang fails the test.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = client
        .post(app.url("/v1/elicitations"))
        .bearer_auth(&app.token)
        .json(&json!({"subject": "dave", "provider": API_KEY_PROVIDER}))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_problem(r, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable").await;
    let ready = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(silent);
}

#[tokio::test]
async fn a_first_visit_without_a_cookie_while_redis_is_down_gets_the_503_page() {
    let mut redis = RedisServer::start();
    let app = TestApp::spawn_with(|c| use_redis(c, &redis.url())).await;
    let created = app
        .create_pending("dana", API_KEY_PROVIDER, &["read"])
        .await;
    let url = created["url"].as_str().unwrap().to_owned();

    redis.stop();

    // The first click on a consent link: no session cookie yet, so the broker makes a
    // session it cannot save.
    for target in [url.as_str(), &app.url("/login")] {
        let r = reqwest::Client::new().get(target).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{target}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{target}"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("try again shortly"), "{target}: {html}");
    }
}

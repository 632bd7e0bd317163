//! Completion webhooks as a service receives them: Standard Webhooks headers and signature
//! (verified by the client crate's `verify_webhook`, which also reproduces the spec's test
//! vector), a body without secrets, retries with the same id, every attempt audited.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{API_KEY_PROVIDER, GOOD_KEY, TestApp};
use consent_broker::domain::WebhookKey;
use consent_broker_client::api::{ElicitationStatus, WebhookEventType};
use consent_broker_client::{WebhookError, WebhookSecret, verify_signature, verify_webhook};
use tokio::sync::mpsc;

pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A loopback receiver that answers 503 to the first `failures` deliveries, then 204.
pub async fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (tx, seen) = (tx.clone(), seen.clone());
            async move {
                let _ = tx.send(Delivery { headers, body });
                if seen.fetch_add(1, Ordering::SeqCst) < failures {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn app_with_webhook(url: &str, secret: &str) -> TestApp {
    let (url, secret) = (url.to_owned(), secret.to_owned());
    TestApp::spawn_with(move |c| {
        c.services[0].webhook_url = Some(url.parse().unwrap());
        c.services[0].webhook_secret = Some(secret.into());
    })
    .await
}

/// Runs the API-key consent for `subject` in the browser; returns the elicitation id.
async fn approve_api_key(app: &TestApp, subject: &str) -> String {
    let created = app
        .create_pending(subject, API_KEY_PROVIDER, &["read"])
        .await;
    app.consent_api_key(&created, subject, GOOD_KEY).await;
    created["id"].as_str().unwrap().to_owned()
}

const TOLERANCE: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_completed_elicitation_is_pushed_signed_and_without_any_secret() {
    let secret = WebhookKey::generate();
    let (url, mut deliveries) = receiver(0).await;
    let app = app_with_webhook(&url, &secret).await;
    let id = approve_api_key(&app, "alice").await;

    let d = deliveries.recv().await.unwrap();
    let verifier = WebhookSecret::parse(&secret).unwrap();
    let event = verify_webhook(&verifier, &d.headers, &d.body, SystemTime::now(), TOLERANCE)
        .expect("the broker's signature verifies");
    assert_eq!(event.type_, WebhookEventType::ElicitationSettled);
    assert_eq!(event.elicitation_id, id);
    assert_eq!(event.status, ElicitationStatus::Completed);
    assert!(
        d.headers["webhook-id"]
            .to_str()
            .unwrap()
            .starts_with("msg_")
    );
    assert_eq!(d.headers["content-type"], "application/json");

    // Only the type, the id and the status: the handle is fetched through the API.
    let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    let text = String::from_utf8_lossy(&d.body);
    assert!(!text.contains("cbh_") && !text.contains(GOOD_KEY), "{text}");
    let status: serde_json::Value = app.elicitation(&id).await;
    assert!(!text.contains(status["handle"].as_str().unwrap()));

    // The same delivery fails with a tampered body, another secret, or too late.
    let mut tampered = d.body.to_vec();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        verify_signature(
            &verifier,
            &d.headers,
            &tampered,
            SystemTime::now(),
            TOLERANCE
        ),
        Err(WebhookError::BadSignature)
    );
    let other = WebhookSecret::parse(&WebhookKey::generate()).unwrap();
    assert_eq!(
        verify_signature(&other, &d.headers, &d.body, SystemTime::now(), TOLERANCE),
        Err(WebhookError::BadSignature)
    );
    let later = SystemTime::now() + Duration::from_secs(600);
    assert_eq!(
        verify_signature(&verifier, &d.headers, &d.body, later, TOLERANCE),
        Err(WebhookError::Stale)
    );
}

#[tokio::test]
async fn a_declined_elicitation_is_pushed_too() {
    let secret = WebhookKey::generate();
    let (url, mut deliveries) = receiver(0).await;
    let app = app_with_webhook(&url, &secret).await;
    let created = app.create_pending("bob", API_KEY_PROVIDER, &["read"]).await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "bob")
        .await;
    browser
        .submit(&format!("/e/{id}/deny"), &[("csrf", &consent.csrf())])
        .await;

    let d = deliveries.recv().await.unwrap();
    let verifier = WebhookSecret::parse(&secret).unwrap();
    let event =
        verify_webhook(&verifier, &d.headers, &d.body, SystemTime::now(), TOLERANCE).unwrap();
    assert_eq!(event.elicitation_id, id);
    assert_eq!(event.status, ElicitationStatus::Declined);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_id_and_every_attempt_is_audited() {
    let secret = WebhookKey::generate();
    let (url, mut deliveries) = receiver(1).await;
    let app = app_with_webhook(&url, &secret).await;
    approve_api_key(&app, "carol").await;

    let first = deliveries.recv().await.unwrap();
    let second = deliveries.recv().await.unwrap();
    assert_eq!(first.headers["webhook-id"], second.headers["webhook-id"]);
    assert_eq!(first.body, second.body);
    let verifier = WebhookSecret::parse(&secret).unwrap();
    verify_webhook(
        &verifier,
        &second.headers,
        &second.body,
        SystemTime::now(),
        TOLERANCE,
    )
    .unwrap();

    // The audit event of the delivered attempt is written right after its response.
    let mut actions = app.audit_actions().await;
    while !actions.contains(&("webhook_delivered".into(), "success".into())) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        actions = app.audit_actions().await;
    }
    let failed = actions
        .iter()
        .position(|a| a == &("webhook_attempt_failed".into(), "failure".into()))
        .expect("the failed attempt is audited");
    let delivered = actions
        .iter()
        .position(|a| a == &("webhook_delivered".into(), "success".into()))
        .unwrap();
    assert!(failed < delivered);
    let events = app.broker.raw_stores().audit.recent(100).await.unwrap();
    let failure = events
        .iter()
        .find(|e| e.action.as_str() == "webhook_attempt_failed")
        .unwrap();
    assert_eq!(
        failure.reason.as_ref().map(|r| r.as_str()),
        Some("status_503")
    );
}

#[tokio::test]
async fn a_webhook_secret_not_in_the_standard_format_is_a_config_error() {
    let mut t = common::test_config();
    t.config.services[0].webhook_url = Some("https://svc.example/hook".parse().unwrap());
    t.config.services[0].webhook_secret = Some("hunter2".to_owned().into());
    t.config.services[1].webhook_url = Some("http://svc.example/hook".parse().unwrap());
    t.config.services[1].webhook_secret = Some(WebhookKey::generate().into());
    let e = consent_broker::config::Settings::from_config(&t.config, false)
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("services[0].webhook_secret: must start with `whsec_`"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    assert!(e.contains("services[1].webhook_url: plain http"), "{e}");
}

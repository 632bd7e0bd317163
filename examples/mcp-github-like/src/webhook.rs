//! The broker's completion webhook: verify the Standard Webhooks signature (refuse with
//! 401 otherwise), then read the elicitation through the authenticated API (the webhook
//! carries no handle) and settle it in the [`Service`](crate::Service).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use consent_broker_client::verify_webhook;

use crate::Service;

/// Where the broker's `webhook_url` points.
pub const PATH: &str = "/webhooks/consent-broker";
/// Deliveries older or newer than this are refused (replays).
const TOLERANCE: Duration = Duration::from_secs(300);

pub fn router(service: Arc<Service>) -> Router {
    Router::new().route(PATH, post(receive)).with_state(service)
}

async fn receive(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(secret) = &service.settings.webhook_secret else {
        return StatusCode::NOT_FOUND;
    };
    let Ok(event) = verify_webhook(secret, &headers, &body, SystemTime::now(), TOLERANCE) else {
        return StatusCode::UNAUTHORIZED;
    };
    match service.settings.broker.get(&event.elicitation_id).await {
        Ok(view) => {
            service.settled(&view).await;
            StatusCode::NO_CONTENT
        }
        // Not ours (or the broker is away): the broker retries, then gives up.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

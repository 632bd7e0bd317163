//! The Shared Signals receiver: `POST /ssf/events`, push delivery of Security Event Tokens
//! (RFC 8935), only with `[shared_signals]` configured (otherwise 404).
//!
//! The body is the SET itself (`application/secevent+jwt`). Accepted: `202` with no body.
//! Refused: `400` with `{"err": <RFC 8935 code>, "description": <fixed words>}` as
//! `application/json`, and nothing changed (a bad signature, a wrong issuer or audience,
//! a replayed `jti`...). When the transmitter must also send a bearer token and does not,
//! the answer is `400 authentication_failed`. Such failures, and SETs refused before their
//! signature held, count against the caller's address like wrong service tokens (`429`
//! beyond the allowance). When acting on
//! a valid SET fails (the store is down), `503`: the transmitter retries.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::broker::{Broker, SetRefused};
use crate::identity::security_events::SetError;

pub fn router() -> Router<Arc<Broker>> {
    Router::new().route("/ssf/events", post(receive))
}

async fn receive(State(broker): State<Arc<Broker>>, request: Request) -> Response {
    if broker.settings().shared_signals.is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (parts, body) = request.into_parts();
    let bearer = bearer(&parts.headers);
    if !broker.authenticate_transmitter(bearer) {
        let limits = broker.limits();
        let address = limits.client_address(&parts.headers, &parts.extensions);
        if let Err(wait) = limits.failed_auth.check(&address) {
            return too_many(wait.as_secs().max(1));
        }
        return refusal(&SetError::AuthenticationFailed);
    }
    let limit = broker.settings().max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return refusal(&SetError::InvalidRequest(
            "the body could not be read or is too large",
        ));
    };
    let Ok(token) = std::str::from_utf8(&bytes) else {
        return refusal(&SetError::InvalidRequest("the body is not a signed JWT"));
    };
    match broker.receive_security_event(token).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(SetRefused::NotConfigured) => StatusCode::NOT_FOUND.into_response(),
        Err(SetRefused::Invalid(refused)) => {
            // An unsigned SET (garbage, forged, from another issuer) is someone else's
            // traffic: it counts against the caller's address like a wrong token.
            if !refused.signed {
                let limits = broker.limits();
                let address = limits.client_address(&parts.headers, &parts.extensions);
                if let Err(wait) = limits.failed_auth.check(&address) {
                    return too_many(wait.as_secs().max(1));
                }
            }
            refusal(&refused.error)
        }
        Err(SetRefused::Failed(e)) => {
            tracing::warn!(error = %e, "a valid SET could not be acted on; the transmitter will retry");
            let status = match e {
                crate::Error::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            status.into_response()
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// RFC 8935 §2.3: 400 with the error code and a description.
fn refusal(e: &SetError) -> Response {
    let body = serde_json::json!({"err": e.code(), "description": e.description()});
    (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn too_many(wait: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, HeaderValue::from(wait))],
    )
        .into_response()
}

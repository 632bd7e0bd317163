//! Operator endpoints: `/healthz` (the process serves), `/readyz` (its store answers) and
//! `/metrics` (the exposition `crate::metrics` renders, behind an optional bearer token).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::broker::Broker;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(broker): State<Arc<Broker>>) -> Response {
    match broker.store_ready().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            let failure = crate::metrics::StoreFailure::of(&e);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Extension(failure),
                "store unavailable",
            )
                .into_response()
        }
    }
}

/// `GET /metrics`. Open unless `telemetry.metrics_token_sha256` is set, in which case it
/// takes `Authorization: Bearer <token>`.
pub async fn metrics(State(broker): State<Arc<Broker>>, headers: HeaderMap) -> Response {
    if let Some(expected) = &broker.settings().metrics_token_sha256 {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Sha256::digest(t.trim().as_bytes()));
        let ok = presented.is_some_and(|d| bool::from(d.as_slice().ct_eq(expected)));
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                "metrics need a bearer token\n",
            )
                .into_response();
        }
    }
    match broker.metrics().render(broker.grant_store()).await {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

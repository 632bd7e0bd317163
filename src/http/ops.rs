//! Operator endpoints: `/healthz` (the process serves) and `/readyz` (its store answers).
//! `/metrics` lives in `crate::metrics`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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

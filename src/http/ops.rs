//! Operator endpoints: `/healthz` (the process serves) and `/readyz` (its store answers).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use crate::broker::Broker;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(broker): State<Arc<Broker>>) -> (StatusCode, &'static str) {
    match broker.stores.health.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}

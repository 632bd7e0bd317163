//! The service API under `/v1`: bearer-authenticated JSON in, JSON or problem+json out.
//! Request bodies are parsed into domain types at the edge; unknown fields are refused.

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::broker::Broker;

pub mod elicitations;
pub mod grants;
pub mod openapi;
pub mod register;

pub fn router() -> Router<Arc<Broker>> {
    Router::new()
        .route("/v1/elicitations", post(elicitations::create))
        .route("/v1/elicitations/{id}", get(elicitations::status))
        .route("/v1/redeem", post(grants::redeem))
        .route("/v1/revoke", post(grants::revoke_by_handle))
        .route("/v1/grants/{id}", delete(grants::revoke_by_id))
        .route("/v1/register", post(register::register))
        .route(
            "/v1/register/{client_id}",
            get(register::read).delete(register::delete),
        )
        .route("/v1/register/{client_id}/rotate", post(register::rotate))
        .route("/openapi.json", get(openapi::document))
}

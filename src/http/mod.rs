//! The HTTP edge: routes, layers and the two renderings of errors. Handlers stay thin:
//! parse into domain types, call the broker, render.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::middleware;
use axum::routing::get;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::broker::Broker;

pub mod api;
pub mod csrf;
mod edge;
pub mod extract;
pub mod i18n;
pub mod ops;
pub mod pages;
pub mod problem;
pub mod render;
pub mod scim;
pub mod serve;
pub mod shared_signals;

pub fn router(broker: Arc<Broker>) -> Router {
    let https = broker.public_url().scheme() == "https";
    let idle = time::Duration::try_from(broker.settings().session_idle)
        .unwrap_or(time::Duration::hours(8));
    let sessions = SessionManagerLayer::new(broker.session_store())
        .with_name(if https {
            "__Host-cb_session"
        } else {
            "cb_session"
        })
        .with_secure(https)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle));
    let max_body = broker.settings().max_body_bytes;

    Router::new()
        .merge(
            pages::router()
                .layer(sessions)
                .layer(middleware::from_fn(render::readable_refusals))
                .layer(axum::middleware::from_fn_with_state(
                    broker.clone(),
                    pages::limit_posts,
                )),
        )
        .merge(api::router().layer(middleware::from_fn(problem::problem_refusals)))
        .merge(scim::router())
        .merge(shared_signals::router())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/static/app.css", get(stylesheet))
        // Before the layers, so that unknown routes get the same headers and request id.
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(broker.clone(), edge::edge))
        .with_state(broker)
}

/// The one stylesheet, compiled into the binary so the broker needs no files at run time.
async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
}

/// Unknown paths: a problem for API callers, a readable page for people.
async fn no_such_route(uri: axum::http::Uri) -> axum::response::Response {
    edge_error(&uri, crate::Error::NoSuchRoute)
}

async fn method_not_allowed(uri: axum::http::Uri) -> axum::response::Response {
    edge_error(&uri, crate::Error::MethodNotAllowed)
}

fn edge_error(uri: &axum::http::Uri, error: crate::Error) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/scim/") {
        scim::edge_refusal(&error)
    } else if uri.path().starts_with("/v1/") || uri.path() == "/v1" {
        problem::ApiError::from(error).into_response()
    } else {
        render::PageError(error).into_response()
    }
}

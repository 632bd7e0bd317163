//! The HTTP edge: routes, layers and the two renderings of errors. Handlers stay thin:
//! parse into domain types, call the broker, render.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware;
use axum::routing::get;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::broker::Broker;

pub mod api;
pub mod csrf;
pub mod extract;
pub mod ops;
pub mod pages;
pub mod problem;

/// Content-Security-Policy for every response: no script at all, styles from us only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The same policy, with forms also allowed to lead to `origin` (an OAuth server).
pub fn csp_with_form_action(origin: &str) -> String {
    CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    )
}

pub fn router(broker: Arc<Broker>) -> Router {
    let https = broker.public_url.scheme() == "https";
    let idle =
        time::Duration::try_from(broker.settings.session_idle).unwrap_or(time::Duration::hours(8));
    let sessions = SessionManagerLayer::new(broker.stores.sessions.clone())
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
    let max_body = broker.settings.max_body_bytes;

    Router::new()
        .merge(
            pages::router()
                .layer(sessions)
                .layer(axum::middleware::from_fn_with_state(
                    broker.clone(),
                    pages::limit_posts,
                )),
        )
        .merge(api::router())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(crate::metrics::endpoint))
        .route("/static/app.css", get(stylesheet))
        // Before the layers, so that unknown routes get the same headers and request id.
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(limit_header_size))
        .layer(header_layer(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(header_layer(header::CACHE_CONTROL, "no-store"))
        // Outermost, in request order: vet the caller's request id, set one if absent,
        // echo it in the response, and run the request in its span (logs and metrics).
        .layer(middleware::from_fn_with_state(
            broker.clone(),
            crate::telemetry::observe,
        ))
        .layer(PropagateRequestIdLayer::new(crate::telemetry::REQUEST_ID))
        .layer(SetRequestIdLayer::new(
            crate::telemetry::REQUEST_ID,
            crate::telemetry::NewRequestId,
        ))
        .layer(middleware::from_fn(
            crate::telemetry::drop_unusable_request_id,
        ))
        .with_state(broker)
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
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
    if uri.path().starts_with("/v1/") || uri.path() == "/v1" {
        problem::ApiError::from(error).into_response()
    } else {
        pages::PageError(error).into_response()
    }
}

/// Largest total size of a request's headers (names and values).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses requests whose headers exceed [`MAX_HEADER_BYTES`] (hyper alone admits ~400 KB).
async fn limit_header_size(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return edge_error(request.uri(), crate::Error::HeadersTooLarge);
    }
    next.run(request).await
}

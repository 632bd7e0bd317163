//! Logging and request telemetry: `tracing` to stderr, filtered by `RUST_LOG` (default
//! `info`), as text or as one JSON object per line (`[telemetry] log_format = "json"`, or
//! `BROKER_TELEMETRY__LOG_FORMAT=json`).
//!
//! Every request runs in a `request` span carrying its `x-request-id` (kept from the caller
//! when it is a short token, otherwise generated, and echoed in the response), the method
//! and the route *template*; every line logged while serving it carries that span. One
//! line per request says how it ended (status, latency).
//!
//! Invariants: no query string, body or header value other than the request id is ever
//! logged (OAuth callbacks carry `code` and `state` in the query); unmatched paths are
//! logged without their query. Log lines carry ids and outcomes only; secrets are held in
//! types that do not print.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::Response;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::metrics::{Metrics, StoreFailure};

/// The header that carries the request id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id that is kept.
const MAX_REQUEST_ID: usize = 64;

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        // `spans` lists the open spans outermost first: `spans[0]` is the request's, with
        // `request_id`, `method` and `route`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// A fresh request id: 96 random bits, URL-safe base64 (16 characters).
pub fn new_request_id() -> HeaderValue {
    HeaderValue::from_str(&crate::random::token::<12>())
        .expect("base64url text is a valid header value")
}

/// True for a caller's `x-request-id` that is a short token of `[A-Za-z0-9._:-]`; any
/// other is replaced, so that what reaches the logs is never arbitrary caller text.
pub fn usable_request_id(id: &HeaderValue) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// One request, observed: its `request` span, when it started, and what its metrics
/// are filed under.
pub struct Observed {
    span: tracing::Span,
    started: Instant,
    method: Method,
    route: Option<MatchedPath>,
}

impl Observed {
    /// Opens the request's span (id, method, route template) and logs its start.
    pub fn start(request: &Request, id: &HeaderValue) -> Self {
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let template = route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or("-"),
            method = method.as_str(),
            route = template,
        );
        span.in_scope(|| match route {
            Some(_) => tracing::debug!("request started"),
            // The path only, never the query.
            None => tracing::debug!(path = request.uri().path(), "request started (no route)"),
        });
        Self {
            span,
            started: Instant::now(),
            method,
            route,
        }
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Logs how the request ended and records its metrics.
    pub fn finish(self, metrics: &Metrics, response: &Response) {
        let latency = self.started.elapsed();
        let status = response.status();
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        self.span.in_scope(|| {
            if is_probe(route) {
                tracing::debug!(status = status.as_u16(), latency_ms, "request finished");
            } else {
                tracing::info!(status = status.as_u16(), latency_ms, "request finished");
            }
        });
        let store_failure = response.extensions().get::<StoreFailure>().copied();
        metrics.record_request(&self.method, route, status, latency, store_failure);
    }
}

/// Probes and scrapes are logged at debug level only, so they do not drown the log.
fn is_probe(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

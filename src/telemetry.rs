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

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::broker::Broker;
use crate::metrics::StoreFailure;

/// The header that carries the request id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id that is kept.
const MAX_REQUEST_ID: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[telemetry]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// When set, `/metrics` requires `Authorization: Bearer <token>` whose SHA-256 (hex)
    /// this is. Without it `/metrics` is open: restrict it at the network.
    pub metrics_token_sha256: Option<String>,
}

impl TelemetryConfig {
    /// The metrics token digest, or the problem with it.
    pub fn metrics_token(&self) -> Result<Option<[u8; 32]>, String> {
        let Some(hex_digest) = &self.metrics_token_sha256 else {
            return Ok(None);
        };
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest)
            .map(|()| Some(digest))
            .map_err(|_| {
                "telemetry.metrics_token_sha256: must be 64 hex digits \
                 (run `consent-broker service-token generate`)"
                    .into()
            })
    }
}

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

/// Generates request ids: 96 random bits, URL-safe base64 (16 characters).
#[derive(Clone, Copy, Debug, Default)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&crate::random::token::<12>())
            .ok()
            .map(RequestId::new)
    }
}

/// Drops a caller's `x-request-id` that is not a short token of `[A-Za-z0-9._:-]`, so that
/// a fresh one is generated: what reaches the logs is never arbitrary caller text.
pub async fn drop_unusable_request_id(mut request: Request, next: Next) -> Response {
    let usable = request.headers().get(&REQUEST_ID).is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_REQUEST_ID
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
    });
    if !usable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// Runs a request in its `request` span, logs how it ended and records its metrics.
pub async fn observe(State(broker): State<Arc<Broker>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let route = matched.as_deref().unwrap_or("unmatched").to_owned();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
    );
    span.in_scope(|| match matched {
        Some(_) => tracing::debug!("request started"),
        // The path only, never the query.
        None => tracing::debug!(path = request.uri().path(), "request started (no route)"),
    });
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status();
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        if is_probe(&route) {
            tracing::debug!(status = status.as_u16(), latency_ms, "request finished");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request finished");
        }
    });
    let store_failure = response.extensions().get::<StoreFailure>().copied();
    broker
        .metrics
        .record_request(&method, &route, status, latency, store_failure);
    response
}

/// Probes and scrapes are logged at debug level only, so they do not drown the log.
fn is_probe(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

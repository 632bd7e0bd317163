//! The edge: the one middleware every request passes through, outermost. In order, it
//! - keeps the caller's `x-request-id` when it is a short token, else sets a fresh one,
//!   and echoes it in the response;
//! - runs the request in its `request` span, logs how it ended and records its metrics
//!   ([`crate::telemetry`]);
//! - refuses requests whose headers exceed [`MAX_HEADER_BYTES`] (hyper alone admits
//!   ~400 KB);
//! - answers `408` for a request whose body missed its deadline ([`super::serve`]);
//! - sets the security headers on every response that did not set its own, and
//!   `Strict-Transport-Security` when the public URL is https.
//!
//! One layer rather than a stack of ten: each `tower` layer of the old stack cost a clone
//! of the service below it and a future per request, and together they took a third of a
//! bare request's throughput (docs/performance.md).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::serve::BodyDeadline;
use crate::broker::Broker;
use crate::telemetry::{self, REQUEST_ID};

/// Content-Security-Policy for every response: no script at all, styles from us only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Set on every response unless the handler set its own.
const SECURITY_HEADERS: [(HeaderName, &str); 6] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (header::CACHE_CONTROL, "no-store"),
];

/// The branding, language and address of a request's pages (for the language switch). The
/// admin console is English only, and offers no switch.
fn page_context(broker: &Broker, request: &Request) -> super::render::PageContext {
    let admin = request.uri().path().starts_with("/admin");
    super::render::PageContext {
        branding: broker.settings().branding.clone(),
        lang: if admin {
            super::i18n::Lang::En
        } else {
            super::i18n::Lang::of_request(request.headers())
        },
        // The way back is the path alone, but for the sign-in page its own `return_to`: a
        // query may carry what no link should (an OAuth callback's code and state).
        here: (!admin).then(|| {
            let uri = request.uri();
            match uri.query() {
                Some(query) if uri.path() == "/login" => format!("/login?{query}"),
                _ => uri.path().to_owned(),
            }
        }),
    }
}

/// Strict-Transport-Security when the public URL is https: one year, this host only (the
/// broker cannot speak for its parent domain's other hosts).
const HSTS: &str = "max-age=31536000";

/// Largest total size of a request's headers (names and values).
const MAX_HEADER_BYTES: usize = 16 * 1024;

pub async fn edge(State(broker): State<Arc<Broker>>, mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(&REQUEST_ID) {
        Some(id) if telemetry::usable_request_id(id) => id.clone(),
        _ => {
            let id = telemetry::new_request_id();
            request.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    let observed = telemetry::Observed::start(&request, &id);
    let mut response = if headers_size(request.headers()) > MAX_HEADER_BYTES {
        super::edge_error(request.uri(), crate::Error::HeadersTooLarge)
    } else {
        let deadline = request.extensions().get::<BodyDeadline>().cloned();
        let uri = request.uri().clone();
        let context = page_context(&broker, &request);
        let response = super::render::with_page_context(context, next.run(request))
            .instrument(observed.span().clone())
            .await;
        if deadline.is_some_and(|d| d.missed()) {
            // Whatever the handler made of its failed body, the answer is "too slow", and
            // the connection is not kept: the rest of the body may still be on its way.
            let mut timed_out = super::edge_error(&uri, crate::Error::BodyTimeout);
            timed_out
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            timed_out
        } else {
            response
        }
    };
    let headers = response.headers_mut();
    for (name, value) in &SECURITY_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if broker.public_url().scheme() == "https"
        && !headers.contains_key(header::STRICT_TRANSPORT_SECURITY)
    {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    if !headers.contains_key(&REQUEST_ID) {
        headers.insert(REQUEST_ID, id);
    }
    observed.finish(broker.metrics(), &response);
    response
}

fn headers_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

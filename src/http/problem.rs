//! The API rendering of the domain error: RFC 9457 `application/problem+json`, one stable
//! `type` per failure, plus the extractors whose rejections must speak the same language.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use consent_broker_api::ElicitationView;
pub use consent_broker_api::{PROBLEM_TYPE_PREFIX, Problem};

use crate::Error;

/// An error on its way to a service.
#[derive(Debug)]
pub struct ApiError {
    error: Error,
    /// For `reauthorization_required`: the elicitation to hand to the MCP client.
    elicitation: Option<ElicitationView>,
}

impl ApiError {
    /// The problem with a ready elicitation attached (see [`Problem::elicitation`]).
    pub fn with_elicitation(error: Error, elicitation: ElicitationView) -> Self {
        Self {
            error,
            elicitation: Some(elicitation),
        }
    }
}

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self {
            error: e.into(),
            elicitation: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.error;
        let status = e.status();
        if status.is_server_error() {
            tracing::error!(error = ?e, code = e.kind().as_str(), "request failed");
        } else {
            tracing::debug!(code = e.kind().as_str(), "request refused");
        }
        let problem = Problem {
            type_: format!("{PROBLEM_TYPE_PREFIX}{}", e.kind()),
            title: e.title().to_owned(),
            status: status.as_u16(),
            detail: e.public_detail(),
            code: e.kind().as_str().to_owned(),
            elicitation: self.elicitation.map(Box::new),
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match e {
            Error::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // Worth retrying as they are: say when.
            Error::UpstreamUnavailable(_) | Error::StoreUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Error::RateLimited(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
        if let Error::StoreUnavailable(cause) = &e {
            let failure = crate::metrics::StoreFailure::of(cause);
            response.extensions_mut().insert(failure);
        }
        response
    }
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        match r.status().as_u16() {
            413 => Error::BodyTooLarge,
            415 => Error::UnsupportedMediaType,
            _ => Error::InvalidRequest(r.body_text()),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Error::InvalidRequest(r.body_text())
    }
}

/// A JSON body whose rejections are problems.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A query string whose rejections are problems.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Around the API routes: a refusal axum made on its own (plain text, e.g. a path segment
/// that is not UTF-8) becomes a problem like every other.
pub async fn problem_refusals(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::StatusCode;
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(plain && response.status().is_client_error()) {
        return response;
    }
    let error = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType,
        _ => Error::InvalidRequest("the request's path or query could not be read".into()),
    };
    ApiError::from(error).into_response()
}

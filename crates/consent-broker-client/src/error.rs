//! [`Error`]: one variant per stable problem code of the API, plus transport failures.
//! Built from a problem body by [`Error::from_problem`]; never holds a handle or credential.

use std::time::Duration;

use consent_broker_api::{ElicitationView, Problem};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 400: a field was refused; `detail` names it.
    #[error("invalid request: {detail}")]
    InvalidRequest { detail: String },
    /// 401: the service token is missing or wrong.
    #[error("the broker refused the service token")]
    Unauthenticated,
    /// 403: the provider is beyond this service's policy.
    #[error("provider not allowed: {detail}")]
    ProviderNotAllowed { detail: String },
    /// 403: a scope is beyond this service's policy.
    #[error("scope not allowed: {detail}")]
    ScopeNotAllowed { detail: String },
    /// 404: unknown elicitation, or another service's.
    #[error("no such elicitation")]
    ElicitationNotFound,
    /// 404: unknown, malformed or foreign handle (all three look the same).
    #[error("unknown handle")]
    UnknownHandle,
    /// 409: the grant needs the user again; hand them `elicitation` (pending, with the MCP
    /// objects) exactly like a new one.
    #[error("the user must authorize again")]
    ReauthorizationRequired { elicitation: Box<ElicitationView> },
    /// 410: the grant was revoked; ask for a new one with `create`.
    #[error("the grant was revoked")]
    GrantRevoked,
    /// 410: a newer grant replaced it; `create` again returns its handle.
    #[error("the grant was superseded by a newer one")]
    GrantSuperseded,
    /// 413
    #[error("request body too large")]
    BodyTooLarge,
    /// 415
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 500: a sealed record failed authentication at the broker.
    #[error("the grant record is corrupt")]
    GrantCorrupt,
    /// 502: the upstream did not answer (e.g. at refresh); retry after `retry_after`.
    #[error("the upstream is unavailable: {detail}")]
    UpstreamUnavailable {
        retry_after: Option<Duration>,
        detail: String,
    },
    /// 502: the upstream does not meet the broker's requirements.
    #[error("the provider is unsupported: {detail}")]
    ProviderUnsupported { detail: String },
    /// 503: the broker's store is unreachable; retry after `retry_after`.
    #[error("the broker is temporarily unavailable")]
    StoreUnavailable { retry_after: Option<Duration> },
    /// Any other problem (a code this client does not know yet).
    #[error("the broker answered {}: {}", .0.code, .0.detail)]
    Problem(Box<Problem>),
    /// The broker could not be reached, or its answer could not be read.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer that is neither the documented success nor a problem.
    #[error("unexpected response status {status}")]
    UnexpectedResponse { status: u16 },
    /// The broker URL cannot take the API's paths.
    #[error("invalid broker URL: {0}")]
    InvalidUrl(String),
    /// The service's credential could not be produced (assertion signing, workload token).
    #[error("service credential: {0}")]
    InvalidCredential(&'static str),
}

impl Error {
    /// The variant for a problem body; `retry_after` comes from the `Retry-After` header.
    pub fn from_problem(problem: Problem, retry_after: Option<Duration>) -> Self {
        let detail = problem.detail.clone();
        match problem.code.as_str() {
            "invalid_request" => Self::InvalidRequest { detail },
            "unauthenticated" => Self::Unauthenticated,
            "provider_not_allowed" => Self::ProviderNotAllowed { detail },
            "scope_not_allowed" => Self::ScopeNotAllowed { detail },
            "elicitation_not_found" => Self::ElicitationNotFound,
            "unknown_handle" => Self::UnknownHandle,
            "reauthorization_required" => match problem.elicitation {
                Some(elicitation) => Self::ReauthorizationRequired { elicitation },
                None => Self::Problem(Box::new(problem)),
            },
            "grant_revoked" => Self::GrantRevoked,
            "grant_superseded" => Self::GrantSuperseded,
            "body_too_large" => Self::BodyTooLarge,
            "unsupported_media_type" => Self::UnsupportedMediaType,
            "grant_corrupt" => Self::GrantCorrupt,
            "upstream_unavailable" => Self::UpstreamUnavailable {
                retry_after,
                detail,
            },
            "provider_unsupported" => Self::ProviderUnsupported { detail },
            "store_unavailable" => Self::StoreUnavailable { retry_after },
            _ => Self::Problem(Box::new(problem)),
        }
    }

    /// True when the same request may succeed later as it is.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::UpstreamUnavailable { .. } | Self::StoreUnavailable { .. } | Self::Transport(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(code: &str, elicitation: Option<serde_json::Value>) -> Problem {
        serde_json::from_value(serde_json::json!({
            "type": format!("urn:consent-broker:problem:{code}"), "title": "t", "status": 409,
            "detail": "d", "code": code, "elicitation": elicitation,
        }))
        .unwrap()
    }

    #[test]
    fn reauthorization_required_carries_the_new_elicitation() {
        let view = serde_json::json!({"id": "e2", "status": "pending", "subject": "alice",
            "provider": "acme", "scopes": [], "created_at": "c", "expires_at": "x",
            "url": "https://b.example/e/e2"});
        match Error::from_problem(problem("reauthorization_required", Some(view)), None) {
            Error::ReauthorizationRequired { elicitation } => {
                assert_eq!(elicitation.url.as_deref(), Some("https://b.example/e/e2"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stable_codes_map_to_their_variants_and_unknown_ones_are_kept() {
        assert!(matches!(
            Error::from_problem(problem("grant_superseded", None), None),
            Error::GrantSuperseded
        ));
        let retry = Some(Duration::from_secs(5));
        assert!(matches!(
            Error::from_problem(problem("upstream_unavailable", None), retry),
            Error::UpstreamUnavailable { retry_after, .. } if retry_after == retry
        ));
        assert!(matches!(
            Error::from_problem(problem("something_new", None), None),
            Error::Problem(p) if p.code == "something_new"
        ));
    }
}

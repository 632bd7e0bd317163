//! The one domain error. Each variant knows its HTTP status and its stable problem type;
//! `http::problem` renders it as RFC 9457 JSON for services and `http::pages` as a page
//! for people. Internal causes are logged at the edge, never shown.

use axum::http::StatusCode;

use crate::domain::{ElicitationStatus, ErrorKind};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("A valid service token is required")]
    Unauthenticated,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("The request body is too large")]
    BodyTooLarge,
    #[error("The request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("Provider `{0}` does not exist or is not allowed for this service")]
    ProviderNotAllowed(String),
    #[error("Scope `{0}` is not allowed for this service and provider")]
    ScopeNotAllowed(String),
    #[error("No such elicitation")]
    ElicitationNotFound,
    #[error("This request has expired")]
    ElicitationExpired,
    #[error("This request is already {}", .0.as_str())]
    ElicitationSettled(ElicitationStatus),
    #[error("No grant for this handle")]
    UnknownHandle,
    #[error("The grant was revoked")]
    GrantRevoked,
    #[error("The grant needs the user to authorise again")]
    ReauthorizationRequired(Option<Box<crate::domain::Elicitation>>),
    #[error("The grant was replaced by a newer one; ask for it again to get its handle")]
    GrantSuperseded,
    #[error("This link was made for another account")]
    IdentityMismatch,
    #[error("The form expired or did not come from this site; go back, reload and try again")]
    CsrfRejected,
    #[error("{0}")]
    CredentialRejected(String),
    #[error("The upstream service could not be reached: {0}")]
    UpstreamUnavailable(String),
    #[error("{0}")]
    ProviderUnsupported(String),
    #[error("The sign-in response did not match a sign-in this browser started; start again")]
    FlowStateRejected,
    #[error("{0}")]
    SignInFailed(String),
    #[error("The request headers are too large")]
    HeadersTooLarge,
    #[error("The request body did not arrive in time")]
    BodyTimeout,
    #[error("No such page or endpoint")]
    NoSuchRoute,
    #[error("This endpoint does not take that method")]
    MethodNotAllowed,
    #[error("Too many requests; retry in {0} seconds")]
    RateLimited(u64),
    #[error("The store is unavailable")]
    StoreUnavailable(#[source] StoreError),
    #[error("A stored grant failed its integrity check")]
    GrantCorrupt,
    #[error("Internal error")]
    Internal(String),
    /// The organisation's policy does not let this user grant the request (the sentences
    /// say why, per scope).
    #[error("{}", .0.join(" "))]
    PolicyRefused(Vec<String>),
    #[error("The grant is waiting for an administrator's approval")]
    ApprovalPending,
    /// A JWT offered as the service's credential (RFC 7523 assertion or workload token)
    /// was refused; nothing is created.
    #[error("{}", .0.describe())]
    CallerRefused(CallerRefusal),
    #[error(
        "This service must send subject_token: the access token the user's MCP client presented"
    )]
    SubjectTokenRequired,
    /// The `subject_token` did not verify (fixed words say why).
    #[error("The subject_token was refused: {0}")]
    SubjectTokenRejected(&'static str),
    #[error("The subject is not the user the subject_token was issued to")]
    SubjectMismatch,
    #[error("This service is registered but not approved yet: an administrator must approve it")]
    ServicePending,
    #[error("This service is suspended by an administrator")]
    ServiceSuspended,
    /// An initial access token (registration) or registration access token was unknown,
    /// used up or expired; which one is not said.
    #[error("The registration token is unknown, used up or expired")]
    RegistrationTokenRejected,
}

/// Why a JWT offered as a service's credential was refused: one problem type each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerRefusal {
    /// Not a usable JWT, a claim missing or out of range, or a bad signature.
    Invalid(&'static str),
    /// `aud` does not name this broker.
    WrongAudience,
    /// `exp` has passed (or `nbf` is ahead).
    Expired,
    /// The assertion's `jti` was seen before.
    Replayed,
    /// No key of the service or issuer has the token's `kid` (or fits its algorithm).
    UnknownKey,
    /// The `iss` is neither a service with assertion keys nor a trusted workload issuer.
    UntrustedIssuer,
}

impl CallerRefusal {
    /// Fixed words, never text from the request.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Invalid(why) => why,
            Self::WrongAudience => "The token is not addressed to this broker (aud)",
            Self::Expired => "The token has expired or is not valid yet",
            Self::Replayed => "This assertion's jti was already used",
            Self::UnknownKey => "No trusted key verifies this token (kid)",
            Self::UntrustedIssuer => "The token's issuer is not trusted by this broker",
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::CallerTokenInvalid,
            Self::WrongAudience => ErrorKind::CallerTokenWrongAudience,
            Self::Expired => ErrorKind::CallerTokenExpired,
            Self::Replayed => ErrorKind::CallerTokenReplayed,
            Self::UnknownKey => ErrorKind::CallerTokenUnknownKey,
            Self::UntrustedIssuer => ErrorKind::UntrustedIssuer,
        }
    }
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::CallerRefused(_) => StatusCode::UNAUTHORIZED,
            Self::SubjectTokenRequired => StatusCode::BAD_REQUEST,
            Self::SubjectTokenRejected(_) | Self::SubjectMismatch => StatusCode::FORBIDDEN,
            Self::ServicePending | Self::ServiceSuspended => StatusCode::FORBIDDEN,
            Self::RegistrationTokenRejected => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) | Self::CredentialRejected(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ProviderNotAllowed(_) | Self::ScopeNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::IdentityMismatch | Self::CsrfRejected | Self::PolicyRefused(_) => {
                StatusCode::FORBIDDEN
            }
            Self::ElicitationNotFound | Self::UnknownHandle => StatusCode::NOT_FOUND,
            Self::ElicitationExpired | Self::GrantRevoked | Self::GrantSuperseded => {
                StatusCode::GONE
            }
            Self::ElicitationSettled(_)
            | Self::ReauthorizationRequired(_)
            | Self::ApprovalPending => StatusCode::CONFLICT,
            Self::UpstreamUnavailable(_) | Self::ProviderUnsupported(_) => StatusCode::BAD_GATEWAY,
            Self::FlowStateRejected | Self::SignInFailed(_) => StatusCode::BAD_REQUEST,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NoSuchRoute => StatusCode::NOT_FOUND,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::GrantCorrupt | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable kind: its word is the problem type slug services branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unauthenticated => ErrorKind::Unauthenticated,
            Self::InvalidRequest(_) => ErrorKind::InvalidRequest,
            Self::BodyTooLarge => ErrorKind::BodyTooLarge,
            Self::UnsupportedMediaType => ErrorKind::UnsupportedMediaType,
            Self::ProviderNotAllowed(_) => ErrorKind::ProviderNotAllowed,
            Self::ScopeNotAllowed(_) => ErrorKind::ScopeNotAllowed,
            Self::ElicitationNotFound => ErrorKind::ElicitationNotFound,
            Self::ElicitationExpired => ErrorKind::ElicitationExpired,
            Self::ElicitationSettled(_) => ErrorKind::ElicitationSettled,
            Self::UnknownHandle => ErrorKind::UnknownHandle,
            Self::GrantRevoked => ErrorKind::GrantRevoked,
            Self::ReauthorizationRequired(_) => ErrorKind::ReauthorizationRequired,
            Self::GrantSuperseded => ErrorKind::GrantSuperseded,
            Self::IdentityMismatch => ErrorKind::IdentityMismatch,
            Self::CsrfRejected => ErrorKind::CsrfRejected,
            Self::CredentialRejected(_) => ErrorKind::CredentialRejected,
            Self::UpstreamUnavailable(_) => ErrorKind::UpstreamUnavailable,
            Self::ProviderUnsupported(_) => ErrorKind::ProviderUnsupported,
            Self::FlowStateRejected => ErrorKind::FlowStateRejected,
            Self::SignInFailed(_) => ErrorKind::SignInFailed,
            Self::RateLimited(_) => ErrorKind::RateLimited,
            Self::NoSuchRoute => ErrorKind::NotFound,
            Self::HeadersTooLarge => ErrorKind::HeadersTooLarge,
            Self::BodyTimeout => ErrorKind::BodyTimeout,
            Self::MethodNotAllowed => ErrorKind::MethodNotAllowed,
            Self::StoreUnavailable(_) => ErrorKind::StoreUnavailable,
            Self::GrantCorrupt => ErrorKind::GrantCorrupt,
            Self::Internal(_) => ErrorKind::Internal,
            Self::PolicyRefused(_) => ErrorKind::PolicyRefused,
            Self::ApprovalPending => ErrorKind::ApprovalPending,
            Self::CallerRefused(r) => r.kind(),
            Self::SubjectTokenRequired => ErrorKind::SubjectTokenRequired,
            Self::SubjectTokenRejected(_) => ErrorKind::SubjectTokenRejected,
            Self::SubjectMismatch => ErrorKind::SubjectMismatch,
            Self::ServicePending => ErrorKind::ServicePending,
            Self::ServiceSuspended => ErrorKind::ServiceSuspended,
            Self::RegistrationTokenRejected => ErrorKind::RegistrationTokenRejected,
        }
    }

    /// A short title for the problem type.
    pub fn title(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "Not authenticated",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::GONE => "No longer available",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::BAD_GATEWAY => "Upstream unavailable",
            StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            s if s.is_server_error() => "Something went wrong",
            _ => "Invalid request",
        }
    }

    /// What the caller may be told. Server-side causes stay in the logs.
    pub fn public_detail(&self) -> String {
        match self {
            Self::StoreUnavailable(_) => {
                "The broker's store is unavailable; try again shortly.".into()
            }
            Self::Internal(_) => "The broker hit an unexpected error; it has been logged.".into(),
            other => {
                let mut s = other.to_string();
                if !s.ends_with('.') {
                    s.push('.');
                }
                s
            }
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self::StoreUnavailable(e)
    }
}

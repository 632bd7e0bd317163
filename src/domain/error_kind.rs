//! The stable kinds of error: one word per way a request can fail. Services branch on them
//! (the problem type `.../problems/<kind>`), the audit trail records them as a reason, and
//! metrics label redemption refusals with them. The words are a wire format: never rename.

use std::fmt;

/// One kind of error, as `crate::Error::kind` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Unauthenticated,
    InvalidRequest,
    BodyTooLarge,
    UnsupportedMediaType,
    ProviderNotAllowed,
    ScopeNotAllowed,
    ElicitationNotFound,
    ElicitationExpired,
    ElicitationSettled,
    UnknownHandle,
    GrantRevoked,
    ReauthorizationRequired,
    GrantSuperseded,
    IdentityMismatch,
    CsrfRejected,
    CredentialRejected,
    UpstreamUnavailable,
    ProviderUnsupported,
    FlowStateRejected,
    SignInFailed,
    RateLimited,
    NotFound,
    HeadersTooLarge,
    BodyTimeout,
    MethodNotAllowed,
    StoreUnavailable,
    GrantCorrupt,
    Internal,
    PolicyRefused,
    ApprovalPending,
    CallerTokenInvalid,
    CallerTokenWrongAudience,
    CallerTokenExpired,
    CallerTokenReplayed,
    CallerTokenUnknownKey,
    UntrustedIssuer,
    SubjectTokenRequired,
    SubjectTokenRejected,
    SubjectMismatch,
    ServicePending,
    ServiceSuspended,
    RegistrationTokenRejected,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 42] = [
        Self::Unauthenticated,
        Self::InvalidRequest,
        Self::BodyTooLarge,
        Self::UnsupportedMediaType,
        Self::ProviderNotAllowed,
        Self::ScopeNotAllowed,
        Self::ElicitationNotFound,
        Self::ElicitationExpired,
        Self::ElicitationSettled,
        Self::UnknownHandle,
        Self::GrantRevoked,
        Self::ReauthorizationRequired,
        Self::GrantSuperseded,
        Self::IdentityMismatch,
        Self::CsrfRejected,
        Self::CredentialRejected,
        Self::UpstreamUnavailable,
        Self::ProviderUnsupported,
        Self::FlowStateRejected,
        Self::SignInFailed,
        Self::RateLimited,
        Self::NotFound,
        Self::HeadersTooLarge,
        Self::BodyTimeout,
        Self::MethodNotAllowed,
        Self::StoreUnavailable,
        Self::GrantCorrupt,
        Self::Internal,
        Self::PolicyRefused,
        Self::ApprovalPending,
        Self::CallerTokenInvalid,
        Self::CallerTokenWrongAudience,
        Self::CallerTokenExpired,
        Self::CallerTokenReplayed,
        Self::CallerTokenUnknownKey,
        Self::UntrustedIssuer,
        Self::SubjectTokenRequired,
        Self::SubjectTokenRejected,
        Self::SubjectMismatch,
        Self::ServicePending,
        Self::ServiceSuspended,
        Self::RegistrationTokenRejected,
    ];

    /// The stable word: the problem type slug, the audit reason, the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidRequest => "invalid_request",
            Self::BodyTooLarge => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ProviderNotAllowed => "provider_not_allowed",
            Self::ScopeNotAllowed => "scope_not_allowed",
            Self::ElicitationNotFound => "elicitation_not_found",
            Self::ElicitationExpired => "elicitation_expired",
            Self::ElicitationSettled => "elicitation_settled",
            Self::UnknownHandle => "unknown_handle",
            Self::GrantRevoked => "grant_revoked",
            Self::ReauthorizationRequired => "reauthorization_required",
            Self::GrantSuperseded => "grant_superseded",
            Self::IdentityMismatch => "identity_mismatch",
            Self::CsrfRejected => "csrf_rejected",
            Self::CredentialRejected => "credential_rejected",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::ProviderUnsupported => "provider_unsupported",
            Self::FlowStateRejected => "flow_state_rejected",
            Self::SignInFailed => "sign_in_failed",
            Self::RateLimited => "rate_limited",
            Self::NotFound => "not_found",
            Self::HeadersTooLarge => "headers_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::StoreUnavailable => "store_unavailable",
            Self::GrantCorrupt => "grant_corrupt",
            Self::Internal => "internal",
            Self::PolicyRefused => "policy_refused",
            Self::ApprovalPending => "approval_pending",
            Self::CallerTokenInvalid => "caller_token_invalid",
            Self::CallerTokenWrongAudience => "caller_token_wrong_audience",
            Self::CallerTokenExpired => "caller_token_expired",
            Self::CallerTokenReplayed => "caller_token_replayed",
            Self::CallerTokenUnknownKey => "caller_token_unknown_key",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::SubjectTokenRequired => "subject_token_required",
            Self::SubjectTokenRejected => "subject_token_rejected",
            Self::SubjectMismatch => "subject_mismatch",
            Self::ServicePending => "service_pending",
            Self::ServiceSuspended => "service_suspended",
            Self::RegistrationTokenRejected => "registration_token_rejected",
        }
    }

    /// The kind whose word this is, if any.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    /// The words are a wire format (problem types, stored audit reasons, metric labels).
    #[test]
    fn every_kind_keeps_its_historical_word() {
        let words = [
            "unauthenticated",
            "invalid_request",
            "body_too_large",
            "unsupported_media_type",
            "provider_not_allowed",
            "scope_not_allowed",
            "elicitation_not_found",
            "elicitation_expired",
            "elicitation_settled",
            "unknown_handle",
            "grant_revoked",
            "reauthorization_required",
            "grant_superseded",
            "identity_mismatch",
            "csrf_rejected",
            "credential_rejected",
            "upstream_unavailable",
            "provider_unsupported",
            "flow_state_rejected",
            "sign_in_failed",
            "rate_limited",
            "not_found",
            "headers_too_large",
            "body_timeout",
            "method_not_allowed",
            "store_unavailable",
            "grant_corrupt",
            "internal",
            "policy_refused",
            "approval_pending",
            "caller_token_invalid",
            "caller_token_wrong_audience",
            "caller_token_expired",
            "caller_token_replayed",
            "caller_token_unknown_key",
            "untrusted_issuer",
            "subject_token_required",
            "subject_token_rejected",
            "subject_mismatch",
            "service_pending",
            "service_suspended",
            "registration_token_rejected",
        ];
        let actual: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(actual, words);
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::parse("made_up"), None);
    }
}

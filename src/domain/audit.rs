//! Audit events: who did what to which record, and how it ended. Built only from ids and
//! outcomes, so no secret can reach the trail. Owns the vocabulary of the trail: the
//! actions ([`AuditAction`]) and reasons ([`AuditReason`]), stored as their historical words.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ElicitationId, ErrorKind, GrantId, ProviderId, ServiceId, Subject, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Service(ServiceId),
    User(Subject),
    Admin(Subject),
    /// An identity provider offboarding a user: its SCIM client or Shared Signals
    /// transmitter ([`IdpClient`]).
    Idp(IdpClient),
    System,
}

/// Names the identity-provider client that acted: `scim:<client name>` for the SCIM
/// endpoint, `ssf:<issuer>` for a Shared Signals transmitter. Built only from
/// configuration, never from a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdpClient(String);

impl IdpClient {
    /// The SCIM client configured as `scim.client_name`.
    pub fn scim(client_name: &str) -> Self {
        Self(format!("scim:{client_name}"))
    }

    /// The Shared Signals transmitter configured as `shared_signals.issuer`.
    pub fn shared_signals(issuer: &str) -> Self {
        Self(format!("ssf:{issuer}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

/// What an audit event says happened: one variant per action this build writes, stored and
/// shown as its historical snake_case word ([`AuditAction::as_str`]). The words are a stored
/// format: never rename one; retire a variant only when no trail can still hold it.
///
/// **An action this build does not know** (written by a newer instance during a rolling
/// upgrade, or by an older build that had an action since retired) reads back as
/// [`AuditAction::Unrecognised`], which keeps the stored word verbatim. Reading the trail
/// never fails on it, and nothing is lost: the event is listed, filtered, exported and
/// written back with the same word. It drives nothing: metrics count it as `other` and it
/// triggers no webhook. Code cannot write one by mistake: [`AuditEvent::new`] is given a
/// named variant, and only [`AuditAction::parse`] (of a stored word or an admin's filter)
/// yields `Unrecognised`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A service asked for a credential (`POST /v1/elicitations`).
    ElicitationCreated,
    /// The user granted access; the elicitation settled as completed.
    ElicitationCompleted,
    /// The user (or the provider, `access_denied`) declined.
    ElicitationDeclined,
    /// The flow failed; the reason says why.
    ElicitationFailed,
    /// A signed-in user opened a link made for another account.
    IdentityMismatch,
    /// A pasted API key failed its check.
    ApiKeyRejected,
    /// The user was sent to the provider's authorization endpoint.
    OauthAuthorizationStarted,
    /// A provider callback did not match a flow this browser started.
    OauthCallbackRejected,
    /// A grant was stored for a completed elicitation.
    GrantCreated,
    /// An elicitation was answered at once with an existing grant.
    GrantReused,
    /// An older grant was replaced by a newer one.
    GrantSuperseded,
    /// A service redeemed a handle (success, or refused with a reason).
    GrantRedeemed,
    /// A service presented another service's handle.
    ForeignHandlePresented,
    /// The upstream token was refreshed.
    GrantRefreshed,
    /// A refresh failed for now (upstream down or refused).
    GrantRefreshFailed,
    /// The provider refused the refresh token (`invalid_grant`).
    GrantNeedsReauth,
    /// A grant was revoked (by its service, its user, an admin).
    GrantRevoked,
    /// The provider was asked to revoke the tokens; the reason is the result.
    UpstreamRevocation,
    /// An admin revoked every grant of one user.
    UserGrantsRevoked,
    /// An admin revoked every grant of one provider.
    ProviderGrantsRevoked,
    /// Grants were re-sealed under the active key (the reason is its id).
    GrantsRewrapped,
    /// A user signed in.
    SignedIn,
    /// An admin exported the audit log.
    AuditExported,
    /// A completion webhook was delivered.
    WebhookDelivered,
    /// A webhook attempt failed; another follows.
    WebhookAttemptFailed,
    /// The last webhook attempt failed; no more follow.
    WebhookAbandoned,
    /// The policy did not let the signed-in user grant the request.
    PolicyRefused,
    /// The user consented to a scope an administrator must approve; the grant waits.
    ApprovalRequested,
    /// An administrator approved a waiting grant.
    ApprovalGranted,
    /// An administrator refused a waiting grant.
    ApprovalRefused,
    /// A grant reached the end of its lifetime (policy's `max_lifetime_days`).
    GrantExpired,
    /// The identity provider said a user left (SCIM deprovisioning or a Shared Signals
    /// event); every grant of theirs was revoked. The reason names the trigger.
    UserDeprovisioned,
    /// A Security Event Token was refused (signature, issuer, audience, replay...); the
    /// reason is the RFC 8935 error code. Nothing was changed.
    SecurityEventRejected,
    /// A service's `subject` was not the user its verified `subject_token` names (or the
    /// token did not verify); the reason is the problem word. Nothing was created.
    SubjectProofRefused,
    /// A service was registered (by an initial access token or an administrator); it waits for approval unless an administrator registered it.
    ServiceRegistered,
    /// An administrator approved a registered service, with the scopes it may ask for.
    ServiceApproved,
    /// An administrator changed a registered service.
    ServiceUpdated,
    /// An administrator suspended a registered service (the reason says whether its grants were revoked).
    ServiceSuspended,
    /// An administrator lifted a service's suspension.
    ServiceResumed,
    /// A registered service was deleted (its grants revoked).
    ServiceDeleted,
    /// A registered service rotated its token; the old one stays valid for the overlap.
    ServiceTokenRotated,
    /// An administrator minted an initial access token for registration.
    InitialTokenMinted,
    /// A registration or registration read was refused (unknown, used-up or expired token; bad metadata); the reason says which. Nothing was created.
    RegistrationRefused,
    /// A word this build does not know, kept as stored (see above).
    Unrecognised(UnrecognisedAction),
}

/// The stored word of an action this build does not know. Only parsing makes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnrecognisedAction(String);

impl UnrecognisedAction {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AuditAction {
    /// Every action this build writes.
    pub const KNOWN: [AuditAction; 43] = [
        Self::ElicitationCreated,
        Self::ElicitationCompleted,
        Self::ElicitationDeclined,
        Self::ElicitationFailed,
        Self::IdentityMismatch,
        Self::ApiKeyRejected,
        Self::OauthAuthorizationStarted,
        Self::OauthCallbackRejected,
        Self::GrantCreated,
        Self::GrantReused,
        Self::GrantSuperseded,
        Self::GrantRedeemed,
        Self::ForeignHandlePresented,
        Self::GrantRefreshed,
        Self::GrantRefreshFailed,
        Self::GrantNeedsReauth,
        Self::GrantRevoked,
        Self::UpstreamRevocation,
        Self::UserGrantsRevoked,
        Self::ProviderGrantsRevoked,
        Self::GrantsRewrapped,
        Self::SignedIn,
        Self::AuditExported,
        Self::WebhookDelivered,
        Self::WebhookAttemptFailed,
        Self::WebhookAbandoned,
        Self::PolicyRefused,
        Self::ApprovalRequested,
        Self::ApprovalGranted,
        Self::ApprovalRefused,
        Self::GrantExpired,
        Self::UserDeprovisioned,
        Self::SecurityEventRejected,
        Self::SubjectProofRefused,
        Self::ServiceRegistered,
        Self::ServiceApproved,
        Self::ServiceUpdated,
        Self::ServiceSuspended,
        Self::ServiceResumed,
        Self::ServiceDeleted,
        Self::ServiceTokenRotated,
        Self::InitialTokenMinted,
        Self::RegistrationRefused,
    ];

    /// The stored word.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ElicitationCreated => "elicitation_created",
            Self::ElicitationCompleted => "elicitation_completed",
            Self::ElicitationDeclined => "elicitation_declined",
            Self::ElicitationFailed => "elicitation_failed",
            Self::IdentityMismatch => "identity_mismatch",
            Self::ApiKeyRejected => "api_key_rejected",
            Self::OauthAuthorizationStarted => "oauth_authorization_started",
            Self::OauthCallbackRejected => "oauth_callback_rejected",
            Self::GrantCreated => "grant_created",
            Self::GrantReused => "grant_reused",
            Self::GrantSuperseded => "grant_superseded",
            Self::GrantRedeemed => "grant_redeemed",
            Self::ForeignHandlePresented => "foreign_handle_presented",
            Self::GrantRefreshed => "grant_refreshed",
            Self::GrantRefreshFailed => "grant_refresh_failed",
            Self::GrantNeedsReauth => "grant_needs_reauth",
            Self::GrantRevoked => "grant_revoked",
            Self::UpstreamRevocation => "upstream_revocation",
            Self::UserGrantsRevoked => "user_grants_revoked",
            Self::ProviderGrantsRevoked => "provider_grants_revoked",
            Self::GrantsRewrapped => "grants_rewrapped",
            Self::SignedIn => "signed_in",
            Self::AuditExported => "audit_exported",
            Self::WebhookDelivered => "webhook_delivered",
            Self::WebhookAttemptFailed => "webhook_attempt_failed",
            Self::WebhookAbandoned => "webhook_abandoned",
            Self::PolicyRefused => "policy_refused",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalGranted => "approval_granted",
            Self::ApprovalRefused => "approval_refused",
            Self::GrantExpired => "grant_expired",
            Self::UserDeprovisioned => "user_deprovisioned",
            Self::SecurityEventRejected => "security_event_rejected",
            Self::SubjectProofRefused => "subject_proof_refused",
            Self::ServiceRegistered => "service_registered",
            Self::ServiceApproved => "service_approved",
            Self::ServiceUpdated => "service_updated",
            Self::ServiceSuspended => "service_suspended",
            Self::ServiceResumed => "service_resumed",
            Self::ServiceDeleted => "service_deleted",
            Self::ServiceTokenRotated => "service_token_rotated",
            Self::InitialTokenMinted => "initial_token_minted",
            Self::RegistrationRefused => "registration_refused",
            Self::Unrecognised(word) => word.as_str(),
        }
    }

    /// The action a stored word names; a word this build does not know is kept as
    /// [`AuditAction::Unrecognised`]. Never fails.
    pub fn parse(word: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|a| a.as_str() == word)
            .unwrap_or_else(|| Self::Unrecognised(UnrecognisedAction(word.to_owned())))
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|word| Self::parse(&word))
    }
}

/// Why an event ended as it did: a short fixed word, never free text from a request.
/// Stored as the word; reading one back gives the same value that was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditReason {
    /// The kind of the error the request was answered with (`grant_revoked`, ...).
    Error(ErrorKind),
    /// Any other short code: an OAuth error code from the provider (`access_denied`,
    /// `invalid_grant`), a flow step that failed (`missing_state`, `issuer_mismatch`), a
    /// webhook attempt's failure (`status_503`, `timeout`), an upstream revocation's
    /// result (`revoked`, `failed`), the id of a key.
    Code(ReasonCode),
}

/// A reason that is not an error kind. Only [`AuditReason::parse`] makes one, so a word
/// that names an error kind is always [`AuditReason::Error`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonCode(String);

impl ReasonCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AuditReason {
    /// The reason a word names: the error kind it is, else a code.
    pub fn parse(word: &str) -> Self {
        ErrorKind::parse(word)
            .map(Self::Error)
            .unwrap_or_else(|| Self::Code(ReasonCode(word.to_owned())))
    }

    /// The stored word.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Error(kind) => kind.as_str(),
            Self::Code(code) => code.as_str(),
        }
    }
}

impl From<ErrorKind> for AuditReason {
    fn from(kind: ErrorKind) -> Self {
        Self::Error(kind)
    }
}

impl From<&str> for AuditReason {
    fn from(word: &str) -> Self {
        Self::parse(word)
    }
}

impl From<&String> for AuditReason {
    fn from(word: &String) -> Self {
        Self::parse(word)
    }
}

impl fmt::Display for AuditReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|word| Self::parse(&word))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    pub actor: Actor,
    pub action: AuditAction,
    pub outcome: Outcome,
    pub elicitation: Option<ElicitationId>,
    pub grant: Option<GrantId>,
    pub service: Option<ServiceId>,
    pub subject: Option<Subject>,
    pub provider: Option<ProviderId>,
    /// A short fixed reason, never free text from a request.
    pub reason: Option<AuditReason>,
}

impl AuditEvent {
    pub fn new(actor: Actor, action: AuditAction, outcome: Outcome) -> Self {
        Self {
            at: super::now(),
            actor,
            action,
            outcome,
            elicitation: None,
            grant: None,
            service: None,
            subject: None,
            provider: None,
            reason: None,
        }
    }

    pub fn elicitation(mut self, e: &super::Elicitation) -> Self {
        self.elicitation = Some(e.id.clone());
        self.grant = e.grant_id.clone().or(self.grant);
        self.service = Some(e.service.clone());
        self.subject = Some(e.subject.clone());
        self.provider = Some(e.provider.clone());
        self
    }

    pub fn grant(mut self, g: &super::Grant) -> Self {
        self.grant = Some(g.id.clone());
        self.service = Some(g.service.clone());
        self.subject = Some(g.subject.clone());
        self.provider = Some(g.provider.clone());
        self
    }

    pub fn reason(mut self, reason: impl Into<AuditReason>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored words, listed literally: a rename would orphan every stored event.
    #[test]
    fn every_action_round_trips_to_its_historical_word() {
        let words = [
            (AuditAction::ElicitationCreated, "elicitation_created"),
            (AuditAction::ElicitationCompleted, "elicitation_completed"),
            (AuditAction::ElicitationDeclined, "elicitation_declined"),
            (AuditAction::ElicitationFailed, "elicitation_failed"),
            (AuditAction::IdentityMismatch, "identity_mismatch"),
            (AuditAction::ApiKeyRejected, "api_key_rejected"),
            (
                AuditAction::OauthAuthorizationStarted,
                "oauth_authorization_started",
            ),
            (
                AuditAction::OauthCallbackRejected,
                "oauth_callback_rejected",
            ),
            (AuditAction::GrantCreated, "grant_created"),
            (AuditAction::GrantReused, "grant_reused"),
            (AuditAction::GrantSuperseded, "grant_superseded"),
            (AuditAction::GrantRedeemed, "grant_redeemed"),
            (
                AuditAction::ForeignHandlePresented,
                "foreign_handle_presented",
            ),
            (AuditAction::GrantRefreshed, "grant_refreshed"),
            (AuditAction::GrantRefreshFailed, "grant_refresh_failed"),
            (AuditAction::GrantNeedsReauth, "grant_needs_reauth"),
            (AuditAction::GrantRevoked, "grant_revoked"),
            (AuditAction::UpstreamRevocation, "upstream_revocation"),
            (AuditAction::UserGrantsRevoked, "user_grants_revoked"),
            (
                AuditAction::ProviderGrantsRevoked,
                "provider_grants_revoked",
            ),
            (AuditAction::GrantsRewrapped, "grants_rewrapped"),
            (AuditAction::SignedIn, "signed_in"),
            (AuditAction::AuditExported, "audit_exported"),
            (AuditAction::WebhookDelivered, "webhook_delivered"),
            (AuditAction::WebhookAttemptFailed, "webhook_attempt_failed"),
            (AuditAction::WebhookAbandoned, "webhook_abandoned"),
            (AuditAction::PolicyRefused, "policy_refused"),
            (AuditAction::ApprovalRequested, "approval_requested"),
            (AuditAction::ApprovalGranted, "approval_granted"),
            (AuditAction::ApprovalRefused, "approval_refused"),
            (AuditAction::GrantExpired, "grant_expired"),
            (AuditAction::UserDeprovisioned, "user_deprovisioned"),
            (
                AuditAction::SecurityEventRejected,
                "security_event_rejected",
            ),
            (AuditAction::SubjectProofRefused, "subject_proof_refused"),
            (AuditAction::ServiceRegistered, "service_registered"),
            (AuditAction::ServiceApproved, "service_approved"),
            (AuditAction::ServiceUpdated, "service_updated"),
            (AuditAction::ServiceSuspended, "service_suspended"),
            (AuditAction::ServiceResumed, "service_resumed"),
            (AuditAction::ServiceDeleted, "service_deleted"),
            (AuditAction::ServiceTokenRotated, "service_token_rotated"),
            (AuditAction::InitialTokenMinted, "initial_token_minted"),
            (AuditAction::RegistrationRefused, "registration_refused"),
        ];
        assert_eq!(words.len(), AuditAction::KNOWN.len());
        for (action, word) in &words {
            assert_eq!(action.as_str(), *word);
            assert_eq!(action.to_string(), *word);
            let json = serde_json::to_string(action).unwrap();
            assert_eq!(json, format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<AuditAction>(&json).unwrap(), *action);
            assert_eq!(AuditAction::parse(word), *action);
        }
        for action in AuditAction::KNOWN {
            assert!(
                words.iter().any(|(a, _)| *a == action),
                "{action} is listed"
            );
        }
    }

    #[test]
    fn an_unknown_action_reads_back_and_is_written_unchanged() {
        let json = r#"{"at":"2026-01-02T03:04:05Z","actor":{"kind":"system"},
            "action":"grant_teleported","outcome":"success","elicitation":null,"grant":null,
            "service":null,"subject":null,"provider":null,"reason":"warp_drive"}"#;
        let event: AuditEvent = serde_json::from_str(json).unwrap();
        assert!(matches!(event.action, AuditAction::Unrecognised(_)));
        assert_eq!(event.action.as_str(), "grant_teleported");
        assert_eq!(
            event.reason.as_ref().map(AuditReason::as_str),
            Some("warp_drive")
        );
        let again: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(again["action"], "grant_teleported");
        assert_eq!(again["reason"], "warp_drive");
    }

    #[test]
    fn reasons_are_error_kinds_when_they_name_one() {
        assert_eq!(
            AuditReason::parse("grant_revoked"),
            AuditReason::Error(ErrorKind::GrantRevoked)
        );
        assert!(matches!(
            AuditReason::parse("status_503"),
            AuditReason::Code(_)
        ));
        for word in ["unknown_handle", "access_denied", "status_503", "k2026"] {
            let reason = AuditReason::parse(word);
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<AuditReason>(&json).unwrap(), reason);
        }
        let event = AuditEvent::new(Actor::System, AuditAction::GrantRedeemed, Outcome::Denied)
            .reason(ErrorKind::UnknownHandle);
        assert_eq!(event.reason, Some(AuditReason::parse("unknown_handle")));
    }
}

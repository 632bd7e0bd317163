//! Offboarding driven by the identity provider: its SCIM client deprovisioning a user, or
//! its Shared Signals transmitter reporting a disabled account or revoked sessions. Either
//! way every grant of the user is revoked upstream through the same path as an admin's
//! revoke-all ([`Broker::revoke_matching`]), each revocation audited with the IdP client as
//! the actor, then one `user_deprovisioned` event whose reason names the trigger.
//!
//! A user is known to the broker when it holds at least one grant of theirs (in any
//! status); an unknown user changes nothing and is audited nowhere. Deprovisioning a
//! known user again revokes nothing more and is audited again: idempotent.
//!
//! A Security Event Token is verified ([`crate::identity::security_events`]); a refusal
//! is audited (`security_event_rejected`) only when the SET carried the transmitter's
//! valid signature, since anyone may post the others (they are logged and throttled). Then its
//! `jti` is recorded in the store before anything is done, so a replay to any instance is
//! refused; when acting on it fails, the `jti` is forgotten again so that the
//! transmitter's retry is not taken for a replay.

use super::Broker;
use crate::Error;
use crate::domain::{Actor, AuditAction, AuditEvent, GrantStatus, IdpClient, Outcome, Subject};
use crate::identity::security_events::{Refused, SetError, SetVerifier};
use crate::identity::service_token;
use crate::store::SeenKey;
use crate::store::admin::GrantFilter;

/// What the broker knows of a user the IdP asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectState {
    /// No grant of theirs, in any status.
    Unknown,
    /// `active`: at least one of their grants is not revoked.
    Known { active: bool },
}

/// What deprovisioning did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deprovisioned {
    /// The broker holds no grant of this user; nothing changed.
    UnknownUser,
    /// This many grants were revoked now (0 when all already were).
    Revoked(usize),
}

/// Why a SET was not acted on.
#[derive(Debug)]
pub enum SetRefused {
    /// No `[shared_signals]` is configured.
    NotConfigured,
    /// Refused as RFC 8935 says; nothing changed. `signed` when the SET carried the
    /// transmitter's valid signature (then the refusal is audited; otherwise only logged,
    /// as anyone can post one).
    Invalid(Refused),
    /// Acting on it failed (e.g. the store is down); the transmitter should retry.
    Failed(Error),
}

/// What triggered a deprovisioning, as its audit reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SCIM `active` set to false (PATCH or PUT).
    ScimDeactivated,
    /// SCIM DELETE of the user.
    ScimDeleted,
    /// A Shared Signals event.
    SecurityEvent(crate::identity::security_events::OffboardingEvent),
}

impl Trigger {
    fn reason(self) -> &'static str {
        match self {
            Self::ScimDeactivated => "scim_deactivated",
            Self::ScimDeleted => "scim_deleted",
            Self::SecurityEvent(e) => e.reason(),
        }
    }
}

/// Builds the receiver's verifier when `[shared_signals]` is configured.
pub(super) fn set_verifier(
    settings: &crate::config::Settings,
    http: &reqwest::Client,
) -> Option<SetVerifier> {
    settings
        .shared_signals
        .clone()
        .map(|s| SetVerifier::new(s, http.clone()))
}

impl Broker {
    /// The SCIM client whose bearer token `presented` is; `None` when it is not (or no
    /// `[scim]` is configured). Compared in constant time.
    pub fn authenticate_scim(&self, presented: &str) -> Option<IdpClient> {
        let scim = self.settings.scim.as_ref()?;
        service_token::matches(&scim.token_sha256, presented)
            .then(|| IdpClient::scim(&scim.client_name))
    }

    /// Whether the transmitter's transport credentials hold: the configured bearer token
    /// when there is one, else nothing is asked beyond the signature.
    pub fn authenticate_transmitter(&self, presented: Option<&str>) -> bool {
        match self
            .settings
            .shared_signals
            .as_ref()
            .and_then(|s| s.token_sha256.as_ref())
        {
            Some(digest) => presented.is_some_and(|t| service_token::matches(digest, t)),
            None => true,
        }
    }

    /// What the broker knows of `subject`.
    pub async fn subject_state(&self, subject: &Subject) -> Result<SubjectState, Error> {
        let grants = self.stores.grants.grants_of_subject(subject).await?;
        Ok(if grants.is_empty() {
            SubjectState::Unknown
        } else {
            SubjectState::Known {
                active: grants.iter().any(|g| g.status != GrantStatus::Revoked),
            }
        })
    }

    /// The IdP client `by` offboards `subject`: every grant not yet revoked is revoked
    /// (upstream too), then `user_deprovisioned` is audited with `trigger` as its reason.
    pub async fn deprovision(
        &self,
        by: &IdpClient,
        subject: &Subject,
        trigger: Trigger,
    ) -> Result<Deprovisioned, Error> {
        if self.subject_state(subject).await? == SubjectState::Unknown {
            return Ok(Deprovisioned::UnknownUser);
        }
        let actor = Actor::Idp(by.clone());
        let filter = GrantFilter {
            subject: Some(subject.clone()),
            ..Default::default()
        };
        let n = self.revoke_matching(&actor, &filter).await?;
        let mut event = AuditEvent::new(actor, AuditAction::UserDeprovisioned, Outcome::Success)
            .reason(trigger.reason());
        event.subject = Some(subject.clone());
        self.audit(event).await?;
        Ok(Deprovisioned::Revoked(n))
    }

    /// Receives one pushed SET (RFC 8935): verifies it, refuses a replay, and offboards
    /// the subject of each offboarding event in it. Events of other types, and subjects in
    /// another format or unknown to the broker, change nothing: the SET is still accepted.
    pub async fn receive_security_event(&self, token: &str) -> Result<(), SetRefused> {
        let verifier = self
            .security_events
            .as_ref()
            .ok_or(SetRefused::NotConfigured)?;
        let transmitter = IdpClient::shared_signals(&verifier.settings().issuer);
        let set = match verifier.verify(token, self.clock.now()).await {
            Ok(set) => set,
            Err(refused) => return Err(self.refuse_set(&transmitter, refused).await),
        };
        let key = SeenKey::new(&verifier.settings().issuer, &set.jti);
        let max_age = time::Duration::try_from(verifier.settings().max_age)
            .unwrap_or(time::Duration::days(1));
        let first = self
            .stores
            .seen
            .first_sighting(&key, set.issued_at + max_age)
            .await
            .map_err(|e| SetRefused::Failed(e.into()))?;
        if !first {
            let replay = Refused {
                error: SetError::InvalidRequest("a SET with this jti was already received"),
                signed: true,
            };
            return Err(self.refuse_set(&transmitter, replay).await);
        }
        for (event, subject) in &set.events {
            let Some(subject) = subject else { continue };
            if let Err(e) = self
                .deprovision(&transmitter, subject, Trigger::SecurityEvent(*event))
                .await
            {
                if let Err(forget) = self.stores.seen.forget(&key).await {
                    tracing::warn!(error = %forget, "could not forget a SET's jti after a failure");
                }
                return Err(SetRefused::Failed(e));
            }
        }
        Ok(())
    }

    /// Audits a refused SET that carried the transmitter's signature (its RFC 8935 code as
    /// the reason); an unsigned one is only logged. Hands the refusal back.
    async fn refuse_set(&self, transmitter: &IdpClient, refused: Refused) -> SetRefused {
        if !refused.signed {
            tracing::info!(
                err = refused.error.code(),
                "an unsigned or forged SET was refused"
            );
            return SetRefused::Invalid(refused);
        }
        let event = AuditEvent::new(
            Actor::Idp(transmitter.clone()),
            AuditAction::SecurityEventRejected,
            Outcome::Denied,
        )
        .reason(refused.error.code());
        match self.audit(event).await {
            Ok(()) => SetRefused::Invalid(refused),
            Err(e) => SetRefused::Failed(e),
        }
    }
}

//! Who the calling service is, and whether it proved its user: the use cases behind the
//! `ServiceCaller` extractor (a static token, current or rotated out within its overlap;
//! an RFC 7523 assertion whose `jti` is recorded once across instances; a workload token)
//! and behind `subject_token` on `POST /v1/elicitations` (`subject_proof`). A refused proof
//! of the user is audited; refused service credentials create nothing and are throttled
//! by the extractor.

use std::sync::Arc;

use super::Broker;
use crate::Error;
use crate::config::{Service, SubjectProof};
use crate::domain::{Actor, AuditAction, AuditEvent, Outcome, Subject};
use crate::error::CallerRefusal;
use crate::identity::{caller_jwt, service_token};

impl Broker {
    /// The service `presented` (a bearer credential) authenticates, now.
    pub async fn authenticate_service(&self, presented: &str) -> Result<Arc<Service>, Error> {
        let now = self.clock.now();
        if !caller_jwt::looks_like_jwt(presented) {
            return match service_token::authenticate(&self.settings.services, presented, now) {
                Some(service) => Ok(service.clone()),
                None => self.registered_caller(presented, now).await,
            };
        }
        let proof = self
            .callers
            .service_of(&self.settings.services, presented, now)
            .await
            .map_err(Error::CallerRefused)?;
        if let Some((key, until)) = &proof.single_use
            && !self.stores.seen.first_sighting(key, *until).await?
        {
            return Err(Error::CallerRefused(CallerRefusal::Replayed));
        }
        Ok(proof.service)
    }

    /// Checks `service`'s proof that `claimed` is its user: by its `subject_proof`, the
    /// `subject_token` must verify for its `resource` and name `claimed`. A refusal is
    /// audited (never with the token) and nothing is created.
    pub async fn prove_subject(
        &self,
        service: &Service,
        token: Option<&str>,
        claimed: &Subject,
    ) -> Result<(), Error> {
        let proof = service.identity.subject_proof;
        let token = match (proof, token) {
            (SubjectProof::Off, _) | (SubjectProof::Optional, None) => return Ok(()),
            (SubjectProof::Required, None) => {
                return self
                    .refuse_subject(service, claimed, Error::SubjectTokenRequired)
                    .await;
            }
            (_, Some(token)) => token,
        };
        let resource = service.identity.resource.as_deref().unwrap_or_default();
        let verified = match self
            .callers
            .subject_of(token.trim(), resource, self.clock.now())
            .await
        {
            Ok(subject) => subject,
            Err(why) => {
                return self
                    .refuse_subject(service, claimed, Error::SubjectTokenRejected(why))
                    .await;
            }
        };
        if &verified != claimed {
            return self
                .refuse_subject(service, claimed, Error::SubjectMismatch)
                .await;
        }
        Ok(())
    }

    async fn refuse_subject(
        &self,
        service: &Service,
        claimed: &Subject,
        error: Error,
    ) -> Result<(), Error> {
        let mut event = AuditEvent::new(
            Actor::Service(service.id.clone()),
            AuditAction::SubjectProofRefused,
            Outcome::Denied,
        )
        .reason(error.kind());
        event.service = Some(service.id.clone());
        event.subject = Some(claimed.clone());
        self.audit(event).await?;
        Err(error)
    }
}

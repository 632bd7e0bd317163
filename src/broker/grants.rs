//! Redemption and revocation. A handle only works for the service it is bound to; for any
//! other caller it is indistinguishable from an unknown handle.

use subtle::ConstantTimeEq;

use super::Broker;
use crate::Error;
use crate::config::Service;
use crate::domain::{Actor, AuditEvent, Credential, Grant, GrantId, GrantStatus, Handle, Outcome};

pub struct Redeemed {
    pub grant: Grant,
    pub credential: Credential,
}

impl Broker {
    pub async fn redeem(&self, service: &Service, presented: &str) -> Result<Redeemed, Error> {
        let actor = Actor::Service(service.id.clone());
        let grant = self.bound_grant(service, presented).await?;
        let refuse = |action: &str, error: Error| {
            let event = AuditEvent::new(actor.clone(), action, Outcome::Denied)
                .grant(&grant)
                .reason(error.kind());
            (event, error)
        };
        let refused = match grant.status {
            GrantStatus::Active => None,
            GrantStatus::Revoked => Some(refuse("grant_redeemed", Error::GrantRevoked)),
            GrantStatus::NeedsReauth => {
                Some(refuse("grant_redeemed", Error::ReauthorizationRequired))
            }
        };
        if let Some((event, error)) = refused {
            self.audit(event).await?;
            return Err(error);
        }
        let secret = match self.open_secret(&grant) {
            Ok(s) if bool::from(s.handle.as_bytes().ct_eq(presented.as_bytes())) => s,
            _ => {
                let (event, error) = refuse("grant_redeemed", Error::GrantCorrupt);
                self.audit(AuditEvent {
                    outcome: Outcome::Failure,
                    ..event
                })
                .await?;
                return Err(error);
            }
        };
        let now = crate::domain::now();
        self.stores.grants.record_use(&grant.id, now).await?;
        self.audit(AuditEvent::new(actor, "grant_redeemed", Outcome::Success).grant(&grant))
            .await?;
        Ok(Redeemed {
            grant,
            credential: secret.credential.clone(),
        })
    }

    /// Revocation by the bound service, by handle or by grant id.
    pub async fn revoke_for_service(
        &self,
        service: &Service,
        target: RevokeTarget<'_>,
    ) -> Result<Grant, Error> {
        let grant = match target {
            RevokeTarget::Handle(h) => self.bound_grant(service, h).await?,
            RevokeTarget::Id(id) => {
                let id = GrantId::parse(id).map_err(|_| Error::UnknownHandle)?;
                match self.stores.grants.grant(&id).await? {
                    Some(g) if g.service == service.id => g,
                    _ => return Err(Error::UnknownHandle),
                }
            }
        };
        self.revoke(Actor::Service(service.id.clone()), &grant)
            .await
    }

    /// Disables a grant at once and audits it. Revoking twice is not an error.
    pub async fn revoke(&self, actor: Actor, grant: &Grant) -> Result<Grant, Error> {
        let revoked = self
            .stores
            .grants
            .revoke_grant(&grant.id, crate::domain::now())
            .await?
            .ok_or(Error::UnknownHandle)?;
        self.audit(AuditEvent::new(actor, "grant_revoked", Outcome::Success).grant(&revoked))
            .await?;
        Ok(revoked)
    }

    /// The grant a handle names, if it is bound to `service`; otherwise `UnknownHandle`.
    async fn bound_grant(&self, service: &Service, presented: &str) -> Result<Grant, Error> {
        let handle = Handle::parse(presented).ok_or(Error::UnknownHandle)?;
        match self.stores.grants.grant_by_handle(&handle.digest()).await? {
            Some(g) if g.service == service.id => Ok(g),
            Some(g) => {
                self.audit(
                    AuditEvent::new(
                        Actor::Service(service.id.clone()),
                        "foreign_handle_presented",
                        Outcome::Denied,
                    )
                    .grant(&g)
                    .reason("unknown_handle"),
                )
                .await?;
                Err(Error::UnknownHandle)
            }
            None => Err(Error::UnknownHandle),
        }
    }
}

pub enum RevokeTarget<'a> {
    Handle(&'a str),
    Id(&'a str),
}

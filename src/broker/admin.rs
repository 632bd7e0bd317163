//! Revocation by people: a user revoking one of their own grants, and an admin revoking
//! one grant, every grant of a user (offboarding) or of a provider (kill switch). The
//! identity provider's offboarding (`offboarding`) revokes through the same paging. Every
//! revocation goes through [`Broker::revoke`], so each grant's revocation is audited (and
//! reaches the upstream) exactly as any other; bulk revocations add one summary event.
//! Exporting the audit log is itself audited, before the first event is read.

use super::Broker;
use crate::Error;
use crate::domain::{
    Actor, AuditAction, AuditEvent, Grant, GrantId, GrantStatus, Outcome, ProviderId, Subject,
};
use crate::identity::SessionUser;
use crate::store::admin::{AuditFilter, GrantFilter};

/// Grants read per page while revoking in bulk.
const BULK_PAGE: usize = 200;
/// Audit events read per store call while exporting.
const EXPORT_PAGE: usize = 1_000;

/// The audit events an export holds, newest first.
pub struct AuditExport {
    pub events: Vec<AuditEvent>,
    /// The export stopped at its maximum; older matching events were left out.
    pub truncated: bool,
}

impl Broker {
    /// The grant `raw_id` if it belongs to `user`; `None` for an unknown id and for
    /// anyone else's grant alike, so ids cannot be probed.
    pub async fn own_grant(
        &self,
        user: &SessionUser,
        raw_id: &str,
    ) -> Result<Option<Grant>, Error> {
        let Ok(id) = GrantId::parse(raw_id) else {
            return Ok(None);
        };
        Ok(self
            .stores
            .grants
            .grant(&id)
            .await?
            .filter(|g| g.subject == user.subject))
    }

    /// A user revokes one of their own grants; `None` if it is not theirs (or unknown).
    pub async fn revoke_own(
        &self,
        user: &SessionUser,
        raw_id: &str,
    ) -> Result<Option<Grant>, Error> {
        match self.own_grant(user, raw_id).await? {
            Some(g) => Ok(Some(
                self.revoke(Actor::User(user.subject.clone()), &g).await?,
            )),
            None => Ok(None),
        }
    }

    /// An admin revokes every grant of `subject` that is not revoked yet; returns how many.
    pub async fn revoke_all_of_subject(
        &self,
        admin: &Subject,
        subject: &Subject,
    ) -> Result<usize, Error> {
        let filter = GrantFilter {
            subject: Some(subject.clone()),
            ..Default::default()
        };
        let n = self
            .revoke_matching(&Actor::Admin(admin.clone()), &filter)
            .await?;
        let mut event = AuditEvent::new(
            Actor::Admin(admin.clone()),
            AuditAction::UserGrantsRevoked,
            Outcome::Success,
        );
        event.subject = Some(subject.clone());
        self.audit(event).await?;
        Ok(n)
    }

    /// An admin revokes every grant of `provider` that is not revoked yet; returns how many.
    pub async fn revoke_all_of_provider(
        &self,
        admin: &Subject,
        provider: &ProviderId,
    ) -> Result<usize, Error> {
        let filter = GrantFilter {
            provider: Some(provider.clone()),
            ..Default::default()
        };
        let n = self
            .revoke_matching(&Actor::Admin(admin.clone()), &filter)
            .await?;
        let mut event = AuditEvent::new(
            Actor::Admin(admin.clone()),
            AuditAction::ProviderGrantsRevoked,
            Outcome::Success,
        );
        event.provider = Some(provider.clone());
        self.audit(event).await?;
        Ok(n)
    }

    /// An admin exports the audit log under `filter`: audited (`audit_exported`), then up
    /// to `max` events, newest first.
    pub async fn export_audit(
        &self,
        admin: &Subject,
        filter: &AuditFilter,
        max: usize,
    ) -> Result<AuditExport, Error> {
        self.audit(AuditEvent::new(
            Actor::Admin(admin.clone()),
            AuditAction::AuditExported,
            Outcome::Success,
        ))
        .await?;
        let (mut events, mut before, mut truncated) = (Vec::new(), None, false);
        loop {
            let page = self
                .stores
                .admin
                .audit_page(filter, before.as_ref(), EXPORT_PAGE)
                .await?;
            for e in page.events {
                if events.len() == max {
                    truncated = true;
                    break;
                }
                events.push(e);
            }
            match page.next {
                Some(next) if !truncated => before = Some(next),
                _ => return Ok(AuditExport { events, truncated }),
            }
        }
    }

    /// Pages through `filter` and revokes each grant that is not revoked yet, as `actor`.
    pub(super) async fn revoke_matching(
        &self,
        actor: &Actor,
        filter: &GrantFilter,
    ) -> Result<usize, Error> {
        let (mut revoked, mut after) = (0, None);
        loop {
            let page = self
                .stores
                .admin
                .list_grants(filter, after.as_ref(), BULK_PAGE)
                .await?;
            for g in page
                .grants
                .iter()
                .filter(|g| g.status != GrantStatus::Revoked)
            {
                self.revoke(actor.clone(), g).await?;
                revoked += 1;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(revoked),
            }
        }
    }
}

//! Key rotation: how many grants (and registered services' webhook secrets) each key seals,
//! and re-sealing ("rewrapping") every grant's data key under the active key. Rewrap changes only the wrapped data key, with a
//! compare-and-set per grant, while the broker serves: every grant opens before, during and
//! after (both keys stay in the keyring until `keys remove`, which refuses a key in use).

use std::collections::BTreeMap;

use super::Broker;
use crate::Error;
use crate::domain::{
    Actor, AuditAction, AuditEvent, GrantChange, Outcome, RegisteredService, ServiceWebhook,
};
use crate::store::Updated;
use crate::store::admin::{GrantCursor, GrantFilter};

const PAGE: usize = 500;

/// What a rewrap did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rewrapped {
    pub rewrapped: u64,
    /// Already under the active key.
    pub current: u64,
    /// Changed meanwhile (a refresh re-sealed it: under the active key already) or unreadable.
    pub skipped: u64,
}

impl Broker {
    /// Sealed records per key id that seals them: every grant (any status) and every
    /// registered service's webhook secret.
    pub async fn sealed_per_key(&self) -> Result<BTreeMap<String, u64>, Error> {
        let mut usage = BTreeMap::new();
        self.each_grant_page(|grants| {
            for g in grants {
                *usage.entry(g.sealed.key_id.to_string()).or_insert(0) += 1;
            }
        })
        .await?;
        for r in self.stores.services.registered_services().await? {
            if let Some(w) = &r.webhook {
                *usage.entry(w.secret.key_id.to_string()).or_insert(0) += 1;
            }
        }
        Ok(usage)
    }

    /// Re-seals registered services' webhook secrets under the active key.
    async fn rewrap_webhook_secrets(&self, report: &mut Rewrapped) -> Result<(), Error> {
        for r in self.stores.services.registered_services().await? {
            let Some(w) = &r.webhook else { continue };
            if !self.vault.needs_rewrap(&w.secret) {
                report.current += 1;
                continue;
            }
            let Ok(secret) = self.vault.rewrap(r.webhook_seal_context(), &w.secret) else {
                tracing::warn!(
                    service = r.id.as_str(),
                    "webhook secret could not be rewrapped"
                );
                report.skipped += 1;
                continue;
            };
            let webhook = Some(ServiceWebhook {
                url: w.url.clone(),
                secret,
            });
            let new = RegisteredService {
                webhook,
                ..r.clone()
            };
            if self.stores.services.replace_service(&r, &new).await? {
                report.rewrapped += 1;
            } else {
                report.skipped += 1;
            }
        }
        Ok(())
    }

    /// Re-seals every grant's data key (and every registered service's webhook secret)
    /// under the active key.
    pub async fn rewrap_all(&self) -> Result<Rewrapped, Error> {
        let mut pending = Vec::new();
        let mut report = Rewrapped::default();
        self.each_grant_page(|grants| {
            for g in grants {
                if self.vault.needs_rewrap(&g.sealed) {
                    pending.push(g.clone());
                } else {
                    report.current += 1;
                }
            }
        })
        .await?;
        for grant in pending {
            let Ok(sealed) = self.vault.rewrap(grant.seal_context(), &grant.sealed) else {
                tracing::warn!(
                    grant = grant.id.as_str(),
                    "grant could not be rewrapped (unknown key or corrupt)"
                );
                report.skipped += 1;
                continue;
            };
            let change = GrantChange::Rewrap {
                expected: grant.sealed.clone(),
                sealed,
            };
            match self.stores.grants.update_grant(&grant.id, change).await? {
                Updated::Applied(_) => report.rewrapped += 1,
                Updated::Unchanged(_) | Updated::NotFound => report.skipped += 1,
            }
        }
        self.rewrap_webhook_secrets(&mut report).await?;
        if report.rewrapped > 0 {
            let event = AuditEvent::new(
                Actor::System,
                AuditAction::GrantsRewrapped,
                Outcome::Success,
            )
            .reason(self.vault.keyring().active_id().as_str());
            self.audit(event).await?;
        }
        Ok(report)
    }

    /// Visits every grant, a page at a time, newest first.
    async fn each_grant_page(
        &self,
        mut visit: impl FnMut(&[crate::domain::Grant]),
    ) -> Result<(), Error> {
        let filter = GrantFilter::default();
        let mut after: Option<GrantCursor> = None;
        loop {
            let page = self
                .stores
                .admin
                .list_grants(&filter, after.as_ref(), PAGE)
                .await?;
            visit(&page.grants);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }
}

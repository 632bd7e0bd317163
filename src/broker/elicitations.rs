//! The service side of elicitations: create (or reuse an active grant), read, long-poll.

use std::time::Duration;

use super::Broker;
use crate::Error;
use crate::config::{ProviderSpec, Service};
use crate::domain::{
    Actor, AuditAction, AuditEvent, Elicitation, ElicitationId, ElicitationStatus, Grant,
    GrantSecret, GrantStatus, Handle, Outcome, ProviderId, Scopes, Subject,
};

pub struct NewElicitation {
    pub subject: Subject,
    pub provider: ProviderId,
    pub scopes: Scopes,
    pub message: Option<String>,
}

pub enum Created {
    /// An active grant already covers the request; no user interaction needed.
    Ready {
        grant: Box<Grant>,
        handle: Handle,
    },
    Pending(Elicitation),
}

impl Broker {
    pub async fn create_elicitation(
        &self,
        service: &Service,
        req: NewElicitation,
    ) -> Result<Created, Error> {
        service.permits(&req.provider, &req.scopes)?;
        let provider = self
            .settings
            .provider(&req.provider)
            .ok_or_else(|| Error::ProviderNotAllowed(req.provider.to_string()))?;
        let current_terms = match &provider.spec {
            ProviderSpec::Terms { version, .. } => Some(version.as_str()),
            ProviderSpec::ApiKey { .. } | ProviderSpec::Oauth2(_) => None,
        };
        let existing = self.stores.grants.grants_of_subject(&req.subject).await?;
        let mine: Vec<Grant> = existing
            .into_iter()
            .filter(|g| {
                g.service == service.id
                    && g.provider == req.provider
                    && g.status != GrantStatus::Revoked
            })
            .collect();
        let satisfying = mine.iter().find(|g| {
            g.status == GrantStatus::Active
                && g.scopes.covers(&req.scopes)
                && g.terms_version.as_deref() == current_terms
        });
        if let Some(grant) = satisfying {
            let handle = self.handle_of(grant)?;
            self.audit(
                AuditEvent::new(
                    Actor::Service(service.id.clone()),
                    AuditAction::GrantReused,
                    Outcome::Success,
                )
                .grant(grant),
            )
            .await?;
            return Ok(Created::Ready {
                grant: Box::new(grant.clone()),
                handle,
            });
        }
        // The user already consented and an administrator has not decided yet: the same
        // request again gets that elicitation, not a second consent page.
        for g in mine
            .iter()
            .filter(|g| g.status == GrantStatus::AwaitingApproval && g.scopes.covers(&req.scopes))
        {
            if let Some(id) = &g.elicitation
                && let Some(e) = self.stores.elicitations.elicitation(id).await?
                && e.is_open(self.clock().now())
            {
                return Ok(Created::Pending(e));
            }
        }
        // A scope upgrade asks for the union, so the new grant can replace the old one
        // without losing what was granted before (as far as the policy still allows).
        let mut req = req;
        for g in &mine {
            let kept = g
                .scopes
                .iter()
                .filter(|s| service.allows_scope(&req.provider, s));
            req.scopes = req.scopes.union(kept).unwrap_or(req.scopes);
        }
        Ok(Created::Pending(self.insert_pending(service, req).await?))
    }

    /// Stores a new pending elicitation and audits it.
    pub(crate) async fn insert_pending(
        &self,
        service: &Service,
        req: NewElicitation,
    ) -> Result<Elicitation, Error> {
        let now = self.clock().now();
        let elicitation = Elicitation {
            id: ElicitationId::generate(),
            service: service.id.clone(),
            subject: req.subject,
            provider: req.provider,
            scopes: req.scopes,
            message: req.message,
            created_at: now,
            expires_at: now + self.settings.elicitation_ttl,
            status: ElicitationStatus::Pending,
            grant_id: None,
            reason: None,
        };
        self.stores
            .elicitations
            .insert_elicitation(&elicitation)
            .await?;
        self.audit(
            AuditEvent::new(
                Actor::Service(service.id.clone()),
                AuditAction::ElicitationCreated,
                Outcome::Success,
            )
            .elicitation(&elicitation),
        )
        .await?;
        Ok(elicitation)
    }

    /// An elicitation as its creating service sees it; any other service gets not-found.
    pub async fn elicitation_for_service(
        &self,
        service: &Service,
        id: &str,
    ) -> Result<Elicitation, Error> {
        let id = ElicitationId::parse(id).map_err(|_| Error::ElicitationNotFound)?;
        match self.stores.elicitations.elicitation(&id).await? {
            Some(e) if e.service == service.id => Ok(e),
            _ => Err(Error::ElicitationNotFound),
        }
    }

    /// Like `elicitation_for_service`, but waits up to `wait` while it is open and its
    /// status is the one it had when the call began (so a service long-polling a pending
    /// request also learns when it starts waiting for an administrator).
    pub async fn wait_for_elicitation(
        &self,
        service: &Service,
        id: &str,
        wait: Duration,
    ) -> Result<Elicitation, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut began = None;
        loop {
            // Register interest before reading, so a settle between the read and the wait
            // still wakes us.
            let changed = self.changes.notified();
            let e = self.elicitation_for_service(service, id).await?;
            let now = self.clock().now();
            let status = *began.get_or_insert(e.status_at(now));
            if !e.is_open(now)
                || e.status_at(now) != status
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(e);
            }
            // Another instance may settle it without notifying us: re-read at least every second.
            let nap = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
            let _ = tokio::time::timeout_at(nap, changed).await;
        }
    }

    pub(crate) fn notify_settled(&self) {
        self.changes.notify_waiters();
    }

    /// The grant's handle, unsealed for its bound service.
    pub(crate) fn handle_of(&self, grant: &Grant) -> Result<Handle, Error> {
        let secret = self.open_secret(grant)?;
        Handle::parse(&secret.handle).ok_or(Error::GrantCorrupt)
    }

    pub(crate) fn open_secret(&self, grant: &Grant) -> Result<GrantSecret, Error> {
        let plain = self
            .vault
            .open(grant.seal_context(), &grant.sealed)
            .map_err(|e| {
                tracing::error!(grant = grant.id.as_str(), error = %e, "grant failed to open");
                Error::GrantCorrupt
            })?;
        serde_json::from_slice(&plain).map_err(|_| Error::GrantCorrupt)
    }
}

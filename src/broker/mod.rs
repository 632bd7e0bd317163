//! The broker's use cases, independent of HTTP: create and settle elicitations, mint,
//! redeem and revoke grants. Handlers call these and render the result; every state
//! change is audited here, in one place, before the caller hears of it.

use std::time::Duration;

use tokio::sync::Notify;
use url::Url;

use crate::Error;
use crate::config::Settings;
use crate::domain::{AuditEvent, Clock, ElicitationId, GrantId};
use crate::store::Stores;
use crate::vault::Vault;

mod admin;
mod consent;
mod elicitations;
mod grants;
pub mod keys;
mod oauth;
mod webhooks;

pub use elicitations::{Created, NewElicitation};
pub use grants::{Redeemed, RevokeTarget};

pub struct Broker {
    pub settings: Settings,
    /// Where users reach this broker; consent links start with it.
    pub public_url: Url,
    pub stores: Stores,
    pub vault: Vault,
    /// Outbound HTTP (OAuth servers, API-key checks): no redirects, bounded time.
    pub http: reqwest::Client,
    /// Woken whenever an elicitation settles, so long-polls answer at once.
    changes: Notify,
    /// Upstream authorization servers' discovered metadata.
    oauth_metadata: crate::flows::oauth2::MetadataCache,
    /// Enterprise sign-in, when configured.
    pub oidc: Option<crate::identity::oidc::OidcLogin>,
    /// Prometheus metrics; the audit trail feeds the domain counters.
    pub metrics: crate::metrics::Metrics,
    /// Rate limits per service and per client address.
    pub limits: crate::limits::Limits,
    /// Completion webhooks waiting for delivery.
    outbox: webhooks::Outbox,
    /// The time every expiry and refresh decision reads; tests advance it.
    clock: Clock,
}

impl Broker {
    pub fn new(
        settings: Settings,
        public_url: Url,
        stores: Stores,
        vault: Vault,
    ) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.upstream_timeout.min(Duration::from_secs(5)))
            .timeout(settings.upstream_timeout)
            .user_agent(concat!("consent-broker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        let oidc = settings
            .oidc
            .clone()
            .map(crate::identity::oidc::OidcLogin::new);
        let metrics = crate::metrics::Metrics::new(&settings);
        let limits = crate::limits::Limits::new(&settings.limits);
        Ok(Self {
            settings,
            public_url,
            stores,
            vault,
            http,
            changes: Notify::new(),
            oauth_metadata: Default::default(),
            oidc,
            limits,
            metrics,
            outbox: webhooks::Outbox::new()?,
            clock: Clock::real(),
        })
    }

    /// The clock the broker's expiry and refresh decisions read.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The consent page URL for an elicitation: only the opaque id, nothing else.
    pub fn consent_url(&self, id: &ElicitationId) -> Url {
        let mut url = self.public_url.clone();
        url.path_segments_mut()
            .map(|mut p| {
                p.pop_if_empty().push("e").push(id.as_str());
            })
            .ok();
        url
    }

    /// Writes an audit event to the store and the log, then counts it in the metrics and,
    /// when it settles an elicitation, queues the service's completion webhook. A failed
    /// write fails the operation: nothing happens that the trail does not show.
    pub(crate) async fn audit(&self, event: AuditEvent) -> Result<(), Error> {
        log_audit(&event);
        self.stores.audit.append(&event).await?;
        self.metrics.record_audit(&event);
        self.queue_webhook(&event);
        Ok(())
    }

    /// A successful redemption's audit event, written together with the grant's use count
    /// (one store commit or round trip instead of two); otherwise exactly like [`Self::audit`].
    pub(crate) async fn audit_redemption(
        &self,
        grant: &GrantId,
        event: AuditEvent,
    ) -> Result<(), Error> {
        log_audit(&event);
        self.stores
            .redemptions
            .record_redemption(grant, event.at, &event)
            .await?;
        self.metrics.record_audit(&event);
        Ok(())
    }

    /// Removes elicitations that expired more than a day ago.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let cutoff = self.clock.now() - crate::store::ELICITATION_RETENTION;
        Ok(self.stores.elicitations.sweep_elicitations(cutoff).await?)
    }
}

/// The audit event's log line (ids and outcome only, never a secret).
fn log_audit(event: &AuditEvent) {
    tracing::info!(
            target: "audit",
            action = %event.action,
            outcome = ?event.outcome,
            actor = ?event.actor,
            elicitation = event.elicitation.as_ref().map(|e| e.as_str()),
            grant = event.grant.as_ref().map(|g| g.as_str()),
            reason = event.reason.as_deref(),
        "audit"
    );
}

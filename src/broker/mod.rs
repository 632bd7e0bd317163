//! The broker's use cases, independent of HTTP: create and settle elicitations, mint,
//! redeem and revoke grants, sign people in. Handlers call these and render the result;
//! every state change is audited here, in one place, before the caller hears of it. The
//! fields are private: pages read through the small methods in `reads` and write only
//! through use cases.

use std::time::Duration;

use tokio::sync::Notify;
use url::Url;

use crate::Error;
use crate::config::Settings;
use crate::domain::{AuditEvent, Clock, ElicitationId, GrantId};
use crate::store::Stores;
use crate::vault::Vault;

mod admin;
mod approvals;
mod consent;
mod deferred;
mod elicitations;
mod grants;
pub mod keys;
mod oauth;
mod offboarding;
mod reads;
mod service_identity;
mod services;
mod sign_in;
mod webhooks;

pub use admin::AuditExport;
pub use approvals::{ADMIN_REFUSAL, Listed, Review};
pub use consent::POLICY_REASON;
pub use elicitations::{Created, NewElicitation};
pub use grants::{Redeemed, RevokeTarget};
pub use offboarding::{Deprovisioned, SetRefused, SubjectState, Trigger};
pub use services::{Edited, Issued, ServiceDescription, ServiceEdit};

pub struct Broker {
    settings: Settings,
    /// Where users reach this broker; consent links start with it.
    public_url: Url,
    stores: Stores,
    vault: Vault,
    /// Outbound HTTP (OAuth servers, API-key checks): no redirects, bounded time.
    http: reqwest::Client,
    /// Woken whenever an elicitation settles, so long-polls answer at once.
    changes: Notify,
    /// Upstream authorization servers' discovered metadata.
    oauth_metadata: crate::flows::oauth2::MetadataCache,
    /// Enterprise sign-in, when configured.
    oidc: Option<crate::identity::oidc::OidcLogin>,
    /// Prometheus metrics; the audit trail feeds the domain counters.
    metrics: crate::metrics::Metrics,
    /// Rate limits per service and per client address.
    limits: crate::limits::Limits,
    /// Completion webhooks waiting for delivery.
    outbox: webhooks::Outbox,
    /// Audit events written off the request path.
    deferred: deferred::Deferred,
    /// The time every expiry and refresh decision reads; tests advance it.
    clock: Clock,
    /// The Shared Signals receiver's verifier, when `[shared_signals]` is configured.
    security_events: Option<crate::identity::security_events::SetVerifier>,
    /// Services' JWTs (assertions, workload tokens) and users' `subject_token`s.
    callers: crate::identity::caller_jwt::CallerVerifier,
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
        let security_events = offboarding::set_verifier(&settings, &http);
        let callers =
            crate::identity::caller_jwt::CallerVerifier::new(&settings, &public_url, &http);
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
            deferred: deferred::Deferred::new(),
            clock: Clock::real(),
            security_events,
            callers,
        })
    }

    /// The validated configuration.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where users reach this broker.
    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// Prometheus metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Rate limits per service and per client address.
    pub fn limits(&self) -> &crate::limits::Limits {
        &self.limits
    }

    /// The keyring the vault seals with (key ids only ever leave it, never key material).
    pub fn keyring(&self) -> &crate::vault::Keyring {
        self.vault.keyring()
    }

    /// The server-side session store, for the session layer.
    pub fn session_store(&self) -> crate::store::sessions::SharedSessionStore {
        self.stores.sessions.clone()
    }

    /// Whether the store answers (`/readyz`).
    pub async fn store_ready(&self) -> crate::store::StoreResult<()> {
        self.stores.health.ping().await
    }

    /// The grant store, read by `/metrics` for its gauge of grants per key and status.
    pub fn grant_store(&self) -> &dyn crate::store::GrantStore {
        self.stores.grants.as_ref()
    }

    /// The stores themselves, past the use cases and their audit: only for integration
    /// tests and benchmarks that set up or inspect state. Handlers never call this.
    #[doc(hidden)]
    pub fn raw_stores(&self) -> &Stores {
        &self.stores
    }

    /// The vault itself, past the use cases: only for tests. Handlers never call this.
    #[doc(hidden)]
    pub fn raw_vault(&self) -> &Vault {
        &self.vault
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
        // Profiling builds only (they start only in --dev): the path without its write.
        if cfg!(feature = "bench-skip-redemption-write") {
            return Ok(());
        }
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
            reason = event.reason.as_ref().map(|r| r.as_str()),
        "audit"
    );
}

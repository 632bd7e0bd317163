//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Owns every metric family and the rules for their labels. Invariants:
//! - labels never carry an id, subject, handle, token or any other value from a request:
//!   only fixed words (actions, outcomes, reasons from an allow-list), configured ids
//!   (provider ids, key ids), the store kind and route *templates* (`/e/{id}`);
//! - domain counters are derived from the audit trail only ([`Metrics::record_audit`],
//!   called once per event by `Broker::audit` after the event is stored), so a state change
//!   is counted exactly once, on the instance that made it;
//! - HTTP latency and store failures are recorded by the request middleware
//!   (`telemetry::observe`); the grant gauge is computed from the store on scrape.
//!
//! The `/metrics` endpoint itself (its bearer token) is `http::ops`; this module only
//! renders the exposition, from the registry and the grant store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::Settings;
use crate::config::settings::StoreSettings;
use crate::domain::{Actor, AuditAction, AuditEvent, AuditReason, ErrorKind, Outcome};
use crate::store::{GrantStore, StoreError};

/// Content type of the exposition (Prometheus scrapes OpenMetrics natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a computed grant count is reused before the store is asked again.
const GRANT_COUNT_TTL: Duration = Duration::from_secs(30);

/// Request latency buckets, in seconds. Long-polls (`?wait=`) end in the top buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Reason codes other than error kinds that may appear as a label value: the flow's own
/// failure codes and the OAuth 2.0 error codes (RFC 6749). Error kinds are placed by
/// [`refusal_label`]; any other code is counted as `other`.
const KNOWN_CODES: &[&str] = &[
    "issuer_mismatch",
    "invalid_callback",
    "access_denied",
    "invalid_grant",
    "invalid_scope",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "server_error",
    "temporarily_unavailable",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditLabels {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RedemptionLabels {
    outcome: String,
    store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderOutcome {
    provider: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevocationLabels {
    provider: String,
    actor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreErrorLabels {
    store: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: Arc<str>,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    key_id: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    store: String,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

/// A store failure behind a response, left in the response's extensions by the error
/// renderings and `/readyz` so that the request middleware counts it once.
#[derive(Clone, Copy, Debug)]
pub struct StoreFailure(pub &'static str);

impl StoreFailure {
    pub fn of(e: &StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self("unavailable"),
            StoreError::Corrupt(_) => Self("corrupt"),
        }
    }
}

pub struct Metrics {
    registry: Registry,
    store: &'static str,
    audit_events: Family<AuditLabels, Counter>,
    redemptions: Family<RedemptionLabels, Counter>,
    flows: Family<ProviderOutcome, Counter>,
    refreshes: Family<ProviderOutcome, Counter>,
    revocations: Family<RevocationLabels, Counter>,
    store_errors: Family<StoreErrorLabels, Counter>,
    http: HistogramFamily,
    /// The route templates seen so far, so that a request's labels allocate nothing. The
    /// router's templates are a fixed set, so this stays as small as the router.
    routes: std::sync::RwLock<std::collections::HashSet<Arc<str>>>,
    grants: Family<GrantLabels, Gauge>,
    /// When the grant gauge was last computed; also serialises scrapes.
    grants_counted: tokio::sync::Mutex<Option<Instant>>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// The families, with a zero for every series an alert may watch (so that `rate()`
    /// and `increase()` see the first event): per configured provider, per outcome.
    pub fn new(settings: &Settings) -> Self {
        let store = store_kind(&settings.store);
        let mut registry = Registry::with_prefix("consent_broker");
        let m = Metrics {
            store,
            audit_events: Family::default(),
            redemptions: Family::default(),
            flows: Family::default(),
            refreshes: Family::default(),
            revocations: Family::default(),
            store_errors: Family::default(),
            http: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            grants: Family::default(),
            grants_counted: tokio::sync::Mutex::new(None),
            routes: Default::default(),
            registry: Registry::default(),
        };
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                store: store.into(),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; labels say the version and the store kind",
            build,
        );
        registry.register(
            "audit_events",
            "Audit events recorded, by action and outcome",
            m.audit_events.clone(),
        );
        registry.register(
            "redemptions",
            "Handle redemptions by outcome (success or the refusal reason) and store",
            m.redemptions.clone(),
        );
        registry.register(
            "flows",
            "Consent flows by provider and outcome: started, completed, declined, failed, reused",
            m.flows.clone(),
        );
        registry.register(
            "token_refreshes",
            "Upstream token refreshes by provider and outcome (success, failure)",
            m.refreshes.clone(),
        );
        registry.register(
            "revocations",
            "Grants revoked, by provider and who revoked (service, user, admin, system)",
            m.revocations.clone(),
        );
        registry.register(
            "store_errors",
            "Requests that failed because the store was unavailable or returned a corrupt record",
            m.store_errors.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            m.http.clone(),
        );
        registry.register(
            "grants",
            "Grants in the store by key-encryption key id and status (computed on scrape, cached 30 s)",
            m.grants.clone(),
        );
        m.zero_series(settings);
        Metrics { registry, ..m }
    }

    fn zero_series(&self, settings: &Settings) {
        let store = || self.store.to_owned();
        for outcome in [
            "success",
            ErrorKind::GrantRevoked.as_str(),
            ErrorKind::ReauthorizationRequired.as_str(),
            ErrorKind::GrantCorrupt.as_str(),
            ErrorKind::UnknownHandle.as_str(),
        ] {
            drop(self.redemptions.get_or_create(&RedemptionLabels {
                outcome: outcome.into(),
                store: store(),
            }));
        }
        for kind in ["unavailable", "corrupt"] {
            drop(self.store_errors.get_or_create(&StoreErrorLabels {
                store: store(),
                kind: kind.into(),
            }));
        }
        for (id, provider) in &settings.providers {
            let provider_label = label_word(id.as_str());
            for outcome in ["started", "completed", "declined", "failed", "reused"] {
                drop(self.flows.get_or_create(&ProviderOutcome {
                    provider: provider_label.clone(),
                    outcome: outcome.into(),
                }));
            }
            if provider.kind() == crate::domain::ProviderKind::Oauth2 {
                for outcome in ["success", "failure"] {
                    drop(self.refreshes.get_or_create(&ProviderOutcome {
                        provider: provider_label.clone(),
                        outcome: outcome.into(),
                    }));
                }
            }
        }
    }

    /// The store kind label: `embedded` or `redis`.
    pub fn store(&self) -> &'static str {
        self.store
    }

    /// Counts one audit event. Only fixed words and configured ids become labels.
    pub fn record_audit(&self, event: &AuditEvent) {
        let outcome = outcome_word(event.outcome);
        let action = match &event.action {
            AuditAction::Unrecognised(_) => "other",
            known => known.as_str(),
        };
        self.audit_events
            .get_or_create(&AuditLabels {
                action: action.into(),
                outcome: outcome.into(),
            })
            .inc();
        let provider = event
            .provider
            .as_ref()
            .map(|p| label_word(p.as_str()))
            .unwrap_or_else(|| "none".into());
        let flow = |outcome: &str| {
            self.flows
                .get_or_create(&ProviderOutcome {
                    provider: provider.clone(),
                    outcome: outcome.into(),
                })
                .inc();
        };
        let refresh = |outcome: &str| {
            self.refreshes
                .get_or_create(&ProviderOutcome {
                    provider: provider.clone(),
                    outcome: outcome.into(),
                })
                .inc();
        };
        // Exhaustive, so that a new action must say which family (if any) counts it.
        match &event.action {
            AuditAction::GrantRedeemed | AuditAction::ForeignHandlePresented => {
                let outcome = match (event.outcome, &event.reason) {
                    (Outcome::Success, _) => "success",
                    (_, Some(reason)) => known_reason(reason),
                    (o, None) => outcome_word(o),
                };
                self.redemptions
                    .get_or_create(&RedemptionLabels {
                        outcome: outcome.into(),
                        store: self.store.into(),
                    })
                    .inc();
            }
            AuditAction::ElicitationCreated => flow("started"),
            AuditAction::ElicitationCompleted => flow("completed"),
            AuditAction::ElicitationDeclined => flow("declined"),
            AuditAction::ElicitationFailed => flow("failed"),
            AuditAction::GrantReused => flow("reused"),
            // A refresh either worked, failed for now, or found the grant dead upstream.
            AuditAction::GrantRefreshed => refresh("success"),
            AuditAction::GrantNeedsReauth => refresh("invalid_grant"),
            AuditAction::GrantRefreshFailed => refresh("failure"),
            AuditAction::GrantRevoked => {
                let actor = match event.actor {
                    Actor::Service(_) => "service",
                    Actor::User(_) => "user",
                    Actor::Admin(_) => "admin",
                    Actor::Idp(_) => "idp",
                    Actor::System => "system",
                };
                self.revocations
                    .get_or_create(&RevocationLabels {
                        provider: provider.clone(),
                        actor: actor.into(),
                    })
                    .inc();
            }
            // Counted by `audit_events` only.
            AuditAction::IdentityMismatch
            | AuditAction::ApiKeyRejected
            | AuditAction::OauthAuthorizationStarted
            | AuditAction::OauthCallbackRejected
            | AuditAction::GrantCreated
            | AuditAction::GrantSuperseded
            | AuditAction::UpstreamRevocation
            | AuditAction::UserGrantsRevoked
            | AuditAction::ProviderGrantsRevoked
            | AuditAction::GrantsRewrapped
            | AuditAction::SignedIn
            | AuditAction::AuditExported
            | AuditAction::WebhookDelivered
            | AuditAction::WebhookAttemptFailed
            | AuditAction::WebhookAbandoned
            | AuditAction::PolicyRefused
            | AuditAction::ApprovalRequested
            | AuditAction::ApprovalGranted
            | AuditAction::ApprovalRefused
            | AuditAction::GrantExpired
            | AuditAction::UserDeprovisioned
            | AuditAction::SecurityEventRejected
            | AuditAction::SubjectProofRefused
            | AuditAction::ServiceRegistered
            | AuditAction::ServiceApproved
            | AuditAction::ServiceUpdated
            | AuditAction::ServiceSuspended
            | AuditAction::ServiceResumed
            | AuditAction::ServiceDeleted
            | AuditAction::ServiceTokenRotated
            | AuditAction::InitialTokenMinted
            | AuditAction::RegistrationRefused
            | AuditAction::Unrecognised(_) => {}
        }
    }

    /// Records one finished HTTP request. `route` is the matched route template.
    pub fn record_request(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        latency: Duration,
        store_failure: Option<StoreFailure>,
    ) {
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            Method::PUT => "PUT",
            _ => "other",
        };
        self.http
            .get_or_create(&HttpLabels {
                method,
                route: self.route(route),
                status: status.as_u16(),
            })
            .observe(latency.as_secs_f64());
        if let Some(StoreFailure(kind)) = store_failure {
            self.store_errors
                .get_or_create(&StoreErrorLabels {
                    store: self.store.into(),
                    kind: kind.into(),
                })
                .inc();
        }
    }

    /// `route` as a shared label: a route template (a fixed set) or `unmatched`.
    fn route(&self, route: &str) -> Arc<str> {
        if let Some(r) = self.routes.read().ok().and_then(|r| r.get(route).cloned()) {
            return r;
        }
        let r: Arc<str> = route.into();
        if let Ok(mut routes) = self.routes.write() {
            routes.insert(r.clone());
        }
        r
    }

    /// The exposition text, after refreshing the grant gauge from `grants` when it is stale.
    pub async fn render(&self, grants: &dyn GrantStore) -> Result<String, std::fmt::Error> {
        let mut counted = self.grants_counted.lock().await;
        if counted.is_none_or(|at| at.elapsed() >= GRANT_COUNT_TTL) {
            match grants.grants_per_key().await {
                Ok(Some(counts)) => {
                    self.set_grant_counts(counts);
                    *counted = Some(Instant::now());
                }
                // This backend cannot count grants: the family stays empty.
                Ok(None) => *counted = Some(Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot count grants for /metrics");
                    self.store_errors
                        .get_or_create(&StoreErrorLabels {
                            store: self.store.into(),
                            kind: StoreFailure::of(&e).0.into(),
                        })
                        .inc();
                }
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    fn set_grant_counts(&self, counts: crate::store::GrantCounts) {
        self.grants.clear();
        for ((key_id, status), n) in counts {
            self.grants
                .get_or_create(&GrantLabels {
                    key_id: label_word(&key_id),
                    status,
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

fn store_kind(store: &StoreSettings) -> &'static str {
    match store {
        StoreSettings::Embedded { .. } => "embedded",
        StoreSettings::Redis(_) => "redis",
    }
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "success",
        Outcome::Denied => "denied",
        Outcome::Failure => "failure",
    }
}

/// A redemption refusal's reason as a label value: a fixed word, else `other`.
fn known_reason(reason: &AuditReason) -> &str {
    match reason {
        AuditReason::Error(kind) => refusal_label(*kind),
        AuditReason::Code(code) if KNOWN_CODES.contains(&code.as_str()) => code.as_str(),
        AuditReason::Code(_) => "other",
    }
}

/// The label of a refusal's error kind: the kind itself for the refusals a redemption can
/// meet, `other` for kinds that do not refuse a redemption. Exhaustive, so that a new kind
/// must be placed.
fn refusal_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::GrantRevoked
        | ErrorKind::GrantSuperseded
        | ErrorKind::ReauthorizationRequired
        | ErrorKind::GrantCorrupt
        | ErrorKind::UnknownHandle
        | ErrorKind::UpstreamUnavailable
        | ErrorKind::StoreUnavailable
        | ErrorKind::ProviderUnsupported
        | ErrorKind::CredentialRejected
        | ErrorKind::ApprovalPending
        | ErrorKind::InvalidRequest => kind.as_str(),
        ErrorKind::Unauthenticated
        | ErrorKind::BodyTooLarge
        | ErrorKind::UnsupportedMediaType
        | ErrorKind::ProviderNotAllowed
        | ErrorKind::ScopeNotAllowed
        | ErrorKind::ElicitationNotFound
        | ErrorKind::ElicitationExpired
        | ErrorKind::ElicitationSettled
        | ErrorKind::IdentityMismatch
        | ErrorKind::PolicyRefused
        | ErrorKind::CsrfRejected
        | ErrorKind::FlowStateRejected
        | ErrorKind::SignInFailed
        | ErrorKind::RateLimited
        | ErrorKind::NotFound
        | ErrorKind::HeadersTooLarge
        | ErrorKind::BodyTimeout
        | ErrorKind::MethodNotAllowed
        | ErrorKind::CallerTokenInvalid
        | ErrorKind::CallerTokenWrongAudience
        | ErrorKind::CallerTokenExpired
        | ErrorKind::CallerTokenReplayed
        | ErrorKind::CallerTokenUnknownKey
        | ErrorKind::UntrustedIssuer
        | ErrorKind::SubjectTokenRequired
        | ErrorKind::SubjectTokenRejected
        | ErrorKind::SubjectMismatch
        | ErrorKind::ServicePending
        | ErrorKind::ServiceSuspended
        | ErrorKind::RegistrationTokenRejected
        | ErrorKind::Internal => "other",
    }
}

/// A configured id or fixed verb as a label value: short and of a safe alphabet, else
/// `other` (defence in depth: such values come from code or config, not from requests).
fn label_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word.len() <= 64
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if safe {
        word.to_owned()
    } else {
        "other".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProviderId;

    fn metrics() -> Metrics {
        let config = crate::config::Config::default();
        Metrics::new(&Settings::from_config(&config, true).unwrap())
    }

    fn text(m: &Metrics) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        text
    }

    #[test]
    fn audit_events_become_counters_without_ids() {
        let m = metrics();
        let mut event = AuditEvent::new(
            Actor::Service(crate::domain::ServiceId::parse("svc-a").unwrap()),
            AuditAction::GrantRedeemed,
            Outcome::Denied,
        )
        .reason(ErrorKind::GrantRevoked);
        event.provider = Some(ProviderId::parse("acme").unwrap());
        m.record_audit(&event);
        let mut failed = AuditEvent::new(
            Actor::System,
            AuditAction::ElicitationFailed,
            Outcome::Failure,
        )
        .reason("a reason from upstream {with} \"quotes\"");
        failed.provider = Some(ProviderId::parse("acme").unwrap());
        m.record_audit(&failed);
        let t = text(&m);
        assert!(
            t.contains(
                "consent_broker_redemptions_total{outcome=\"grant_revoked\",store=\"embedded\"} 1"
            ),
            "{t}"
        );
        assert!(
            t.contains("consent_broker_flows_total{provider=\"acme\",outcome=\"failed\"} 1"),
            "{t}"
        );
        assert!(!t.contains("svc-a"), "no service id in labels: {t}");
        assert!(!t.contains("upstream"), "no free text in labels: {t}");
    }

    #[test]
    fn label_words_refuse_anything_unusual() {
        assert_eq!(label_word("k2026"), "k2026");
        assert_eq!(label_word("a\"b"), "other");
        assert_eq!(label_word(&"x".repeat(65)), "other");
        let known = |word: &str| known_reason(&AuditReason::parse(word)).to_owned();
        assert_eq!(known("invalid_grant"), "invalid_grant");
        assert_eq!(known("made_up"), "other");
    }

    /// The reasons a redemption label could show before reasons were typed, listed
    /// literally: every one keeps its word, and every other error kind is `other`.
    #[test]
    fn redemption_labels_keep_their_historical_words() {
        let kinds = [
            "grant_revoked",
            "grant_superseded",
            "reauthorization_required",
            "grant_corrupt",
            "unknown_handle",
            "upstream_unavailable",
            "store_unavailable",
            "provider_unsupported",
            "credential_rejected",
            "approval_pending",
            "invalid_request",
        ];
        for kind in ErrorKind::ALL {
            let reason = AuditReason::Error(kind);
            let label = known_reason(&reason);
            if kinds.contains(&kind.as_str()) {
                assert_eq!(label, kind.as_str());
            } else {
                assert_eq!(label, "other", "{kind}");
            }
            assert_eq!(label_word(label), label, "a safe label word");
        }
        for code in KNOWN_CODES {
            assert_eq!(known_reason(&AuditReason::parse(code)), *code);
        }
    }
}

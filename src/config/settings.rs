//! Validated runtime settings. Everything the config says is checked here once: ids,
//! references between services and providers, regexes, digests, URLs. Each problem is
//! reported with the path of the field it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use url::Url;

use super::problems::{Problems, check_http_url, is_loopback, secret};
use super::{Config, ConfigError, ProviderConfig, StoreKind};
use crate::domain::{ProviderId, ProviderKind, Scope, Scopes, ServiceId};

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub public_url: Option<Url>,
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    pub store: StoreSettings,
    pub elicitation_ttl: Duration,
    /// Refresh upstream tokens expiring within this (capped at half their lifetime).
    pub refresh_skew: Duration,
    pub revocation_attempts: u32,
    /// Longest wait for an upstream HTTP answer.
    pub upstream_timeout: Duration,
    pub limits: super::LimitsConfig,
    pub session_idle: Duration,
    /// Development mode: dev sign-in, plain-http public URL, generated keyring.
    pub dev: bool,
    /// Shared, so that an authenticated request holds its service without copying it.
    pub services: Vec<Arc<Service>>,
    pub providers: BTreeMap<ProviderId, Provider>,
    pub oidc: Option<OidcSettings>,
    /// In-flight requests get this long to finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// SHA-256 of the bearer token `/metrics` requires, if any.
    pub metrics_token_sha256: Option<[u8; 32]>,
    /// What a client connection may take: timeouts and caps.
    pub connections: ConnectionLimits,
    /// `[[policies]]`: who may grant which scopes, approval, lifetimes.
    pub policy: super::policy::Policy,
    pub governance: Governance,
    /// The SCIM client that may deprovision users, when `[scim]` is set.
    pub scim: Option<ScimSettings>,
    /// The Shared Signals transmitter, when `[shared_signals]` is set.
    pub shared_signals: Option<SharedSignalsSettings>,
    /// `[[trusted_issuers]]`: who may prove a user or a workload.
    pub trusted_issuers: Vec<super::service_identity::TrustedIssuer>,
    /// `[branding]`: name, logo, accent and links on every page.
    pub branding: Arc<super::branding::Branding>,
}

/// `[governance]`, validated.
#[derive(Debug, Clone, Copy)]
pub struct Governance {
    /// How long a consented request waits for an administrator before it expires.
    pub approval_window: time::Duration,
    pub review_expiring: time::Duration,
    pub review_unused: time::Duration,
}

pub use super::offboarding::{ScimSettings, SharedSignalsSettings};

/// The limits every client connection is held to (`[server]`'s timeouts and caps).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// The audit log keeps the newest `audit_max_len` events (the sweep trims it).
    Embedded {
        path: PathBuf,
        audit_max_len: u64,
    },
    Redis(RedisSettings),
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub target: RedisTarget,
    /// Starts every key; has no `{` or `}` so it never changes a key's cluster slot.
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub audit_max_len: u64,
}

#[derive(Debug, Clone)]
pub enum RedisTarget {
    Single(RedisUrl),
    Cluster(Vec<RedisUrl>),
}

/// A checked `redis://` or `rediss://` URL. It may hold a password, so `Debug` shows the
/// URL with any password replaced.
#[derive(Clone)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let url = Url::parse(raw).map_err(|_| "not a valid URL")?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err("must start with redis:// (or rediss:// for TLS)");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host");
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URL to connect with. Never log it: it may carry a password.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_tls(&self) -> bool {
        self.0.starts_with("rediss:")
    }

    /// `raw` with its password (if any) replaced, for messages and `Debug`.
    pub fn redact(raw: &str) -> String {
        match Url::parse(raw) {
            Ok(mut url) => {
                if url.password().is_some() {
                    // Setting a password only fails for URLs that cannot have one.
                    let _ = url.set_password(Some("REDACTED"));
                }
                url.to_string()
            }
            Err(_) => "<invalid URL>".into(),
        }
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Self::redact(&self.0))
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub id: ServiceId,
    pub name: String,
    /// The static bearer token's SHA-256, if the service has one.
    pub token_sha256: Option<[u8; 32]>,
    /// The rotated-out token, JWT authentication, proof of the user.
    pub identity: super::service_identity::ServiceIdentity,
    /// Provider → the scopes this service may request from it.
    pub allow: BTreeMap<ProviderId, BTreeSet<Scope>>,
    pub webhook_url: Option<Url>,
    /// Signs completion webhooks; set exactly when `webhook_url` is.
    pub webhook_key: Option<crate::domain::WebhookKey>,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub id: ProviderId,
    pub name: String,
    /// Scope → words shown on the consent page.
    pub scope_descriptions: BTreeMap<String, String>,
    pub spec: ProviderSpec,
}

#[derive(Debug, Clone)]
pub enum ProviderSpec {
    ApiKey {
        header: String,
        format: Option<Regex>,
        verify_url: Option<Url>,
    },
    Terms {
        title: String,
        version: String,
        text: String,
        text_sha256: String,
    },
    Oauth2(Box<OAuthProvider>),
}

pub use super::oauth::{OAuthEndpoints, OAuthProvider};

/// Enterprise sign-in.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub display_name: String,
    pub subject_claim: String,
    pub scopes: Vec<String>,
    pub admin_subjects: Vec<String>,
    pub admin_claim: Option<(String, String)>,
}

impl Provider {
    pub fn kind(&self) -> ProviderKind {
        match self.spec {
            ProviderSpec::ApiKey { .. } => ProviderKind::ApiKey,
            ProviderSpec::Terms { .. } => ProviderKind::Terms,
            ProviderSpec::Oauth2(_) => ProviderKind::Oauth2,
        }
    }
}

impl Service {
    /// True when this service may ask `provider` for `scope`.
    pub fn allows_scope(&self, provider: &ProviderId, scope: &Scope) -> bool {
        self.allow
            .get(provider)
            .is_some_and(|allowed| allowed.contains(scope))
    }

    /// Checks a request for `scopes` from `provider` against this service's policy.
    pub fn permits(&self, provider: &ProviderId, scopes: &Scopes) -> Result<(), crate::Error> {
        let allowed = self
            .allow
            .get(provider)
            .ok_or_else(|| crate::Error::ProviderNotAllowed(provider.to_string()))?;
        match scopes.iter().find(|s| !allowed.contains(*s)) {
            Some(s) => Err(crate::Error::ScopeNotAllowed(s.to_string())),
            None => Ok(()),
        }
    }
}

impl Settings {
    pub fn from_config(config: &Config, dev: bool) -> Result<Settings, ConfigError> {
        Self::validate(config, dev, false).map(|(settings, _)| settings)
    }

    /// Validation for `check-config`: secret files that are absent on this machine are
    /// reported as notes, not errors.
    pub fn check(config: &Config, dev: bool) -> Result<(Settings, Vec<String>), ConfigError> {
        Self::validate(config, dev, true)
    }

    fn validate(
        config: &Config,
        dev: bool,
        secret_files_optional: bool,
    ) -> Result<(Settings, Vec<String>), ConfigError> {
        let mut errors = Problems {
            errors: Vec::new(),
            notes: Vec::new(),
            secret_files_optional,
        };
        let providers = providers(&config.providers, &mut errors);
        let trusted_issuers =
            super::service_identity::trusted_issuers(&config.trusted_issuers, dev, &mut errors);
        let services = services(config, &providers, &trusted_issuers, &mut errors);
        let policy = super::policy::Policy::validate(
            &config.policies,
            |p| providers.contains_key(p),
            |s| services.iter().any(|known| known.id == *s),
            &mut errors,
        );
        let branding = Arc::new(super::branding::branding(
            &config.branding,
            dev,
            &mut errors,
        ));
        let g = &config.governance;
        if !(1..=24 * 30).contains(&g.approval_window_hours) {
            errors.push("governance.approval_window_hours: must be between 1 and 720".into());
        }
        if g.review_expiring_days == 0 || g.review_unused_days == 0 {
            errors.push("governance: review windows must be at least 1 day".into());
        }

        if let Some(url) = &config.server.public_url {
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
            {
                errors.push(
                    "server.public_url: must be an http(s) URL without query or fragment".into(),
                );
            } else if url.scheme() == "http"
                && !dev
                && !is_loopback(url)
                && !config.server.allow_insecure_public_url
            {
                errors.push(
                    "server.public_url: plain http is only allowed for loopback or with --dev; \
                     consent pages carry credentials and need https \
                     (server.allow_insecure_public_url overrides this)"
                        .into(),
                );
            }
        } else if !dev && !config.server.bind.ip().is_loopback() {
            errors.push(
                "server.public_url: required when the broker listens beyond loopback; \
                 set the https URL users reach it at"
                    .into(),
            );
        }
        let l = &config.limits;
        if !(l.api_per_second > 0.0 && l.browser_posts_per_minute > 0.0) {
            errors.push("limits: rates must be above 0".into());
        }
        if l.failed_auth_per_minute.is_nan() || l.failed_auth_per_minute <= 0.0 {
            errors.push("limits.failed_auth_per_minute: must be above 0".into());
        }
        if let Some(h) = &l.client_ip_header
            && axum::http::HeaderName::try_from(h.as_str()).is_err()
        {
            errors.push(format!(
                "limits.client_ip_header: `{h}` is not a header name"
            ));
        }
        if config.elicitation.ttl_seconds < 60 || config.elicitation.ttl_seconds > 24 * 3600 {
            errors.push("elicitation.ttl_seconds: must be between 60 and 86400".into());
        }
        if config.identity.session_idle_minutes == 0 {
            errors.push("identity.session_idle_minutes: must be at least 1".into());
        }
        let oidc = config.identity.oidc.as_ref().map(|o| oidc(o, &mut errors));
        store_errors(&config.store, &mut errors);
        if !(1..=600).contains(&config.server.shutdown_timeout_seconds) {
            errors.push("server.shutdown_timeout_seconds: must be between 1 and 600".into());
        }
        connection_errors(&config.server, &mut errors);
        let service_digests: Vec<[u8; 32]> = services
            .iter()
            .flat_map(|s| {
                s.token_sha256
                    .into_iter()
                    .chain(s.identity.previous_token.as_ref().map(|p| p.sha256))
            })
            .collect();
        let scim = config
            .scim
            .as_ref()
            .map(|c| super::offboarding::scim(c, &service_digests, &mut errors));
        let shared_signals = config
            .shared_signals
            .as_ref()
            .map(|c| super::offboarding::shared_signals(c, dev, &mut errors));
        let metrics_token_sha256 = config.telemetry.metrics_token().unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        if !errors.is_empty() {
            return Err(ConfigError(errors.errors));
        }
        let store = match config.store.kind {
            StoreKind::Embedded => StoreSettings::Embedded {
                path: config
                    .store
                    .path
                    .clone()
                    .unwrap_or_else(|| config.server.data_dir.join("broker.redb")),
                audit_max_len: config.store.audit_max_len.max(1000),
            },
            StoreKind::Redis => StoreSettings::Redis(redis_settings(&config.store)?),
        };
        let settings = Settings {
            bind: config.server.bind,
            public_url: config.server.public_url.clone(),
            data_dir: config.server.data_dir.clone(),
            max_body_bytes: config.server.max_body_bytes,
            store,
            elicitation_ttl: Duration::from_secs(config.elicitation.ttl_seconds.into()),
            refresh_skew: Duration::from_secs(config.tokens.refresh_skew_seconds.into()),
            revocation_attempts: config.tokens.revocation_attempts.clamp(1, 10),
            upstream_timeout: Duration::from_secs(
                config.tokens.upstream_timeout_seconds.clamp(1, 120).into(),
            ),
            limits: config.limits.clone(),
            session_idle: Duration::from_secs(u64::from(config.identity.session_idle_minutes) * 60),
            dev,
            services,
            providers,
            oidc,
            shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout_seconds.into()),
            metrics_token_sha256,
            connections: ConnectionLimits {
                header_read_timeout: secs(config.server.header_read_timeout_seconds),
                body_read_timeout: secs(config.server.body_read_timeout_seconds),
                keep_alive_timeout: secs(config.server.keep_alive_timeout_seconds),
                max_connections: config.server.max_connections as usize,
                max_connections_per_client: config.server.max_connections_per_client as usize,
            },
            policy,
            governance: Governance {
                approval_window: time::Duration::hours(g.approval_window_hours.into()),
                review_expiring: time::Duration::days(g.review_expiring_days.into()),
                review_unused: time::Duration::days(g.review_unused_days.into()),
            },
            scim,
            shared_signals,
            trusted_issuers,
            branding,
        };
        Ok((settings, errors.notes))
    }

    pub fn provider(&self, id: &ProviderId) -> Option<&Provider> {
        self.providers.get(id)
    }

    pub fn service(&self, id: &ServiceId) -> Option<&Service> {
        self.services
            .iter()
            .map(AsRef::as_ref)
            .find(|s| &s.id == id)
    }
}

fn secs(seconds: u32) -> Duration {
    Duration::from_secs(seconds.into())
}

/// Checks `[server]`'s connection timeouts and caps; every problem names its field.
fn connection_errors(server: &super::ServerConfig, errors: &mut Problems) {
    if !(1..=300).contains(&server.header_read_timeout_seconds) {
        errors.push("server.header_read_timeout_seconds: must be between 1 and 300".into());
    }
    if !(1..=600).contains(&server.body_read_timeout_seconds) {
        errors.push("server.body_read_timeout_seconds: must be between 1 and 600".into());
    }
    if server.keep_alive_timeout_seconds == 0
        || server.keep_alive_timeout_seconds > server.header_read_timeout_seconds
    {
        errors.push(
            "server.keep_alive_timeout_seconds: must be between 1 and \
             server.header_read_timeout_seconds (the header timer also runs while a connection \
             waits for its next request)"
                .into(),
        );
    }
    if !(1..=1_000_000).contains(&server.max_connections) {
        errors.push("server.max_connections: must be between 1 and 1000000".into());
    }
    if server.max_connections_per_client == 0
        || server.max_connections_per_client > server.max_connections
    {
        errors.push(
            "server.max_connections_per_client: must be between 1 and server.max_connections"
                .into(),
        );
    }
}

/// Checks the `[store]` section; every problem names its field.
fn store_errors(store: &super::StoreConfig, errors: &mut Problems) {
    match store.kind {
        StoreKind::Embedded => {
            if store.url.is_some() || !store.cluster_urls.is_empty() {
                errors.push(
                    "store.url: only for kind = \"redis\" (store.kind is \"embedded\")".into(),
                );
            }
        }
        StoreKind::Redis => {
            if let Err(e) = redis_settings(store) {
                errors.errors.extend(e.0);
            }
        }
    }
}

fn redis_settings(store: &super::StoreConfig) -> Result<RedisSettings, ConfigError> {
    let mut errors = Vec::new();
    if store.path.is_some() {
        errors.push("store.path: only for kind = \"embedded\" (store.kind is \"redis\")".into());
    }
    let mut check = |field: String, raw: &String| {
        RedisUrl::parse(raw)
            .map_err(|why| errors.push(format!("{field}: {why} ({})", RedisUrl::redact(raw))))
            .ok()
    };
    let target = match (&store.url, store.cluster_urls.as_slice()) {
        (Some(url), []) => check("store.url".into(), url).map(RedisTarget::Single),
        (None, []) => {
            errors.push(
                "store.url: kind = \"redis\" needs `url` (or `cluster_urls` for a cluster)".into(),
            );
            None
        }
        (None, urls) => {
            let parsed: Vec<RedisUrl> = urls
                .iter()
                .enumerate()
                .filter_map(|(i, u)| check(format!("store.cluster_urls[{i}]"), u))
                .collect();
            (parsed.len() == urls.len()).then_some(RedisTarget::Cluster(parsed))
        }
        (Some(_), _) => {
            errors.push("store.cluster_urls: give either `url` or `cluster_urls`, not both".into());
            None
        }
    };
    let prefix = &store.key_prefix;
    if prefix.is_empty()
        || prefix.len() > 64
        || prefix.contains(['{', '}'])
        || prefix.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        errors.push(
            "store.key_prefix: must be 1-64 visible characters without `{` or `}` \
             (braces would change the cluster slot of keys)"
                .into(),
        );
    }
    for (field, ms) in [
        ("connect_timeout_ms", store.connect_timeout_ms),
        ("response_timeout_ms", store.response_timeout_ms),
    ] {
        if !(10..=60_000).contains(&ms) {
            errors.push(format!("store.{field}: must be between 10 and 60000"));
        }
    }
    if store.audit_max_len < 1000 {
        errors.push("store.audit_max_len: must be at least 1000".into());
    }
    match target {
        Some(target) if errors.is_empty() => Ok(RedisSettings {
            target,
            key_prefix: prefix.clone(),
            connect_timeout: Duration::from_millis(store.connect_timeout_ms),
            response_timeout: Duration::from_millis(store.response_timeout_ms),
            audit_max_len: store.audit_max_len,
        }),
        _ => Err(ConfigError(errors)),
    }
}

fn providers(list: &[ProviderConfig], errors: &mut Problems) -> BTreeMap<ProviderId, Provider> {
    let mut out = BTreeMap::new();
    for (i, p) in list.iter().enumerate() {
        let at = |field: &str| format!("providers[{i}].{field}");
        let (id, name, scopes, spec) = match p {
            ProviderConfig::ApiKey {
                id,
                name,
                header,
                format,
                verify_url,
                scopes,
            } => {
                if axum::http::HeaderName::try_from(header.as_str()).is_err() {
                    errors.push(format!(
                        "{}: `{header}` is not a valid HTTP header name",
                        at("header")
                    ));
                }
                let format = format.as_deref().and_then(|f| match Regex::new(f) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        errors.push(format!("{}: not a valid regex: {e}", at("format")));
                        None
                    }
                });
                if let Some(u) = verify_url
                    && !matches!(u.scheme(), "http" | "https")
                {
                    errors.push(format!("{}: must be an http(s) URL", at("verify_url")));
                }
                let spec = ProviderSpec::ApiKey {
                    header: header.clone(),
                    format,
                    verify_url: verify_url.clone(),
                };
                (id, name.clone(), scopes.clone(), spec)
            }
            ProviderConfig::Terms {
                id,
                name,
                title,
                version,
                text,
                text_file,
            } => {
                let text = match (text, text_file) {
                    (Some(t), None) => t.clone(),
                    (None, Some(path)) => std::fs::read_to_string(path).unwrap_or_else(|e| {
                        errors.push(format!(
                            "{}: cannot read {}: {e}",
                            at("text_file"),
                            path.display()
                        ));
                        String::new()
                    }),
                    _ => {
                        errors.push(format!(
                            "{}: give exactly one of `text` and `text_file`",
                            at("text")
                        ));
                        String::new()
                    }
                };
                if version.trim().is_empty() {
                    errors.push(format!("{}: must not be empty", at("version")));
                }
                let text_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
                let spec = ProviderSpec::Terms {
                    title: title.clone(),
                    version: version.clone(),
                    text,
                    text_sha256,
                };
                (id, name.clone(), BTreeMap::new(), spec)
            }
            ProviderConfig::Oauth2(c) => {
                let spec =
                    ProviderSpec::Oauth2(Box::new(super::oauth::oauth_provider(c, &at, errors)));
                let name = super::oauth::display_name(c, &at, errors);
                (&c.id, name, c.scopes.clone(), spec)
            }
        };
        let Ok(pid) =
            ProviderId::parse(id.as_str()).map_err(|e| errors.push(format!("{}: {e}", at("id"))))
        else {
            continue;
        };
        let provider = Provider {
            id: pid.clone(),
            name,
            scope_descriptions: scopes,
            spec,
        };
        if out.insert(pid, provider).is_some() {
            errors.push(format!("{}: duplicate provider id `{id}`", at("id")));
        }
    }
    out
}

fn services(
    config: &Config,
    providers: &BTreeMap<ProviderId, Provider>,
    issuers: &[super::service_identity::TrustedIssuer],
    errors: &mut Problems,
) -> Vec<Arc<Service>> {
    let mut out: Vec<Arc<Service>> = Vec::new();
    for (i, s) in config.services.iter().enumerate() {
        let at = |field: &str| format!("services[{i}].{field}");
        let id =
            ServiceId::parse(s.id.as_str()).map_err(|e| errors.push(format!("{}: {e}", at("id"))));
        let token_sha256 = s.token_sha256.as_ref().map(|hex_digest| {
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(hex_digest, &mut digest).is_err() {
                errors.push(format!(
                    "{}: must be 64 hex digits (run `consent-broker service-token generate`)",
                    at("token_sha256")
                ));
            }
            digest
        });
        let identity = super::service_identity::service_identity(s, &at, issuers, errors);
        if token_sha256.is_none() && !identity.signs_in_by_jwt() {
            errors.push(format!(
                "{}: required unless the service signs in with a JWT (assertion_jwks_url, \
                 assertion_jwks or workload_issuer)",
                at("token_sha256")
            ));
        }
        let mut allow = BTreeMap::new();
        for (provider, scopes) in &s.allow {
            let field = at(&format!("allow.{provider}"));
            match ProviderId::parse(provider.as_str()) {
                Ok(p) if providers.contains_key(&p) => {
                    let parsed = scopes
                        .iter()
                        .filter_map(|sc| {
                            Scope::parse(sc.as_str())
                                .map_err(|e| errors.push(format!("{field}: `{sc}`: {e}")))
                                .ok()
                        })
                        .collect();
                    allow.insert(p, parsed);
                }
                _ => errors.push(format!(
                    "{field}: no provider with id `{provider}` is configured"
                )),
            }
        }
        if s.webhook_url.is_some() != s.webhook_secret.is_some() {
            errors.push(format!(
                "{}: webhook_url and webhook_secret go together",
                at("webhook_url")
            ));
        }
        if let Some(url) = &s.webhook_url {
            check_http_url(url, &at("webhook_url"), errors);
            if url.scheme() == "http" && !is_loopback(url) {
                errors.push(format!(
                    "{}: plain http is only allowed for loopback addresses",
                    at("webhook_url")
                ));
            }
        }
        let webhook_key = s.webhook_secret.as_ref().and_then(|secret| {
            crate::domain::WebhookKey::parse(secret.expose_secret())
                .map_err(|e| errors.push(format!("{}: {e}", at("webhook_secret"))))
                .ok()
        });
        let Ok(id) = id else { continue };
        if out.iter().any(|o| o.id == id) {
            errors.push(format!("{}: duplicate service id `{id}`", at("id")));
        }
        let digests = |svc: &Service| {
            svc.token_sha256
                .into_iter()
                .chain(svc.identity.previous_token.as_ref().map(|p| p.sha256))
                .collect::<Vec<_>>()
        };
        let mine: Vec<[u8; 32]> = token_sha256
            .into_iter()
            .chain(identity.previous_token.as_ref().map(|p| p.sha256))
            .collect();
        if mine.len() == 2 && mine[0] == mine[1] {
            errors.push(format!(
                "{}: the previous token must differ from the current one",
                at("previous_token_sha256")
            ));
        }
        if out
            .iter()
            .any(|o| digests(o).iter().any(|d| mine.contains(d)))
        {
            errors.push(format!(
                "{}: two services share one token",
                at("token_sha256")
            ));
        }
        out.push(Arc::new(Service {
            id,
            name: s.name.clone(),
            token_sha256,
            identity,
            allow,
            webhook_url: s.webhook_url.clone(),
            webhook_key,
        }));
    }
    out
}

fn oidc(o: &super::OidcConfig, errors: &mut Problems) -> OidcSettings {
    match Url::parse(&o.issuer) {
        Ok(url) => check_http_url(&url, "identity.oidc.issuer", errors),
        Err(e) => errors.push(format!("identity.oidc.issuer: not a URL: {e}")),
    }
    if !o.scopes.iter().any(|s| s == "openid") {
        errors.push("identity.oidc.scopes: must include `openid`".into());
    }
    let admin_claim = match (&o.admin_claim, &o.admin_value) {
        (Some(c), Some(v)) => Some((c.clone(), v.clone())),
        (None, None) => None,
        _ => {
            errors
                .push("identity.oidc.admin_claim: admin_claim and admin_value go together".into());
            None
        }
    };
    OidcSettings {
        issuer: o.issuer.clone(),
        client_id: o.client_id.clone(),
        client_secret: secret(
            &o.client_secret,
            &o.client_secret_file,
            "identity.oidc.client_secret",
            errors,
        ),
        display_name: o.display_name.clone(),
        subject_claim: o.subject_claim.clone(),
        scopes: o.scopes.clone(),
        admin_subjects: o.admin_subjects.clone(),
        admin_claim,
    }
}

#[cfg(test)]
mod tests {
    //! One test per rule that refuses a configuration, each asserting the line the operator
    //! reads; and one for a configuration that uses every kind of provider and is accepted.

    use super::*;

    const TOKEN_SHA256: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER_SHA256: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn config(toml: &str) -> Config {
        toml::from_str(toml).expect("the test's TOML parses")
    }

    /// The problems reported for `toml` outside `--dev`.
    fn problems(toml: &str) -> Vec<String> {
        match Settings::from_config(&config(toml), false) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    /// Asserts `toml` is refused with exactly this one problem.
    #[track_caller]
    fn assert_refused(toml: &str, problem: &str) {
        assert_eq!(problems(toml), vec![problem.to_owned()], "{toml}");
    }

    fn service(extra: &str) -> String {
        format!(
            "[[services]]\nid = \"svc-a\"\nname = \"A\"\ntoken_sha256 = \"{TOKEN_SHA256}\"\n{extra}\n"
        )
    }

    const API_KEY: &str = "[[providers]]\nkind = \"api_key\"\nid = \"acme\"\nname = \"Acme\"\n";
    const TERMS: &str =
        "[[providers]]\nkind = \"terms\"\nid = \"t\"\nname = \"T\"\ntitle = \"Terms\"\n";
    const OAUTH: &str = "[[providers]]\nkind = \"oauth2\"\nid = \"cloud\"\nname = \"Cloud\"\n";

    #[test]
    fn a_complete_configuration_is_accepted() {
        let toml = format!(
            r#"
[server]
bind = "0.0.0.0:8080"
public_url = "https://broker.example.com"
[identity.oidc]
issuer = "https://sso.example.com"
client_id = "broker"
client_secret = "s3cret"
admin_claim = "groups"
admin_value = "broker-admins"
{API_KEY}header = "X-Acme-Key"
format = "^acme_[a-z0-9]{{20}}$"
verify_url = "https://api.acme.example/whoami"
scopes = {{ read = "Read your projects" }}
{TERMS}version = "2026-11"
text = "You agree."
{OAUTH}issuer = "https://login.cloud.example"
client_id = "cid"
client_secret = "csecret"
resource = "https://api.cloud.example/"
scopes = {{ "api:read" = "Read" }}
{}"#,
            service(
                "webhook_url = \"https://svc.example.com/hook\"\n\
                 webhook_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
                 allow = { acme = [\"read\"], t = [], cloud = [\"api:read\"] }"
            )
        );
        let settings = Settings::from_config(&config(&toml), false).expect("accepted");
        assert_eq!(settings.providers.len(), 3);
        assert_eq!(settings.services.len(), 1);
    }

    #[test]
    fn a_public_url_with_a_query_is_refused() {
        assert_refused(
            "[server]\npublic_url = \"https://broker.example.com/?a=1\"",
            "server.public_url: must be an http(s) URL without query or fragment",
        );
    }

    #[test]
    fn a_plain_http_public_url_beyond_loopback_is_refused_unless_allowed() {
        let toml = "[server]\npublic_url = \"http://broker.example.com\"";
        assert_refused(
            toml,
            "server.public_url: plain http is only allowed for loopback or with --dev; consent \
             pages carry credentials and need https (server.allow_insecure_public_url overrides \
             this)",
        );
        assert!(Settings::from_config(&config(toml), true).is_ok(), "--dev");
        let allowed = format!("{toml}\nallow_insecure_public_url = true");
        assert_eq!(problems(&allowed), Vec::<String>::new());
    }

    #[test]
    fn listening_beyond_loopback_needs_a_public_url() {
        assert_refused(
            "[server]\nbind = \"0.0.0.0:8080\"",
            "server.public_url: required when the broker listens beyond loopback; set the https \
             URL users reach it at",
        );
    }

    #[test]
    fn connection_timeouts_and_caps_are_bounded_and_consistent() {
        assert_refused(
            "[server]\nheader_read_timeout_seconds = 301",
            "server.header_read_timeout_seconds: must be between 1 and 300",
        );
        assert_refused(
            "[server]\nbody_read_timeout_seconds = 601",
            "server.body_read_timeout_seconds: must be between 1 and 600",
        );
        assert_refused(
            "[server]\nheader_read_timeout_seconds = 5\nkeep_alive_timeout_seconds = 6",
            "server.keep_alive_timeout_seconds: must be between 1 and \
             server.header_read_timeout_seconds (the header timer also runs while a connection \
             waits for its next request)",
        );
        assert_refused(
            "[server]\nmax_connections = 1000001",
            "server.max_connections: must be between 1 and 1000000",
        );
        assert_refused(
            "[server]\nmax_connections = 10\nmax_connections_per_client = 11",
            "server.max_connections_per_client: must be between 1 and server.max_connections",
        );
    }

    #[test]
    fn rate_limits_must_be_above_zero() {
        assert_refused(
            "[limits]\napi_per_second = 0.0",
            "limits: rates must be above 0",
        );
    }

    #[test]
    fn the_client_ip_header_must_be_a_header_name() {
        assert_refused(
            "[limits]\nclient_ip_header = \"x forwarded\"",
            "limits.client_ip_header: `x forwarded` is not a header name",
        );
    }

    #[test]
    fn the_elicitation_ttl_is_bounded() {
        for ttl in [59, 86_401] {
            assert_refused(
                &format!("[elicitation]\nttl_seconds = {ttl}"),
                "elicitation.ttl_seconds: must be between 60 and 86400",
            );
        }
    }

    #[test]
    fn sessions_idle_at_least_a_minute() {
        assert_refused(
            "[identity]\nsession_idle_minutes = 0",
            "identity.session_idle_minutes: must be at least 1",
        );
    }

    #[test]
    fn the_shutdown_timeout_is_bounded() {
        assert_refused(
            "[server]\nshutdown_timeout_seconds = 0",
            "server.shutdown_timeout_seconds: must be between 1 and 600",
        );
    }

    #[test]
    fn the_metrics_token_digest_must_be_hex() {
        assert_refused(
            "[telemetry]\nmetrics_token_sha256 = \"nope\"",
            "telemetry.metrics_token_sha256: must be 64 hex digits (run `consent-broker \
             service-token generate`)",
        );
    }

    #[test]
    fn the_embedded_store_takes_no_redis_url() {
        assert_refused(
            "[store]\nurl = \"redis://localhost\"",
            "store.url: only for kind = \"redis\" (store.kind is \"embedded\")",
        );
    }

    #[test]
    fn a_redis_store_needs_a_url_and_no_path() {
        assert_refused(
            "[store]\nkind = \"redis\"",
            "store.url: kind = \"redis\" needs `url` (or `cluster_urls` for a cluster)",
        );
        assert_refused(
            "[store]\nkind = \"redis\"\nurl = \"redis://localhost\"\npath = \"/tmp/x.redb\"",
            "store.path: only for kind = \"embedded\" (store.kind is \"redis\")",
        );
    }

    #[test]
    fn a_redis_url_must_be_one_and_redacted_when_wrong() {
        assert_refused(
            "[store]\nkind = \"redis\"\nurl = \"http://user:pw@localhost\"",
            "store.url: must start with redis:// (or rediss:// for TLS) (http://user:REDACTED@localhost/)",
        );
        assert_refused(
            "[store]\nkind = \"redis\"\nurl = \"redis://a\"\ncluster_urls = [\"redis://b\"]",
            "store.cluster_urls: give either `url` or `cluster_urls`, not both",
        );
    }

    #[test]
    fn the_redis_key_prefix_has_no_braces() {
        assert_refused(
            "[store]\nkind = \"redis\"\nurl = \"redis://localhost\"\nkey_prefix = \"{cb}\"",
            "store.key_prefix: must be 1-64 visible characters without `{` or `}` (braces would \
             change the cluster slot of keys)",
        );
    }

    #[test]
    fn redis_timeouts_and_the_audit_length_are_bounded() {
        assert_refused(
            "[store]\nkind = \"redis\"\nurl = \"redis://localhost\"\nconnect_timeout_ms = 5",
            "store.connect_timeout_ms: must be between 10 and 60000",
        );
        assert_refused(
            "[store]\nkind = \"redis\"\nurl = \"redis://localhost\"\nresponse_timeout_ms = 60001",
            "store.response_timeout_ms: must be between 10 and 60000",
        );
        assert_refused(
            "[store]\nkind = \"redis\"\nurl = \"redis://localhost\"\naudit_max_len = 999",
            "store.audit_max_len: must be at least 1000",
        );
    }

    #[test]
    fn an_api_key_header_must_be_a_header_name() {
        assert_refused(
            &format!("{API_KEY}header = \"X Key\""),
            "providers[0].header: `X Key` is not a valid HTTP header name",
        );
    }

    #[test]
    fn an_api_key_format_must_be_a_regex() {
        let problems = problems(&format!("{API_KEY}format = \"(\""));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("providers[0].format: not a valid regex: "),
            "{problems:?}"
        );
    }

    #[test]
    fn an_api_key_verify_url_must_be_http() {
        assert_refused(
            &format!("{API_KEY}verify_url = \"ftp://acme.example\""),
            "providers[0].verify_url: must be an http(s) URL",
        );
    }

    #[test]
    fn terms_need_exactly_one_text_and_a_version() {
        assert_refused(
            &format!("{TERMS}version = \"1\""),
            "providers[0].text: give exactly one of `text` and `text_file`",
        );
        assert_refused(
            &format!("{TERMS}version = \" \"\ntext = \"t\""),
            "providers[0].version: must not be empty",
        );
    }

    #[test]
    fn an_unreadable_terms_file_is_named() {
        let problems = problems(&format!(
            "{TERMS}version = \"1\"\ntext_file = \"/nonexistent/terms.md\""
        ));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("providers[0].text_file: cannot read /nonexistent/terms.md: "),
            "{problems:?}"
        );
    }

    #[test]
    fn an_oauth_provider_needs_an_issuer_or_both_endpoints() {
        assert_refused(
            &format!(
                "{OAUTH}client_id = \"c\"\nclient_secret = \"s\"\n\
                 authorization_endpoint = \"https://as.example/authorize\""
            ),
            "providers[0].issuer: give `issuer` (discovery) or both `authorization_endpoint` and \
             `token_endpoint`",
        );
    }

    #[test]
    fn oauth_urls_are_http_without_fragment() {
        assert_refused(
            &format!(
                "{OAUTH}client_id = \"c\"\nclient_secret = \"s\"\nissuer = \"https://as.example\"\n\
                 resource = \"https://api.example/#x\""
            ),
            "providers[0].resource: must be an http(s) URL without fragment",
        );
    }

    #[test]
    fn an_oauth_client_needs_an_id_and_exactly_one_secret() {
        assert_refused(
            &format!(
                "{OAUTH}client_id = \"\"\nclient_secret = \"s\"\nissuer = \"https://as.example\""
            ),
            "providers[0].client_id: must not be empty",
        );
        assert_refused(
            &format!("{OAUTH}client_id = \"c\"\nissuer = \"https://as.example\""),
            "providers[0].client_secret: give exactly one of `providers[0].client_secret` and \
             `providers[0].client_secret_file`",
        );
    }

    #[test]
    fn provider_ids_are_valid_and_unique() {
        let problems =
            problems("[[providers]]\nkind = \"api_key\"\nid = \"Not An Id\"\nname = \"X\"");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("providers[0].id: "), "{problems:?}");
        assert_refused(
            &format!("{API_KEY}{API_KEY}"),
            "providers[1].id: duplicate provider id `acme`",
        );
    }

    #[test]
    fn a_service_token_digest_must_be_64_hex_digits() {
        assert_refused(
            "[[services]]\nid = \"svc-a\"\nname = \"A\"\ntoken_sha256 = \"abc\"",
            "services[0].token_sha256: must be 64 hex digits (run `consent-broker service-token \
             generate`)",
        );
    }

    #[test]
    fn a_policy_names_only_configured_providers_and_valid_scopes() {
        assert_refused(
            &service("allow = { nowhere = [] }"),
            "services[0].allow.nowhere: no provider with id `nowhere` is configured",
        );
        let problems = problems(&format!(
            "{API_KEY}{}",
            service("allow = { acme = [\"no pe\"] }")
        ));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("services[0].allow.acme: `no pe`: "),
            "{problems:?}"
        );
    }

    #[test]
    fn a_webhook_needs_its_secret_https_beyond_loopback_and_a_valid_secret() {
        assert_refused(
            &service("webhook_url = \"https://svc.example/hook\""),
            "services[0].webhook_url: webhook_url and webhook_secret go together",
        );
        assert_refused(
            &service(
                "webhook_url = \"http://svc.example/hook\"\n\
                 webhook_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
            ),
            "services[0].webhook_url: plain http is only allowed for loopback addresses",
        );
        assert_refused(
            &service("webhook_url = \"https://svc.example/hook\"\nwebhook_secret = \"not-whsec\""),
            "services[0].webhook_secret: must start with `whsec_` (Standard Webhooks format)",
        );
    }

    #[test]
    fn service_ids_and_tokens_are_unique() {
        assert_refused(
            &format!(
                "{}{}",
                service(""),
                service("").replace(TOKEN_SHA256, OTHER_SHA256)
            ),
            "services[1].id: duplicate service id `svc-a`",
        );
        assert_refused(
            &format!("{}{}", service(""), service("").replace("svc-a", "svc-b")),
            "services[1].token_sha256: two services share one token",
        );
        let problems = problems(&service("").replace("svc-a", "Not An Id"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("services[0].id: "), "{problems:?}");
    }

    #[test]
    fn enterprise_sign_in_is_checked() {
        let oidc = "[identity.oidc]\nclient_id = \"b\"\nclient_secret = \"s\"\n";
        let problems = problems(&format!("{oidc}issuer = \"not a url\""));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("identity.oidc.issuer: not a URL: "),
            "{problems:?}"
        );
        assert_refused(
            &format!("{oidc}issuer = \"https://sso.example\"\nscopes = [\"email\"]"),
            "identity.oidc.scopes: must include `openid`",
        );
        assert_refused(
            &format!("{oidc}issuer = \"https://sso.example\"\nadmin_claim = \"groups\""),
            "identity.oidc.admin_claim: admin_claim and admin_value go together",
        );
    }
}

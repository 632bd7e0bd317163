//! Typed configuration: defaults → TOML file → `BROKER_` environment → `BROKER_…_FILE`
//! secrets, in that order of precedence (later wins). Unknown keys are errors everywhere.
//! `settings` turns the raw values into validated runtime settings; `dev` supplies the
//! `--dev` examples and the generated development keyring.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::upstream::{
    BodyFormat, ClientAuth, GrantedScopes, RevocationAuth, RevocationMethod, RevokedToken,
    ScopeSeparator,
};

pub mod branding;
pub mod dev;
pub mod keyring;
mod oauth;
mod offboarding;
pub mod policy;
pub mod presets;
mod problems;
pub use problems::is_loopback;
pub mod service_identity;
pub mod settings;

#[cfg(test)]
mod doc_check;

pub use presets::Variable;
pub use settings::{Provider, ProviderSpec, Service, Settings};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub keyring: KeyringConfig,
    pub identity: IdentityConfig,
    pub elicitation: ElicitationConfig,
    pub tokens: TokensConfig,
    pub limits: LimitsConfig,
    pub services: Vec<ServiceConfig>,
    pub providers: Vec<ProviderConfig>,
    /// Who may grant which scopes, which wait for an administrator, how long grants live.
    pub policies: Vec<PolicyRuleConfig>,
    pub governance: GovernanceConfig,
    /// The organisation's name, logo, colour and links on every page.
    pub branding: BrandingConfig,
    pub telemetry: TelemetryConfig,
    /// The SCIM 2.0 endpoint an IdP deprovisions users through. Absent: no endpoint.
    pub scim: Option<ScimConfig>,
    /// The Shared Signals (SET push) receiver. Absent: no receiver.
    pub shared_signals: Option<SharedSignalsConfig>,
    /// Issuers whose JWTs prove a user (`subject_token`) or a workload (service identity).
    pub trusted_issuers: Vec<TrustedIssuerConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (printed when ready).
    pub bind: SocketAddr,
    /// The URL users reach the broker at; consent links are built from it. Defaults to
    /// `http://` + the bound address, which only suits local use.
    pub public_url: Option<Url>,
    pub data_dir: PathBuf,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// After SIGTERM, in-flight requests get this long to finish (keep it below the
    /// orchestrator's grace period, e.g. Kubernetes' terminationGracePeriodSeconds).
    pub shutdown_timeout_seconds: u32,
    /// Allow a plain-http `public_url` on a non-loopback host outside `--dev` (e.g. a
    /// closed test network). Consent pages carry credentials: leave this off.
    pub allow_insecure_public_url: bool,
    /// A request's headers must arrive whole within this long of the connection becoming
    /// ready for a request; slower connections are closed.
    pub header_read_timeout_seconds: u32,
    /// A request's body must arrive whole within this long of its headers; slower ones are
    /// answered 408 and the connection closed.
    pub body_read_timeout_seconds: u32,
    /// A kept-alive connection with no request in flight is closed after this long.
    pub keep_alive_timeout_seconds: u32,
    /// Most client connections open at once; one more is answered 503 and closed.
    pub max_connections: u32,
    /// Most connections open at once from one peer address (a reverse proxy is one peer).
    pub max_connections_per_client: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            max_body_bytes: 64 * 1024,
            shutdown_timeout_seconds: 20,
            allow_insecure_public_url: false,
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            keep_alive_timeout_seconds: 5,
            max_connections: 1024,
            max_connections_per_client: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    #[default]
    Embedded,
    Redis,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// Embedded database file; defaults to `<data_dir>/broker.redb`.
    pub path: Option<PathBuf>,
    /// Redis server (`redis://` or `rediss://` for TLS); may carry a password, so it is
    /// never printed.
    pub url: Option<String>,
    /// Redis Cluster seed nodes, instead of `url`.
    pub cluster_urls: Vec<String>,
    /// Prefix of every Redis key, so brokers can share a Redis with other users.
    pub key_prefix: String,
    /// How long to wait for a Redis connection before answering "unavailable".
    pub connect_timeout_ms: u64,
    /// How long to wait for a Redis answer before answering "unavailable".
    pub response_timeout_ms: u64,
    /// Approximate length the Redis audit stream is trimmed to.
    pub audit_max_len: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::default(),
            path: None,
            url: None,
            cluster_urls: Vec::new(),
            key_prefix: "cb:".into(),
            connect_timeout_ms: 1000,
            response_timeout_ms: 2000,
            audit_max_len: 1_000_000,
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |u: &String| settings::RedisUrl::redact(u);
        f.debug_struct("StoreConfig")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("url", &self.url.as_ref().map(redacted))
            .field(
                "cluster_urls",
                &self.cluster_urls.iter().map(redacted).collect::<Vec<_>>(),
            )
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("audit_max_len", &self.audit_max_len)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyringConfig {
    /// Id of the key that seals new grants.
    pub active: Option<String>,
    /// Key id → base64 of 32 bytes. Prefer `file` or `BROKER_KEYRING__KEYS__<ID>_FILE`.
    pub keys: BTreeMap<String, SecretString>,
    /// A keyring file (`active = "…"` and a `[keys]` table), mode 0600.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Sign-in sessions end after this long without a request.
    pub session_idle_minutes: u32,
    /// Enterprise sign-in (OpenID Connect). Without it only `--dev` sign-in exists.
    pub oidc: Option<OidcConfig>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 8 * 60,
            oidc: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The IdP's issuer, exactly as its discovery document states it (compared verbatim,
    /// so keep or omit the trailing slash as the IdP does).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// Read the client secret from this file instead.
    pub client_secret_file: Option<PathBuf>,
    /// Shown on the sign-in button.
    #[serde(default = "default_idp_name")]
    pub display_name: String,
    /// Which ID-token claim is the subject. It must be the identity MCP services send.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// Subjects who are admins.
    #[serde(default)]
    pub admin_subjects: Vec<String>,
    /// A claim (string or array of strings) that makes an admin when it holds `admin_value`.
    pub admin_claim: Option<String>,
    pub admin_value: Option<String>,
}

fn default_idp_name() -> String {
    "single sign-on".into()
}

fn default_subject_claim() -> String {
    "sub".into()
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElicitationConfig {
    /// How long a consent link stays usable.
    pub ttl_seconds: u32,
}

impl Default for ElicitationConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: 15 * 60,
        }
    }
}

/// `[branding]`: what every page shows of the organisation that runs the broker
/// (validated in [`branding`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingConfig {
    /// Shown in the header, the footer, page titles and the pages' own sentences.
    pub product_name: Option<String>,
    /// An inline image (`data:image/png;base64,…`, also jpeg, webp, svg+xml): no remote URL.
    pub logo_url: Option<String>,
    /// `#rrggbb`, readable (WCAG AA) as white text on it and as link text on the page.
    pub accent_colour: Option<String>,
    /// Where users get help; a link in every page's footer.
    pub support_url: Option<Url>,
    /// The privacy notice; a link in every page's footer.
    pub privacy_url: Option<Url>,
    /// The IANA time zone pages show times in (with UTC beside them). Default: UTC.
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// How long a consented request may wait for an administrator's approval.
    pub approval_window_hours: u32,
    /// The console's review lists: grants expiring within this many days…
    pub review_expiring_days: u32,
    /// …and grants not redeemed for this many days.
    pub review_unused_days: u32,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            approval_window_hours: 72,
            review_expiring_days: 14,
            review_unused_days: 90,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Sustained `/v1` requests per second, per service.
    pub api_per_second: f64,
    /// Requests a service may send at once before the rate applies.
    pub api_burst: u32,
    /// Sustained browser form posts (sign-in, approve, deny, key) per minute, per address.
    pub browser_posts_per_minute: f64,
    pub browser_posts_burst: u32,
    /// Sustained `/v1` requests with a wrong service token per minute, per address; beyond
    /// it (and the burst) a wrong token is answered 429 instead of 401.
    pub failed_auth_per_minute: f64,
    pub failed_auth_burst: u32,
    /// Behind a reverse proxy: the header it puts the client address in (its rightmost
    /// entry is used). Unset: the connection's peer address.
    pub client_ip_header: Option<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            api_per_second: 200.0,
            api_burst: 400,
            browser_posts_per_minute: 60.0,
            browser_posts_burst: 20,
            failed_auth_per_minute: 10.0,
            failed_auth_burst: 20,
            client_ip_header: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Refresh an upstream access token at redemption when it expires within this many
    /// seconds (at most half its lifetime).
    pub refresh_skew_seconds: u32,
    /// Attempts per token when revoking upstream (RFC 7009).
    pub revocation_attempts: u32,
    /// Longest wait for any upstream HTTP answer (token, discovery, revocation, key check).
    pub upstream_timeout_seconds: u32,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            refresh_skew_seconds: 60,
            revocation_attempts: 3,
            upstream_timeout_seconds: 10,
        }
    }
}

/// One `[[policies]]` entry as written (`policy` validates and applies it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRuleConfig {
    pub provider: String,
    pub service: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claim values that admit a user (read from `claim`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The ID-token claim `groups` is read from.
    #[serde(default = "default_claim")]
    pub claim: String,
    /// Subjects admitted by name.
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub approval: crate::domain::policy::Approval,
    pub max_lifetime_days: Option<u32>,
}

fn default_claim() -> String {
    "groups".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub id: String,
    pub name: String,
    /// SHA-256 (hex) of the service's bearer token: `consent-broker service-token generate`.
    /// Optional when the service authenticates by JWT (assertion or workload identity).
    pub token_sha256: Option<String>,
    /// The token being rotated out: its SHA-256 (hex), accepted until
    /// `previous_token_valid_until` (RFC 3339), never after.
    pub previous_token_sha256: Option<String>,
    pub previous_token_valid_until: Option<String>,
    /// Provider id → scopes this service may ask for.
    #[serde(default)]
    pub allow: BTreeMap<String, Vec<String>>,
    pub webhook_url: Option<Url>,
    pub webhook_secret: Option<SecretString>,
    /// Whether `POST /v1/elicitations` must carry the user's access token (`subject_token`).
    #[serde(default)]
    pub subject_proof: SubjectProof,
    /// The MCP service's resource URL: the audience a `subject_token` must carry.
    pub resource: Option<String>,
    /// RFC 7523 client assertions: the JWK Set (URL) the service signs them with.
    pub assertion_jwks_url: Option<Url>,
    /// RFC 7523 client assertions: the JWK Set, inline (JSON).
    pub assertion_jwks: Option<String>,
    /// Workload identity: the `id` of a `trusted_issuers` entry of kind `workloads`.
    pub workload_issuer: Option<String>,
    /// Workload identity: the token's `sub` that is this service (e.g.
    /// `system:serviceaccount:ns:name`, `spiffe://trust-domain/path`).
    pub workload_subject: Option<String>,
}

/// `services[].subject_proof`: whether a create must prove its user with a verified token.
pub use crate::domain::SubjectProof;

/// `[[trusted_issuers]]`: an issuer of JWTs the broker verifies by its JWK Set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    /// What services name it by (`services[].workload_issuer`).
    pub id: String,
    /// Compared verbatim with each token's `iss`.
    pub issuer: String,
    /// Where the issuer publishes its signing keys (a JWK Set).
    pub jwks_url: Url,
    /// What its tokens prove: `users` (subject tokens) or `workloads` (service identity).
    pub kind: IssuerKind,
    /// The JWS algorithms accepted (asymmetric only).
    #[serde(default = "default_issuer_algorithms")]
    pub algorithms: Vec<String>,
    /// Which claim is the subject (`users`: the broker subject; `workloads`: the workload).
    #[serde(default = "default_issuer_subject_claim")]
    pub subject_claim: String,
}

fn default_issuer_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}

fn default_issuer_subject_claim() -> String {
    "sub".into()
}

/// `trusted_issuers[].kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuerKind {
    /// An IdP whose access tokens prove the user (`subject_token`).
    Users,
    /// A Kubernetes cluster or SPIFFE trust domain whose tokens prove a workload.
    Workloads,
}

#[derive(Debug, Clone, Deserialize)]
// Read once at start-up; the size difference between kinds does not matter.
#[allow(clippy::large_enum_variant)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderConfig {
    ApiKey {
        id: String,
        name: String,
        /// Header the key is sent in upstream (returned with the key at redemption).
        #[serde(default = "default_api_key_header")]
        header: String,
        /// A regex the key must match before it is accepted.
        format: Option<String>,
        /// Called with the key in `header`; a 2xx answer means the key works.
        verify_url: Option<Url>,
        #[serde(default)]
        scopes: BTreeMap<String, String>,
    },
    Terms {
        id: String,
        name: String,
        title: String,
        version: String,
        text: Option<String>,
        text_file: Option<PathBuf>,
    },
    Oauth2(OAuth2Config),
}

/// An `oauth2` provider as written; `oauth` validates it (and fills it from its preset).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// A compiled-in provider to start from (`consent-broker providers` lists them).
    pub preset: Option<String>,
    /// The directory tenant, for presets that need one (Entra).
    pub tenant: Option<String>,
    /// The host name, for presets that need one (Salesforce My Domain, GitLab).
    pub domain: Option<String>,
    /// Authorization server issuer; endpoints come from RFC 8414 / OIDC discovery.
    pub issuer: Option<Url>,
    /// Or the endpoints, given explicitly (then `issuer` is optional and only checked
    /// against an `iss` in the callback).
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    /// RFC 7009 endpoint, or the URL of the preset's own revocation request.
    pub revocation_endpoint: Option<Url>,
    #[serde(default)]
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    /// RFC 8707 resource indicator sent on the authorization and token requests.
    pub resource: Option<Url>,
    #[serde(default)]
    pub scopes: BTreeMap<String, String>,
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    pub scope_param: Option<String>,
    pub scope_separator: Option<ScopeSeparator>,
    pub extra_scopes: Option<Vec<String>>,
    pub granted_scopes: Option<GrantedScopes>,
    pub client_auth: Option<ClientAuth>,
    pub token_request_format: Option<BodyFormat>,
    #[serde(default)]
    pub token_headers: BTreeMap<String, String>,
    pub token_path: Option<String>,
    pub refresh_token_path: Option<String>,
    pub metadata: Option<Vec<String>>,
    pub error_field: Option<String>,
    pub ok_field: Option<String>,
    pub reauthorize_errors: Option<Vec<String>>,
    pub default_token_lifetime_seconds: Option<u32>,
    pub revocation: Option<RevocationConfig>,
}

/// `[providers.revocation]`: how the provider's tokens are revoked.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum RevocationConfig {
    Rfc7009,
    None,
    Request {
        method: RevocationMethod,
        url: String,
        auth: RevocationAuth,
        token: RevokedToken,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        body_format: Option<BodyFormat>,
        #[serde(default)]
        body: BTreeMap<String, String>,
        done_statuses: Vec<u16>,
        #[serde(default)]
        gone_statuses: Vec<u16>,
        #[serde(default)]
        gone_errors: Vec<String>,
    },
}

fn default_api_key_header() -> String {
    "Authorization".into()
}

/// Every problem found while loading or validating, one line each.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl ConfigError {
    pub fn one(msg: impl Into<String>) -> Self {
        Self(vec![msg.into()])
    }
}

impl Config {
    /// Loads the layered configuration. `file`, when given, must exist.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::one(format!(
                    "config file {} not found",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("BROKER_")
                .filter(|k| !k.as_str().to_ascii_lowercase().ends_with("_file"))
                .split("__"),
        );
        for (key, value) in file_secrets()? {
            figment = figment.merge((key, value));
        }
        figment
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))
    }
}

/// `BROKER_A__B_FILE=/path` sets `a.b` to the file's contents (trailing newline trimmed).
fn file_secrets() -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (name, path) in std::env::vars() {
        let Some(rest) = name.strip_prefix("BROKER_") else {
            continue;
        };
        let Some(key) = rest.strip_suffix("_FILE") else {
            continue;
        };
        let key = key.to_ascii_lowercase().replace("__", ".");
        let value = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::one(format!("{name}: cannot read {path}: {e}")))?;
        out.push((key, value.trim_end_matches(['\r', '\n']).to_owned()));
    }
    Ok(out)
}

/// `[scim]`: the IdP's provisioning client that may deprovision users at `/scim/v2/Users`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// SHA-256 (hex) of the bearer token the IdP sends: `consent-broker service-token
    /// generate` makes one.
    pub token_sha256: String,
    /// Names the client in the audit trail (`scim:<client_name>`), e.g. `okta` or `entra`.
    #[serde(default = "default_scim_client")]
    pub client_name: String,
}

fn default_scim_client() -> String {
    "idp".into()
}

/// `[shared_signals]`: the transmitter whose Security Event Tokens (RFC 8417, pushed as in
/// RFC 8935 to `/ssf/events`) may offboard users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedSignalsConfig {
    /// The transmitter's issuer, compared verbatim with each SET's `iss`.
    pub issuer: String,
    /// Where the transmitter publishes its signing keys (a JWK Set).
    pub jwks_url: Url,
    /// The audience each SET must name in `aud` (as set in the stream's configuration).
    pub audience: String,
    /// Which subject identifier (RFC 9493) is the broker's subject: `iss_sub`, `email`
    /// or `opaque`. Subjects in other formats change nothing.
    pub subject_format: SubjectFormat,
    /// For `iss_sub`: the `iss` the subject must carry. Defaults to `issuer`.
    pub subject_issuer: Option<String>,
    /// A SET whose `iat` is older than this is refused; its `jti` is remembered this long.
    #[serde(default = "default_set_max_age")]
    pub max_age_seconds: u32,
    /// SHA-256 (hex) of a bearer token the transmitter must also send (the stream's
    /// `authorization_header`). Absent: the signature alone authenticates.
    pub token_sha256: Option<String>,
}

fn default_set_max_age() -> u32 {
    24 * 3600
}

/// The RFC 9493 subject identifier format that names a broker subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectFormat {
    /// `{"format":"iss_sub","iss":…,"sub":…}`: `sub` is the subject (with `iss` checked).
    IssSub,
    /// `{"format":"email","email":…}`: the address is the subject.
    Email,
    /// `{"format":"opaque","id":…}`: the id is the subject.
    Opaque,
}

/// How log lines are written (`[telemetry] log_format`); `telemetry::init` applies it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[telemetry]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// When set, `/metrics` requires `Authorization: Bearer <token>` whose SHA-256 (hex)
    /// this is. Without it `/metrics` is open: restrict it at the network.
    pub metrics_token_sha256: Option<String>,
}

impl TelemetryConfig {
    /// The metrics token digest, or the problem with it.
    pub fn metrics_token(&self) -> Result<Option<[u8; 32]>, String> {
        let Some(hex_digest) = &self.metrics_token_sha256 else {
            return Ok(None);
        };
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest)
            .map(|()| Some(digest))
            .map_err(|_| {
                "telemetry.metrics_token_sha256: must be 64 hex digits \
                 (run `consent-broker service-token generate`)"
                    .into()
            })
    }
}

//! How a grant and an audit event read on a page: names from the config instead of ids,
//! times in the organisation's zone with UTC beside them (the audit log's in UTC alone, as
//! logs are), never the sealed secret or the handle digest (only metadata is copied).

use crate::config::Settings;
use crate::domain::{
    Actor, AuditEvent, Grant, GrantStatus, Outcome, ProviderKind, Timestamp, UpstreamRevocation,
};

pub struct GrantView {
    pub id: String,
    pub subject: String,
    pub service_id: String,
    pub service_name: String,
    pub provider_id: String,
    pub provider_name: String,
    pub kind: String,
    /// The kind and status, typed (the words come from the page's language).
    pub provider_kind: ProviderKind,
    pub grant_status: GrantStatus,
    /// When a service last used it, if ever.
    pub used: Option<super::when::When>,
    pub scopes: Vec<String>,
    /// `active`, `revoked` or `needs_reauth` (for CSS and tests).
    pub status: String,
    /// The status in words.
    pub status_label: String,
    pub created: super::when::When,
    pub last_used: String,
    pub use_count: u64,
    pub revoked: Option<String>,
    pub terms_version: Option<String>,
    pub key_id: String,
    pub revocable: bool,
    /// What revoking at the provider achieved, in words.
    pub upstream: Option<&'static str>,
    /// The provider's non-secret details (path, value).
    pub metadata: Vec<(String, String)>,
    /// When the consent lapses under policy, if it does.
    pub expires: Option<String>,
}

/// What pages call services and providers: their configured names, and the names of
/// services registered at run time (read once per page).
pub struct Names<'a> {
    settings: &'a Settings,
    registered: std::collections::BTreeMap<crate::domain::ServiceId, String>,
}

impl<'a> Names<'a> {
    pub async fn of(broker: &'a crate::broker::Broker) -> Result<Self, crate::Error> {
        let registered = broker
            .registered_services()
            .await?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect();
        Ok(Self {
            settings: broker.settings(),
            registered,
        })
    }

    /// The service's name, else its id.
    pub fn service(&self, id: &crate::domain::ServiceId) -> String {
        self.settings
            .service(id)
            .map(|s| s.name.clone())
            .or_else(|| self.registered.get(id).cloned())
            .unwrap_or_else(|| id.to_string())
    }
}

impl GrantView {
    pub fn new(names: &Names<'_>, g: &Grant) -> Self {
        let settings = names.settings;
        let tz = &settings.branding.time_zone;
        let format_time = |t| super::when::format_time(t, tz);
        Self {
            id: g.id.to_string(),
            subject: g.subject.to_string(),
            service_id: g.service.to_string(),
            service_name: names.service(&g.service),
            provider_id: g.provider.to_string(),
            provider_name: settings
                .provider(&g.provider)
                .map_or_else(|| g.provider.to_string(), |p| p.name.clone()),
            kind: kind_label(g.kind.as_str()).to_owned(),
            provider_kind: g.kind,
            grant_status: g.status,
            used: g.last_used_at.map(|t| super::when::When::new(t, tz)),
            scopes: g.scopes.iter().map(|s| s.to_string()).collect(),
            status: g.status.as_str().to_owned(),
            status_label: status_label(g.status).to_owned(),
            created: super::when::When::new(g.created_at, tz),
            last_used: g
                .last_used_at
                .map_or_else(|| "never".to_owned(), format_time),
            use_count: g.use_count,
            revoked: g.revoked_at.map(format_time),
            expires: g.expires_at.map(format_time),
            terms_version: g.terms_version.clone(),
            key_id: g.sealed.key_id.to_string(),
            revocable: g.status != GrantStatus::Revoked,
            upstream: g.upstream_revocation.map(upstream_label),
            metadata: g
                .metadata
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k.clone(), s.clone()),
                    other => (k.clone(), other.to_string()),
                })
                .collect(),
        }
    }
}

pub fn status_label(s: GrantStatus) -> &'static str {
    match s {
        GrantStatus::Active => "Active",
        GrantStatus::Revoked => "Revoked",
        GrantStatus::NeedsReauth => "Needs sign-in again",
        GrantStatus::AwaitingApproval => "Waiting for an administrator",
    }
}

fn upstream_label(u: UpstreamRevocation) -> &'static str {
    match u {
        UpstreamRevocation::Revoked => "Revoked at the provider.",
        UpstreamRevocation::AlreadyRevoked => "The provider said the tokens were already revoked.",
        UpstreamRevocation::Failed => {
            "Revoking at the provider failed: a token already handed out may work there until it \
             expires. Revoke again to retry."
        }
        UpstreamRevocation::NotSupported => {
            "The provider offers no revocation: a token already handed out works there until it \
             expires."
        }
    }
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "oauth2" => "OAuth 2",
        "api_key" => "API key",
        _ => "Terms",
    }
}

pub struct EventView {
    pub at: String,
    pub actor_kind: String,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub subject: String,
    pub service: String,
    pub provider: String,
    pub grant: Option<String>,
    pub reason: String,
}

impl EventView {
    pub fn new(e: &AuditEvent) -> Self {
        let (actor_kind, actor) = match &e.actor {
            Actor::Service(s) => ("service", s.to_string()),
            Actor::User(s) => ("user", s.to_string()),
            Actor::Admin(s) => ("admin", s.to_string()),
            Actor::Idp(c) => ("idp", c.to_string()),
            Actor::System => ("system", String::new()),
        };
        Self {
            at: format_time_seconds(e.at),
            actor_kind: actor_kind.to_owned(),
            actor,
            action: e.action.to_string(),
            outcome: match e.outcome {
                Outcome::Success => "success",
                Outcome::Denied => "denied",
                Outcome::Failure => "failure",
            }
            .to_owned(),
            subject: e
                .subject
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            service: e
                .service
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            provider: e
                .provider
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            grant: e.grant.as_ref().map(ToString::to_string),
            reason: e
                .reason
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

/// `t` in words, in UTC (for pages without the organisation's zone at hand; the others use
/// [`super::when::format_time`]).
pub fn format_time(t: Timestamp) -> String {
    super::when::format_time(t, &jiff::tz::TimeZone::UTC)
}

fn format_time_seconds(t: Timestamp) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

//! The audit log in the console: filtered pages (newest first) and a JSON-lines export of
//! the same filter. The export itself is audited (`audit_exported`, by the admin, inside
//! `Broker::export_audit`). Both
//! examine a bounded number of events per store call (see `store::admin`); the export
//! stops after [`EXPORT_MAX`] events and says so in the `X-Export-Truncated` header.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Choice, provider_choices, service_choices};
use crate::Error;
use crate::broker::Broker;
use crate::domain::{GrantId, Outcome, ProviderId, ServiceId, Subject};
use crate::http::extract::AdminUser;
use crate::http::pages::grant_view::EventView;
use crate::http::render::{Chrome, PageError, chrome};
use crate::store::admin::{AuditCursor, AuditFilter};

const PAGE_SIZE: usize = 100;
/// Events in one export at most.
const EXPORT_MAX: usize = 100_000;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    grant: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    before: String,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        AuditFilter {
            actor_kind: text(&self.actor)
                .filter(|k| ["service", "user", "admin", "idp", "system"].contains(&k.as_str())),
            action: text(&self.action).map(|a| crate::domain::AuditAction::parse(&a)),
            outcome: match self.outcome.as_str() {
                "success" => Some(Outcome::Success),
                "denied" => Some(Outcome::Denied),
                "failure" => Some(Outcome::Failure),
                _ => None,
            },
            subject: Subject::parse(self.user.trim()).ok(),
            grant: GrantId::parse(self.grant.trim()).ok(),
            provider: ProviderId::parse(self.provider.as_str()).ok(),
            service: ServiceId::parse(self.service.as_str()).ok(),
        }
    }

    /// The filter as a query string, optionally with a position.
    fn query_string(&self, before: Option<&str>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("user", &self.user),
            ("grant", &self.grant),
            ("provider", &self.provider),
            ("service", &self.service),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        if let Some(b) = before {
            s.append_pair("before", b);
        }
        s.finish()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditLogPage {
    pub chrome: Chrome,
    pub title: String,
    pub section: &'static str,
    pub q: AuditQuery,
    pub providers: Vec<Choice>,
    pub services: Vec<Choice>,
    pub events: Vec<EventView>,
    pub next: Option<String>,
    pub first: Option<String>,
    pub partial: bool,
    pub export: String,
}

pub async fn log(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<AuditLogPage, PageError> {
    let Query(q) = query.map_err(Error::from)?;
    let before = Some(AuditCursor(q.before.clone())).filter(|c| !c.0.is_empty());
    let page = broker
        .audit_page(&q.filter(), before.as_ref(), PAGE_SIZE)
        .await?;
    Ok(AuditLogPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: "Audit log".into(),
        section: "audit",
        providers: provider_choices(&broker),
        services: service_choices(&broker).await?,
        partial: page.next.is_some() && page.events.len() < PAGE_SIZE,
        next: page.next.map(|c| q.query_string(Some(&c.0))),
        first: before.map(|_| q.query_string(None)),
        export: q.query_string(None),
        events: page.events.iter().map(EventView::new).collect(),
        q,
    })
}

pub async fn export(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.map_err(Error::from)?;
    let export = broker
        .export_audit(&admin.user.subject, &q.filter(), EXPORT_MAX)
        .await?;
    let mut body = String::new();
    for e in &export.events {
        let line =
            serde_json::to_string(e).map_err(|e| Error::Internal(format!("audit export: {e}")))?;
        body.push_str(&line);
        body.push('\n');
    }
    let truncated = export.truncated;
    Ok((
        [
            (header::CONTENT_TYPE, "application/jsonl; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.jsonl\"",
            ),
        ],
        [(
            "x-export-truncated",
            if truncated { "true" } else { "false" },
        )],
        body,
    )
        .into_response())
}

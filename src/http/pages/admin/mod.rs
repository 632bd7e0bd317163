//! The admin console under `/admin`. Every handler takes [`AdminUser`], so none runs for
//! anyone but a signed-in admin; a signed-in non-admin gets a 403 page on every `/admin`
//! path (including unknown ones), and a visitor is sent to sign in. Every state change is
//! a POST with a CSRF token behind a confirmation page, goes through the broker's
//! revocation use cases, and is audited with `Actor::Admin`. Pages show grant metadata
//! only, never a secret.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use super::flash;
use super::grant_view::EventView;
use crate::broker::Broker;
use crate::domain::GrantStatus;
use crate::http::extract::AdminUser;
use crate::http::render::{Chrome, MessagePage, PageError, Tone, chrome};
use crate::store::admin::AuditFilter;

mod audit;
mod bulk;
mod governance;
mod grants;
mod services;

pub fn router() -> Router<Arc<Broker>> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/grants", get(grants::list))
        .route("/admin/grants/{id}", get(grants::detail))
        .route("/admin/grants/{id}/revoke", get(grants::confirm_revoke))
        .route("/admin/users/revoke", get(bulk::confirm_user))
        .route("/admin/providers/{id}/revoke", get(bulk::confirm_provider))
        .route("/admin/governance", get(governance::page))
        .route(
            "/admin/approvals/{id}/approve",
            get(governance::confirm_approve),
        )
        .route(
            "/admin/approvals/{id}/refuse",
            get(governance::confirm_refuse),
        )
        .route(
            "/admin/review/revoke-unused",
            get(governance::confirm_revoke_unused),
        )
        .route("/admin/services", get(services::list))
        .route("/admin/services/{id}", get(services::detail))
        .route(
            "/admin/services/{id}/suspend",
            get(services::confirm_suspend),
        )
        .route("/admin/services/{id}/delete", get(services::confirm_delete))
        .route("/admin/audit", get(audit::log))
        .route("/admin/audit.jsonl", get(audit::export))
        .route("/admin/{*rest}", get(unknown).post(unknown))
}

/// The console's forms, each behind its confirmation page (see `pages::forms`).
pub(super) fn forms() -> [(&'static str, MethodRouter<Arc<Broker>>); 14] {
    [
        ("/admin/services/register", post(services::register)),
        ("/admin/services/initial-tokens", post(services::mint)),
        ("/admin/services/{id}/approve", post(services::approve)),
        ("/admin/services/{id}/edit", post(services::edit)),
        ("/admin/services/{id}/suspend", post(services::suspend)),
        ("/admin/services/{id}/resume", post(services::resume)),
        ("/admin/services/{id}/rotate", post(services::rotate)),
        ("/admin/services/{id}/delete", post(services::delete)),
        ("/admin/approvals/{id}/approve", post(governance::approve)),
        ("/admin/approvals/{id}/refuse", post(governance::refuse)),
        (
            "/admin/review/revoke-unused",
            post(governance::revoke_unused),
        ),
        ("/admin/grants/{id}/revoke", post(grants::revoke)),
        ("/admin/users/revoke", post(bulk::revoke_user)),
        ("/admin/providers/{id}/revoke", post(bulk::revoke_provider)),
    ]
}

/// A (name, id) choice for a filter's select box.
pub struct Choice {
    pub id: String,
    pub name: String,
}

fn provider_choices(broker: &Broker) -> Vec<Choice> {
    broker
        .settings()
        .providers
        .values()
        .map(|p| Choice {
            id: p.id.to_string(),
            name: p.name.clone(),
        })
        .collect()
}

/// Every service, declared in config or registered at run time.
async fn service_choices(broker: &Broker) -> Result<Vec<Choice>, crate::Error> {
    let configured = broker.settings().services.iter().map(|s| Choice {
        id: s.id.to_string(),
        name: s.name.clone(),
    });
    let registered = broker.registered_services().await?;
    Ok(configured
        .chain(registered.into_iter().map(|r| Choice {
            id: r.id.to_string(),
            name: r.name,
        }))
        .collect())
}

/// One row of an overview table: grants of one provider or service by status.
pub struct CountRow {
    pub id: String,
    pub name: String,
    pub active: u64,
    pub needs_reauth: u64,
    pub revoked: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
pub struct OverviewPage {
    pub chrome: Chrome,
    pub title: String,
    pub section: &'static str,
    pub flash: Option<String>,
    pub active: u64,
    pub needs_reauth: u64,
    pub revoked: u64,
    pub awaiting_approval: u64,
    pub by_provider: Vec<CountRow>,
    pub by_service: Vec<CountRow>,
    pub recent: Vec<EventView>,
}

async fn overview(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
) -> Result<OverviewPage, PageError> {
    let counts = broker.count_grants().await?;
    let mut by_provider: BTreeMap<String, CountRow> = provider_choices(&broker)
        .into_iter()
        .map(|c| (c.id.clone(), row(c)))
        .collect();
    let mut by_service: BTreeMap<String, CountRow> = service_choices(&broker)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), row(c)))
        .collect();
    let (mut active, mut needs_reauth, mut revoked, mut awaiting_approval) = (0, 0, 0, 0);
    for c in &counts {
        let total = match c.status {
            GrantStatus::Active => &mut active,
            GrantStatus::NeedsReauth => &mut needs_reauth,
            GrantStatus::Revoked => &mut revoked,
            GrantStatus::AwaitingApproval => &mut awaiting_approval,
        };
        *total += c.count;
        for (table, id) in [
            (&mut by_provider, c.provider.to_string()),
            (&mut by_service, c.service.to_string()),
        ] {
            let r = table.entry(id.clone()).or_insert_with(|| {
                row(Choice {
                    name: id.clone(),
                    id,
                })
            });
            match c.status {
                GrantStatus::Active => r.active += c.count,
                GrantStatus::NeedsReauth => r.needs_reauth += c.count,
                GrantStatus::Revoked => r.revoked += c.count,
                // Shown as the approval queue's length, not per row.
                GrantStatus::AwaitingApproval => {}
            }
        }
    }
    let recent = broker.audit_page(&AuditFilter::default(), None, 10).await?;
    Ok(OverviewPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: "Admin overview".into(),
        section: "overview",
        flash: flash::take(&admin.session).await?,
        active,
        needs_reauth,
        revoked,
        awaiting_approval,
        by_provider: by_provider.into_values().collect(),
        by_service: by_service.into_values().collect(),
        recent: recent.events.iter().map(EventView::new).collect(),
    })
}

fn row(c: Choice) -> CountRow {
    CountRow {
        id: c.id,
        name: c.name,
        active: 0,
        needs_reauth: 0,
        revoked: 0,
    }
}

/// Any other `/admin` path: admins get a 404 page (everyone else never gets this far).
async fn unknown(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    not_found(
        &broker,
        &admin,
        "There is no such page in the admin console.",
    )
    .await
}

/// The console's 404 page.
async fn not_found(broker: &Broker, admin: &AdminUser, body: &str) -> Result<Response, PageError> {
    let page = MessagePage::new(
        chrome(broker, &admin.session).await?,
        Tone::Warning,
        "Not found",
        body,
    );
    Ok((StatusCode::NOT_FOUND, page).into_response())
}

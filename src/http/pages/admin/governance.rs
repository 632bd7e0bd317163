//! Governance in the console: the policy in words, the queue of grants waiting for an
//! administrator (approve, or refuse with a reason, each behind a confirmation page), and
//! the review lists (consent lapsing soon, grants unused for long) with revocation of
//! every unused grant. Decisions go through the broker's use cases and are audited with
//! `Actor::Admin`.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::grants::{ConfirmPage, find, scopes_text};
use super::not_found;
use crate::broker::{Broker, Listed};
use crate::domain::{Grant, GrantStatus};
use crate::http::extract::{AdminUser, CsrfForm, NoFields};
use crate::http::pages::flash;
use crate::http::pages::grant_view::{GrantView, Names};
use crate::http::pages::when::format_time;
use crate::http::render::{Chrome, PageError, chrome};

/// A grant in one of the page's tables, with the time that matters for that table.
pub struct Row {
    pub grant: GrantView,
    pub when: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/governance.html")]
pub struct GovernancePage {
    pub chrome: Chrome,
    pub title: String,
    pub section: &'static str,
    pub flash: Option<String>,
    pub policy: Vec<String>,
    pub waiting: Vec<Row>,
    pub waiting_total: usize,
    pub expiring: Vec<Row>,
    pub expiring_total: usize,
    pub expiring_days: i64,
    pub unused: Vec<Row>,
    pub unused_total: usize,
    pub unused_days: i64,
}

pub async fn page(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
) -> Result<GovernancePage, PageError> {
    let names = Names::of(&broker).await?;
    let settings = broker.settings();
    let tz = &settings.branding.time_zone;
    let rows = |listed: Listed, when: &dyn Fn(&Grant) -> String| {
        listed
            .grants
            .iter()
            .map(|g| Row {
                grant: GrantView::new(&names, g),
                when: when(g),
            })
            .collect::<Vec<_>>()
    };
    let queue = broker.approval_queue().await?;
    let waiting_total = queue.total;
    let waiting = rows(queue, &|g| format_time(broker.approval_deadline(g), tz));
    let review = broker.review().await?;
    let (expiring_total, unused_total) = (review.expiring.total, review.unused.total);
    let expiring = rows(review.expiring, &|g| {
        g.expires_at.map(|t| format_time(t, tz)).unwrap_or_default()
    });
    let unused = rows(review.unused, &|g| {
        g.last_used_at
            .map_or_else(|| "never".to_owned(), |t| format_time(t, tz))
    });
    Ok(GovernancePage {
        chrome: chrome(&broker, &admin.session).await?,
        title: "Governance".into(),
        section: "governance",
        flash: flash::take(&admin.session).await?,
        policy: settings.policy.describe(),
        waiting,
        waiting_total,
        expiring,
        expiring_total,
        expiring_days: review.expiring_days,
        unused,
        unused_total,
        unused_days: review.unused_days,
    })
}

/// The decision an administrator confirms on a waiting grant.
#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Refuse,
}

async fn confirm(
    broker: &Broker,
    admin: &AdminUser,
    id: &str,
    decision: Decision,
) -> Result<Response, PageError> {
    let names = Names::of(broker).await?;
    let grant = match find(broker, id).await? {
        Some(g) if g.status == GrantStatus::AwaitingApproval => g,
        _ => {
            return not_found(
                broker,
                admin,
                "No grant with this id is waiting for approval.",
            )
            .await;
        }
    };
    let v = GrantView::new(&names, &grant);
    let facts = vec![
        ("User".into(), v.subject.clone()),
        ("Service".into(), v.service_name.clone()),
        ("Provider".into(), v.provider_name.clone()),
        ("Scopes".into(), scopes_text(&v)),
        ("User consented".into(), v.created.to_string()),
        (
            "Decide by".into(),
            format_time(
                broker.approval_deadline(&grant),
                &broker.settings().branding.time_zone,
            ),
        ),
    ];
    let page = match decision {
        Decision::Approve => ConfirmPage {
            chrome: chrome(broker, &admin.session).await?,
            title: "Approve grant".into(),
            heading: format!("Let {} use this access?", v.service_name),
            body: format!(
                "{} approved this and the policy asks you to agree. Once you approve, {} can get \
                 {}'s {} credential with these scopes for as long as the grant lasts.",
                v.subject, v.service_name, v.subject, v.provider_name
            ),
            facts,
            action: format!("/admin/approvals/{}/approve", v.id),
            hidden: Vec::new(),
            button: "Approve".into(),
            cancel: "/admin/governance".into(),
            reason_field: false,
            choices: Vec::new(),
        },
        Decision::Refuse => ConfirmPage {
            chrome: chrome(broker, &admin.session).await?,
            title: "Refuse grant".into(),
            heading: format!("Refuse {} this access?", v.service_name),
            body: format!(
                "{} never gets the credential: the grant is revoked{}, and {} is told the request \
                 was declined, with your reason.",
                v.service_name,
                if grant.kind == crate::domain::ProviderKind::Oauth2 {
                    format!(" and its tokens are revoked at {}", v.provider_name)
                } else {
                    String::new()
                },
                v.service_name
            ),
            facts,
            action: format!("/admin/approvals/{}/refuse", v.id),
            hidden: Vec::new(),
            button: "Refuse".into(),
            cancel: "/admin/governance".into(),
            reason_field: true,
            choices: Vec::new(),
        },
    };
    Ok(page.into_response())
}

pub async fn confirm_approve(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    confirm(&broker, &admin, &id, Decision::Approve).await
}

pub async fn confirm_refuse(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    confirm(&broker, &admin, &id, Decision::Refuse).await
}

pub async fn approve(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let names = Names::of(&broker).await?;
    let Some(grant) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, "There is no grant with this id.").await;
    };
    let approved = broker.approve_grant(&admin.user.subject, &grant.id).await?;
    let v = GrantView::new(&names, &approved);
    flash::set(
        &admin.session,
        &format!(
            "Approved: {} can now use {}'s {} access.",
            v.service_name, v.subject, v.provider_name
        ),
    )
    .await?;
    Ok(Redirect::to("/admin/governance").into_response())
}

#[derive(Deserialize)]
pub struct RefuseForm {
    #[serde(default)]
    reason: String,
}

pub async fn refuse(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<RefuseForm>,
) -> Result<Response, PageError> {
    let names = Names::of(&broker).await?;
    let Some(grant) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, "There is no grant with this id.").await;
    };
    let refused = broker
        .refuse_grant(&admin.user.subject, &grant.id, &form.reason)
        .await?;
    let v = GrantView::new(&names, &refused);
    flash::set(
        &admin.session,
        &format!(
            "Refused: {} does not get {}'s {} access, and was told why.",
            v.service_name, v.subject, v.provider_name
        ),
    )
    .await?;
    Ok(Redirect::to("/admin/governance").into_response())
}

pub async fn confirm_revoke_unused(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    let review = broker.review().await?;
    let n = review.unused.total;
    Ok(ConfirmPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: "Revoke unused grants".into(),
        heading: format!("Revoke {n} grants unused for {} days?", review.unused_days),
        body: format!(
            "Every active grant no service has redeemed in the last {} days is revoked at once \
             (OAuth tokens at their provider too). Their users can approve new requests later \
             if they still need them.",
            review.unused_days
        ),
        facts: vec![("Grants to revoke".into(), n.to_string())],
        action: "/admin/review/revoke-unused".into(),
        hidden: Vec::new(),
        button: format!("Revoke {n} unused grants"),
        cancel: "/admin/governance".into(),
        reason_field: false,
        choices: Vec::new(),
    }
    .into_response())
}

pub async fn revoke_unused(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let n = broker.revoke_unused(&admin.user.subject).await?;
    flash::set(&admin.session, &format!("Revoked {n} unused grants.")).await?;
    Ok(Redirect::to("/admin/governance").into_response())
}

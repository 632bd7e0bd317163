//! Grants in the console: the filtered, paged table; one grant's metadata and audit trail;
//! revoking it (confirmation page, then POST + CSRF through `Broker::revoke`).

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Choice, not_found, provider_choices, service_choices};
use crate::Error;
use crate::broker::Broker;
use crate::domain::{Actor, Grant, GrantId, GrantStatus, ProviderId, ServiceId, Subject};
use crate::http::extract::{AdminUser, CsrfForm, NoFields};
use crate::http::pages::flash;
use crate::http::pages::grant_view::{EventView, GrantView, Names};
use crate::http::render::{Chrome, PageError, chrome};
use crate::store::admin::{GrantCursor, GrantFilter};

/// Grants per page.
const PAGE_SIZE: usize = 50;
/// Events shown in a grant's audit trail.
const TRAIL: usize = 100;

#[derive(Deserialize, Default)]
pub struct GrantQuery {
    /// A user (subject), or a grant id to jump to.
    #[serde(default)]
    user: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/grants.html")]
pub struct GrantsPage {
    pub chrome: Chrome,
    pub title: String,
    pub section: &'static str,
    pub flash: Option<String>,
    pub error: Option<String>,
    pub user: String,
    pub provider: String,
    pub service: String,
    pub status: String,
    pub providers: Vec<Choice>,
    pub services: Vec<Choice>,
    pub grants: Vec<GrantView>,
    /// Query string of the next page, if there is one.
    pub next: Option<String>,
    /// Query string of the first page, when this is a later one.
    pub first: Option<String>,
    /// The page was cut short by the per-page work bound, not by the end of the list.
    pub partial: bool,
    pub filtered: bool,
}

pub async fn list(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
    query: Result<Query<GrantQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let names = Names::of(&broker).await?;
    let Query(q) = query.map_err(Error::from)?;
    let mut filter = GrantFilter::default();
    let mut error = None;
    let user = q.user.trim();
    if !user.is_empty() {
        if let Ok(id) = GrantId::parse(user)
            && broker.grant(&id).await?.is_some()
        {
            return Ok(Redirect::to(&format!("/admin/grants/{id}")).into_response());
        }
        match Subject::parse(user) {
            Ok(s) => filter.subject = Some(s),
            Err(_) => error = Some("That is not a valid user name or grant id.".to_owned()),
        }
    }
    filter.provider = ProviderId::parse(q.provider.as_str()).ok();
    filter.service = ServiceId::parse(q.service.as_str()).ok();
    filter.status = match q.status.as_str() {
        "active" => Some(GrantStatus::Active),
        "revoked" => Some(GrantStatus::Revoked),
        "needs_reauth" => Some(GrantStatus::NeedsReauth),
        _ => None,
    };
    let after = GrantCursor::decode(&q.after);
    let page = if error.is_some() {
        None
    } else {
        Some(
            broker
                .list_grants(&filter, after.as_ref(), PAGE_SIZE)
                .await?,
        )
    };
    let query_with = |after: Option<&str>| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("user", user),
            ("provider", q.provider.as_str()),
            ("service", q.service.as_str()),
            ("status", q.status.as_str()),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        if let Some(a) = after {
            s.append_pair("after", a);
        }
        s.finish()
    };
    let (grants, next) = match page {
        Some(p) => (p.grants, p.next),
        None => (Vec::new(), None),
    };
    let page = GrantsPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: "Grants".into(),
        section: "grants",
        flash: flash::take(&admin.session).await?,
        error,
        user: user.to_owned(),
        provider: q.provider.clone(),
        service: q.service.clone(),
        status: q.status.clone(),
        providers: provider_choices(&broker),
        services: service_choices(&broker).await?,
        partial: next.is_some() && grants.len() < PAGE_SIZE,
        next: next.map(|c| query_with(Some(&c.encode()))),
        first: after.map(|_| query_with(None)),
        filtered: filter != GrantFilter::default(),
        grants: grants.iter().map(|g| GrantView::new(&names, g)).collect(),
    };
    Ok(page.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/grant.html")]
pub struct GrantPage {
    pub chrome: Chrome,
    pub title: String,
    pub section: &'static str,
    pub flash: Option<String>,
    pub grant: GrantView,
    pub trail: Vec<EventView>,
}

pub async fn detail(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    let names = Names::of(&broker).await?;
    let Some(grant) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, "There is no grant with this id.").await;
    };
    let trail = broker.audit_of_grant(&grant.id, TRAIL).await?;
    let view = GrantView::new(&names, &grant);
    Ok(GrantPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: format!("Grant of {} for {}", view.subject, view.provider_name),
        section: "grants",
        flash: flash::take(&admin.session).await?,
        grant: view,
        trail: trail.iter().map(EventView::new).collect(),
    }
    .into_response())
}

/// A confirmation page for a destructive action: what it does, then one POST button.
#[derive(Template, WebTemplate)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmPage {
    pub chrome: Chrome,
    pub title: String,
    pub heading: String,
    pub body: String,
    /// What will be affected, as label/value pairs.
    pub facts: Vec<(String, String)>,
    pub action: String,
    /// Extra hidden fields of the form.
    pub hidden: Vec<(String, String)>,
    pub button: String,
    pub cancel: String,
    /// Asks for a reason (`reason`), which the form then requires.
    pub reason_field: bool,
    /// A required choice (`choice`): each value and the words beside its radio button.
    pub choices: Vec<(String, String)>,
}

pub async fn confirm_revoke(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    let names = Names::of(&broker).await?;
    let Some(grant) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, "There is no grant with this id.").await;
    };
    let v = GrantView::new(&names, &grant);
    if !v.revocable {
        return Ok(Redirect::to(&format!("/admin/grants/{}", v.id)).into_response());
    }
    Ok(ConfirmPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: "Revoke grant".into(),
        heading: "Revoke this grant?".into(),
        body: format!(
            "{} will immediately stop getting {}'s {} credential. The next redemption fails; \
             {} would have to approve a new request to restore access.",
            v.service_name, v.subject, v.provider_name, v.subject
        ),
        facts: vec![
            ("User".into(), v.subject.clone()),
            ("Service".into(), v.service_name.clone()),
            ("Provider".into(), v.provider_name.clone()),
            ("Scopes".into(), scopes_text(&v)),
            ("Last used".into(), v.last_used.clone()),
        ],
        action: format!("/admin/grants/{}/revoke", v.id),
        hidden: Vec::new(),
        button: "Revoke grant".into(),
        cancel: format!("/admin/grants/{}", v.id),
        reason_field: false,
        choices: Vec::new(),
    }
    .into_response())
}

pub async fn revoke(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let names = Names::of(&broker).await?;
    let Some(grant) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, "There is no grant with this id.").await;
    };
    let revoked = broker
        .revoke(Actor::Admin(admin.user.subject.clone()), &grant)
        .await?;
    let v = GrantView::new(&names, &revoked);
    flash::set(
        &admin.session,
        &format!(
            "Revoked the {} grant of {} for {}.",
            v.provider_name, v.subject, v.service_name
        ),
    )
    .await?;
    Ok(Redirect::to(&format!("/admin/grants/{}", v.id)).into_response())
}

pub(super) async fn find(broker: &Broker, raw: &str) -> Result<Option<Grant>, Error> {
    match GrantId::parse(raw) {
        Ok(id) => broker.grant(&id).await,
        Err(_) => Ok(None),
    }
}

pub(super) fn scopes_text(v: &GrantView) -> String {
    if v.scopes.is_empty() {
        "none".into()
    } else {
        v.scopes.join(" ")
    }
}

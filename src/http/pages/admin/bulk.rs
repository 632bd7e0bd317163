//! Bulk revocation: every grant of a user (offboarding, a stolen laptop) and every grant of
//! a provider (kill switch after an upstream breach). Each shows a confirmation page with
//! what it will affect; the POST (with CSRF) revokes each grant through the broker.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::grants::ConfirmPage;
use super::not_found;
use crate::Error;
use crate::broker::Broker;
use crate::domain::{GrantStatus, ProviderId, Subject};
use crate::http::extract::{AdminUser, CsrfForm, NoFields};
use crate::http::pages::flash;
use crate::http::render::{PageError, chrome};

#[derive(Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    user: String,
}

#[derive(Deserialize)]
pub struct UserForm {
    #[serde(default)]
    user: String,
}

fn subject(raw: &str) -> Result<Subject, Error> {
    Subject::parse(raw.trim())
        .map_err(|_| Error::InvalidRequest("That is not a valid user name".into()))
}

pub async fn confirm_user(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
    query: Result<Query<UserQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.map_err(Error::from)?;
    let user = subject(&q.user)?;
    let grants = broker.grants_of(&user).await?;
    let open = grants
        .iter()
        .filter(|g| g.status != GrantStatus::Revoked)
        .count();
    let names = crate::http::pages::grant_view::Names::of(&broker).await?;
    let mut services: Vec<String> = grants
        .iter()
        .filter(|g| g.status != GrantStatus::Revoked)
        .map(|g| names.service(&g.service))
        .collect();
    services.sort();
    services.dedup();
    Ok(ConfirmPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: "Revoke all grants of a user".into(),
        heading: format!("Revoke all grants of {user}?"),
        body: format!(
            "Every service loses every credential {user} granted, at once. Use this when someone \
             leaves or a device is lost. {user} can approve new requests later if they still may."
        ),
        facts: vec![
            ("User".into(), user.to_string()),
            ("Grants to revoke".into(), open.to_string()),
            (
                "Services affected".into(),
                if services.is_empty() {
                    "none".into()
                } else {
                    services.join(", ")
                },
            ),
        ],
        action: "/admin/users/revoke".into(),
        hidden: vec![("user".into(), user.to_string())],
        button: format!("Revoke {open} grants of {user}"),
        cancel: format!(
            "/admin/grants?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("user", user.as_str())
                .finish()
        ),
        reason_field: false,
        choices: Vec::new(),
    }
    .into_response())
}

pub async fn revoke_user(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<UserForm>,
) -> Result<Response, PageError> {
    let user = subject(&form.user)?;
    let n = broker
        .revoke_all_of_subject(&admin.user.subject, &user)
        .await?;
    flash::set(
        &admin.session,
        &format!("Revoked {n} grants of {user}. Every service has lost their access."),
    )
    .await?;
    let to = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("user", user.as_str())
        .finish();
    Ok(Redirect::to(&format!("/admin/grants?{to}")).into_response())
}

pub async fn confirm_provider(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    let Some(provider) = ProviderId::parse(id).ok() else {
        return not_found(&broker, &admin, "There is no such provider.").await;
    };
    let open: u64 = broker
        .count_grants()
        .await?
        .iter()
        .filter(|c| c.provider == provider && c.status != GrantStatus::Revoked)
        .map(|c| c.count)
        .sum();
    let name = broker
        .settings()
        .provider(&provider)
        .map_or_else(|| provider.to_string(), |p| p.name.clone());
    Ok(ConfirmPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: format!("Revoke all {name} grants"),
        heading: format!("Revoke every grant for {name}?"),
        body: format!(
            "This is the kill switch for {name}: every user's {name} credential stops working for \
             every service at once. Use it when {name} or its credentials may be compromised. \
             Users would have to connect again."
        ),
        facts: vec![
            ("Provider".into(), format!("{name} ({provider})")),
            ("Grants to revoke".into(), open.to_string()),
        ],
        action: format!("/admin/providers/{provider}/revoke"),
        hidden: Vec::new(),
        button: format!("Revoke all {open} {name} grants"),
        cancel: "/admin".into(),
        reason_field: false,
        choices: Vec::new(),
    }
    .into_response())
}

pub async fn revoke_provider(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let Some(provider) = ProviderId::parse(id).ok() else {
        return not_found(&broker, &admin, "There is no such provider.").await;
    };
    let n = broker
        .revoke_all_of_provider(&admin.user.subject, &provider)
        .await?;
    flash::set(
        &admin.session,
        &format!("Revoked {n} grants for provider {provider}."),
    )
    .await?;
    Ok(Redirect::to("/admin").into_response())
}

//! Services in the console: the catalogue (services declared in config, shown as managed
//! by config, and services registered at run time with their status), registering a
//! service directly, minting initial access tokens for self-registration, and one
//! registered service's page: approve a pending one (its scopes possibly narrowed), edit,
//! suspend (keeping or revoking its grants, chosen on the confirmation page), resume,
//! delete. Tokens are shown once, on the page that issues them. Every change goes through
//! the broker's use cases and is audited with `Actor::Admin`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::grants::ConfirmPage;
use super::not_found;
use crate::Error;
use crate::broker::{Broker, Issued, ServiceDescription, ServiceEdit};
use crate::domain::{
    Actor, InitialAccessToken, ProviderId, RegisteredBy, RegisteredService, Scope, ScopeGrants,
    ServiceId, ServiceStatus, SubjectProof,
};
use crate::http::extract::{AdminUser, CsrfForm, NoFields};
use crate::http::pages::flash;
use crate::http::pages::grant_view::format_time;
use crate::http::render::{Chrome, PageError, chrome};

/// A service in the catalogue.
pub struct ServiceRow {
    pub id: String,
    pub name: String,
    /// `config`, `pending`, `active` or `suspended`.
    pub status: &'static str,
    pub status_label: &'static str,
    /// What it may ask for, in words.
    pub allowed: String,
    /// Registered ones have a page.
    pub registered: bool,
}

pub struct TokenRow {
    pub label: String,
    pub uses_left: u32,
    pub expires: String,
    pub expired: bool,
    pub minted_by: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/services.html")]
pub struct ServicesPage {
    pub chrome: Chrome,
    pub title: String,
    pub section: &'static str,
    pub flash: Option<String>,
    pub services: Vec<ServiceRow>,
    pub pending: usize,
    pub tokens: Vec<TokenRow>,
    /// Configured provider ids, as the scope field's example.
    pub providers: Vec<String>,
}

/// One requested scope, with whether the approval form ticks it.
pub struct ScopeChoice {
    pub field: String,
    pub provider: String,
    pub scope: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/service.html")]
pub struct ServicePage {
    pub chrome: Chrome,
    pub title: String,
    pub section: &'static str,
    pub flash: Option<String>,
    pub id: String,
    pub name: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub facts: Vec<(String, String)>,
    /// For a pending service: each scope it asked for.
    pub requested: Vec<ScopeChoice>,
    pub edit_contacts: String,
    pub edit_scopes: String,
    pub edit_resource: String,
    pub edit_proof: &'static str,
    pub edit_webhook: String,
}

/// A token shown once.
#[derive(Template, WebTemplate)]
#[template(path = "admin/issued.html")]
pub struct IssuedPage {
    pub chrome: Chrome,
    pub title: String,
    pub heading: String,
    pub body: String,
    pub tokens: Vec<(String, String)>,
    pub next: String,
}

fn status_words(s: ServiceStatus) -> (&'static str, &'static str) {
    match s {
        ServiceStatus::Pending => ("pending", "Waiting for approval"),
        ServiceStatus::Active => ("active", "Active"),
        ServiceStatus::Suspended => ("suspended", "Suspended"),
    }
}

/// `acme: read write; other: x` (or "nothing yet").
fn grants_text(g: &ScopeGrants) -> String {
    if g.is_empty() {
        return "nothing yet".into();
    }
    g.iter()
        .map(|(p, s)| {
            let scopes: Vec<String> = s.iter().map(ToString::to_string).collect();
            if scopes.is_empty() {
                format!("{p}")
            } else {
                format!("{p}: {}", scopes.join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The scope field's lines (`provider: scope scope`), read back.
fn parse_scopes(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| match line.split_once(':') {
            Some((p, rest)) => (
                p.trim().to_owned(),
                rest.split_whitespace().map(str::to_owned).collect(),
            ),
            None => (line.trim().to_owned(), Vec::new()),
        })
        .collect()
}

fn scopes_field(g: &ScopeGrants) -> String {
    g.iter()
        .map(|(p, s)| {
            let scopes: Vec<String> = s.iter().map(ToString::to_string).collect();
            format!("{p}: {}", scopes.join(" ")).trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn contacts_of(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn list(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
) -> Result<ServicesPage, PageError> {
    let settings = broker.settings();
    let mut services: Vec<ServiceRow> = settings
        .services
        .iter()
        .map(|s| ServiceRow {
            id: s.id.to_string(),
            name: s.name.clone(),
            status: "config",
            status_label: "Managed by config",
            allowed: grants_text(&s.allow),
            registered: false,
        })
        .collect();
    let registered = broker.registered_services().await?;
    let pending = registered
        .iter()
        .filter(|r| r.status == ServiceStatus::Pending)
        .count();
    services.extend(registered.iter().map(|r| {
        let (status, status_label) = status_words(r.status);
        ServiceRow {
            id: r.id.to_string(),
            name: r.name.clone(),
            status,
            status_label,
            allowed: if r.status == ServiceStatus::Pending {
                format!("asks for {}", grants_text(&r.requested))
            } else {
                grants_text(&r.allow)
            },
            registered: true,
        }
    }));
    let now = broker.clock().now();
    let tokens = broker
        .initial_tokens()
        .await?
        .into_iter()
        .map(|t: InitialAccessToken| TokenRow {
            label: t.label,
            uses_left: t.uses_left,
            expires: format_time(t.expires_at),
            expired: t.expires_at <= now,
            minted_by: t.minted_by.to_string(),
        })
        .collect();
    Ok(ServicesPage {
        chrome: chrome(&broker, &admin.session).await?,
        title: "Services".into(),
        section: "services",
        flash: flash::take(&admin.session).await?,
        services,
        pending,
        tokens,
        providers: settings.providers.keys().map(ToString::to_string).collect(),
    })
}

async fn find(broker: &Broker, id: &str) -> Result<Option<RegisteredService>, Error> {
    let Ok(id) = ServiceId::parse(id) else {
        return Ok(None);
    };
    match broker.registered_service(&id).await {
        Ok(r) => Ok(Some(r)),
        Err(Error::NoSuchRoute) => Ok(None),
        Err(e) => Err(e),
    }
}

const NO_SUCH_SERVICE: &str = "There is no registered service with this id. (Services declared in the configuration file are changed there.)";

pub async fn detail(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    let Some(r) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, NO_SUCH_SERVICE).await;
    };
    let (status, status_label) = status_words(r.status);
    let by = match &r.registered_by {
        RegisteredBy::InitialToken { label } => {
            format!("itself, with the registration token “{label}”")
        }
        RegisteredBy::Admin { admin } => format!("administrator {admin}"),
    };
    let mut facts = vec![
        ("Service id".to_owned(), r.id.to_string()),
        (
            "Registered".to_owned(),
            format!("{} by {by}", format_time(r.created_at)),
        ),
        (
            "Contacts".to_owned(),
            if r.contacts.is_empty() {
                "none given".to_owned()
            } else {
                r.contacts.join(", ")
            },
        ),
        ("Asked for".to_owned(), grants_text(&r.requested)),
        ("May ask users for".to_owned(), grants_text(&r.allow)),
        (
            "Resource".to_owned(),
            r.resource.clone().unwrap_or_else(|| "none given".into()),
        ),
        (
            "Proof of the user".to_owned(),
            match r.subject_proof {
                SubjectProof::Off => "off: the service's word for the user is taken".into(),
                SubjectProof::Optional => {
                    "optional: a subject_token, when sent, must name the user".into()
                }
                SubjectProof::Required => {
                    "required: every request carries the user's own token".into()
                }
            },
        ),
    ];
    facts.push((
        "Completion webhook".into(),
        r.webhook
            .as_ref()
            .map_or_else(|| "none: it polls".into(), |w| w.url.to_string()),
    ));
    if let Some(a) = &r.approved_by {
        facts.push(("Approved by".into(), a.to_string()));
    }
    if let Some(p) = &r.previous_token {
        facts.push((
            "Previous token valid until".into(),
            format_time(p.valid_until),
        ));
    }
    let requested = r
        .requested
        .iter()
        .flat_map(|(p, scopes)| {
            let words: Vec<String> = if scopes.is_empty() {
                vec![String::new()]
            } else {
                scopes.iter().map(ToString::to_string).collect()
            };
            words.into_iter().map(move |s| ScopeChoice {
                field: format!("scope.{p}.{s}"),
                provider: p.to_string(),
                scope: s,
            })
        })
        .collect();
    Ok(ServicePage {
        chrome: chrome(&broker, &admin.session).await?,
        title: r.name.clone(),
        section: "services",
        flash: flash::take(&admin.session).await?,
        id: r.id.to_string(),
        name: r.name.clone(),
        status,
        status_label,
        facts,
        requested,
        edit_contacts: r.contacts.join(", "),
        edit_scopes: scopes_field(if r.status == ServiceStatus::Pending {
            &r.requested
        } else {
            &r.allow
        }),
        edit_resource: r.resource.clone().unwrap_or_default(),
        edit_webhook: r
            .webhook
            .as_ref()
            .map(|w| w.url.to_string())
            .unwrap_or_default(),
        edit_proof: r.subject_proof.as_str(),
    }
    .into_response())
}

/// Shows `issued`'s tokens once.
async fn issued_page(
    broker: &Broker,
    admin: &AdminUser,
    heading: String,
    body: String,
    tokens: Vec<(String, String)>,
    next: String,
) -> Result<Response, PageError> {
    Ok(IssuedPage {
        chrome: chrome(broker, &admin.session).await?,
        title: "Copy the token now".into(),
        heading,
        body,
        tokens,
        next,
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct DescriptionForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    contacts: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subject_proof: String,
    #[serde(default)]
    webhook_url: String,
}

impl DescriptionForm {
    fn description(&self) -> ServiceDescription {
        ServiceDescription {
            name: self.name.clone(),
            contacts: contacts_of(&self.contacts),
            scopes: parse_scopes(&self.scopes),
            resource: Some(self.resource.clone()),
        }
    }
}

/// A refusal of an administrator's form: back to `to` with the reason as the notice.
async fn back_with(admin: &AdminUser, to: &str, e: Error) -> Result<Response, PageError> {
    match e {
        Error::InvalidRequest(why) => {
            flash::set(&admin.session, &format!("Not saved: {why}")).await?;
            Ok(Redirect::to(to).into_response())
        }
        other => Err(other.into()),
    }
}

/// After an administrator's form on a service's page: its notice and back to the page, or
/// the refusal's reason.
async fn answer(
    admin: &AdminUser,
    page: &str,
    outcome: Result<String, Error>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(notice) => {
            flash::set(&admin.session, &notice).await?;
            Ok(Redirect::to(page).into_response())
        }
        Err(e) => back_with(admin, page, e).await,
    }
}

pub async fn register(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<DescriptionForm>,
) -> Result<Response, PageError> {
    let Issued { service, token, .. } = match broker
        .register_by_admin(&admin.user.subject, &form.description())
        .await
    {
        Ok(issued) => issued,
        Err(e) => return back_with(&admin, "/admin/services", e).await,
    };
    issued_page(
        &broker,
        &admin,
        format!("{} is registered and active", service.name),
        format!(
            "Give this token to the people who run {}: it is its bearer credential for the \
             broker's API. It is shown only now; the broker keeps only its SHA-256.",
            service.name
        ),
        vec![(format!("Token of {}", service.id), token)],
        format!("/admin/services/{}", service.id),
    )
    .await
}

#[derive(Deserialize)]
pub struct MintForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    uses: String,
    #[serde(default)]
    hours: String,
}

pub async fn mint(
    State(broker): State<Arc<Broker>>,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<MintForm>,
) -> Result<Response, PageError> {
    let number = |s: &str| s.trim().parse::<u32>().unwrap_or(0);
    let minted = broker
        .mint_initial_token(
            &admin.user.subject,
            &form.label,
            number(&form.uses),
            number(&form.hours),
        )
        .await;
    let (token, record) = match minted {
        Ok(m) => m,
        Err(e) => return back_with(&admin, "/admin/services", e).await,
    };
    issued_page(
        &broker,
        &admin,
        format!("Registration token “{}”", record.label),
        format!(
            "With this token {} at POST /v1/register, until {}. Each service it registers \
             waits for your approval here. It is shown only now; the broker keeps only its \
             SHA-256.",
            match record.uses_left {
                1 => "one service can register itself".to_owned(),
                n => format!("up to {n} services can register themselves"),
            },
            format_time(record.expires_at)
        ),
        vec![("Initial access token".into(), token)],
        "/admin/services".into(),
    )
    .await
}

/// The approval form: one checkbox per requested scope (`scope.<provider>.<scope>`).
pub async fn approve(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<BTreeMap<String, String>>,
) -> Result<Response, PageError> {
    let Some(r) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, NO_SUCH_SERVICE).await;
    };
    let mut allow = ScopeGrants::new();
    for (provider, scopes) in &r.requested {
        let ticked: BTreeSet<Scope> = scopes
            .iter()
            .filter(|s| form.contains_key(&format!("scope.{provider}.{s}")))
            .cloned()
            .collect();
        // A provider without scopes (API key, terms) is approved by its own box.
        if !ticked.is_empty()
            || (scopes.is_empty() && form.contains_key(&format!("scope.{provider}.")))
        {
            allow.insert(ProviderId::clone(provider), ticked);
        }
    }
    let outcome = broker
        .approve_service(&admin.user.subject, &r.id, allow)
        .await
        .map(|approved| {
            format!(
                "Approved: {} may now ask users for {}.",
                approved.name,
                grants_text(&approved.allow)
            )
        });
    answer(&admin, &format!("/admin/services/{}", r.id), outcome).await
}

pub async fn edit(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<DescriptionForm>,
) -> Result<Response, PageError> {
    let Some(r) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, NO_SUCH_SERVICE).await;
    };
    let page = format!("/admin/services/{}", r.id);
    // An unknown word is refused, never read as `off`: it would lower the proof silently.
    let Some(subject_proof) = SubjectProof::parse(&form.subject_proof) else {
        let e = Error::InvalidRequest(
            "Choose off, optional or required for the proof of the user.".into(),
        );
        return back_with(&admin, &page, e).await;
    };
    let edit = ServiceEdit {
        description: form.description(),
        subject_proof,
        webhook_url: form.webhook_url.clone(),
    };
    let edited = match broker.edit_service(&admin.user.subject, &r.id, &edit).await {
        Ok(edited) => edited,
        Err(e) => return back_with(&admin, &page, e).await,
    };
    let Some(secret) = edited.webhook_secret else {
        return answer(&admin, &page, Ok("Saved.".to_owned())).await;
    };
    let url = edited
        .service
        .webhook
        .as_ref()
        .map(|w| w.url.to_string())
        .unwrap_or_default();
    issued_page(
        &broker,
        &admin,
        format!("Saved: {}'s webhook has a new signing secret", r.name),
        format!(
            "Completion webhooks now go to {url}, signed (Standard Webhooks) with this \
             secret. Give it to the people who run {}. It is shown only now; the broker keeps \
             it sealed in its vault.",
            r.name
        ),
        vec![("Webhook signing secret".into(), secret)],
        page,
    )
    .await
}

/// What an administrator confirms on a registered service.
#[derive(Clone, Copy)]
enum Step {
    Suspend,
    Delete,
}

async fn confirm(
    broker: &Broker,
    admin: &AdminUser,
    id: &str,
    step: Step,
) -> Result<Response, PageError> {
    let Some(r) = find(broker, id).await? else {
        return not_found(broker, admin, NO_SUCH_SERVICE).await;
    };
    let facts = vec![
        ("Service".into(), format!("{} ({})", r.name, r.id)),
        ("May ask users for".into(), grants_text(&r.allow)),
    ];
    let page = match step {
        Step::Suspend => ConfirmPage {
            chrome: chrome(broker, &admin.session).await?,
            title: "Suspend service".into(),
            heading: format!("Suspend {}?", r.name),
            body: format!(
                "{} can no longer call the broker: creating requests and redeeming grants \
                 answer service_suspended until you resume it. Users cannot complete its \
                 open requests.",
                r.name
            ),
            facts,
            action: format!("/admin/services/{}/suspend", r.id),
            hidden: Vec::new(),
            button: "Suspend".into(),
            cancel: format!("/admin/services/{}", r.id),
            reason_field: false,
            choices: vec![
                (
                    "keep".into(),
                    "Keep its grants: resuming it restores its access as it was.".into(),
                ),
                (
                    "revoke".into(),
                    "Revoke every grant of it now (OAuth tokens at their provider too); users \
                     would have to consent again."
                        .into(),
                ),
            ],
        },
        Step::Delete => ConfirmPage {
            chrome: chrome(broker, &admin.session).await?,
            title: "Delete service".into(),
            heading: format!("Delete {}?", r.name),
            body: format!(
                "{} is removed from the catalogue and its token stops working. Every grant of \
                 it is revoked (OAuth tokens at their provider too), since nothing could redeem \
                 them again. This cannot be undone.",
                r.name
            ),
            facts,
            action: format!("/admin/services/{}/delete", r.id),
            hidden: Vec::new(),
            button: "Delete".into(),
            cancel: format!("/admin/services/{}", r.id),
            reason_field: false,
            choices: Vec::new(),
        },
    };
    Ok(page.into_response())
}

pub async fn confirm_suspend(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    confirm(&broker, &admin, &id, Step::Suspend).await
}

pub async fn confirm_delete(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
) -> Result<Response, PageError> {
    confirm(&broker, &admin, &id, Step::Delete).await
}

#[derive(Deserialize)]
pub struct SuspendForm {
    #[serde(default)]
    choice: String,
}

pub async fn suspend(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<SuspendForm>,
) -> Result<Response, PageError> {
    let Some(r) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, NO_SUCH_SERVICE).await;
    };
    let page = format!("/admin/services/{}", r.id);
    let revoke = match form.choice.as_str() {
        "revoke" => true,
        "keep" => false,
        _ => {
            let e = Error::InvalidRequest("Choose whether to keep or revoke its grants.".into());
            return back_with(&admin, &format!("{page}/suspend"), e).await;
        }
    };
    let outcome = broker
        .suspend_service(&admin.user.subject, &r.id, revoke)
        .await
        .map(|n| match revoke {
            true => format!("Suspended {}. {n} grants were revoked.", r.name),
            false => format!("Suspended {}. Its grants are kept.", r.name),
        });
    answer(&admin, &page, outcome).await
}

pub async fn resume(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let Some(r) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, NO_SUCH_SERVICE).await;
    };
    let outcome = broker.resume_service(&admin.user.subject, &r.id).await;
    let notice = outcome.map(|()| format!("{} is active again.", r.name));
    answer(&admin, &format!("/admin/services/{}", r.id), notice).await
}

/// A new token for the service, shown once; the old one keeps working for the overlap.
pub async fn rotate(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let Some(r) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, NO_SUCH_SERVICE).await;
    };
    let (rotated, token) = broker
        .rotate_service_token(Actor::Admin(admin.user.subject.clone()), &r)
        .await?;
    let until = rotated
        .previous_token
        .map(|p| format_time(p.valid_until))
        .unwrap_or_default();
    issued_page(
        &broker,
        &admin,
        format!("{}'s new token", r.name),
        format!(
            "Give this token to the people who run {}. Its old token keeps working until \
             {until}, and not after. It is shown only now; the broker keeps only its SHA-256.",
            r.name
        ),
        vec![(format!("Token of {}", r.id), token)],
        format!("/admin/services/{}", r.id),
    )
    .await
}

pub async fn delete(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    admin: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let Some(r) = find(&broker, &id).await? else {
        return not_found(&broker, &admin, NO_SUCH_SERVICE).await;
    };
    let outcome = broker
        .delete_service(Actor::Admin(admin.user.subject.clone()), &r.id)
        .await
        .map(|n| format!("Deleted {}; {n} grants were revoked.", r.name));
    answer(&admin, "/admin/services", outcome).await
}

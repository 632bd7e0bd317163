//! The consent pages under `/e/{id}`: the request in words, Approve / Deny, and each
//! provider kind's next step. Every step re-checks that the signed-in user is the
//! elicitation's subject (inside `Broker::open_elicitation`).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::views::{ApiKeyPage, AuthorizeRedirectPage, ConsentPage, ScopeView, TermsView};
use crate::Error;
use crate::broker::{ADMIN_REFUSAL, Broker, POLICY_REASON};
use crate::config::ProviderSpec;
use crate::domain::{ElicitationStatus, ProviderKind};
use crate::http::csrf;
use crate::http::extract::{CsrfForm, NoFields, SignedIn};
use crate::http::render::{MessagePage, PageError, Tone, chrome};
use crate::identity::oidc::SignInCallback;

/// Session key recording that the user approved this elicitation and may enter a key.
const APPROVED: &str = "approved_elicitation";

pub async fn show(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    me: SignedIn,
) -> Result<Response, PageError> {
    let chrome = chrome(&broker, &me.session).await?;
    let brand = chrome.brand.clone();
    let format_time = |t| format_time(t, &brand.time_zone);
    let opened = match broker.open_elicitation(&me.user, &id).await {
        Ok(o) => o,
        Err(Error::IdentityMismatch) => {
            let (heading, body) = chrome.t.link_for_another();
            let page = MessagePage::new(chrome, Tone::Error, heading, body);
            return Ok((StatusCode::FORBIDDEN, page).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let (e, provider, service) = (&opened.elicitation, opened.provider, opened.service.clone());
    let now = broker.clock().now();
    let t = chrome.t;
    let outcome = |status, tone, heading: &str, body: &str| {
        (
            status,
            MessagePage::new(chrome.clone(), tone, heading, body),
        )
            .into_response()
    };
    let response = match e.status_at(now) {
        ElicitationStatus::Pending => {
            let decision = broker.policy_for(&me.user, e);
            if decision.is_refused() {
                let error = broker
                    .refuse_by_policy(&me.user, &opened, decision.refusals)
                    .await?;
                return Ok(policy_refusal(chrome, &service.name, &error));
            }
            let needs_approval = decision
                .approval
                .iter()
                .map(|s| {
                    s.as_ref()
                        .map_or_else(|| "this access".to_owned(), |s| format!("`{s}`"))
                })
                .collect();
            let lasts_until = decision.max_lifetime.map(|l| format_time(now + l));
            let view = |s: &crate::domain::Scope| ScopeView {
                name: s.to_string(),
                description: provider
                    .scope_descriptions
                    .get(s.as_str())
                    .cloned()
                    .unwrap_or_default(),
            };
            // The user's standing grants for this service and provider: approving
            // replaces them (`Broker::supersede_older`).
            let earlier: Vec<_> = broker
                .grants_of(&e.subject)
                .await?
                .into_iter()
                .filter(|g| {
                    g.service == e.service
                        && g.provider == e.provider
                        && g.status != crate::domain::GrantStatus::Revoked
                })
                .collect();
            let held =
                |s: &crate::domain::Scope| earlier.iter().any(|g| g.scopes.iter().any(|h| h == s));
            let scopes = e.scopes.iter().filter(|s| !held(s)).map(view).collect();
            let granted_scopes = e.scopes.iter().filter(|s| held(s)).map(view).collect();
            let replaces = earlier.iter().map(|g| g.created_at).max().map(format_time);
            // Where the user will sign in: the authorization endpoint's host (left out
            // when the endpoint cannot be read now; Connect then says why).
            let upstream_host = match &provider.spec {
                ProviderSpec::Oauth2(_) => broker
                    .oauth_metadata(provider)
                    .await
                    .ok()
                    .and_then(|m| m.authorization_endpoint.host_str().map(str::to_owned)),
                _ => None,
            };
            let terms = match &provider.spec {
                ProviderSpec::Terms {
                    title,
                    version,
                    text,
                    text_sha256,
                } => Some(TermsView {
                    title: title.clone(),
                    version: version.clone(),
                    text: text.clone(),
                    digest: format!("sha256:{text_sha256}"),
                }),
                ProviderSpec::ApiKey { .. } | ProviderSpec::Oauth2(_) => None,
            };
            let previous_terms = match &provider.spec {
                ProviderSpec::Terms { version, .. } => broker
                    .grants_of(&e.subject)
                    .await?
                    .into_iter()
                    .find(|g| g.service == e.service && g.provider == e.provider && g.terms_version.is_some())
                    .and_then(|g| g.terms_version.filter(|v| v != version).map(|v| (v, g.created_at)))
                    .map(|(old, at)| {
                        format!(
                            "You accepted version {old} on {}. Version {version} below replaces it: please read it and accept it again.",
                            format_time(at)
                        )
                    }),
                _ => None,
            };
            let approve_label = match provider.kind() {
                ProviderKind::ApiKey => t.approve_key().to_owned(),
                ProviderKind::Terms => t.approve_terms().to_owned(),
                ProviderKind::Oauth2 => t.approve_oauth(&provider.name),
            };
            let minutes = ((e.expires_at - now).whole_seconds().max(0) + 59) / 60;
            ConsentPage {
                chrome,
                title: t.consent_title(&service.name),
                id: e.id.to_string(),
                service_name: service.name.clone(),
                provider_name: provider.name.clone(),
                kind: provider.kind().as_str().to_owned(),
                subject: e.subject.to_string(),
                profile: me.user.profile.clone(),
                scopes,
                granted_scopes,
                replaces,
                upstream_host,
                message_warning: e.message.as_deref().is_some_and(|m| {
                    message_needs_warning(m, &broker.settings().branding.product_name)
                }),
                message: e.message.clone(),
                expires_at: super::when::When::new(e.expires_at, &brand.time_zone),
                expires_in: t.expires_in_minutes(minutes),
                terms,
                previous_terms,
                approve_label,
                needs_approval,
                lasts_until,
            }
            .into_response()
        }
        ElicitationStatus::AwaitingApproval => {
            let (heading, body) =
                t.waiting(&service.name, &provider.name, &format_time(e.expires_at));
            outcome(StatusCode::OK, Tone::Info, heading, &body)
        }
        ElicitationStatus::Completed => {
            let (heading, body) = t.connected(&service.name, &provider.name);
            outcome(StatusCode::OK, Tone::Success, heading, &body)
        }
        ElicitationStatus::Declined => outcome(
            StatusCode::OK,
            Tone::Info,
            t.declined_heading(),
            &match e.reason.as_deref() {
                Some(POLICY_REASON) => t.declined_by_policy(&service.name),
                // Only the broker writes a declined reason; this one carries the admin's words.
                Some(reason) if reason.starts_with(ADMIN_REFUSAL) => {
                    t.declined_by_admin(&reason[ADMIN_REFUSAL.len()..], &service.name)
                }
                _ => t.declined(&service.name),
            },
        ),
        ElicitationStatus::Expired => {
            let (heading, body) = t.expired();
            outcome(StatusCode::GONE, Tone::Warning, heading, body)
        }
        ElicitationStatus::Failed => {
            let (heading, body) =
                t.failed(&provider.name, e.reason.as_deref().unwrap_or("unknown"));
            outcome(StatusCode::OK, Tone::Error, heading, &body)
        }
    };
    Ok(response)
}

/// The page for a request the policy does not let this user grant: the reasons in words.
fn policy_refusal(chrome: crate::http::render::Chrome, service: &str, error: &Error) -> Response {
    let page = MessagePage::new(
        chrome,
        Tone::Error,
        "Your organisation does not allow this",
        &format!(
            "{error} Nothing was shared, and {service} has been told the request was declined \
             by policy. If you need this access, ask your administrator."
        ),
    );
    (StatusCode::FORBIDDEN, page).into_response()
}

pub async fn approve(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    me: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let opened = broker.open_pending(&me.user, &id).await?;
    let decision = broker.policy_for(&me.user, &opened.elicitation);
    if decision.is_refused() {
        let error = broker
            .refuse_by_policy(&me.user, &opened, decision.refusals)
            .await?;
        let chrome = chrome(&broker, &me.session).await?;
        return Ok(policy_refusal(chrome, &opened.service.name, &error));
    }
    match opened.provider.kind() {
        ProviderKind::Terms => {
            broker.accept_terms(&me.user, &id).await?;
            Ok(Redirect::to(&format!("/e/{id}")).into_response())
        }
        ProviderKind::ApiKey => {
            me.session
                .insert(APPROVED, &id)
                .await
                .map_err(crate::identity::session::session_error)?;
            Ok(Redirect::to(&format!("/e/{id}/api-key")).into_response())
        }
        // Not a redirect: a browser checks the consent page's `form-action` on every
        // redirect of this submission, including the authorization server's own hops to
        // other origins (a sign-in domain, a customer's SSO). A page of ours that navigates
        // on keeps `form-action` to 'self' and still works.
        ProviderKind::Oauth2 => {
            let binding = csrf::flow_binding(&me.session).await?;
            let url = broker.start_oauth(&me.user, &id, &binding).await?;
            let name = &opened.provider.name;
            let chrome = chrome(&broker, &me.session).await?;
            Ok(AuthorizeRedirectPage {
                title: chrome.t.continuing_to(name),
                chrome,
                provider_name: name.clone(),
                host: url[url::Position::BeforeHost..url::Position::AfterPort].to_owned(),
                url: url.to_string(),
            }
            .into_response())
        }
    }
}

/// Where the upstream authorization server sends the browser back.
pub async fn oauth_callback(
    State(broker): State<Arc<Broker>>,
    me: SignedIn,
    query: Result<Query<SignInCallback>, QueryRejection>,
) -> Result<Redirect, PageError> {
    let Query(callback) = query.map_err(Error::from)?;
    let binding = csrf::existing_flow_binding(&me.session).await?;
    let e = broker
        .finish_oauth(&me.user, binding.as_deref(), callback)
        .await?;
    Ok(Redirect::to(&format!("/e/{}", e.id)))
}

pub async fn deny(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    me: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Redirect, PageError> {
    broker.decline(&me.user, &id).await?;
    Ok(Redirect::to(&format!("/e/{id}")))
}

pub async fn api_key_form(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    me: SignedIn,
) -> Result<Response, PageError> {
    if !approved(&me, &id).await? {
        return Ok(Redirect::to(&format!("/e/{id}")).into_response());
    }
    api_key_page(&broker, &me, &id, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct ApiKeyForm {
    #[serde(default)]
    api_key: String,
}

pub async fn submit_api_key(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    me: SignedIn,
    CsrfForm(form): CsrfForm<ApiKeyForm>,
) -> Result<Response, PageError> {
    let key = Zeroizing::new(form.api_key);
    if !approved(&me, &id).await? {
        return Err(Error::CsrfRejected.into());
    }
    match broker.submit_api_key(&me.user, &id, key).await {
        Ok(_) => Ok(Redirect::to(&format!("/e/{id}")).into_response()),
        Err(e @ (Error::CredentialRejected(_) | Error::UpstreamUnavailable(_))) => {
            let status = e.status();
            api_key_page(&broker, &me, &id, Some(e.public_detail()), status).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn approved(me: &SignedIn, id: &str) -> Result<bool, Error> {
    let approved: Option<String> = me
        .session
        .get(APPROVED)
        .await
        .map_err(crate::identity::session::session_error)?;
    Ok(approved.as_deref() == Some(id))
}

async fn api_key_page(
    broker: &Broker,
    me: &SignedIn,
    id: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let opened = broker.open_elicitation(&me.user, id).await?;
    if !opened.elicitation.is_open(broker.clock().now()) {
        return Ok(Redirect::to(&format!("/e/{id}")).into_response());
    }
    let ProviderSpec::ApiKey { header, .. } = &opened.provider.spec else {
        return Ok(Redirect::to(&format!("/e/{id}")).into_response());
    };
    let chrome = chrome(broker, &me.session).await?;
    let page = ApiKeyPage {
        title: chrome.t.key_title(&opened.provider.name),
        chrome,
        id: id.to_owned(),
        service_name: opened.service.name.clone(),
        provider_name: opened.provider.name.clone(),
        header_name: header.clone(),
        error,
    };
    Ok((status, page).into_response())
}

/// True when a service's message links elsewhere, names the broker, or mentions a
/// secret: the page then warns that it is the service's text, not the broker's.
fn message_needs_warning(message: &str, product_name: &str) -> bool {
    let m = message.to_lowercase();
    if m.contains(&product_name.to_lowercase()) {
        return true;
    }
    const SIGNS: [&str; 13] = [
        "http:",
        "https:",
        "www.",
        "://",
        "consent-broker",
        "consent broker",
        "broker",
        "password",
        "passcode",
        "key",
        "code",
        "token",
        "secret",
    ];
    SIGNS.iter().any(|sign| m.contains(sign))
}

fn format_time(t: crate::domain::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    super::when::format_time(t, tz)
}

#[cfg(test)]
mod tests {
    use super::message_needs_warning;

    #[test]
    fn a_message_posing_as_the_broker_or_asking_for_a_secret_is_flagged() {
        for m in [
            "consent-broker security check: paste your ADMIN API key",
            "Visit https://example.com to continue",
            "Reply with the code we sent you",
            "Enter your password below",
        ] {
            assert!(message_needs_warning(m, "consent-broker"), "{m}");
        }
        let typical = "I need read access to build your weekly report.";
        assert!(!message_needs_warning(typical, "consent-broker"));
        // Posing as the organisation's own product name is flagged too.
        assert!(message_needs_warning(
            "Acme Access verification: confirm below",
            "Acme Access"
        ));
    }
}

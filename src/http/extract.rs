//! Authorisation in types. A handler that takes [`ServiceCaller`] cannot run without a
//! valid service credential: a static token, an RFC 7523 assertion or a workload token,
//! all as `Authorization: Bearer` (failures are throttled per client address); one that takes
//! [`SignedIn`] cannot run without a signed-in user (the browser is sent to sign in and
//! brought back); one that takes [`AdminUser`] cannot run
//! without a signed-in admin (anyone else signed in gets a 403 page). A handler receives a
//! browser form only as a [`CsrfForm`], which refuses unless the form carries this
//! session's CSRF token; [`DevOnly`] routes do not exist outside `--dev`.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use super::csrf;
use super::problem::ApiError;
use super::render::{MessagePage, PageError, Tone, chrome};
use crate::Error;
use crate::broker::Broker;
use crate::config::Service;
use crate::identity::SessionUser;

/// The `Authorization: Bearer` credential, if one was sent.
fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// A refused credential, counted against the caller's address: beyond the allowance a
/// scanner is told to back off instead of being told "wrong" at full speed. A store that
/// could not answer is not the caller's fault and is not counted.
fn counted(broker: &Broker, parts: &Parts, refused: Error) -> ApiError {
    let client = broker
        .limits()
        .client_address(&parts.headers, &parts.extensions);
    counted_for(broker, &client, refused)
}

fn counted_for(broker: &Broker, client: &str, refused: Error) -> ApiError {
    if matches!(refused, Error::StoreUnavailable(_)) {
        return refused.into();
    }
    over_allowance(broker, client).unwrap_or_else(|| refused.into())
}

/// Counts one refused credential against `client`; the answer to give when it is beyond
/// its allowance.
fn over_allowance(broker: &Broker, client: &str) -> Option<ApiError> {
    let wait = broker.limits().failed_auth.check(client).err()?;
    Some(Error::RateLimited(wait.as_secs().max(1)).into())
}

/// A refused registration token: counted against `client`, and audited while within its
/// allowance (so forged tokens cannot flood the trail).
async fn registration_refused(
    broker: &Broker,
    client: &str,
    service: Option<&crate::domain::ServiceId>,
    refused: Error,
) -> ApiError {
    if !matches!(refused, Error::RegistrationTokenRejected) {
        return refused.into();
    }
    if let Some(limited) = over_allowance(broker, client) {
        return limited;
    }
    match broker.audit_registration_refused(service).await {
        Ok(()) => refused.into(),
        Err(e) => e.into(),
    }
}

/// An initial access token offered to `POST /v1/register`. It is checked (and one of
/// its uses taken) only once the request's metadata is valid; a refusal is counted
/// through [`InitialAccess::refused`].
pub struct InitialAccess {
    pub token: String,
    /// The caller's address, to count a refusal against.
    client: String,
}

impl InitialAccess {
    pub async fn refused(&self, broker: &Broker, e: Error) -> ApiError {
        registration_refused(broker, &self.client, None, e).await
    }
}

impl FromRequestParts<Arc<Broker>> for InitialAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(token) => Ok(Self {
                token: token.to_owned(),
                client: broker
                    .limits()
                    .client_address(&parts.headers, &parts.extensions),
            }),
            None => Err(counted(broker, parts, Error::Unauthenticated)),
        }
    }
}

/// A registered service managing its own registration (RFC 7592): the bearer is the
/// registration access token of the service the path names.
pub struct Registrant(pub crate::domain::RegisteredService);

impl FromRequestParts<Arc<Broker>> for Registrant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, ApiError> {
        let id = parts
            .uri
            .path()
            .strip_prefix("/v1/register/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|id| crate::domain::ServiceId::parse(id).ok());
        let found = match (&id, bearer(parts)) {
            (Some(id), Some(token)) => broker.registration_of(id, token).await,
            _ => Err(Error::RegistrationTokenRejected),
        };
        match found {
            Ok(r) => Ok(Self(r)),
            Err(e) => {
                let client = broker
                    .limits()
                    .client_address(&parts.headers, &parts.extensions);
                Err(registration_refused(broker, &client, id.as_ref(), e).await)
            }
        }
    }
}

/// The MCP service that sent a valid `Authorization: Bearer` credential: its static
/// token (`cbs_…`), or a JWT (three dot-separated parts, which no static token has): an
/// RFC 7523 client assertion or a workload identity token.
pub struct ServiceCaller(pub Arc<Service>);

impl FromRequestParts<Arc<Broker>> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, ApiError> {
        let service = match bearer(parts) {
            Some(credential) => broker.authenticate_service(credential).await,
            None => Err(Error::Unauthenticated),
        };
        let service = service.map_err(|e| counted(broker, parts, e))?;
        broker
            .limits()
            .api
            .check(service.id.as_str())
            .map_err(|wait| Error::RateLimited(wait.as_secs()))?;
        Ok(Self(service))
    }
}

/// The signed-in person, and their session.
pub struct SignedIn {
    pub user: SessionUser,
    pub session: Session,
}

pub enum SignInRejection {
    /// Not signed in: go to the sign-in page and come back here.
    SignIn(String),
    Failed(PageError),
}

impl IntoResponse for SignInRejection {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn(back) => {
                let to = format!(
                    "/login?return_to={}",
                    url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
                );
                Redirect::to(&to).into_response()
            }
            Self::Failed(e) => e.into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = SignInRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, SignInRejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                SignInRejection::Failed(PageError(Error::Internal("session layer missing".into())))
            })?;
        let user = SessionUser::current(&session)
            .await
            .map_err(|e| SignInRejection::Failed(PageError(e)))?;
        match user {
            Some(user) => Ok(Self { user, session }),
            None => {
                let uri = OriginalUri::from_request_parts(parts, state)
                    .await
                    .map(|u| u.0)
                    .unwrap_or_default();
                // Only ever come back to a page (GET); a POST is not replayed but leads
                // back to the page its form was on.
                let back = if parts.method == axum::http::Method::GET {
                    uri.path().to_owned()
                } else {
                    page_of_form(uri.path())
                };
                Err(SignInRejection::SignIn(back))
            }
        }
    }
}

/// The page a browser form posting to `path` is on, to come back to after a sign-in the
/// post found missing: a consent step's page (`/e/{id}/approve` → `/e/{id}`), the
/// connections list, an admin confirmation (served at its own form's path), else `/`.
fn page_of_form(path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["e", id, ..] if !id.is_empty() => format!("/e/{id}"),
        ["connections", ..] => "/connections".to_owned(),
        ["admin", ..] => path.to_owned(),
        _ => "/".to_owned(),
    }
}

/// A signed-in administrator. Not signed in: sent to sign in, as for [`SignedIn`]. Signed
/// in without the admin role: a 403 page, whatever the route.
pub struct AdminUser {
    pub user: SessionUser,
    pub session: Session,
}

pub enum AdminRejection {
    SignIn(SignInRejection),
    NotAdmin(Response),
}

impl IntoResponse for AdminRejection {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn(r) => r.into_response(),
            Self::NotAdmin(r) => r,
        }
    }
}

impl FromRequestParts<Arc<Broker>> for AdminUser {
    type Rejection = AdminRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        broker: &Arc<Broker>,
    ) -> Result<Self, AdminRejection> {
        let me = SignedIn::from_request_parts(parts, broker)
            .await
            .map_err(AdminRejection::SignIn)?;
        if me.user.admin {
            return Ok(Self {
                user: me.user,
                session: me.session,
            });
        }
        let page = match chrome(broker, &me.session).await {
            Ok(chrome) => {
                let page = MessagePage::new(
                    chrome,
                    Tone::Error,
                    "Administrators only",
                    "The admin console is only for administrators of this broker. You can see and \
                     revoke what you granted under Your connections.",
                );
                (axum::http::StatusCode::FORBIDDEN, page).into_response()
            }
            Err(e) => PageError(e).into_response(),
        };
        Err(AdminRejection::NotAdmin(page))
    }
}

/// A browser form's fields, `T`, from a POST that carried this session's CSRF token in its
/// `csrf` field. A missing or foreign token is refused with the "Please try again" page
/// (403) before the handler runs; a body that is not such a form, as by [`Form`].
pub struct CsrfForm<T>(pub T);

/// A form with no fields but its CSRF token: a button.
#[derive(Deserialize)]
pub struct NoFields {}

/// The wire form: the token, and the handler's fields beside it.
#[derive(Deserialize)]
struct Tokened<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

pub enum CsrfRejection {
    /// Not a form of this shape (as `Form` answers it).
    Form(FormRejection),
    /// No token, or not this session's.
    Refused(PageError),
}

impl IntoResponse for CsrfRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Form(r) => r.into_response(),
            Self::Refused(e) => e.into_response(),
        }
    }
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = CsrfRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, CsrfRejection> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| {
                CsrfRejection::Refused(PageError(Error::Internal("session layer missing".into())))
            })?;
        let Form(form) = Form::<Tokened<T>>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(CsrfRejection::Form)?;
        csrf::verify(&session, &form.csrf)
            .await
            .map_err(|e| CsrfRejection::Refused(PageError(e)))?;
        Ok(Self(form.fields))
    }
}

/// A route that exists only under `--dev`; elsewhere it answers "not found" before
/// anything else is looked at.
pub struct DevOnly;

impl FromRequestParts<Arc<Broker>> for DevOnly {
    type Rejection = PageError;

    async fn from_request_parts(_: &mut Parts, broker: &Arc<Broker>) -> Result<Self, PageError> {
        if broker.settings().dev {
            Ok(Self)
        } else {
            Err(PageError(Error::ElicitationNotFound))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::page_of_form;

    #[test]
    fn a_form_post_without_a_session_leads_back_to_its_page() {
        assert_eq!(page_of_form("/e/abc123/approve"), "/e/abc123");
        assert_eq!(page_of_form("/e/abc123/api-key"), "/e/abc123");
        assert_eq!(page_of_form("/connections/g1/revoke"), "/connections");
        assert_eq!(
            page_of_form("/admin/grants/g1/revoke"),
            "/admin/grants/g1/revoke"
        );
        assert_eq!(page_of_form("/logout"), "/");
    }
}

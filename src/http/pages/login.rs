//! Sign-in and sign-out: enterprise OIDC sign-in (`/login/oidc` → IdP → `/auth/callback`)
//! and, under `--dev` only, a typed user name clearly marked as unverified. `return_to`
//! only ever points back into this site. The session id changes at every sign-in.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::views::LoginPage;
use super::{PageError, chrome};
use crate::Error;
use crate::broker::Broker;
use crate::domain::Subject;
use crate::domain::{Actor, AuditEvent, Outcome};
use crate::http::csrf;
use crate::identity::oidc::{PendingSignIn, SignInCallback};
use crate::identity::session::session_error;
use crate::identity::{SessionUser, SignInMethod};

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    return_to: String,
}

#[derive(Deserialize)]
pub struct DevLoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    return_to: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// A local path to come back to after sign-in; anything else becomes `/`.
/// Refuses absolute URLs, scheme-relative `//host` and backslash tricks (open redirects).
pub fn safe_return_to(raw: &str) -> String {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && raw.len() <= 512
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
    if ok { raw.to_owned() } else { "/".to_owned() }
}

pub async fn show(
    State(broker): State<Arc<Broker>>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<LoginPage, PageError> {
    Ok(LoginPage {
        chrome: chrome(&broker, &session).await?,
        title: "Sign in".into(),
        return_to: safe_return_to(&q.return_to),
        sso: broker
            .oidc
            .as_ref()
            .map(|o| o.settings.display_name.clone()),
        dev_login: broker.settings.dev,
        error: None,
    })
}

pub async fn dev_sign_in(
    State(broker): State<Arc<Broker>>,
    session: Session,
    Form(form): Form<DevLoginForm>,
) -> Result<Response, PageError> {
    if !broker.settings.dev {
        return Err(Error::ElicitationNotFound.into());
    }
    csrf::verify(&session, &form.csrf).await?;
    let return_to = safe_return_to(&form.return_to);
    let Ok(subject) = Subject::parse(form.username.trim()) else {
        let page = LoginPage {
            chrome: chrome(&broker, &session).await?,
            title: "Sign in".into(),
            return_to,
            sso: broker
                .oidc
                .as_ref()
                .map(|o| o.settings.display_name.clone()),
            dev_login: true,
            error: Some("Enter a user name (up to 255 characters, no control characters).".into()),
        };
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    };
    SessionUser {
        subject,
        method: SignInMethod::Dev,
        admin: false,
    }
    .sign_in(&session)
    .await?;
    Ok(Redirect::to(&return_to).into_response())
}

pub async fn sign_out(session: Session, Form(form): Form<CsrfForm>) -> Result<Redirect, PageError> {
    csrf::verify(&session, &form.csrf).await?;
    SessionUser::sign_out(&session).await?;
    Ok(Redirect::to("/"))
}

/// Session key of the OIDC sign-in in progress.
const PENDING_SIGN_IN: &str = "pending_sign_in";

/// Starts enterprise sign-in: remembers the flow in the session, sends the browser to the IdP.
pub async fn oidc_start(
    State(broker): State<Arc<Broker>>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Redirect, PageError> {
    let oidc = broker.oidc.as_ref().ok_or(Error::ElicitationNotFound)?;
    let (url, pending) = oidc
        .start(
            &broker.http,
            &sign_in_redirect(&broker),
            safe_return_to(&q.return_to),
        )
        .await?;
    session
        .insert(PENDING_SIGN_IN, pending)
        .await
        .map_err(session_error)?;
    Ok(Redirect::to(url.as_str()))
}

/// The IdP's answer: verify, sign in (new session id), go back where the user was.
pub async fn oidc_callback(
    State(broker): State<Arc<Broker>>,
    session: Session,
    Query(callback): Query<SignInCallback>,
) -> Result<Redirect, PageError> {
    let oidc = broker.oidc.as_ref().ok_or(Error::ElicitationNotFound)?;
    let pending: Option<PendingSignIn> = session
        .remove(PENDING_SIGN_IN)
        .await
        .map_err(session_error)?;
    let Some(pending) = pending else {
        return Err(Error::FlowStateRejected.into());
    };
    let return_to = pending.return_to.clone();
    let user = oidc
        .finish(&broker.http, &sign_in_redirect(&broker), pending, callback)
        .await?;
    broker
        .audit(AuditEvent::new(
            Actor::User(user.subject.clone()),
            crate::domain::AuditAction::SignedIn,
            Outcome::Success,
        ))
        .await?;
    user.sign_in(&session).await?;
    Ok(Redirect::to(&return_to))
}

fn sign_in_redirect(broker: &Broker) -> url::Url {
    broker
        .public_url
        .join("auth/callback")
        .unwrap_or_else(|_| broker.public_url.clone())
}

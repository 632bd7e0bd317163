//! Sign-in and sign-out: enterprise OIDC sign-in (`/login/oidc` → IdP → `/auth/callback`)
//! and, under `--dev` only, a typed user name clearly marked as unverified (with a box to
//! sign in as an administrator, so the console can be tried). `return_to`
//! only ever points back into this site. The session id changes at every sign-in.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::views::LoginPage;
use crate::Error;
use crate::broker::Broker;
use crate::domain::Subject;
use crate::http::extract::{CsrfForm, DevOnly, NoFields};
use crate::http::render::{PageError, chrome};
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
    username: String,
    #[serde(default)]
    return_to: String,
    /// The "as an administrator" box (`on` when ticked): `--dev` only, to try the console.
    #[serde(default)]
    admin: Option<String>,
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
    let chrome = chrome(&broker, &session).await?;
    Ok(LoginPage {
        title: chrome.t.sign_in().into(),
        chrome,
        return_to: safe_return_to(&q.return_to),
        sso: broker.single_sign_on_label().map(str::to_owned),
        dev_login: broker.settings().dev,
        error: None,
    })
}

pub async fn dev_sign_in(
    _: DevOnly,
    State(broker): State<Arc<Broker>>,
    session: Session,
    CsrfForm(form): CsrfForm<DevLoginForm>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(&form.return_to);
    let Ok(subject) = Subject::parse(form.username.trim()) else {
        let chrome = chrome(&broker, &session).await?;
        let page = LoginPage {
            title: chrome.t.sign_in().into(),
            return_to,
            sso: broker.single_sign_on_label().map(str::to_owned),
            dev_login: true,
            error: Some(chrome.t.bad_user_name().into()),
            chrome,
        };
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    };
    SessionUser {
        subject,
        method: SignInMethod::Dev,
        // Unverified like the name: acceptable only because `--dev` is for trying it out.
        admin: form.admin.as_deref() == Some("on"),
        // Nothing verified a dev name: policy rules by claim never admit it.
        claims: Default::default(),
        profile: None,
    }
    .sign_in(&session)
    .await?;
    Ok(Redirect::to(&return_to).into_response())
}

pub async fn sign_out(session: Session, _: CsrfForm<NoFields>) -> Result<Redirect, PageError> {
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
    let (url, pending) = broker.start_sign_in(safe_return_to(&q.return_to)).await?;
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
    if !broker.offers_single_sign_on() {
        return Err(Error::ElicitationNotFound.into());
    }
    let pending: Option<PendingSignIn> = session
        .remove(PENDING_SIGN_IN)
        .await
        .map_err(session_error)?;
    let Some(pending) = pending else {
        return Err(Error::FlowStateRejected.into());
    };
    let return_to = pending.return_to.clone();
    let user = broker.finish_sign_in(pending, callback).await?;
    user.sign_in(&session).await?;
    Ok(Redirect::to(&return_to))
}

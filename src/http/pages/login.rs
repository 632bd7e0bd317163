//! Sign-in and sign-out. Under `--dev` a person types a user name (clearly marked as
//! unverified); enterprise OIDC sign-in is added beside it. `return_to` only ever points
//! back into this site.

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
use crate::http::csrf;
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
            dev_login: true,
            error: Some("Enter a user name (up to 255 characters, no control characters).".into()),
        };
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    };
    SessionUser {
        subject,
        method: SignInMethod::Dev,
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

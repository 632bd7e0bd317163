//! Browser pages: sign-in, consent, the user's connections and the admin console. Server-rendered, no JavaScript, every form a POST
//! with a CSRF token. Errors render as a readable page with the right status.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_sessions::Session;

use crate::Error;
use crate::broker::Broker;
use crate::identity::SessionUser;

mod admin;
mod connections;
mod consent;
mod flash;
pub mod grant_view;
mod login;
pub mod views;

use views::{Chrome, MessagePage, Tone};

pub fn router() -> Router<Arc<Broker>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::show))
        .route("/login/dev", post(login::dev_sign_in))
        .route("/logout", post(login::sign_out))
        .route("/login/oidc", get(login::oidc_start))
        .route("/auth/callback", get(login::oidc_callback))
        .route("/oauth/callback", get(consent::oauth_callback))
        .route("/e/{id}", get(consent::show))
        .route("/e/{id}/approve", post(consent::approve))
        .route("/e/{id}/deny", post(consent::deny))
        .route(
            "/e/{id}/api-key",
            get(consent::api_key_form).post(consent::submit_api_key),
        )
        .route("/connections", get(connections::show))
        .route("/connections/{id}/revoke", post(connections::revoke))
        .merge(admin::router())
}

/// Limits browser form posts (sign-in, approve, deny, key) per client address.
pub async fn limit_posts(
    axum::extract::State(broker): axum::extract::State<Arc<Broker>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() == axum::http::Method::POST {
        let client = client_address(&broker.limits, &request);
        if let Err(wait) = broker.limits.browser_posts.check(&client) {
            return PageError(Error::RateLimited(wait.as_secs())).into_response();
        }
    }
    next.run(request).await
}

/// The client's address: the rightmost entry of the trusted proxy's header when one is
/// configured, else the connection's peer.
fn client_address(limits: &crate::limits::Limits, request: &axum::extract::Request) -> String {
    if let Some(header) = &limits.client_ip_header
        && let Some(value) = request.headers().get(header).and_then(|v| v.to_str().ok())
        && let Some(last) = value.rsplit(',').next()
    {
        return last.trim().to_owned();
    }
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// Page furniture for `base.html`. Ensures the session has a CSRF token.
pub async fn chrome(broker: &Broker, session: &Session) -> Result<Chrome, Error> {
    let user = SessionUser::current(session).await?;
    Ok(Chrome {
        admin: user.as_ref().is_some_and(|u| u.admin),
        user: user.map(|u| u.subject.to_string()),
        csrf: super::csrf::token(session).await?,
        dev: broker.settings.dev,
    })
}

/// Chrome for pages rendered without a session (errors).
fn bare_chrome() -> Chrome {
    Chrome {
        user: None,
        admin: false,
        csrf: String::new(),
        dev: false,
    }
}

/// An error on its way to a person: a message page with the error's status.
#[derive(Debug)]
pub struct PageError(pub Error);

impl<E: Into<Error>> From<E> for PageError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = e.status();
        if status.is_server_error() {
            tracing::error!(error = ?e, code = e.kind().as_str(), "page failed");
        }
        let (tone, heading) = match &e {
            Error::IdentityMismatch => (Tone::Error, "This link is for another account"),
            Error::ElicitationExpired => (Tone::Warning, "This request has expired"),
            Error::ElicitationNotFound => (Tone::Error, "Request not found"),
            Error::CsrfRejected => (Tone::Warning, "Please try again"),
            Error::StoreUnavailable(_) => (Tone::Error, "Temporarily unavailable"),
            _ if status.is_server_error() => (Tone::Error, "Something went wrong"),
            _ => (Tone::Warning, e.title()),
        };
        let body = match &e {
            Error::IdentityMismatch => {
                "You are signed in as someone other than the person this request was made for. \
                 Nothing was shared. If you did not expect this link, close this tab; if it is yours, \
                 sign out and sign in with the right account."
                    .to_owned()
            }
            Error::ElicitationExpired => "Ask your assistant to start again; it will send a new link.".to_owned(),
            _ => e.public_detail(),
        };
        let mut page = MessagePage::new(bare_chrome(), tone, heading, &body);
        page.detail = Some(format!("Error code: {}", e.kind()));
        let mut response = (status, page).into_response();
        if let Error::StoreUnavailable(cause) = &e {
            let failure = crate::metrics::StoreFailure::of(cause);
            response.extensions_mut().insert(failure);
        }
        if let Error::RateLimited(seconds) = e {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

async fn home(
    axum::extract::State(broker): axum::extract::State<Arc<Broker>>,
    session: Session,
) -> Result<Response, PageError> {
    let page = MessagePage::new(
        chrome(&broker, &session).await?,
        Tone::Info,
        "consent-broker",
        "This is where you approve the access your AI tools ask for. Open a link your assistant gave you to continue.",
    );
    Ok((StatusCode::OK, page).into_response())
}

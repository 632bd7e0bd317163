//! Browser pages: sign-in, consent, the user's connections and the admin console. Server-rendered, no JavaScript, every form a POST
//! with a CSRF token. Errors render as a readable page with the right status.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tower_sessions::Session;

use crate::Error;
use crate::broker::Broker;

mod admin;
mod connections;
mod consent;
mod flash;
pub mod grant_view;
mod language;
mod login;
pub mod views;
pub mod when;

use crate::http::render::{MessagePage, PageError, Tone, chrome};

pub fn router() -> Router<Arc<Broker>> {
    let pages = Router::new()
        .route("/", get(home))
        .route("/login", get(login::show))
        .route("/login/oidc", get(login::oidc_start))
        .route("/auth/callback", get(login::oidc_callback))
        .route("/oauth/callback", get(consent::oauth_callback))
        .route("/e/{id}", get(consent::show))
        .route("/e/{id}/api-key", get(consent::api_key_form))
        .route("/connections", get(connections::show))
        .route("/static/brand.css", get(brand_stylesheet))
        .route("/lang/{code}", get(language::switch))
        .merge(admin::router());
    // Last, so that a form's POST joins its path's GET (a confirmation page, a form).
    forms()
        .into_iter()
        .fold(pages, |router, (path, handler)| router.route(path, handler))
}

/// Every state-changing browser form: its path and its POST handler, each of which takes
/// its fields only as an `extract::CsrfForm`. Browser POSTs are registered only from here
/// (the admin console's `/admin/{*rest}` catch-all answers 404 and changes nothing), and
/// `tests/it/csrf.rs` refuses a form it does not know, through [`form_paths`].
fn forms() -> Vec<(&'static str, MethodRouter<Arc<Broker>>)> {
    let mut forms = vec![
        ("/login/dev", post(login::dev_sign_in)),
        ("/logout", post(login::sign_out)),
        ("/e/{id}/approve", post(consent::approve)),
        ("/e/{id}/deny", post(consent::deny)),
        ("/e/{id}/api-key", post(consent::submit_api_key)),
        ("/connections/{id}/revoke", post(connections::revoke)),
    ];
    forms.extend(admin::forms());
    forms
}

/// The paths of every browser form route (see [`forms`]).
pub fn form_paths() -> Vec<&'static str> {
    forms().into_iter().map(|(path, _)| path).collect()
}

/// `[branding]`'s accent colour for every page, after `/static/app.css` (a stylesheet, as
/// the CSP admits no inline style). Without an accent: 404, and pages do not link it.
async fn brand_stylesheet(
    axum::extract::State(broker): axum::extract::State<Arc<Broker>>,
) -> Response {
    match &broker.settings().branding.accent {
        Some(accent) => (
            [
                (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (axum::http::header::CACHE_CONTROL, "no-cache"),
            ],
            accent.stylesheet(),
        )
            .into_response(),
        None => PageError(Error::NoSuchRoute).into_response(),
    }
}

/// Limits browser form posts (sign-in, approve, deny, key) per client address.
pub async fn limit_posts(
    axum::extract::State(broker): axum::extract::State<Arc<Broker>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() == axum::http::Method::POST {
        let client = broker
            .limits()
            .client_address(request.headers(), request.extensions());
        if let Err(wait) = broker.limits().browser_posts.check(&client) {
            return PageError(Error::RateLimited(wait.as_secs())).into_response();
        }
    }
    next.run(request).await
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

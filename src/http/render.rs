//! What every browser page shares, and what the extractors render when they refuse: the
//! page chrome (`base.html`'s data), the message page, and [`PageError`], an error on its
//! way to a person. Pages and extractors both import this module; it imports neither.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use crate::Error;
use crate::broker::Broker;
use crate::config::branding::Branding;
use crate::http::i18n::{Catalogue, Lang};
use crate::identity::SessionUser;

/// Page furniture for `base.html`: the signed-in user, the CSRF token, the dev banner,
/// the organisation's branding, the page's language and its switch.
#[derive(Clone)]
pub struct Chrome {
    pub user: Option<String>,
    /// The signed-in user may use the admin console.
    pub admin: bool,
    pub csrf: String,
    pub dev: bool,
    pub brand: Arc<Branding>,
    pub lang: Lang,
    /// The words of `lang`.
    pub t: &'static dyn Catalogue,
    /// Where the language switch returns to: this page (path and query), or none on pages
    /// that are English only (the admin console).
    pub here: Option<String>,
}

impl Chrome {
    /// The languages the switch offers (all but the page's own).
    pub fn other_langs(&self) -> Vec<Lang> {
        Lang::ALL.into_iter().filter(|l| *l != self.lang).collect()
    }
}

/// What the edge learns of a request for its pages: the broker's branding, the language,
/// and the page's own address.
#[derive(Clone)]
pub struct PageContext {
    pub branding: Arc<Branding>,
    pub lang: Lang,
    pub here: Option<String>,
}

tokio::task_local! {
    /// The current request's [`PageContext`], for every page rendered while handling it,
    /// including errors on their way out where no broker is at hand. Set by [`with_page_context`].
    static PAGE: PageContext;
}

/// Runs `f` (a request's handling) with `context` available to its pages.
pub async fn with_page_context<F: std::future::Future>(context: PageContext, f: F) -> F::Output {
    PAGE.scope(context, f).await
}

/// The context of the request being handled (defaults outside one).
fn page_context() -> PageContext {
    PAGE.try_with(Clone::clone).unwrap_or_else(|_| PageContext {
        branding: Arc::new(Branding::default()),
        lang: Lang::En,
        here: None,
    })
}

/// The chrome of a page for this session. Ensures the session has a CSRF token.
pub async fn chrome(broker: &Broker, session: &Session) -> Result<Chrome, Error> {
    let user = SessionUser::current(session).await?;
    let page = page_context();
    Ok(Chrome {
        admin: user.as_ref().is_some_and(|u| u.admin),
        user: user.map(|u| u.subject.to_string()),
        csrf: super::csrf::token(session).await?,
        dev: broker.settings().dev,
        brand: broker.settings().branding.clone(),
        lang: page.lang,
        t: page.lang.text(),
        here: page.here,
    })
}

/// Chrome for pages rendered without a session (errors).
fn bare_chrome() -> Chrome {
    let page = page_context();
    Chrome {
        user: None,
        admin: false,
        csrf: String::new(),
        dev: false,
        brand: page.branding,
        lang: page.lang,
        t: page.lang.text(),
        here: page.here,
    }
}

#[derive(Clone, Copy)]
pub enum Tone {
    Success,
    Info,
    Warning,
    Error,
}

/// A heading and a paragraph in a tone: outcomes, refusals, errors.
#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub title: String,
    pub tone: String,
    pub heading: String,
    pub body: String,
    pub detail: Option<String>,
}

impl MessagePage {
    pub fn new(chrome: Chrome, tone: Tone, heading: &str, body: &str) -> Self {
        let tone = match tone {
            Tone::Success => "success",
            Tone::Info => "info",
            Tone::Warning => "warning",
            Tone::Error => "error",
        };
        Self {
            chrome,
            title: heading.to_owned(),
            tone: tone.to_owned(),
            heading: heading.to_owned(),
            body: body.to_owned(),
            detail: None,
        }
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
        let chrome = bare_chrome();
        let t = chrome.t;
        let words = |(heading, body): (&'static str, &'static str)| (heading, body.to_owned());
        let (tone, (heading, body)) = match &e {
            Error::IdentityMismatch => (Tone::Error, words(t.identity_mismatch())),
            Error::ElicitationExpired => (Tone::Warning, words(t.expired())),
            Error::ElicitationNotFound => (Tone::Error, words(t.request_not_found())),
            Error::CsrfRejected => (Tone::Warning, words(t.form_expired())),
            Error::StoreUnavailable(_) => (Tone::Error, words(t.unavailable())),
            _ if status.is_server_error() => (Tone::Error, (t.went_wrong(), e.public_detail())),
            _ => (Tone::Warning, (e.title(), e.public_detail())),
        };
        let mut page = MessagePage::new(chrome, tone, heading, &body);
        page.detail = Some(t.error_code(e.kind().as_str()));
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

/// Around every browser route (outside the session layer): refusals that were not made
/// here become pages with their status.
/// - axum's extractor and body-limit rejections (plain text: a bad path, query or form, a
///   form too large, not a form) become a message page with the same status;
/// - the session layer's bare `500`, which it answers when it cannot save the session (the
///   store is down; a first visit with no cookie), becomes the store's `503` page.
pub async fn readable_refusals(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::{StatusCode, header};
    use hyper::body::Body as _;
    let response = next.run(request).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if status == StatusCode::INTERNAL_SERVER_ERROR
        && content_type.is_empty()
        && response.body().size_hint().exact() == Some(0)
    {
        let cause = crate::store::StoreError::Unavailable("session could not be saved".into());
        return PageError(Error::StoreUnavailable(cause)).into_response();
    }
    if !(status.is_client_error() && content_type.starts_with("text/plain")) {
        return response;
    }
    let (heading, body) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "Too much to send",
            "The form was larger than this site accepts. Go back, shorten what you entered and \
             try again.",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "Not a form",
            "This address only takes the forms of this site's own pages. Go back, reload the \
             page and try again.",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => (
            "The form could not be read",
            "The form had fields missing, repeated or of the wrong kind. Go back, reload the \
             page and try again.",
        ),
        _ => (
            "This address could not be read",
            "The link or form was damaged on its way here. Check the address, or go back, \
             reload the page and try again.",
        ),
    };
    let mut page = MessagePage::new(bare_chrome(), Tone::Warning, heading, body);
    page.detail = Some(format!("Error code: {}", status.as_u16()));
    (status, page).into_response()
}

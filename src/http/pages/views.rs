//! The askama templates' data. Each struct is one file under `templates/`; every page
//! carries `Chrome` (signed-in user, CSRF token, dev banner) for `base.html`.

use askama::Template;
use askama_web::WebTemplate;

#[derive(Clone)]
pub struct Chrome {
    pub user: Option<String>,
    /// The signed-in user may use the admin console.
    pub admin: bool,
    pub csrf: String,
    pub dev: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub title: String,
    pub return_to: String,
    /// The single sign-on button's label, when OIDC sign-in is configured.
    pub sso: Option<String>,
    pub dev_login: bool,
    pub error: Option<String>,
}

pub struct ScopeView {
    pub name: String,
    pub description: String,
}

pub struct TermsView {
    pub title: String,
    pub version: String,
    pub text: String,
    pub digest: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub chrome: Chrome,
    pub title: String,
    pub id: String,
    pub service_name: String,
    pub provider_name: String,
    pub kind: String,
    pub subject: String,
    pub scopes: Vec<ScopeView>,
    pub message: Option<String>,
    pub expires_at: String,
    pub expires_in: String,
    pub terms: Option<TermsView>,
    /// For terms the user accepted in an earlier version: what changed.
    pub previous_terms: Option<String>,
    pub approve_label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "api_key.html")]
pub struct ApiKeyPage {
    pub chrome: Chrome,
    pub title: String,
    pub id: String,
    pub service_name: String,
    pub provider_name: String,
    pub header_name: String,
    pub error: Option<String>,
}

#[derive(Clone, Copy)]
pub enum Tone {
    Success,
    Info,
    Warning,
    Error,
}

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

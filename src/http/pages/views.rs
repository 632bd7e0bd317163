//! The askama templates' data. Each struct is one file under `templates/`; every page
//! carries `Chrome` (signed-in user, CSRF token, dev banner) for `base.html`. The chrome
//! and the message page live in `http::render`, shared with the extractors.

use askama::Template;
use askama_web::WebTemplate;

use crate::http::render::Chrome;

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
    /// What the IdP said about the account (name, e-mail), beside the subject.
    pub profile: Option<String>,
    /// The requested scopes the user has not granted this service before (all of them
    /// unless this is an upgrade).
    pub scopes: Vec<ScopeView>,
    /// On an upgrade: the requested scopes an earlier, still standing grant already holds.
    pub granted_scopes: Vec<ScopeView>,
    /// On an upgrade: when the earlier grant this one replaces was made.
    pub replaces: Option<String>,
    /// For OAuth: the host of the upstream's authorization endpoint, where the user signs in.
    pub upstream_host: Option<String>,
    pub message: Option<String>,
    /// The service's message looks like it poses as the broker or fishes for a secret.
    pub message_warning: bool,
    pub expires_at: super::when::When,
    pub expires_in: String,
    pub terms: Option<TermsView>,
    /// For terms the user accepted in an earlier version: what changed.
    pub previous_terms: Option<String>,
    pub approve_label: String,
    /// Scopes (or "this access") an administrator must approve after the user does.
    pub needs_approval: Vec<String>,
    /// How long the grant may live under policy, in words ("until 1 March 2027 at …").
    pub lasts_until: Option<String>,
}

/// After Connect: a same-origin page that sends the browser on to the upstream's
/// authorization endpoint by a plain navigation (`<meta http-equiv="refresh">`, and a
/// link), so the consent page's `form-action 'self'` governs only the POST to the broker
/// and not the redirects the authorization server makes to other origins.
#[derive(Template, WebTemplate)]
#[template(path = "authorize_redirect.html")]
pub struct AuthorizeRedirectPage {
    pub chrome: Chrome,
    pub title: String,
    pub provider_name: String,
    /// The authorization request URL.
    pub url: String,
    /// Its host (and port), said to the user as where they are going.
    pub host: String,
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

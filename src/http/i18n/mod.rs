//! The end-user pages' words in more than one language: a typed message catalogue.
//!
//! Each language is a type implementing [`Catalogue`]; every message is a required
//! method, so a language that lacks one does not compile (no key looked up by string, no
//! fallback discovered at run time). Messages with values take them as arguments; the few
//! with markup return [`Html`], built with every value escaped.
//!
//! The language is the `cb_lang` cookie's (set by the switch on every end-user page,
//! `/lang/{code}`), else the best of `Accept-Language`, else English. The admin console
//! stays English (`/admin` is always [`Lang::En`]).

use std::fmt;

use axum::http::{HeaderMap, header};

use crate::domain::{GrantStatus, ProviderKind};

mod de;
mod en;

/// The cookie the language switch sets.
pub const COOKIE: &str = "cb_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    De,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::De];

    /// The BCP 47 tag, for `lang` attributes, the cookie and `/lang/{code}`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The language's own name, as the switch shows it.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
        }
    }

    pub fn text(self) -> &'static dyn Catalogue {
        match self {
            Lang::En => &en::En,
            Lang::De => &de::De,
        }
    }

    /// The request's language: the switch's cookie, else `Accept-Language`, else English.
    pub fn of_request(headers: &HeaderMap) -> Lang {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .and_then(|(_, value)| Lang::from_code(value));
        cookie.unwrap_or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map_or(Lang::En, Lang::negotiate)
        })
    }

    /// The best supported language of an `Accept-Language` value (by q, then order).
    pub fn negotiate(accept: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::from_code(primary) else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

/// Markup made by a message, its values escaped: render with `|safe`.
pub struct Html(String);

impl fmt::Display for Html {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` escaped for HTML text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Every message of the end-user pages, in one language.
pub trait Catalogue: Sync {
    // base.html
    fn skip_link(&self) -> &'static str;
    fn dev_banner_title(&self) -> &'static str;
    fn dev_banner(&self) -> &'static str;
    fn nav_connections(&self) -> &'static str;
    fn nav_connections_short(&self) -> &'static str;
    fn signed_in_as(&self) -> &'static str;
    fn sign_out(&self) -> &'static str;
    fn footer(&self, product: &str) -> String;
    fn support(&self) -> &'static str;
    fn privacy(&self) -> &'static str;
    fn language(&self) -> &'static str;

    // login.html
    fn sign_in(&self) -> &'static str;
    fn request_waiting(&self) -> &'static str;
    fn sso_intro(&self) -> &'static str;
    fn continue_with(&self, sso: &str) -> String;
    fn dev_sign_in(&self) -> &'static str;
    fn dev_sign_in_warning(&self) -> &'static str;
    fn user_name(&self) -> &'static str;
    fn dev_admin(&self) -> &'static str;
    fn no_sign_in(&self) -> &'static str;
    fn no_sign_in_hint(&self) -> &'static str;

    fn bad_user_name(&self) -> &'static str;

    // authorize_redirect.html: on the way to the provider's sign-in.
    fn continuing_to(&self, provider: &str) -> String;
    fn leaving_for(&self, product: &str, provider: &str, host: &str) -> Html;
    fn continue_to(&self, provider: &str) -> String;
    fn if_nothing_happens(&self) -> &'static str;

    // consent.html
    fn consent_title(&self, service: &str) -> String;
    fn connection_request(&self) -> &'static str;
    fn wants_terms(&self, service: &str, provider: &str) -> Html;
    fn wants_account(&self, service: &str, provider: &str) -> Html;
    fn signed_in_as_html(&self, subject: &str) -> Html;
    fn replaces_title(&self) -> &'static str;
    fn replaces(&self, service: &str, provider: &str, when: &str) -> String;
    fn key_next_page(&self, provider: &str, product: &str) -> String;
    fn key_holder(&self, service: &str, provider: &str) -> String;
    /// `host` empty: not known.
    fn oauth_where(&self, provider: &str, host: &str, product: &str) -> Html;
    fn token_holder(&self, service: &str, provider: &str) -> String;
    fn terms_record(&self, service: &str, product: &str) -> String;
    /// `provider` empty: terms, which no provider ends.
    fn policy_limit(&self, until: &str, provider: &str, service: &str) -> String;
    fn terms_stand(&self) -> &'static str;
    fn access_stands(&self, service: &str, provider: &str) -> String;
    fn approval_title(&self) -> &'static str;
    fn approval(&self, scopes: &[String], service: &str) -> String;
    fn terms_changed(&self) -> &'static str;
    fn terms_version(&self, version: &str) -> String;
    fn terms_full_text(&self, title: &str) -> String;
    fn terms_digest(&self) -> &'static str;
    fn new_permissions(&self) -> &'static str;
    fn requested_permissions(&self) -> &'static str;
    fn no_new_permissions(&self) -> &'static str;
    fn no_permissions(&self) -> &'static str;
    fn already_granted(&self) -> &'static str;
    fn written_by(&self, service: &str, product: &str) -> Html;
    fn message_warning(&self, service: &str, product: &str) -> String;
    fn approve_key(&self) -> &'static str;
    fn approve_terms(&self) -> &'static str;
    fn approve_oauth(&self, provider: &str) -> String;
    fn deny(&self) -> &'static str;
    fn expires_in_minutes(&self, minutes: i64) -> String;
    fn expiry(&self, expires_in: &str, iso: &str, when: &str) -> Html;
    fn revoke_anytime(&self) -> Html;

    // The request's outcome (message.html): heading, then body.
    fn waiting(&self, service: &str, provider: &str, by: &str) -> (&'static str, String);
    fn connected(&self, service: &str, provider: &str) -> (&'static str, String);
    fn declined_heading(&self) -> &'static str;
    fn declined_by_policy(&self, service: &str) -> String;
    fn declined_by_admin(&self, reason: &str, service: &str) -> String;
    fn declined(&self, service: &str) -> String;
    fn expired(&self) -> (&'static str, &'static str);
    fn failed(&self, provider: &str, reason: &str) -> (&'static str, String);

    // connections.html
    fn connections_lede(&self) -> &'static str;
    fn revoked_flash(&self, service: &str, provider: &str) -> String;
    fn connection_not_found(&self) -> (&'static str, &'static str);
    fn active(&self) -> &'static str;
    fn no_active(&self) -> &'static str;
    fn uses_your(&self) -> &'static str;
    fn used_your(&self) -> &'static str;
    fn status(&self, status: &GrantStatus) -> &'static str;
    fn permissions(&self) -> &'static str;
    fn none_requested(&self) -> &'static str;
    fn kind_heading(&self) -> &'static str;
    fn kind(&self, kind: &ProviderKind) -> &'static str;
    fn connected_on(&self) -> &'static str;
    fn last_used(&self) -> &'static str;
    fn never(&self) -> &'static str;
    fn use_count(&self, count: &u64) -> String;
    fn access_ends(&self) -> &'static str;
    fn ends_by_policy(&self, service: &str) -> String;
    fn ends_on_revoke(&self) -> &'static str;
    fn revoke(&self) -> &'static str;
    fn revoke_what(&self, service: &str, provider: &str) -> String;
    fn revoked_heading(&self) -> &'static str;
    fn revoked_on(&self) -> &'static str;

    // Refusals and errors as pages (`render::PageError`): heading, then body.
    fn identity_mismatch(&self) -> (&'static str, &'static str);
    /// A signed-in user opened someone else's consent link.
    fn link_for_another(&self) -> (&'static str, &'static str);
    fn request_not_found(&self) -> (&'static str, &'static str);
    fn form_expired(&self) -> (&'static str, &'static str);
    fn unavailable(&self) -> (&'static str, &'static str);
    /// Heading of any other server error (its body is the error's own public detail).
    fn went_wrong(&self) -> &'static str;
    fn error_code(&self, code: &str) -> String;

    // api_key.html
    fn key_title(&self, provider: &str) -> String;
    fn key_eyebrow(&self, provider: &str) -> String;
    fn key_heading(&self, provider: &str) -> String;
    fn key_needed(&self, service: &str, provider: &str) -> String;
    fn key_label(&self, provider: &str) -> String;
    fn key_hint(&self, product: &str, service: &str, provider: &str, header: &str) -> Html;
    fn save_key(&self) -> &'static str;
    fn cancel(&self) -> &'static str;
    fn key_lasts(&self, service: &str, provider: &str) -> Html;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(Lang::negotiate("de-DE,de;q=0.9,en;q=0.8"), Lang::De);
        assert_eq!(Lang::negotiate("en-GB,de;q=0.5"), Lang::En);
        assert_eq!(Lang::negotiate("fr-FR, de;q=0.7"), Lang::De);
        assert_eq!(Lang::negotiate("fr, it"), Lang::En);
        assert_eq!(Lang::negotiate("de;q=0"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
    }

    #[test]
    fn the_cookie_wins_over_accept_language() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, "de".parse().unwrap());
        assert_eq!(Lang::of_request(&h), Lang::De);
        h.insert(header::COOKIE, "other=1; cb_lang=en".parse().unwrap());
        assert_eq!(Lang::of_request(&h), Lang::En);
        h.insert(header::COOKIE, "cb_lang=xx".parse().unwrap());
        assert_eq!(Lang::of_request(&h), Lang::De, "an unknown code is ignored");
    }

    #[test]
    fn values_in_markup_are_escaped() {
        for lang in Lang::ALL {
            let html = lang.text().written_by("<b>Evil</b>", "A & B").to_string();
            assert!(html.contains("&lt;b&gt;Evil&lt;/b&gt;"), "{html}");
            assert!(html.contains("A &amp; B"), "{html}");
        }
    }
}

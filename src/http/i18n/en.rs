//! English: the pages' original words.

use super::{Catalogue, Html, esc};
use crate::domain::{GrantStatus, ProviderKind};

pub struct En;

impl Catalogue for En {
    fn skip_link(&self) -> &'static str {
        "Skip to main content"
    }
    fn dev_banner_title(&self) -> &'static str {
        "Development mode"
    }
    fn dev_banner(&self) -> &'static str {
        "— sign-in is not verified. Do not use with real credentials."
    }
    fn nav_connections(&self) -> &'static str {
        "Your connections"
    }
    fn nav_connections_short(&self) -> &'static str {
        "Connections"
    }
    fn signed_in_as(&self) -> &'static str {
        "Signed in as"
    }
    fn sign_out(&self) -> &'static str {
        "Sign out"
    }
    fn footer(&self, product: &str) -> String {
        format!("{product} · Only approve requests that you started yourself.")
    }
    fn support(&self) -> &'static str {
        "Help and support"
    }
    fn privacy(&self) -> &'static str {
        "Privacy notice"
    }
    fn language(&self) -> &'static str {
        "Language"
    }

    fn sign_in(&self) -> &'static str {
        "Sign in"
    }
    fn request_waiting(&self) -> &'static str {
        "A connection request is waiting for you. Sign in as the person it was made for to see it; you come back to it after signing in."
    }
    fn sso_intro(&self) -> &'static str {
        "Sign in with your organisation's account to continue."
    }
    fn continue_with(&self, sso: &str) -> String {
        format!("Continue with {sso}")
    }
    fn dev_sign_in(&self) -> &'static str {
        "Development sign-in"
    }
    fn dev_sign_in_warning(&self) -> &'static str {
        "This broker is running with the development sign-in. Any user name is accepted without a password, so it must not be used with real accounts or credentials."
    }
    fn user_name(&self) -> &'static str {
        "User name"
    }
    fn dev_admin(&self) -> &'static str {
        "Sign in as an administrator (opens the admin console; development only)"
    }
    fn no_sign_in(&self) -> &'static str {
        "Sign-in is not configured on this broker."
    }
    fn no_sign_in_hint(&self) -> &'static str {
        "Ask your administrator to set up a sign-in method, then try the link from your assistant again."
    }

    fn bad_user_name(&self) -> &'static str {
        "Enter a user name (up to 255 characters, no control characters)."
    }
    fn continuing_to(&self, provider: &str) -> String {
        format!("Continuing to {provider}")
    }
    fn leaving_for(&self, product: &str, provider: &str, host: &str) -> Html {
        Html(format!(
            "You are leaving {} for {}’s sign-in at <strong>{}</strong>, where you sign in and confirm access. {} then sends you back here.",
            esc(product),
            esc(provider),
            esc(host),
            esc(provider)
        ))
    }
    fn continue_to(&self, provider: &str) -> String {
        format!("Continue to {provider}")
    }
    fn if_nothing_happens(&self) -> &'static str {
        "If nothing happens, use the button."
    }

    fn consent_title(&self, service: &str) -> String {
        format!("{service} requests access")
    }
    fn connection_request(&self) -> &'static str {
        "Connection request"
    }
    fn wants_terms(&self, service: &str, provider: &str) -> Html {
        Html(format!(
            "<strong>{}</strong> asks you to accept {}’s terms",
            esc(service),
            esc(provider)
        ))
    }
    fn wants_account(&self, service: &str, provider: &str) -> Html {
        Html(format!(
            "<strong>{}</strong> wants to use your {} account",
            esc(service),
            esc(provider)
        ))
    }
    fn signed_in_as_html(&self, subject: &str) -> Html {
        Html(format!("Signed in as <strong>{}</strong>", esc(subject)))
    }
    fn replaces_title(&self) -> &'static str {
        "This replaces your earlier connection"
    }
    fn replaces(&self, service: &str, provider: &str, when: &str) -> String {
        format!(
            "You connected {service} to {provider} on {when}. If you approve, the new connection replaces that one; if you deny, the earlier one stays as it is."
        )
    }
    fn key_next_page(&self, provider: &str, product: &str) -> String {
        format!(
            "You will be asked for your {provider} API key on the next page. {product} stores it encrypted."
        )
    }
    fn key_holder(&self, service: &str, provider: &str) -> String {
        format!(
            "{service} receives the key when it makes calls to {provider} for you. Your AI client and the model never see it."
        )
    }
    fn oauth_where(&self, provider: &str, host: &str, product: &str) -> Html {
        let at = Some(host)
            .filter(|h| !h.is_empty())
            .map_or_else(String::new, |h| {
                format!(" at <strong class=\"facts__host\">{}</strong>", esc(h))
            });
        Html(format!(
            "{} asks you to sign in and confirm{at}. {} stores the access it gives, encrypted.",
            esc(provider),
            esc(product)
        ))
    }
    fn token_holder(&self, service: &str, provider: &str) -> String {
        format!(
            "{service} receives an access token when it makes calls to {provider} for you. Your AI client and the model never see it."
        )
    }
    fn terms_record(&self, service: &str, product: &str) -> String {
        format!(
            "{product} records that you accepted this version. {service} receives that record (the version and a digest of the text)."
        )
    }
    fn policy_limit(&self, until: &str, provider: &str, service: &str) -> String {
        let or_provider = Some(provider)
            .filter(|p| !p.is_empty())
            .map_or_else(String::new, |p| format!(" or {p} ends it"));
        format!(
            "Your organisation's policy limits this access: it ends {until}, or sooner if you or an administrator revoke it{or_provider}. {service} will then ask you again."
        )
    }
    fn terms_stand(&self) -> &'static str {
        "Your acceptance stands until you or an administrator revoke it, or the terms change (you are then asked again)."
    }
    fn access_stands(&self, service: &str, provider: &str) -> String {
        format!(
            "{service} keeps this access until you or an administrator revoke it, or {provider} ends it."
        )
    }
    fn approval_title(&self) -> &'static str {
        "An administrator approves this too"
    }
    fn approval(&self, scopes: &[String], service: &str) -> String {
        let scopes = scopes.join(", ");
        format!(
            "Your organisation's policy requires an administrator of this consent broker to approve {scopes} after you do. Until they approve, {service} cannot use any of this access; you do not need to do anything more, and {service} is told of their decision."
        )
    }
    fn terms_changed(&self) -> &'static str {
        "The terms have changed"
    }
    fn terms_version(&self, version: &str) -> String {
        format!("version {version}")
    }
    fn terms_full_text(&self, title: &str) -> String {
        format!("{title} full text")
    }
    fn terms_digest(&self) -> &'static str {
        "Document digest:"
    }
    fn new_permissions(&self) -> &'static str {
        "New permissions"
    }
    fn requested_permissions(&self) -> &'static str {
        "Requested permissions"
    }
    fn no_new_permissions(&self) -> &'static str {
        "No new permissions: only the ones you already granted."
    }
    fn no_permissions(&self) -> &'static str {
        "No specific permissions requested."
    }
    fn already_granted(&self) -> &'static str {
        "Already granted, kept"
    }
    fn written_by(&self, service: &str, product: &str) -> Html {
        Html(format!(
            "Written by <strong>{}</strong>, not by {}:",
            esc(service),
            esc(product)
        ))
    }
    fn message_warning(&self, service: &str, product: &str) -> String {
        format!(
            "Be careful: this text links elsewhere, names {product}, or mentions a key, password or code. It comes from {service}. Do not follow its links or send anyone a secret because of it."
        )
    }
    fn approve_key(&self) -> &'static str {
        "Continue"
    }
    fn approve_terms(&self) -> &'static str {
        "Accept terms"
    }
    fn approve_oauth(&self, provider: &str) -> String {
        format!("Connect {provider}")
    }
    fn deny(&self) -> &'static str {
        "Deny"
    }
    fn expires_in_minutes(&self, minutes: i64) -> String {
        if minutes == 1 {
            "in 1 minute".to_owned()
        } else {
            format!("in {minutes} minutes")
        }
    }
    fn expiry(&self, expires_in: &str, iso: &str, when: &str) -> Html {
        Html(format!(
            "This link expires {}, at <time datetime=\"{}\">{}</time>. That is only the time you have to answer; it is not how long access lasts.",
            esc(expires_in),
            esc(iso),
            esc(when)
        ))
    }
    fn revoke_anytime(&self) -> Html {
        Html(
            "You can revoke this at any time from <a href=\"/connections\">Your connections</a>."
                .to_owned(),
        )
    }

    fn waiting(&self, service: &str, provider: &str, by: &str) -> (&'static str, String) {
        (
            "Waiting for an administrator",
            format!(
                "You approved. Your organisation's policy also requires an administrator of this \
                 consent broker to approve before {service} can use your {provider} access; until then it cannot. \
                 You do not need to do anything more. If no administrator decides by {by}, the \
                 request lapses and {service} will ask you again."
            ),
        )
    }
    fn connected(&self, service: &str, provider: &str) -> (&'static str, String) {
        (
            "Connected",
            format!(
                "{service} can now use your {provider} access. You can close this tab and return to your assistant."
            ),
        )
    }
    fn declined_heading(&self) -> &'static str {
        "Request declined"
    }
    fn declined_by_policy(&self, service: &str) -> String {
        format!(
            "Your organisation's policy does not let you grant this. Nothing was shared \
             with {service}; you can close this tab."
        )
    }
    fn declined_by_admin(&self, reason: &str, service: &str) -> String {
        format!(
            "An administrator refused this request ({reason}). Nothing was shared with {service}; \
             you can close this tab."
        )
    }
    fn declined(&self, service: &str) -> String {
        format!("Nothing was shared with {service}. You can close this tab.")
    }
    fn expired(&self) -> (&'static str, &'static str) {
        (
            "This request has expired",
            "Ask your assistant to start again; it will send a new link.",
        )
    }
    fn failed(&self, provider: &str, reason: &str) -> (&'static str, String) {
        (
            "The connection failed",
            format!(
                "{provider} did not complete the connection (reason: {reason}). Nothing was stored. \
                 Ask your assistant to start again."
            ),
        )
    }

    fn connections_lede(&self) -> &'static str {
        "Services you allowed to act for you, and what they may use. Revoking takes effect at once: the service can no longer use that access."
    }
    fn revoked_flash(&self, service: &str, provider: &str) -> String {
        format!("Revoked: {service} can no longer use your {provider} access.")
    }
    fn connection_not_found(&self) -> (&'static str, &'static str) {
        (
            "Connection not found",
            "There is no such connection among yours. It may have been removed; see Your connections.",
        )
    }
    fn active(&self) -> &'static str {
        "Active"
    }
    fn no_active(&self) -> &'static str {
        "You have no active connections."
    }
    fn uses_your(&self) -> &'static str {
        " uses your "
    }
    fn used_your(&self) -> &'static str {
        " used your "
    }
    fn status(&self, status: &GrantStatus) -> &'static str {
        match status {
            GrantStatus::Active => "Active",
            GrantStatus::Revoked => "Revoked",
            GrantStatus::NeedsReauth => "Needs sign-in again",
            GrantStatus::AwaitingApproval => "Waiting for an administrator",
        }
    }
    fn permissions(&self) -> &'static str {
        "Permissions"
    }
    fn none_requested(&self) -> &'static str {
        "none requested"
    }
    fn kind_heading(&self) -> &'static str {
        "Type"
    }
    fn kind(&self, kind: &ProviderKind) -> &'static str {
        match kind {
            ProviderKind::Oauth2 => "OAuth 2",
            ProviderKind::ApiKey => "API key",
            ProviderKind::Terms => "Terms",
        }
    }
    fn connected_on(&self) -> &'static str {
        "Connected"
    }
    fn last_used(&self) -> &'static str {
        "Last used"
    }
    fn never(&self) -> &'static str {
        "never"
    }
    fn use_count(&self, count: &u64) -> String {
        format!("({count} uses)")
    }
    fn access_ends(&self) -> &'static str {
        "Access ends"
    }
    fn ends_by_policy(&self, service: &str) -> String {
        format!("(your organisation's policy; {service} will then ask you again)")
    }
    fn ends_on_revoke(&self) -> &'static str {
        "when you or an administrator revoke it"
    }
    fn revoke(&self) -> &'static str {
        "Revoke"
    }
    fn revoke_what(&self, service: &str, provider: &str) -> String {
        format!(" {service}'s access to {provider}")
    }
    fn revoked_heading(&self) -> &'static str {
        "Revoked"
    }
    fn revoked_on(&self) -> &'static str {
        "revoked"
    }

    fn identity_mismatch(&self) -> (&'static str, &'static str) {
        (
            "This link is for another account",
            "You are signed in as someone other than the person this request was made for. \
             Nothing was shared. If you did not expect this link, close this tab; if it is yours, \
             sign out and sign in with the right account.",
        )
    }
    fn link_for_another(&self) -> (&'static str, &'static str) {
        (
            "This link is for another account",
            "You are signed in as someone other than the person this request was made for, so nothing \
             was shown or shared. If the link is yours, sign out and sign in with the right account; \
             if you did not expect it, close this tab.",
        )
    }
    fn request_not_found(&self) -> (&'static str, &'static str) {
        ("Request not found", "No such elicitation.")
    }
    fn form_expired(&self) -> (&'static str, &'static str) {
        (
            "Please try again",
            "The form expired or did not come from this site; go back, reload and try again.",
        )
    }
    fn unavailable(&self) -> (&'static str, &'static str) {
        (
            "Temporarily unavailable",
            "The broker's store is unavailable; try again shortly.",
        )
    }
    fn went_wrong(&self) -> &'static str {
        "Something went wrong"
    }
    fn error_code(&self, code: &str) -> String {
        format!("Error code: {code}")
    }

    fn key_title(&self, provider: &str) -> String {
        format!("{provider} API key")
    }
    fn key_eyebrow(&self, provider: &str) -> String {
        format!("Connect {provider}")
    }
    fn key_heading(&self, provider: &str) -> String {
        format!("Enter your {provider} API key")
    }
    fn key_needed(&self, service: &str, provider: &str) -> String {
        format!("{service} needs an API key to make calls to {provider} for you.")
    }
    fn key_label(&self, provider: &str) -> String {
        format!("{provider} API key")
    }
    fn key_hint(&self, product: &str, service: &str, provider: &str, header: &str) -> Html {
        let sent = if header.is_empty() {
            String::new()
        } else {
            format!(" (sent in the <code>{}</code> header)", esc(header))
        };
        Html(format!(
            "{} stores the key encrypted. {} receives it when it makes calls to {} for you{sent}. Your AI client and the model never see it.",
            esc(product),
            esc(service),
            esc(provider)
        ))
    }
    fn save_key(&self) -> &'static str {
        "Save key"
    }
    fn cancel(&self) -> &'static str {
        "Cancel"
    }
    fn key_lasts(&self, service: &str, provider: &str) -> Html {
        Html(format!(
            "{} keeps this access until you or an administrator revoke it, or {} stops accepting the key. You can remove it at any time from <a href=\"/connections\">Your connections</a>.",
            esc(service),
            esc(provider)
        ))
    }
}

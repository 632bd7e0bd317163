//! An `oauth2` provider entry: its keys as written, the preset it may start from, and its
//! validation into [`OAuthProvider`]. Operator keys override the preset's, key by key
//! (`authorize_params` and `token_headers` entry by entry); every refusal names the field.

use std::collections::BTreeSet;

use secrecy::SecretString;
use url::Url;

use super::presets;
use super::problems::{Problems, check_http_url, is_loopback, secret};
use super::{OAuth2Config, RevocationConfig};
use crate::domain::Scope;
use crate::upstream::{
    MemberPath, Quirks, RESERVED_AUTHORIZE_PARAMS, Revocation, RevocationAuth, RevocationRequest,
};

/// An upstream OAuth 2 authorization server the broker is a confidential client of.
#[derive(Debug, Clone)]
pub struct OAuthProvider {
    pub issuer: Option<Url>,
    /// Explicit endpoints; when absent they come from discovery at `issuer`.
    pub endpoints: Option<OAuthEndpoints>,
    /// The RFC 7009 endpoint when configured (it wins over a discovered one).
    pub revocation_endpoint: Option<Url>,
    pub client_id: String,
    pub client_secret: SecretString,
    pub resource: Option<Url>,
    pub quirks: Quirks,
}

#[derive(Debug, Clone)]
pub struct OAuthEndpoints {
    pub authorization: Url,
    pub token: Url,
}

/// Fills every key the operator left out from `preset`; names the keys it filled.
fn overlay(mut own: OAuth2Config, preset: OAuth2Config) -> (OAuth2Config, Vec<&'static str>) {
    let mut filled = Vec::new();
    macro_rules! fill {
        ($($field:ident),*) => {$(
            if own.$field.is_none() && preset.$field.is_some() {
                own.$field = preset.$field;
                filled.push(stringify!($field));
            }
        )*};
    }
    fill!(
        issuer,
        authorization_endpoint,
        token_endpoint,
        revocation_endpoint,
        scope_param,
        scope_separator,
        extra_scopes,
        granted_scopes,
        client_auth,
        token_request_format,
        token_path,
        refresh_token_path,
        metadata,
        error_field,
        ok_field,
        reauthorize_errors,
        default_token_lifetime_seconds,
        revocation
    );
    macro_rules! merge {
        ($($field:ident),*) => {$(
            if !preset.$field.is_empty() {
                filled.push(stringify!($field));
            }
            let mut merged = preset.$field;
            merged.append(&mut own.$field);
            own.$field = merged;
        )*};
    }
    merge!(authorize_params, token_headers);
    (own, filled)
}

/// Validates one `oauth2` entry (`at` names its fields); notes what a preset filled in.
pub(super) fn oauth_provider(
    own: &OAuth2Config,
    at: &dyn Fn(&str) -> String,
    errors: &mut Problems,
) -> OAuthProvider {
    let (c, preset) = match own.preset.as_deref() {
        None => {
            for (field, value) in [("tenant", &own.tenant), ("domain", &own.domain)] {
                if value.is_some() {
                    errors.push(format!("{}: only a preset uses it", at(field)));
                }
            }
            (own.clone(), None)
        }
        Some(name) => match presets::find(name) {
            None => {
                errors.push(format!(
                    "{}: unknown preset `{name}`; `consent-broker providers` lists them",
                    at("preset")
                ));
                (own.clone(), None)
            }
            Some(preset) => match preset.resolve(own, at) {
                Err(problems) => {
                    for p in problems {
                        errors.push(p);
                    }
                    (own.clone(), None)
                }
                Ok(resolved) => {
                    let (c, filled) = overlay(own.clone(), resolved);
                    if !filled.is_empty() {
                        errors.notes.push(format!(
                            "note: {} (`{}`) fills in {}",
                            at("preset"),
                            preset.key,
                            filled.join(", ")
                        ));
                    }
                    (c, Some(preset))
                }
            },
        },
    };
    let endpoints = match (&c.authorization_endpoint, &c.token_endpoint) {
        (Some(authorization), Some(token)) => Some(OAuthEndpoints {
            authorization: authorization.clone(),
            token: token.clone(),
        }),
        (None, None) if c.issuer.is_some() => None,
        // A preset that failed is the problem already named.
        _ if c.preset.is_some() && preset.is_none() => None,
        _ => {
            errors.push(format!(
                "{}: give `issuer` (discovery) or both `authorization_endpoint` and `token_endpoint`",
                at("issuer")
            ));
            None
        }
    };
    for (field, url) in [
        ("issuer", &c.issuer),
        ("authorization_endpoint", &c.authorization_endpoint),
        ("token_endpoint", &c.token_endpoint),
        ("revocation_endpoint", &c.revocation_endpoint),
        ("resource", &c.resource),
    ] {
        if let Some(url) = url {
            check_http_url(url, &at(field), errors);
            if field != "resource" && url.scheme() == "http" && !is_loopback(url) {
                errors.push(format!(
                    "{}: plain http beyond loopback would send codes and tokens in clear; use https",
                    at(field)
                ));
            }
        }
    }
    if let (Some(preset), Some(_)) = (&preset, &c.resource)
        && let Some(why) = &preset.meta.refuses_resource
    {
        errors.push(format!(
            "{}: {} refuses RFC 8707 `resource` ({why}); remove it",
            at("resource"),
            preset.meta.name
        ));
    }
    if c.client_id.is_empty() {
        errors.push(format!("{}: must not be empty", at("client_id")));
    }
    let quirks = quirks(&c, at, errors);
    OAuthProvider {
        issuer: c.issuer.clone(),
        endpoints,
        revocation_endpoint: match quirks.revocation {
            Revocation::Rfc7009 => c.revocation_endpoint.clone(),
            _ => None,
        },
        client_id: c.client_id.clone(),
        client_secret: secret(
            &c.client_secret,
            &c.client_secret_file,
            &at("client_secret"),
            errors,
        ),
        resource: c.resource.clone(),
        quirks,
    }
}

/// The name users see: the configured one, else the preset's.
pub(super) fn display_name(
    c: &OAuth2Config,
    at: &dyn Fn(&str) -> String,
    errors: &mut Problems,
) -> String {
    if !c.name.trim().is_empty() {
        return c.name.clone();
    }
    match c.preset.as_deref().and_then(presets::find) {
        Some(preset) => preset.meta.name,
        None => {
            errors.push(format!("{}: required (the name users see)", at("name")));
            String::new()
        }
    }
}

/// True for a name usable as a JSON member or URL parameter name.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn quirks(c: &OAuth2Config, at: &dyn Fn(&str) -> String, errors: &mut Problems) -> Quirks {
    let standard = Quirks::default();
    let path = |field: &str, raw: &Option<String>, errors: &mut Problems| match raw {
        None => MemberPath::default(),
        Some(raw) => MemberPath::parse(raw).unwrap_or_else(|why| {
            errors.push(format!("{}: {why}", at(field)));
            MemberPath::default()
        }),
    };
    let name = |field: &str, raw: &Option<String>, default: &str, errors: &mut Problems| {
        let value = raw.clone().unwrap_or_else(|| default.to_owned());
        if !is_name(&value) {
            errors.push(format!(
                "{}: `{value}` is not a member name (letters, digits, `_`, `-`)",
                at(field)
            ));
        }
        value
    };
    for key in c.authorize_params.keys() {
        if RESERVED_AUTHORIZE_PARAMS.contains(&key.as_str()) || !is_name(key) {
            errors.push(format!(
                "{}: `{key}` is set by the broker itself or not a parameter name",
                at("authorize_params")
            ));
        }
    }
    let scope_param = name("scope_param", &c.scope_param, "scope", errors);
    if scope_param != "scope" && RESERVED_AUTHORIZE_PARAMS.contains(&scope_param.as_str()) {
        errors.push(format!(
            "{}: `{scope_param}` is set by the broker itself",
            at("scope_param")
        ));
    }
    let extra_scopes = c.extra_scopes.clone().unwrap_or_default();
    for s in &extra_scopes {
        if Scope::parse(s.as_str()).is_err() {
            errors.push(format!(
                "{}: `{s}` is not a valid scope",
                at("extra_scopes")
            ));
        }
    }
    for (header, value) in &c.token_headers {
        let reserved = [
            "authorization",
            "content-type",
            "content-length",
            "host",
            "accept",
        ]
        .contains(&header.to_ascii_lowercase().as_str());
        if reserved
            || axum::http::HeaderName::try_from(header.as_str()).is_err()
            || axum::http::HeaderValue::try_from(value.as_str()).is_err()
        {
            errors.push(format!(
                "{}: `{header}` is set by the broker itself or not a valid header",
                at("token_headers")
            ));
        }
    }
    let token_path = path("token_path", &c.token_path, errors);
    let refresh_token_path = match &c.refresh_token_path {
        None => token_path.clone(),
        raw => path("refresh_token_path", raw, errors),
    };
    let mut metadata = Vec::new();
    for raw in c.metadata.iter().flatten() {
        if raw.is_empty() {
            errors.push(format!(
                "{}: an empty path names the whole answer",
                at("metadata")
            ));
            continue;
        }
        match MemberPath::parse(raw) {
            Ok(p) if p.names_a_secret() => errors.push(format!(
                "{}: `{raw}` names a secret; metadata is shown to services and admins",
                at("metadata")
            )),
            Ok(p) => metadata.push(p),
            Err(why) => errors.push(format!("{}: `{raw}` {why}", at("metadata"))),
        }
    }
    let error_field = name("error_field", &c.error_field, "error", errors);
    let ok_field = c
        .ok_field
        .as_ref()
        .map(|_| name("ok_field", &c.ok_field, "", errors));
    let reauthorize_errors: BTreeSet<String> = match &c.reauthorize_errors {
        None => standard.reauthorize_errors.clone(),
        Some(list) => list.iter().cloned().collect(),
    };
    if reauthorize_errors.iter().any(|e| !is_name(e)) {
        errors.push(format!(
            "{}: error codes are letters, digits, `_` and `-`",
            at("reauthorize_errors")
        ));
    }
    if let Some(s) = c.default_token_lifetime_seconds
        && !(60..=30 * 86_400).contains(&s)
    {
        errors.push(format!(
            "{}: must be between 60 and 2592000",
            at("default_token_lifetime_seconds")
        ));
    }
    Quirks {
        authorize_params: c.authorize_params.clone(),
        scope_param,
        scope_separator: c.scope_separator.unwrap_or(standard.scope_separator),
        extra_scopes,
        granted_scopes: c.granted_scopes.unwrap_or(standard.granted_scopes),
        client_auth: c.client_auth.unwrap_or(standard.client_auth),
        token_format: c.token_request_format.unwrap_or(standard.token_format),
        token_headers: c.token_headers.clone(),
        token_path,
        refresh_token_path,
        metadata,
        error_field,
        ok_field,
        reauthorize_errors,
        default_token_lifetime_seconds: c.default_token_lifetime_seconds,
        revocation: revocation(c, at, errors),
    }
}

fn revocation(c: &OAuth2Config, at: &dyn Fn(&str) -> String, errors: &mut Problems) -> Revocation {
    let Some(RevocationConfig::Request {
        method,
        url,
        auth,
        token,
        headers,
        body_format,
        body,
        done_statuses,
        gone_statuses,
        gone_errors,
    }) = &c.revocation
    else {
        return match c.revocation {
            Some(RevocationConfig::None) => {
                if c.revocation_endpoint.is_some() {
                    errors.push(format!(
                        "{}: this provider has no revocation (`revocation.style = \"none\"`)",
                        at("revocation_endpoint")
                    ));
                }
                Revocation::None
            }
            _ => Revocation::Rfc7009,
        };
    };
    // An operator's `revocation_endpoint` points the declared request elsewhere (a proxy,
    // a test double); its placeholders survive URL parsing percent-encoded.
    let url = match &c.revocation_endpoint {
        Some(u) => u
            .as_str()
            .replace("%7Bclient_id%7D", "{client_id}")
            .replace("%7Btoken%7D", "{token}"),
        None => url.clone(),
    };
    match Url::parse(&url.replace("{client_id}", "x").replace("{token}", "x")) {
        Ok(u) => {
            check_http_url(&u, &at("revocation.url"), errors);
            if u.scheme() == "http" && !is_loopback(&u) {
                errors.push(format!(
                    "{}: plain http beyond loopback would send tokens in clear; use https",
                    at("revocation.url")
                ));
            }
        }
        Err(e) => errors.push(format!("{}: not a URL: {e}", at("revocation.url"))),
    }
    if done_statuses.is_empty()
        || done_statuses
            .iter()
            .chain(gone_statuses)
            .any(|s| !(100..=599).contains(s))
    {
        errors.push(format!(
            "{}: list at least one HTTP status (100-599)",
            at("revocation.done_statuses")
        ));
    }
    let body = match (body_format, body.is_empty()) {
        (Some(format), _) => Some((*format, body.clone())),
        (None, true) => None,
        (None, false) => {
            errors.push(format!(
                "{}: a body needs `body_format` (form or json)",
                at("revocation.body")
            ));
            None
        }
    };
    if *auth == RevocationAuth::Post && body.is_none() {
        errors.push(format!(
            "{}: `post` puts the client id and secret in the body; set `body_format`",
            at("revocation.auth")
        ));
    }
    for header in headers.keys() {
        if axum::http::HeaderName::try_from(header.as_str()).is_err()
            || header.eq_ignore_ascii_case("authorization")
        {
            errors.push(format!(
                "{}: `{header}` is set by the broker itself or not a header name",
                at("revocation.headers")
            ));
        }
    }
    Revocation::Request(RevocationRequest {
        method: *method,
        url,
        auth: *auth,
        token: *token,
        headers: headers.clone(),
        body,
        done_statuses: done_statuses.clone(),
        gone_statuses: gone_statuses.clone(),
        gone_errors: gone_errors.iter().cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    //! Presets and provider keys as an operator writes them: what a preset fills in, what
    //! the operator overrides, and every refusal naming its field and the reason.

    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{Config, ProviderSpec, Settings};
    use crate::upstream::{ClientAuth, GrantedScopes};

    fn provider(keys: &str) -> Result<(OAuthProvider, Vec<String>), Vec<String>> {
        let toml = format!(
            "[[providers]]\nkind = \"oauth2\"\nid = \"up\"\nname = \"Up\"\n\
             client_id = \"c\"\nclient_secret = \"s\"\n{keys}"
        );
        let config: Config = toml::from_str(&toml).expect("the test's TOML parses");
        let (settings, notes) = Settings::check(&config, false).map_err(|e| e.0)?;
        let provider = settings
            .providers
            .into_values()
            .next()
            .expect("one provider");
        let ProviderSpec::Oauth2(spec) = provider.spec else {
            panic!("not oauth2");
        };
        Ok((*spec, notes))
    }

    #[test]
    fn a_preset_with_a_client_is_a_working_provider_and_check_config_says_what_it_filled() {
        let (github, notes) = provider("preset = \"github\"").unwrap();
        let endpoints = github.endpoints.expect("explicit endpoints");
        assert_eq!(
            endpoints.token.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        assert_eq!(github.quirks.client_auth, ClientAuth::Post);
        assert!(matches!(
            &github.quirks.revocation,
            Revocation::Request(r) if r.url == "https://api.github.com/applications/{client_id}/grant"
        ));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "note: providers[0].preset (`github`) fills in authorization_endpoint, token_endpoint"
            ),
            "{notes:?}"
        );

        let (entra, _) =
            provider("preset = \"entra\"\ntenant = \"contoso.onmicrosoft.com\"").unwrap();
        assert_eq!(
            entra.endpoints.unwrap().authorization.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
        );
        assert!(matches!(entra.quirks.revocation, Revocation::None));

        let (gitlab, _) = provider("preset = \"gitlab\"").unwrap();
        assert_eq!(
            gitlab.revocation_endpoint.unwrap().as_str(),
            "https://gitlab.com/oauth/revoke",
            "the default domain"
        );
    }

    #[test]
    fn the_name_defaults_to_the_presets_and_is_required_without_one() {
        let toml = |keys: &str| {
            format!(
                "[[providers]]\nkind = \"oauth2\"\nid = \"up\"\nclient_id = \"c\"\n\
                 client_secret = \"s\"\n{keys}"
            )
        };
        let config: Config = toml::from_str(&toml("preset = \"slack\"")).unwrap();
        let settings = Settings::from_config(&config, false).unwrap();
        let provider = settings.providers.values().next().unwrap();
        assert_eq!(provider.name, "Slack (user token)");
        let config: Config = toml::from_str(&toml("issuer = \"https://as.example\"")).unwrap();
        assert_eq!(
            Settings::from_config(&config, false).unwrap_err().0,
            ["providers[0].name: required (the name users see)"]
        );
    }

    #[test]
    fn operator_keys_override_the_preset_key_by_key() {
        let (google, _) = provider(
            "preset = \"google\"\nclient_auth = \"basic\"\n\
             authorize_params = { prompt = \"select_account\" }\n\
             revocation_endpoint = \"http://127.0.0.1:9/revoke\"",
        )
        .unwrap();
        assert_eq!(google.quirks.client_auth, ClientAuth::Basic);
        assert_eq!(
            google.quirks.authorize_params,
            BTreeMap::from([
                ("access_type".to_owned(), "offline".to_owned()),
                ("prompt".to_owned(), "select_account".to_owned()),
            ])
        );
        assert_eq!(google.quirks.granted_scopes, GrantedScopes::Union);
        assert!(matches!(
            &google.quirks.revocation,
            Revocation::Request(r) if r.url == "http://127.0.0.1:9/revoke"
        ));
        let (hubspot, _) = provider(
            "preset = \"hubspot\"\nrevocation_endpoint = \"http://127.0.0.1:9/rt/{token}\"",
        )
        .unwrap();
        assert!(matches!(
            &hubspot.quirks.revocation,
            Revocation::Request(r) if r.url == "http://127.0.0.1:9/rt/{token}"
        ));
    }

    #[test]
    fn every_refusal_names_the_field_and_the_reason() {
        let cases = [
            (
                "preset = \"gitbub\"",
                "providers[0].preset: unknown preset `gitbub`; `consent-broker providers` lists them",
            ),
            (
                "preset = \"entra\"",
                "providers[0].tenant: the `entra` preset needs it (your directory's tenant id or domain)",
            ),
            (
                "preset = \"github\"\ntenant = \"x\"",
                "providers[0].tenant: the `github` preset does not use it",
            ),
            (
                "preset = \"salesforce\"\ndomain = \"evil.example/x?\"",
                "providers[0].domain: `evil.example/x?` is not a host name (letters, digits, `-`, `.`)",
            ),
            (
                "issuer = \"https://as.example\"\ndomain = \"x\"",
                "providers[0].domain: only a preset uses it",
            ),
            (
                "preset = \"entra\"\ntenant = \"t\"\nresource = \"https://graph.microsoft.com\"",
                "providers[0].resource: Microsoft Entra ID refuses RFC 8707 `resource` \
                 (the v2.0 endpoint answers AADSTS901002); remove it",
            ),
            (
                "preset = \"entra\"\ntenant = \"t\"\nrevocation_endpoint = \"https://x.example/r\"",
                "providers[0].revocation_endpoint: this provider has no revocation \
                 (`revocation.style = \"none\"`)",
            ),
            (
                "preset = \"slack\"\nmetadata = [\"authed_user.access_token\"]",
                "providers[0].metadata: `authed_user.access_token` names a secret; metadata is \
                 shown to services and admins",
            ),
            (
                "issuer = \"https://as.example\"\nauthorize_params = { state = \"fixed\" }",
                "providers[0].authorize_params: `state` is set by the broker itself or not a \
                 parameter name",
            ),
            (
                "issuer = \"https://as.example\"\ntoken_headers = { Authorization = \"Basic x\" }",
                "providers[0].token_headers: `Authorization` is set by the broker itself or not \
                 a valid header",
            ),
            (
                "issuer = \"https://as.example\"\nscope_param = \"redirect_uri\"",
                "providers[0].scope_param: `redirect_uri` is set by the broker itself",
            ),
            (
                "issuer = \"https://as.example\"\ntoken_path = \"a..b\"",
                "providers[0].token_path: must be member names (letters, digits, `_`, `-`) \
                 joined by dots",
            ),
            (
                "issuer = \"https://as.example\"\ndefault_token_lifetime_seconds = 5",
                "providers[0].default_token_lifetime_seconds: must be between 60 and 2592000",
            ),
            (
                "authorization_endpoint = \"http://as.example/a\"\n\
                 token_endpoint = \"https://as.example/t\"",
                "providers[0].authorization_endpoint: plain http beyond loopback would send \
                 codes and tokens in clear; use https",
            ),
            (
                "issuer = \"https://as.example\"\n[providers.revocation]\nstyle = \"request\"\n\
                 method = \"POST\"\nurl = \"https://as.example/revoke\"\nauth = \"post\"\n\
                 token = \"access\"\ndone_statuses = [200]",
                "providers[0].revocation.auth: `post` puts the client id and secret in the \
                 body; set `body_format`",
            ),
            (
                "issuer = \"https://as.example\"\n[providers.revocation]\nstyle = \"request\"\n\
                 method = \"DELETE\"\nurl = \"https://as.example/revoke\"\nauth = \"none\"\n\
                 token = \"access\"\ndone_statuses = []",
                "providers[0].revocation.done_statuses: list at least one HTTP status (100-599)",
            ),
        ];
        for (keys, problem) in cases {
            assert_eq!(
                provider(keys).err(),
                Some(vec![problem.to_owned()]),
                "{keys}"
            );
        }
    }
}

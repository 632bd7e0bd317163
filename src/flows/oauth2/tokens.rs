//! The token endpoint: code exchange and refresh, sent and read the provider's way.
//!
//! - The client authenticates as the provider wants (`client_auth`), in a form or JSON
//!   body, with its extra headers; `Accept: application/json` always (GitHub answers form
//!   encoding without it).
//! - An answer is an error when its `ok_field` is false (Slack answers HTTP 200), when it
//!   carries an error code and no access token (GitHub answers HTTP 200), or when its
//!   status is not 2xx. The code is read at the provider's `error_field`, else at `error`.
//!   Codes in `reauthorize_errors` mean the user must authorize again; 5xx, 429 and
//!   transport failures are retryable; everything else is a final refusal.
//! - The tokens are read at `token_path` (`refresh_token_path` for refreshes); the
//!   granted scopes follow `granted_scopes`; a missing `expires_in` means the provider's
//!   `default_token_lifetime_seconds`, or no expiry.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use url::Url;

use super::AsMetadata;
use crate::config::settings::OAuthProvider;
use crate::domain::{Credential, Scopes, Timestamp};
use crate::upstream::{BodyFormat, ClientAuth, GrantedScopes, MemberPath, Quirks, echoed_scopes};
use secrecy::ExposeSecret;

/// Why a token request did not produce tokens.
#[derive(Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// The provider no longer honours the grant (one of its `reauthorize_errors`).
    Reauthorize(String),
    /// The provider refused (any other error code): final for this request.
    Refused(String),
    /// Transport failure, timeout, 5xx or 429: the caller may try again.
    Unavailable,
}

/// A token answer: the credential, and the members kept as grant metadata.
pub struct Tokens {
    pub credential: Credential,
    pub metadata: BTreeMap<String, Value>,
}

/// Trades the authorization code for tokens, obtained at `now`; `requested` is what the
/// user approved.
#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    provider: &OAuthProvider,
    metadata: &AsMetadata,
    redirect: &Url,
    code: &str,
    verifier: &str,
    requested: &Scopes,
    http: &reqwest::Client,
    now: Timestamp,
) -> Result<Tokens, ExchangeError> {
    let params = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect.to_string()),
        ("code_verifier", verifier.to_owned()),
    ];
    let answer = call(provider, metadata, params, http).await?;
    let quirks = &provider.quirks;
    let credential = credential(quirks, &quirks.token_path, &answer, requested, None, now)?;
    let metadata = quirks
        .metadata
        .iter()
        .filter_map(|path| {
            let value = path.get(&answer)?;
            matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
                .then(|| (path.to_string(), value.clone()))
        })
        .collect();
    Ok(Tokens {
        credential,
        metadata,
    })
}

/// Exchanges a refresh token for new tokens (RFC 6749 §6), obtained at `now`, honouring
/// rotation; `scopes` are the grant's.
pub async fn refresh(
    provider: &OAuthProvider,
    metadata: &AsMetadata,
    refresh_token: &str,
    scopes: &Scopes,
    http: &reqwest::Client,
    now: Timestamp,
) -> Result<Credential, ExchangeError> {
    let params = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
    ];
    let answer = call(provider, metadata, params, http).await?;
    let quirks = &provider.quirks;
    credential(
        quirks,
        &quirks.refresh_token_path,
        &answer,
        scopes,
        Some(refresh_token),
        now,
    )
}

/// Sends one token request; the answer's JSON when it holds tokens.
async fn call(
    provider: &OAuthProvider,
    metadata: &AsMetadata,
    mut params: Vec<(&'static str, String)>,
    http: &reqwest::Client,
) -> Result<Value, ExchangeError> {
    let quirks = &provider.quirks;
    if let Some(resource) = &provider.resource {
        params.push(("resource", resource.to_string()));
    }
    let mut request = http
        .post(metadata.token_endpoint.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    match quirks.client_auth {
        ClientAuth::Basic => {
            request = request.basic_auth(
                form_encoded(&provider.client_id),
                Some(form_encoded(provider.client_secret.expose_secret())),
            );
        }
        ClientAuth::Post => {
            params.push(("client_id", provider.client_id.clone()));
            params.push((
                "client_secret",
                provider.client_secret.expose_secret().to_owned(),
            ));
        }
    }
    for (name, value) in &quirks.token_headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request = match quirks.token_format {
        BodyFormat::Form => request.form(&params),
        BodyFormat::Json => request.json(&params.into_iter().collect::<BTreeMap<_, _>>()),
    };
    let response = request
        .send()
        .await
        .map_err(|_| ExchangeError::Unavailable)?;
    let status = response.status().as_u16();
    let body = match super::read_limited(response).await {
        Ok(body) => body,
        Err(super::Unread::Transport) => return Err(ExchangeError::Unavailable),
        Err(super::Unread::TooLarge) => {
            return Err(ExchangeError::Refused("invalid_token_response".into()));
        }
    };
    read_answer(quirks, status, &body)
}

/// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
pub(super) fn form_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn retryable(status: u16) -> bool {
    status >= 500 || status == 429
}

/// The error code an answer carries, if it is an error answer (see the module header).
pub(super) fn error_code(
    quirks: &Quirks,
    answer: &Value,
    status: u16,
    has_tokens: bool,
) -> Option<String> {
    let code = || {
        answer
            .get(&quirks.error_field)
            .or_else(|| answer.get("error"))
            .and_then(Value::as_str)
            .map(crate::identity::oidc::safe_code)
            .filter(|c| !c.is_empty())
    };
    let not_ok = quirks
        .ok_field
        .as_ref()
        .is_some_and(|f| answer.get(f) == Some(&Value::Bool(false)));
    if not_ok {
        return Some(code().unwrap_or_else(|| "error".into()));
    }
    if !(200..300).contains(&status) {
        return Some(code().unwrap_or_else(|| format!("http_{status}")));
    }
    if has_tokens { None } else { code() }
}

/// Classifies a token endpoint answer (see the module header).
fn read_answer(quirks: &Quirks, status: u16, body: &[u8]) -> Result<Value, ExchangeError> {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return Err(if retryable(status) {
            ExchangeError::Unavailable
        } else if (200..300).contains(&status) {
            ExchangeError::Refused("invalid_token_response".into())
        } else {
            ExchangeError::Refused(format!("http_{status}"))
        });
    };
    let has_tokens = [&quirks.token_path, &quirks.refresh_token_path]
        .iter()
        .any(|p| access_token(p, &answer).is_some());
    match error_code(quirks, &answer, status, has_tokens) {
        _ if retryable(status) => Err(ExchangeError::Unavailable),
        Some(code) if quirks.reauthorize_errors.contains(&code) => {
            Err(ExchangeError::Reauthorize(code))
        }
        Some(code) => Err(ExchangeError::Refused(code)),
        None => Ok(answer),
    }
}

fn access_token<'a>(path: &MemberPath, answer: &'a Value) -> Option<&'a str> {
    path.get(answer)?
        .get("access_token")?
        .as_str()
        .filter(|t| !t.is_empty())
}

/// The credential in `answer` (tokens at `path`), received at `now`. Without a new
/// refresh token (no rotation) the previous one stays.
fn credential(
    quirks: &Quirks,
    path: &MemberPath,
    answer: &Value,
    requested: &Scopes,
    previous_refresh: Option<&str>,
    now: Timestamp,
) -> Result<Credential, ExchangeError> {
    let invalid = || ExchangeError::Refused("invalid_token_response".into());
    let access = access_token(path, answer).ok_or_else(invalid)?;
    let tokens = path.get(answer).ok_or_else(invalid)?;
    let now = now.unix_timestamp();
    let requested: Vec<String> = requested.iter().map(|s| s.to_string()).collect();
    let echo = tokens.get("scope").and_then(echoed_scopes);
    let scopes = match (quirks.granted_scopes, echo) {
        (GrantedScopes::Echo, Some(echo)) => echo,
        (GrantedScopes::Union, Some(echo)) => requested
            .into_iter()
            .chain(echo)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        _ => requested,
    };
    let expires_in = match tokens.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .or(quirks.default_token_lifetime_seconds.map(u64::from));
    // Every provider here issues bearer tokens, whatever it calls them (Slack: "user").
    let token_type = match tokens.get("token_type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("dpop") => "DPoP",
        _ => "Bearer",
    };
    Ok(Credential::Oauth2 {
        access_token: access.to_owned(),
        token_type: token_type.to_owned(),
        refresh_token: tokens
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .or(previous_refresh)
            .map(str::to_owned),
        expires_at: expires_in.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX))),
        obtained_at: now,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::ScopeSeparator;
    use serde_json::json;

    fn read(quirks: &Quirks, status: u16, body: Value) -> Result<Value, ExchangeError> {
        read_answer(quirks, status, body.to_string().as_bytes())
    }

    fn slack() -> Quirks {
        Quirks {
            ok_field: Some("ok".into()),
            token_path: MemberPath::parse("authed_user").unwrap(),
            refresh_token_path: MemberPath::default(),
            scope_separator: ScopeSeparator::Comma,
            reauthorize_errors: ["invalid_refresh_token".to_owned()].into(),
            ..Quirks::default()
        }
    }

    #[test]
    fn errors_are_found_in_http_200_answers_and_in_other_members() {
        let github = Quirks {
            reauthorize_errors: ["bad_refresh_token".to_owned()].into(),
            ..Quirks::default()
        };
        assert_eq!(
            read(&github, 200, json!({"error": "bad_refresh_token"})),
            Err(ExchangeError::Reauthorize("bad_refresh_token".into()))
        );
        assert_eq!(
            read(
                &slack(),
                200,
                json!({"ok": false, "error": "invalid_refresh_token"})
            ),
            Err(ExchangeError::Reauthorize("invalid_refresh_token".into()))
        );
        let hubspot = Quirks {
            error_field: "status".into(),
            reauthorize_errors: ["BAD_REFRESH_TOKEN".to_owned()].into(),
            ..Quirks::default()
        };
        assert_eq!(
            read(
                &hubspot,
                400,
                json!({"status": "BAD_REFRESH_TOKEN", "message": "x"})
            ),
            Err(ExchangeError::Reauthorize("BAD_REFRESH_TOKEN".into()))
        );
        assert_eq!(
            read(&hubspot, 400, json!({"error": "invalid_grant"})),
            Err(ExchangeError::Refused("invalid_grant".into())),
            "the RFC member is read when the provider's is absent"
        );
        assert_eq!(
            read(&Quirks::default(), 400, json!({"message": "no"})),
            Err(ExchangeError::Refused("http_400".into()))
        );
        assert_eq!(
            read(
                &Quirks::default(),
                503,
                json!({"error": "temporarily_unavailable"})
            ),
            Err(ExchangeError::Unavailable)
        );
        assert_eq!(
            read_answer(&Quirks::default(), 200, b"access_token=x&scope=repo"),
            Err(ExchangeError::Refused("invalid_token_response".into()))
        );
    }

    #[test]
    fn nested_tokens_comma_echoes_and_missing_lifetimes_are_read() {
        let answer = json!({"ok": true, "authed_user": {"access_token": "xoxp", "token_type": "user",
            "scope": "search:read,channels:history", "refresh_token": "r", "expires_in": 43200}});
        let quirks = slack();
        let read = read(&quirks, 200, answer).unwrap();
        let requested =
            Scopes::try_from(vec![crate::domain::Scope::parse("search:read").unwrap()]).unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let slack = credential(&quirks, &quirks.token_path, &read, &requested, None, now).unwrap();
        let Credential::Oauth2 {
            access_token,
            token_type,
            expires_at,
            scopes,
            refresh_token,
            ..
        } = &slack
        else {
            panic!("not oauth2");
        };
        assert_eq!(access_token, "xoxp");
        assert_eq!(token_type, "Bearer");
        assert_eq!(*expires_at, Some(44_200));
        assert_eq!(*scopes, ["search:read", "channels:history"]);
        assert_eq!(refresh_token.as_deref(), Some("r"));

        let salesforce = Quirks {
            default_token_lifetime_seconds: Some(3600),
            granted_scopes: GrantedScopes::Union,
            ..Quirks::default()
        };
        let answer = json!({"access_token": "a", "scope": "api refresh_token"});
        let salesforce = credential(
            &salesforce,
            &MemberPath::default(),
            &answer,
            &requested,
            Some("old"),
            now,
        )
        .unwrap();
        let Credential::Oauth2 {
            expires_at,
            scopes,
            refresh_token,
            ..
        } = &salesforce
        else {
            panic!("not oauth2");
        };
        assert_eq!(*expires_at, Some(4_600));
        assert_eq!(*scopes, ["api", "refresh_token", "search:read"]);
        assert_eq!(refresh_token.as_deref(), Some("old"), "no rotation: kept");
    }
}

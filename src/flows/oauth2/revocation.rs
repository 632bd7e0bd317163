//! Revoking a grant's tokens upstream, the provider's way: RFC 7009, its own declared
//! request, or not at all. The outcome says what the provider answered: revoked, already
//! dead there, failed (the tokens may still work) or not supported. A transport failure or
//! a 5xx is retried up to `attempts` times with a short backoff. Revocation URLs may carry
//! the token (HubSpot), so no URL or request error is ever logged here.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

use super::tokens::{error_code, form_encoded};
use crate::config::settings::OAuthProvider;
use crate::domain::UpstreamRevocation;
use crate::upstream::{
    BodyFormat, ClientAuth, Revocation, RevocationAuth, RevocationMethod, RevocationRequest,
    RevokedToken,
};

/// One call's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Done,
    Gone,
    Failed,
}

/// Revokes `access` and `refresh` at the provider; `discovered` is the RFC 7009 endpoint
/// from its metadata.
pub async fn revoke(
    provider: &OAuthProvider,
    discovered: Option<&Url>,
    access: &str,
    refresh: Option<&str>,
    attempts: u32,
    http: &reqwest::Client,
) -> UpstreamRevocation {
    let verdicts = match &provider.quirks.revocation {
        Revocation::None => return UpstreamRevocation::NotSupported,
        Revocation::Rfc7009 => {
            let Some(endpoint) = discovered else {
                return UpstreamRevocation::NotSupported;
            };
            let mut verdicts = Vec::new();
            let tokens = refresh
                .map(|t| (t, "refresh_token"))
                .into_iter()
                .chain([(access, "access_token")]);
            for (token, hint) in tokens {
                let verdict = rfc7009(provider, endpoint, token, hint, attempts, http).await;
                verdicts.push(verdict);
                if verdict == Verdict::Failed {
                    break;
                }
            }
            verdicts
        }
        Revocation::Request(request) => {
            let token = match (request.token, refresh) {
                (RevokedToken::Access, _) | (RevokedToken::RefreshElseAccess, None) => access,
                (RevokedToken::Refresh | RevokedToken::RefreshElseAccess, Some(r)) => r,
                (RevokedToken::Refresh, None) => return UpstreamRevocation::NotSupported,
            };
            vec![declared(provider, request, token, attempts, http).await]
        }
    };
    outcome(&verdicts)
}

/// Any failure fails the whole; all gone is "already revoked"; a `Gone` after a `Done` is
/// the first revocation having taken the second token with it (Google, Salesforce).
fn outcome(verdicts: &[Verdict]) -> UpstreamRevocation {
    if verdicts.contains(&Verdict::Failed) || verdicts.is_empty() {
        UpstreamRevocation::Failed
    } else if verdicts.iter().all(|v| *v == Verdict::Gone) {
        UpstreamRevocation::AlreadyRevoked
    } else {
        UpstreamRevocation::Revoked
    }
}

async fn rfc7009(
    provider: &OAuthProvider,
    endpoint: &Url,
    token: &str,
    hint: &str,
    attempts: u32,
    http: &reqwest::Client,
) -> Verdict {
    let request = RevocationRequest {
        method: RevocationMethod::Post,
        url: endpoint.to_string(),
        auth: match provider.quirks.client_auth {
            ClientAuth::Basic => RevocationAuth::Basic,
            ClientAuth::Post => RevocationAuth::Post,
        },
        token: RevokedToken::Access,
        headers: BTreeMap::new(),
        body: Some((
            BodyFormat::Form,
            BTreeMap::from([
                ("token".to_owned(), "{token}".to_owned()),
                ("token_type_hint".to_owned(), hint.to_owned()),
            ]),
        )),
        // RFC 7009 §2.2: 200 also for tokens that were already invalid.
        done_statuses: vec![200],
        gone_statuses: Vec::new(),
        gone_errors: ["invalid_token".to_owned()].into(),
    };
    declared(provider, &request, token, attempts, http).await
}

async fn declared(
    provider: &OAuthProvider,
    r: &RevocationRequest,
    token: &str,
    attempts: u32,
    http: &reqwest::Client,
) -> Verdict {
    let fill = |template: &str, encode: bool| {
        let (id, token) = if encode {
            (path_encoded(&provider.client_id), path_encoded(token))
        } else {
            (provider.client_id.clone(), token.to_owned())
        };
        template
            .replace("{client_id}", &id)
            .replace("{token}", &token)
    };
    let Ok(url) = Url::parse(&fill(&r.url, true)) else {
        return Verdict::Failed;
    };
    let mut body: BTreeMap<String, String> = r
        .body
        .iter()
        .flat_map(|(_, members)| members.iter())
        .map(|(k, v)| (k.clone(), fill(v, false)))
        .collect();
    if r.auth == RevocationAuth::Post {
        body.insert("client_id".into(), provider.client_id.clone());
        body.insert(
            "client_secret".into(),
            provider.client_secret.expose_secret().to_owned(),
        );
    }
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=attempts.max(1) {
        let method = match r.method {
            RevocationMethod::Post => reqwest::Method::POST,
            RevocationMethod::Delete => reqwest::Method::DELETE,
        };
        let mut request = http.request(method, url.clone());
        for (name, value) in &r.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = match r.auth {
            RevocationAuth::Basic => request.basic_auth(
                form_encoded(&provider.client_id),
                Some(form_encoded(provider.client_secret.expose_secret())),
            ),
            RevocationAuth::Bearer => request.bearer_auth(token),
            RevocationAuth::None | RevocationAuth::Post => request,
        };
        request = match &r.body {
            Some((BodyFormat::Form, _)) => request.form(&body),
            Some((BodyFormat::Json, _)) => request.json(&body),
            None => request,
        };
        if let Ok(response) = request.send().await {
            let status = response.status().as_u16();
            if status < 500 {
                let answer: Value = super::read_limited(response)
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                return verdict(provider, r, status, &answer);
            }
        }
        if attempt < attempts {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Verdict::Failed
}

fn verdict(
    provider: &OAuthProvider,
    r: &RevocationRequest,
    status: u16,
    answer: &Value,
) -> Verdict {
    let code = error_code(&provider.quirks, answer, status, true);
    match code {
        Some(code) if r.gone_errors.contains(&code) => Verdict::Gone,
        _ if r.gone_statuses.contains(&status) => Verdict::Gone,
        None if r.done_statuses.contains(&status) => Verdict::Done,
        // A done status with an error code (Slack's `ok: false`) is not done.
        _ => Verdict::Failed,
    }
}

/// A value put into a URL path segment.
fn path_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_says_what_the_provider_answered() {
        use Verdict::*;
        assert_eq!(outcome(&[Done, Done]), UpstreamRevocation::Revoked);
        assert_eq!(outcome(&[Done, Gone]), UpstreamRevocation::Revoked);
        assert_eq!(outcome(&[Gone, Gone]), UpstreamRevocation::AlreadyRevoked);
        assert_eq!(outcome(&[Done, Failed]), UpstreamRevocation::Failed);
        assert_eq!(outcome(&[]), UpstreamRevocation::Failed);
    }
}

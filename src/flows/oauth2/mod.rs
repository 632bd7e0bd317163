//! Upstream OAuth 2: authorization code with PKCE S256, as a confidential client, shaped
//! by the provider's [`Quirks`](crate::upstream::Quirks). `tokens` talks to the token
//! endpoint, `revocation` revokes.
//!
//! - Endpoints come from the config or from RFC 8414 / OpenID discovery at the issuer
//!   (cached for an hour); the metadata's `issuer` must equal the configured one, and an
//!   authorization server that does not list `S256` in `code_challenge_methods_supported`
//!   is refused before any redirect.
//! - Every authorization request carries a fresh random `state` and PKCE pair, the scopes
//!   asked for (plus the provider's `extra_scopes`, joined its way, in its `scope_param`),
//!   its `authorize_params`, and the RFC 8707 `resource` when configured (again on the
//!   token request).
//! - The redirect URI is exactly `{public_url}/oauth/callback`.
//! - The HTTP client follows no redirects and has timeouts (see `Broker::new`).
//! - Nothing here logs a code, token, verifier or secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::Error;
use crate::config::settings::OAuthProvider;
use crate::domain::{ProviderId, Scopes};

mod revocation;
mod tokens;

pub use revocation::revoke;
pub use tokens::{ExchangeError, Tokens, exchange, refresh};

const METADATA_TTL: Duration = Duration::from_secs(3600);

/// What the broker needs from an authorization server's metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct AsMetadata {
    pub issuer: Option<String>,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub revocation_endpoint: Option<Url>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the server puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// Discovered metadata per provider, refreshed after an hour.
#[derive(Default)]
pub struct MetadataCache(Mutex<HashMap<ProviderId, (Instant, Arc<AsMetadata>)>>);

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The provider's endpoints, from config or discovery, checked for PKCE S256 support.
pub async fn metadata(
    id: &ProviderId,
    name: &str,
    provider: &OAuthProvider,
    http: &reqwest::Client,
    cache: &MetadataCache,
) -> Result<Arc<AsMetadata>, Error> {
    if let Some(e) = &provider.endpoints {
        return Ok(Arc::new(AsMetadata {
            issuer: provider.issuer.as_ref().map(|i| i.to_string()),
            authorization_endpoint: e.authorization.clone(),
            token_endpoint: e.token.clone(),
            revocation_endpoint: provider.revocation_endpoint.clone(),
            // Configured by hand: the operator vouches for S256.
            code_challenge_methods_supported: vec!["S256".into()],
            authorization_response_iss_parameter_supported: false,
        }));
    }
    if let Ok(entries) = cache.0.lock()
        && let Some((at, m)) = entries.get(id)
        && at.elapsed() < METADATA_TTL
    {
        return Ok(m.clone());
    }
    let issuer = provider
        .issuer
        .as_ref()
        .ok_or_else(|| Error::Internal("oauth2 provider without issuer".into()))?;
    let metadata = discover(issuer, http).await.ok_or_else(|| {
        Error::UpstreamUnavailable(format!(
            "{name}'s authorization server metadata could not be read"
        ))
    })?;
    if !metadata
        .issuer
        .as_deref()
        .is_some_and(|i| same_issuer(i, issuer.as_str()))
    {
        return Err(Error::ProviderUnsupported(format!(
            "{name}'s authorization server metadata names a different issuer; the broker will not use it"
        )));
    }
    if !metadata
        .code_challenge_methods_supported
        .iter()
        .any(|m| m == "S256")
    {
        return Err(Error::ProviderUnsupported(format!(
            "{name}'s authorization server does not support PKCE with S256, which the broker requires"
        )));
    }
    let mut metadata = metadata;
    if provider.revocation_endpoint.is_some() {
        metadata.revocation_endpoint = provider.revocation_endpoint.clone();
    }
    let metadata = Arc::new(metadata);
    if let Ok(mut entries) = cache.0.lock() {
        entries.insert(id.clone(), (Instant::now(), metadata.clone()));
    }
    Ok(metadata)
}

/// RFC 8414 first (`/.well-known/oauth-authorization-server` inserted before the issuer's
/// path), then OpenID Connect discovery (appended to it).
async fn discover(issuer: &Url, http: &reqwest::Client) -> Option<AsMetadata> {
    let path = issuer.path().trim_end_matches('/');
    let mut rfc8414 = issuer.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    for url in [rfc8414, oidc] {
        let Ok(response) = http.get(url).send().await else {
            continue;
        };
        if response.status().is_success()
            && let Ok(body) = read_limited(response).await
            && let Ok(m) = serde_json::from_slice::<AsMetadata>(&body)
        {
            return Some(m);
        }
    }
    None
}

/// The most an upstream answer (metadata, tokens, revocation) may hold: real ones are a few
/// KiB; a larger one is refused instead of being buffered.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Why an upstream answer's body was not read.
enum Unread {
    /// The connection failed or timed out mid-body.
    Transport,
    /// Larger than [`MAX_ANSWER_BYTES`].
    TooLarge,
}

/// An upstream answer's body, read up to [`MAX_ANSWER_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, Unread> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| Unread::Transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Unread::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An authorization request ready to send the browser to.
pub struct AuthorizationRequest {
    pub url: Url,
    pub state: SecretString,
    pub verifier: SecretString,
}

pub fn authorization_request(
    provider: &OAuthProvider,
    metadata: &AsMetadata,
    redirect: &Url,
    scopes: &Scopes,
) -> AuthorizationRequest {
    let quirks = &provider.quirks;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = CsrfToken::new(crate::random::token::<32>());
    let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(metadata.authorization_endpoint.clone()))
        .set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
    let mut request = client
        .authorize_url(|| state.clone())
        .set_pkce_challenge(challenge);
    let mut asked: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    for extra in &quirks.extra_scopes {
        if !asked.contains(&extra.as_str()) {
            asked.push(extra);
        }
    }
    if !asked.is_empty() {
        request = request.add_extra_param(
            quirks.scope_param.clone(),
            quirks.scope_separator.join(asked),
        );
    }
    for (name, value) in &quirks.authorize_params {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    if let Some(resource) = &provider.resource {
        request = request.add_extra_param("resource", resource.to_string());
    }
    let (url, _) = request.url();
    AuthorizationRequest {
        url,
        state: SecretString::from(state.secret().to_owned()),
        verifier: SecretString::from(verifier.secret().to_owned()),
    }
}

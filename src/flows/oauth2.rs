//! Upstream OAuth 2: authorization code with PKCE S256, as a confidential client.
//!
//! - Endpoints come from the config or from RFC 8414 / OpenID discovery at the issuer
//!   (cached for an hour); the metadata's `issuer` must equal the configured one, and an
//!   authorization server that does not list `S256` in `code_challenge_methods_supported`
//!   is refused before any redirect.
//! - Every authorization request carries a fresh random `state` and PKCE pair, the scopes
//!   asked for, and the RFC 8707 `resource` when configured (again on the token request).
//! - The redirect URI is exactly `{public_url}/oauth/callback`.
//! - The HTTP client follows no redirects and has timeouts (see `Broker::new`).
//! - Nothing here logs a code, token, verifier or secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope as OAuthScope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::Error;
use crate::config::settings::OAuthProvider;
use crate::domain::{Credential, ProviderId, Scopes, Timestamp};

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
            revocation_endpoint: e.revocation.clone(),
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
            && let Ok(m) = response.json::<AsMetadata>().await
        {
            return Some(m);
        }
    }
    None
}

/// An authorization request ready to send the browser to.
pub struct AuthorizationRequest {
    pub url: Url,
    pub state: SecretString,
    pub verifier: SecretString,
}

fn client(
    provider: &OAuthProvider,
    metadata: &AsMetadata,
    redirect: &Url,
) -> BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            provider.client_secret.expose_secret().to_owned(),
        ))
        .set_auth_uri(AuthUrl::from_url(metadata.authorization_endpoint.clone()))
        .set_token_uri(TokenUrl::from_url(metadata.token_endpoint.clone()))
        .set_redirect_uri(RedirectUrl::from_url(redirect.clone()))
}

pub fn authorization_request(
    provider: &OAuthProvider,
    metadata: &AsMetadata,
    redirect: &Url,
    scopes: &Scopes,
) -> AuthorizationRequest {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = CsrfToken::new(crate::random::token::<32>());
    let client = client(provider, metadata, redirect);
    let mut request = client
        .authorize_url(|| state.clone())
        .add_scopes(scopes.iter().map(|s| OAuthScope::new(s.to_string())))
        .set_pkce_challenge(challenge);
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

/// Why a code exchange did not produce tokens.
pub enum ExchangeError {
    /// The server refused (`invalid_grant`, …): final for this flow.
    Refused(String),
    /// Transport failure or timeout: the user may try again.
    Unavailable,
}

/// Trades the authorization code for tokens, obtained at `now`; `requested` stands in for
/// the granted scopes when the server does not echo them.
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
) -> Result<Credential, ExchangeError> {
    let client = client(provider, metadata, redirect);
    let mut request = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
    if let Some(resource) = &provider.resource {
        request = request.add_extra_param("resource", resource.to_string());
    }
    let tokens = request.request_async(http).await.map_err(exchange_error)?;
    Ok(credential(&tokens, requested, None, now))
}

fn exchange_error<E: std::error::Error + 'static>(
    e: RequestTokenError<E, oauth2::StandardErrorResponse<BasicErrorResponseType>>,
) -> ExchangeError {
    match e {
        RequestTokenError::ServerResponse(r) => Refused(match r.error() {
            BasicErrorResponseType::Extension(other) => other.clone(),
            known => known.to_string(),
        }),
        RequestTokenError::Request(_) => ExchangeError::Unavailable,
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            Refused("invalid_token_response".into())
        }
    }
}

/// The credential for a token response received at `now`. Without a new refresh token (no
/// rotation) the previous one stays; without `scope` the previous scopes stay.
fn credential(
    tokens: &oauth2::basic::BasicTokenResponse,
    scopes: &Scopes,
    previous_refresh: Option<&str>,
    now: Timestamp,
) -> Credential {
    let now = now.unix_timestamp();
    let scopes = match tokens.scopes() {
        Some(granted) => granted.iter().map(|s| s.to_string()).collect(),
        None => scopes.iter().map(|s| s.to_string()).collect(),
    };
    Credential::Oauth2 {
        access_token: tokens.access_token().secret().to_owned(),
        token_type: tokens.token_type().as_ref().to_owned(),
        refresh_token: tokens
            .refresh_token()
            .map(|t| t.secret().to_owned())
            .or_else(|| previous_refresh.map(str::to_owned)),
        expires_at: tokens
            .expires_in()
            .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        obtained_at: now,
        scopes,
    }
}

/// Exchanges a refresh token for new tokens (RFC 6749 §6), obtained at `now`, honouring
/// rotation.
pub async fn refresh(
    provider: &OAuthProvider,
    metadata: &AsMetadata,
    redirect: &Url,
    refresh_token: &str,
    scopes: &Scopes,
    http: &reqwest::Client,
    now: Timestamp,
) -> Result<Credential, ExchangeError> {
    let client = client(provider, metadata, redirect);
    let token = oauth2::RefreshToken::new(refresh_token.to_owned());
    let mut request = client.exchange_refresh_token(&token);
    if let Some(resource) = &provider.resource {
        request = request.add_extra_param("resource", resource.to_string());
    }
    let tokens = request.request_async(http).await.map_err(exchange_error)?;
    Ok(credential(&tokens, scopes, Some(refresh_token), now))
}

/// RFC 7009 revocation of one token, authenticated as the broker's client. Retries a
/// transport failure or a 5xx up to `attempts` times with a short backoff.
pub async fn revoke(
    provider: &OAuthProvider,
    endpoint: &Url,
    token: &str,
    hint: &str,
    attempts: u32,
    http: &reqwest::Client,
) -> Result<(), ExchangeError> {
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=attempts {
        let response = http
            .post(endpoint.clone())
            .basic_auth(
                &provider.client_id,
                Some(provider.client_secret.expose_secret()),
            )
            .form(&[("token", token), ("token_type_hint", hint)])
            .send()
            .await;
        match response {
            // RFC 7009 §2.2: 200 also for tokens that were already invalid.
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_client_error() => {
                return Err(Refused(format!("http_{}", r.status().as_u16())));
            }
            _ if attempt < attempts => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            _ => break,
        }
    }
    Err(ExchangeError::Unavailable)
}

use ExchangeError::Refused;

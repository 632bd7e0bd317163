//! MCP authorization, resource-server side: verifies the bearer access token a client
//! presents (a JWT from the enterprise IdP: signature over the IdP's JWKS, issuer, audience =
//! this MCP server's resource, expiry, `typ` `at+jwt`) and yields the user it was issued to,
//! [`Subject`] (its `sub`). Verification is `jsonwebtoken`'s; this module only chooses the key
//! and what to require. Tokens are never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::RwLock;
use url::Url;

/// The user a request acts for: the `sub` of a verified access token (or, on stdio, the
/// one the operator configured). Never taken from anything the client says in a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    pub fn new(sub: impl Into<String>) -> Self {
        Self(sub.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The access token a request's [`Subject`] was read from, as the client presented it: sent
/// on to the broker as `subject_token`, the proof that this request acts for that user
/// (never to an upstream, never logged: `Secret`'s `Debug` prints nothing).
#[derive(Clone, Debug)]
pub struct PresentedToken(pub consent_broker_client::api::Secret);

/// Why a bearer token was refused. The variants are for logs and tests; every one is
/// answered alike (401, `invalid_token`), so a caller learns nothing about which check failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("no key of the issuer has this token's key id")]
    UnknownKey,
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("token refused: {0:?}")]
    Invalid(jsonwebtoken::errors::ErrorKind),
    #[error("the token's type is not at+jwt")]
    NotAnAccessToken,
    #[error("the IdP's keys could not be fetched: {0}")]
    Jwks(String),
}

/// Signature algorithms accepted: asymmetric only (a shared-secret `HS*` or `none` token
/// could be minted by anyone who knows the public JWKS or nothing at all).
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// The IdP's keys are fetched again at most this often (on an unknown `kid`: key rotation).
const JWKS_REFRESH_MIN: Duration = Duration::from_secs(30);

/// What this resource server trusts.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// The authorization server (issuer) whose tokens are accepted.
    pub issuer: Url,
    /// This MCP server's resource identifier (RFC 8707/9728): the audience tokens must name.
    pub resource: Url,
    /// Scopes a client should ask for (advertised in the protected resource metadata).
    pub scopes: Vec<String>,
    /// How far past `exp` a token is still accepted (clock skew between IdP and server).
    pub clock_skew: Duration,
}

struct Keys {
    set: JwkSet,
    fetched: Option<Instant>,
}

/// Verifies access tokens; clones share the key cache.
#[derive(Clone)]
pub struct TokenVerifier {
    settings: Arc<AuthSettings>,
    http: reqwest::Client,
    keys: Arc<RwLock<Keys>>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

#[derive(Deserialize)]
struct ServerMetadata {
    jwks_uri: String,
}

impl TokenVerifier {
    pub fn new(settings: AuthSettings) -> Result<Self, AuthError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        Ok(Self {
            settings: Arc::new(settings),
            http,
            keys: Arc::new(RwLock::new(Keys {
                set: JwkSet { keys: vec![] },
                fetched: None,
            })),
        })
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The user of a valid access token; an error for anything else.
    pub async fn verify(&self, token: &str) -> Result<Subject, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(AuthError::Algorithm);
        }
        // RFC 9068: an access token says so; an ID token (same issuer, same keys) does not.
        let typ = header.typ.as_deref().unwrap_or_default();
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(AuthError::NotAnAccessToken);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.issuer_string()]);
        validation.set_audience(&[self.settings.resource.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.settings.clock_skew.as_secs();
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.into_kind()))?;
        if data.claims.sub.is_empty() {
            return Err(AuthError::Malformed);
        }
        Ok(Subject(data.claims.sub))
    }

    /// The issuer as tokens spell it (`iss` has no trailing slash unless the issuer has a path
    /// that ends in one; `Url` adds one to a bare origin).
    fn issuer_string(&self) -> String {
        let s = self.settings.issuer.as_str();
        if self.settings.issuer.path() == "/" {
            s.trim_end_matches('/').to_owned()
        } else {
            s.to_owned()
        }
    }

    /// The key with this id, fetching the IdP's JWKS when it is not known yet (at most every
    /// [`JWKS_REFRESH_MIN`], so unknown ids cannot make us hammer the IdP).
    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let keys = self.keys.read().await;
            if let Some(jwk) = keys.set.find(kid) {
                return DecodingKey::from_jwk(jwk).map_err(|_| AuthError::UnknownKey);
            }
            if keys
                .fetched
                .is_some_and(|at| at.elapsed() < JWKS_REFRESH_MIN)
            {
                return Err(AuthError::UnknownKey);
            }
        }
        let set = self.fetch_jwks().await?;
        let mut keys = self.keys.write().await;
        keys.set = set;
        keys.fetched = Some(Instant::now());
        let jwk = keys.set.find(kid).ok_or(AuthError::UnknownKey)?;
        DecodingKey::from_jwk(jwk).map_err(|_| AuthError::UnknownKey)
    }

    /// The JWKS named by the issuer's metadata (RFC 8414, else OpenID discovery).
    async fn fetch_jwks(&self) -> Result<JwkSet, AuthError> {
        let issuer = self.issuer_string();
        let mut jwks_uri = None;
        for well_known in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            let url = format!("{issuer}{well_known}");
            let Ok(response) = self.http.get(&url).send().await else {
                continue;
            };
            if !response.status().is_success() {
                continue;
            }
            if let Ok(meta) = response.json::<ServerMetadata>().await {
                jwks_uri = Some(meta.jwks_uri);
                break;
            }
        }
        let jwks_uri =
            jwks_uri.ok_or_else(|| AuthError::Jwks("no authorization server metadata".into()))?;
        let response = self
            .http
            .get(jwks_uri)
            .send()
            .await
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        if !response.status().is_success() {
            return Err(AuthError::Jwks(format!(
                "JWKS answered {}",
                response.status()
            )));
        }
        response
            .json::<JwkSet>()
            .await
            .map_err(|e| AuthError::Jwks(e.to_string()))
    }
}

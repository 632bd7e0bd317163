//! JSON Web Key Sets a verifier trusts: fetched from a URL (again, at most once a minute,
//! when a `kid` is unknown) or given inline, and the choice of the key that may verify a
//! JWS of a given algorithm. Asymmetric algorithms only: no verifier of this broker shares
//! a secret with a signer. Used by the Shared Signals receiver (`security_events`) and by
//! service and user identity (`caller_jwt`).

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use url::Url;

/// Most bytes read of a JWK Set.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// An unknown `kid` fetches the JWK Set again at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

pub use crate::config::service_identity::ASYMMETRIC;

/// Why no key verifies a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The JWK Set could not be fetched (and none was fetched before).
    Unavailable,
    /// No key of the set has this `kid` (or, without a `kid`, the set has not exactly one).
    UnknownKid,
    /// The key exists but is not for this algorithm.
    WrongAlgorithm,
    /// The key cannot be read.
    Unusable,
}

impl KeyError {
    /// Fixed words, never text from a request.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unavailable => "the signer's keys could not be fetched",
            Self::UnknownKid => "no key of the signer has this kid",
            Self::WrongAlgorithm => "the key with this kid is not for this algorithm",
            Self::Unusable => "the signer's key is unusable",
        }
    }
}

pub use crate::config::service_identity::JwksSource as KeySource;

/// A JWK Set, cached.
pub struct Jwks {
    source: KeySource,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    set: Option<JwkSet>,
    fetched: Option<Instant>,
}

impl Jwks {
    /// `http` must not follow redirects and must be bounded in time (the broker's client).
    pub fn new(source: KeySource, http: reqwest::Client) -> Self {
        let set = match &source {
            KeySource::Inline(set) => Some(set.clone()),
            KeySource::Url(_) => None,
        };
        Self {
            source,
            http,
            cache: Mutex::new(Cache { set, fetched: None }),
        }
    }

    /// The verification key for `kid` and `alg`, fetching the JWK Set when it is not known
    /// yet (or, at most once a minute, again for an unknown `kid`).
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, KeyError> {
        let mut cache = self.cache.lock().await;
        if let Some(key) = cache.set.as_ref().and_then(|s| pick(s, kid, alg)) {
            return key;
        }
        if let KeySource::Url(url) = &self.source {
            let stale = cache.fetched.is_none_or(|t| t.elapsed() >= REFETCH_AFTER);
            if stale {
                // A failed fetch keeps the keys we had; the token is refused for now.
                cache.fetched = Some(Instant::now());
                match self.fetch(url).await {
                    Ok(set) => cache.set = Some(set),
                    Err(why) => {
                        tracing::warn!(jwks_url = %url, "{why}");
                        if cache.set.is_none() {
                            return Err(KeyError::Unavailable);
                        }
                    }
                }
            }
        }
        cache
            .set
            .as_ref()
            .and_then(|s| pick(s, kid, alg))
            .unwrap_or(Err(KeyError::UnknownKid))
    }

    async fn fetch(&self, url: &Url) -> Result<JwkSet, String> {
        let mut r = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("fetching the JWK Set failed: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("the JWK Set answered {}", r.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = r
            .chunk()
            .await
            .map_err(|e| format!("reading the JWK Set failed: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("the JWK Set is larger than 256 KiB".into());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("the JWK Set is not valid: {e}"))
    }
}

/// The key of `set` for `kid` (or, without a `kid`, its only signing key), if it may
/// verify `alg`: a public key for signatures, of `alg`'s family, and of `alg` when the JWK
/// names one. `Some(Err)` when the key exists but cannot be used.
fn pick(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Result<DecodingKey, KeyError>> {
    let usable = |k: &&Jwk| {
        k.common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == PublicKeyUse::Signature)
    };
    let jwk = match kid {
        Some(kid) => set.find(kid).filter(usable)?,
        None => {
            let mut signing = set.keys.iter().filter(usable);
            match (signing.next(), signing.next()) {
                (Some(only), None) => only,
                _ => return None,
            }
        }
    };
    let family_fits = matches!(
        (&jwk.algorithm, alg),
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (
            AlgorithmParameters::EllipticCurve(_),
            Algorithm::ES256 | Algorithm::ES384
        ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
    );
    let alg_fits = jwk
        .common
        .key_algorithm
        .is_none_or(|a| a.to_string() == format!("{alg:?}"));
    if !(family_fits && alg_fits) {
        return Some(Err(KeyError::WrongAlgorithm));
    }
    Some(DecodingKey::from_jwk(jwk).map_err(|_| KeyError::Unusable))
}

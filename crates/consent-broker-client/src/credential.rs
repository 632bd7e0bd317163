//! How the client proves which service it is, on every request as `Authorization: Bearer`:
//! the static service token, an RFC 7523 client assertion signed afresh for each request
//! (`iss` = `sub` = the service id, `aud` = the broker, `exp` one minute ahead, a random
//! `jti`), or a workload identity token (a Kubernetes projected service-account token or a
//! SPIFFE JWT-SVID) read from its file each time, since the platform rotates it there.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consent_broker_api::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::Error;

/// Lifetime of each assertion, in seconds (the broker accepts at most 300).
const ASSERTION_LIFETIME: u64 = 60;

/// A service's credential.
#[derive(Clone)]
pub enum Credential {
    /// The static token (`cbs_…`).
    Token(Secret),
    /// RFC 7523 `private_key_jwt`: a fresh assertion per request.
    Assertion(AssertionSigner),
    /// A workload identity token, read from this file for each request.
    WorkloadTokenFile(PathBuf),
}

impl From<Secret> for Credential {
    fn from(token: Secret) -> Self {
        Self::Token(token)
    }
}

/// Signs client assertions with the service's private key (whose public half is in the JWK
/// Set the broker is configured with: `services[].assertion_jwks_url` or `assertion_jwks`).
#[derive(Clone)]
pub struct AssertionSigner {
    service_id: String,
    audience: String,
    key: EncodingKey,
    algorithm: Algorithm,
    kid: Option<String>,
}

impl AssertionSigner {
    /// `audience` is the broker's public URL (e.g. `https://consent.example.com`);
    /// `algorithm` must be asymmetric and fit `key` (e.g. `EncodingKey::from_ec_pem` with
    /// `ES256`, `from_ed_der` with `EdDSA`); `kid` names the key in the JWK Set.
    pub fn new(
        service_id: impl Into<String>,
        audience: impl Into<String>,
        key: EncodingKey,
        algorithm: Algorithm,
        kid: Option<String>,
    ) -> Result<Self, Error> {
        if matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(Error::InvalidCredential(
                "client assertions need an asymmetric algorithm",
            ));
        }
        Ok(Self {
            service_id: service_id.into(),
            audience: audience.into(),
            key,
            algorithm,
            kid,
        })
    }

    /// A fresh assertion.
    pub fn sign(&self) -> Result<Secret, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::InvalidCredential("the system clock is before 1970"))?
            .as_secs();
        let mut jti = [0u8; 18];
        getrandom::fill(&mut jti)
            .map_err(|_| Error::InvalidCredential("no randomness for the assertion's jti"))?;
        let claims = serde_json::json!({
            "iss": self.service_id,
            "sub": self.service_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": URL_SAFE_NO_PAD.encode(jti),
        });
        let mut header = Header::new(self.algorithm);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|_| Error::InvalidCredential("the assertion could not be signed"))
    }
}

impl Credential {
    /// The bearer value for one request.
    pub(crate) fn bearer(&self) -> Result<Secret, Error> {
        match self {
            Self::Token(token) => Ok(token.clone()),
            Self::Assertion(signer) => signer.sign(),
            Self::WorkloadTokenFile(path) => std::fs::read_to_string(path)
                .map(|t| Secret::new(t.trim()))
                .map_err(|_| Error::InvalidCredential("the workload token file cannot be read")),
        }
    }
}

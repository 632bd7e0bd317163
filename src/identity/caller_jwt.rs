//! JWTs that say who is calling and for whom: a service's RFC 7523 client assertion
//! (`private_key_jwt`: `iss` = `sub` = the service id, `aud` = this broker, a short `exp`,
//! a single-use `jti`), a workload identity token (a Kubernetes projected service-account
//! token or a SPIFFE JWT-SVID from a trusted issuer of kind `workloads`, mapped to a
//! service by its subject), and a user's access token passed as `subject_token` (from a
//! trusted issuer of kind `users`, for the service's `resource`). Every token is verified
//! against its signer's JWK Set ([`super::jwks`]), asymmetric algorithms only; `exp` and
//! `nbf` are read against the broker's clock with [`LEEWAY`]. Replays of an assertion's
//! `jti` are caught by the caller with the store ([`crate::store::SeenIds`]), so every
//! instance sees them. Tokens are never logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind as JwtError;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::jwks::{ASYMMETRIC, Jwks, KeyError, KeySource};
use crate::config::service_identity::TrustedIssuer;
use crate::config::{IssuerKind, Service, Settings};
use crate::domain::{ServiceId, Subject, Timestamp};
use crate::error::CallerRefusal;
use crate::store::SeenKey;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY: i64 = 30;
/// Longest an assertion may be valid for, in seconds from now.
pub const MAX_ASSERTION_LIFETIME: i64 = 300;

/// Whether `presented` has the shape of a compact JWS (three base64url parts), not of a
/// static `cbs_` token (which has no dot).
pub fn looks_like_jwt(presented: &str) -> bool {
    let parts: Vec<&str> = presented.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A service that proved itself with a JWT; for an assertion, the `jti` to record as seen
/// (under this key, until this instant) before the request may go on.
pub struct CallerProof {
    pub service: Arc<Service>,
    pub single_use: Option<(SeenKey, Timestamp)>,
}

/// The verifier: the services' assertion keys and the trusted issuers' keys, cached.
pub struct CallerVerifier {
    assertion_keys: BTreeMap<ServiceId, Jwks>,
    issuers: Vec<(TrustedIssuer, Jwks)>,
    /// What an assertion's or a workload token's `aud` must name: this broker.
    audiences: Vec<String>,
}

impl CallerVerifier {
    /// `http` must not follow redirects and must be bounded in time (the broker's client);
    /// `public_url` is where this broker is reached (assertions are addressed to it).
    pub fn new(settings: &Settings, public_url: &url::Url, http: &reqwest::Client) -> Self {
        let assertion_keys = settings
            .services
            .iter()
            .filter_map(|s| {
                let source = s.identity.assertion_keys.clone()?;
                Some((s.id.clone(), Jwks::new(source, http.clone())))
            })
            .collect();
        let issuers = settings
            .trusted_issuers
            .iter()
            .map(|i| {
                let keys = Jwks::new(KeySource::Url(i.jwks_url.clone()), http.clone());
                (i.clone(), keys)
            })
            .collect();
        let base = public_url.as_str().trim_end_matches('/').to_owned();
        let audiences = vec![base.clone(), format!("{base}/"), format!("{base}/v1")];
        Self {
            assertion_keys,
            issuers,
            audiences,
        }
    }

    /// The service `token` (a JWT) proves, at `now`.
    pub async fn service_of(
        &self,
        services: &[Arc<Service>],
        token: &str,
        now: Timestamp,
    ) -> Result<CallerProof, CallerRefusal> {
        let (alg, kid) = header(token).map_err(CallerRefusal::Invalid)?;
        // Read before the signature only to choose the keys; trusted only once the
        // signature and the validation below hold.
        let iss = unverified_issuer(token).map_err(CallerRefusal::Invalid)?;
        if let Some(service) = services
            .iter()
            .find(|s| s.id.as_str() == iss && self.assertion_keys.contains_key(&s.id))
        {
            let keys = &self.assertion_keys[&service.id];
            let key = keys
                .key_for(kid.as_deref(), alg)
                .await
                .map_err(key_refusal)?;
            let claims = self.decode(token, &key, alg, &iss)?;
            if claims.get("sub").and_then(Value::as_str) != Some(iss.as_str()) {
                return Err(CallerRefusal::Invalid(
                    "An assertion's sub must be its iss, the service id",
                ));
            }
            let exp = times(&claims, now)?;
            if exp > now.unix_timestamp() + MAX_ASSERTION_LIFETIME + LEEWAY {
                return Err(CallerRefusal::Invalid(
                    "An assertion may be valid for at most 5 minutes (exp)",
                ));
            }
            let jti = claims
                .get("jti")
                .and_then(Value::as_str)
                .filter(|j| !j.is_empty() && j.len() <= 256)
                .ok_or(CallerRefusal::Invalid("An assertion needs a jti"))?;
            let until = time::OffsetDateTime::from_unix_timestamp(exp + LEEWAY)
                .map_err(|_| CallerRefusal::Invalid("The assertion's exp is out of range"))?;
            let key = SeenKey::new(&format!("client-assertion:{}", service.id), jti);
            return Ok(CallerProof {
                service: service.clone(),
                single_use: Some((key, until)),
            });
        }
        let Some((issuer, keys)) = self
            .issuers
            .iter()
            .find(|(i, _)| i.kind == IssuerKind::Workloads && i.issuer == iss)
        else {
            return Err(CallerRefusal::UntrustedIssuer);
        };
        if !issuer.algorithms.contains(&alg) {
            return Err(CallerRefusal::Invalid(
                "The token's algorithm is not accepted for its issuer",
            ));
        }
        let key = keys
            .key_for(kid.as_deref(), alg)
            .await
            .map_err(key_refusal)?;
        let claims = self.decode(token, &key, alg, &iss)?;
        times(&claims, now)?;
        let subject = claims
            .get(&issuer.subject_claim)
            .and_then(Value::as_str)
            .ok_or(CallerRefusal::Invalid(
                "The workload token names no subject",
            ))?;
        services
            .iter()
            .find(|s| {
                s.identity
                    .workload
                    .as_ref()
                    .is_some_and(|w| w.issuer == issuer.issuer && w.subject == subject)
            })
            .map(|service| CallerProof {
                service: service.clone(),
                single_use: None,
            })
            .ok_or(CallerRefusal::Invalid(
                "No service has this workload identity",
            ))
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
        iss: &str,
    ) -> Result<Map<String, Value>, CallerRefusal> {
        let mut validation = Validation::new(alg);
        // `exp` and `nbf` are read against the broker's clock (`times`).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["iss", "aud", "exp"]);
        validation.set_issuer(&[iss]);
        validation.set_audience(&self.audiences);
        jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                JwtError::InvalidAudience => CallerRefusal::WrongAudience,
                JwtError::MissingRequiredClaim(c) if c == "aud" => CallerRefusal::WrongAudience,
                JwtError::MissingRequiredClaim(_) => {
                    CallerRefusal::Invalid("The token lacks a required claim (iss, aud, exp)")
                }
                JwtError::InvalidIssuer => CallerRefusal::UntrustedIssuer,
                _ => CallerRefusal::Invalid("The token's signature does not verify"),
            })
    }

    /// The user `token` (a `subject_token`) names, if it verifies: from a trusted issuer
    /// of kind `users`, for `resource`, not expired at `now`.
    pub async fn subject_of(
        &self,
        token: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Subject, &'static str> {
        let (alg, kid) = header(token)?;
        let iss = unverified_issuer(token)?;
        let (issuer, keys) = self
            .issuers
            .iter()
            .find(|(i, _)| i.kind == IssuerKind::Users && i.issuer == iss)
            .ok_or("its issuer is not trusted for users")?;
        if !issuer.algorithms.contains(&alg) {
            return Err("its algorithm is not accepted for its issuer");
        }
        let key = keys
            .key_for(kid.as_deref(), alg)
            .await
            .map_err(KeyError::describe)?;
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["iss", "aud", "exp"]);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[resource]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                JwtError::InvalidAudience => "it is for another audience than this service",
                JwtError::MissingRequiredClaim(c) if c == "aud" => {
                    "it is for another audience than this service"
                }
                JwtError::MissingRequiredClaim(_) => "it lacks a required claim (iss, aud, exp)",
                _ => "its signature does not verify",
            })?;
        times(&claims, now).map_err(|_| "it has expired or is not valid yet")?;
        let subject = claims
            .get(&issuer.subject_claim)
            .and_then(Value::as_str)
            .ok_or("it names no subject")?;
        Subject::parse(subject).map_err(|_| "its subject is not a valid subject")
    }
}

/// The header's algorithm (asymmetric only) and `kid`.
fn header(token: &str) -> Result<(Algorithm, Option<String>), &'static str> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "The token is not a signed JWT")?;
    if !ASYMMETRIC.contains(&header.alg) {
        return Err("The token's algorithm is not accepted (asymmetric only)");
    }
    Ok((header.alg, header.kid))
}

fn unverified_issuer(token: &str) -> Result<String, &'static str> {
    #[derive(serde::Deserialize)]
    struct IssuerOnly {
        iss: Option<String>,
    }
    let claimed: IssuerOnly = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|_| "The token's claims are not a JSON object")?;
    claimed.iss.ok_or("The token has no iss")
}

fn key_refusal(e: KeyError) -> CallerRefusal {
    match e {
        KeyError::Unavailable => CallerRefusal::Invalid("The signer's keys could not be fetched"),
        KeyError::UnknownKid | KeyError::WrongAlgorithm | KeyError::Unusable => {
            CallerRefusal::UnknownKey
        }
    }
}

/// Checks `exp` (required) and `nbf` (optional) at `now` with [`LEEWAY`]; returns `exp`.
fn times(claims: &Map<String, Value>, now: Timestamp) -> Result<i64, CallerRefusal> {
    let now = now.unix_timestamp();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(CallerRefusal::Invalid("The token has no usable exp"))?;
    if exp + LEEWAY <= now {
        return Err(CallerRefusal::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf
            .as_i64()
            .ok_or(CallerRefusal::Invalid("The token's nbf is not a number"))?;
        if nbf > now + LEEWAY {
            return Err(CallerRefusal::Expired);
        }
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_token_is_never_taken_for_a_jwt() {
        assert!(!looks_like_jwt("cbs_AbC-123_xyz"));
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c d"));
    }

    #[test]
    fn exp_and_nbf_are_read_with_the_leeway() {
        let now = time::OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let claims = |v: Value| v.as_object().unwrap().clone();
        let t = now.unix_timestamp();
        assert_eq!(
            times(&claims(serde_json::json!({"exp": t - LEEWAY})), now),
            Err(CallerRefusal::Expired)
        );
        assert!(times(&claims(serde_json::json!({"exp": t - LEEWAY + 1})), now).is_ok());
        assert_eq!(
            times(
                &claims(serde_json::json!({"exp": t + 60, "nbf": t + LEEWAY + 1})),
                now
            ),
            Err(CallerRefusal::Expired)
        );
        assert!(matches!(
            times(&claims(serde_json::json!({})), now),
            Err(CallerRefusal::Invalid(_))
        ));
    }
}

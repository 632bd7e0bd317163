//! Verifying the broker's completion webhooks (Standard Webhooks): the signature
//! `v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>` under the
//! secret `whsec_<base64 key>`, a timestamp within the tolerance (replay window), and only
//! then the body. Comparison is constant-time. Deduplicate on `webhook-id`: a retried
//! delivery keeps its id.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use consent_broker_api::{WebhookEvent, webhook_headers};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

/// A Standard Webhooks signing secret; its `Debug` prints nothing.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (24 to 64 bytes of key, as the specification asks).
    pub fn parse(secret: &str) -> Result<Self, WebhookError> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or(WebhookError::BadSecret)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| WebhookError::BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(WebhookError::BadSecret);
        }
        Ok(Self(key))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error("the webhook secret is not `whsec_` followed by 24 to 64 bytes of base64")]
    BadSecret,
    #[error("header `{0}` is missing or not text")]
    MissingHeader(&'static str),
    #[error("`webhook-timestamp` is not unix seconds")]
    BadTimestamp,
    #[error("the delivery is outside the accepted time window")]
    Stale,
    #[error("no signature matches")]
    BadSignature,
    #[error("the body is not a webhook event: {0}")]
    BadBody(String),
}

/// Verifies a delivery and returns its event. `now` is the receiver's clock; deliveries whose
/// timestamp differs from it by more than `tolerance` (5 minutes is usual) are refused.
pub fn verify_webhook(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<WebhookEvent, WebhookError> {
    verify_signature(secret, headers, body, now, tolerance)?;
    serde_json::from_slice(body).map_err(|e| WebhookError::BadBody(e.to_string()))
}

/// Checks the headers and signature of a delivery without reading its body.
pub fn verify_signature(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::MissingHeader(name))
    };
    let id = header(webhook_headers::ID)?;
    let timestamp = header(webhook_headers::TIMESTAMP)?;
    let signatures = header(webhook_headers::SIGNATURE)?;
    let sent: u64 = timestamp.parse().map_err(|_| WebhookError::BadTimestamp)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| WebhookError::Stale)?
        .as_secs();
    if now.abs_diff(sent) > tolerance.as_secs() {
        return Err(WebhookError::Stale);
    }
    let matches = signatures.split(' ').any(|candidate| {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            return false;
        };
        let Ok(signature) = STANDARD.decode(encoded) else {
            return false;
        };
        secret
            .mac(id, timestamp, body)
            .verify_slice(&signature)
            .is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The published Standard Webhooks test vector (also in the reference libraries' tests).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: u64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, timestamp: u64, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        h.insert("webhook-timestamp", HeaderValue::from(timestamp));
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(signature).unwrap(),
        );
        h
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn the_specification_test_vector_verifies() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let r = verify_signature(
            &secret,
            &headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE),
            SPEC_BODY.as_bytes(),
            at(SPEC_TIMESTAMP + 10),
            FIVE_MINUTES,
        );
        assert_eq!(r, Ok(()));
        // Verified, but not one of the broker's events: said after the signature check.
        let r = verify_webhook(
            &secret,
            &headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE),
            SPEC_BODY.as_bytes(),
            at(SPEC_TIMESTAMP),
            FIVE_MINUTES,
        );
        assert!(matches!(r, Err(WebhookError::BadBody(_))), "{r:?}");
    }

    #[test]
    fn one_matching_signature_among_several_is_enough() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let both = format!("v1,bm9wZQ== {SPEC_SIGNATURE}");
        let r = verify_signature(
            &secret,
            &headers(SPEC_ID, SPEC_TIMESTAMP, &both),
            SPEC_BODY.as_bytes(),
            at(SPEC_TIMESTAMP),
            FIVE_MINUTES,
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn a_tampered_body_a_wrong_secret_a_changed_id_and_a_stale_timestamp_fail() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let good = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
        let verify = |secret: &WebhookSecret, h: &HeaderMap, body: &str, now: u64| {
            verify_signature(secret, h, body.as_bytes(), at(now), FIVE_MINUTES)
        };
        assert_eq!(
            verify(&secret, &good, r#"{"test": 2432232315}"#, SPEC_TIMESTAMP),
            Err(WebhookError::BadSignature)
        );
        let other = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(
            verify(&other, &good, SPEC_BODY, SPEC_TIMESTAMP),
            Err(WebhookError::BadSignature)
        );
        let renamed = headers("msg_other", SPEC_TIMESTAMP, SPEC_SIGNATURE);
        assert_eq!(
            verify(&secret, &renamed, SPEC_BODY, SPEC_TIMESTAMP),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(&secret, &good, SPEC_BODY, SPEC_TIMESTAMP + 301),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            verify(&secret, &good, SPEC_BODY, SPEC_TIMESTAMP - 301),
            Err(WebhookError::Stale)
        );
        let mut missing = good.clone();
        missing.remove("webhook-signature");
        assert_eq!(
            verify(&secret, &missing, SPEC_BODY, SPEC_TIMESTAMP),
            Err(WebhookError::MissingHeader("webhook-signature"))
        );
    }

    #[test]
    fn secrets_must_have_the_whsec_prefix_and_enough_key() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        assert!(!format!("{:?}", WebhookSecret::parse(SPEC_SECRET).unwrap()).contains("MfKQ"));
    }
}

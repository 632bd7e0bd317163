//! [`WebhookKey`]: a service's Standard Webhooks signing secret (`whsec_<base64>`, 24 to 64
//! bytes of key), and the signature the broker puts on each delivery:
//! `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`. The key is zeroized on drop
//! and its `Debug` prints nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

#[derive(Clone)]
pub struct WebhookKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey(..)")
    }
}

impl WebhookKey {
    /// Parses `whsec_<base64>`. The error says what is wrong, never the value.
    pub fn parse(secret: &str) -> Result<Self, &'static str> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or("must start with `whsec_` (Standard Webhooks format)")?;
        let key = Zeroizing::new(
            STANDARD
                .decode(encoded)
                .map_err(|_| "must be `whsec_` followed by standard base64")?,
        );
        if !(24..=64).contains(&key.len()) {
            return Err("must hold 24 to 64 bytes of key");
        }
        Ok(Self(key))
    }

    /// A fresh random key in its `whsec_` form, for the config.
    pub fn generate() -> String {
        format!("whsec_{}", STANDARD.encode(crate::random::bytes::<32>()))
    }

    /// The `webhook-signature` header value of a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length: `new_from_slice` cannot fail here.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.0) else {
            unreachable!("HMAC accepts any key length")
        };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_reproduce_the_standard_webhooks_test_vector() {
        // Published with the specification and used by its reference libraries' tests.
        let key = WebhookKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn malformed_secrets_are_refused_without_echoing_them() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
        ] {
            let e = WebhookKey::parse(bad).unwrap_err();
            assert!(!e.contains(bad));
        }
        assert!(WebhookKey::parse(&WebhookKey::generate()).is_ok());
        let key = WebhookKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(!format!("{key:?}").contains("MfKQ"));
    }
}

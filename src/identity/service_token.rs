//! Service bearer tokens: `cbs_` + base64url(32 random bytes). The config holds only the
//! SHA-256 digest; a presented token is hashed and compared in constant time with every
//! configured digest, so timing says nothing about which service (if any) matched. A
//! service being rotated also has its previous token's digest, accepted until its
//! deadline (read from the broker's clock) and never after.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Service;
use crate::domain::Timestamp;

const PREFIX: &str = "cbs_";

/// A new token and the hex digest to paste into `services[].token_sha256`.
pub fn generate() -> (String, String) {
    let token = format!("{PREFIX}{}", crate::random::token::<32>());
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    (token, digest)
}

/// The service whose token this is at `now`, if any.
pub fn authenticate<'a>(
    services: &'a [Arc<Service>],
    presented: &str,
    now: Timestamp,
) -> Option<&'a Arc<Service>> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for service in services {
        // Every digest is compared, used or not, so the time taken does not depend on
        // which service (or which of its tokens) matched.
        let current = service
            .token_sha256
            .is_some_and(|d| bool::from(d.ct_eq(&digest)));
        let previous = service.identity.previous_token.as_ref().is_some_and(|p| {
            let same = bool::from(p.sha256.ct_eq(&digest));
            same && now < p.valid_until
        });
        if current | previous {
            found = Some(service);
        }
    }
    found
}

/// Whether `presented` is the token whose SHA-256 is `digest`, compared in constant time
/// (the SCIM client's and the Shared Signals transmitter's bearer tokens).
pub fn matches(digest: &[u8; 32], presented: &str) -> bool {
    let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    bool::from(digest.ct_eq(&presented))
}

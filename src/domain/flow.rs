//! Upstream authorization flows in progress: what the broker must remember between
//! sending the browser to an authorization server and its return to `/oauth/callback`.
//!
//! A flow is stored under the SHA-256 of its `state` (the state itself is never stored),
//! read at most once, bound to the browser session that started it (by the digest of a
//! per-session random binding) and to one elicitation, and it expires after ten minutes.
//! The PKCE verifier is sealed by the vault.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ElicitationId, Timestamp};
use crate::vault::Sealed;

/// How long a user may take at the authorization server.
pub const FLOW_TTL: time::Duration = time::Duration::minutes(10);

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRecord {
    pub elicitation: ElicitationId,
    /// SHA-256 (hex) of the session's flow binding.
    pub binding_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: Timestamp,
    pub sealed_verifier: Sealed,
}

/// The key a flow is stored under: SHA-256 (hex) of a secret value (state or binding).
pub fn digest_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

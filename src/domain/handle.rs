//! Grant handles: the opaque bearer string a service redeems. `cbh_` + base64url(32 random
//! bytes). Only the SHA-256 digest is ever indexed; the handle itself lives sealed inside
//! the grant's vault record and in the bound service's hands.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const PREFIX: &str = "cbh_";

/// A grant handle. Debug and Display never print it; `expose` is the one way out.
#[derive(Clone, PartialEq, Eq)]
pub struct Handle(Zeroizing<String>);

impl Handle {
    pub fn generate() -> Self {
        Self(Zeroizing::new(format!(
            "{PREFIX}{}",
            crate::random::token::<32>()
        )))
    }

    /// Parses a presented handle; `None` unless it has exactly the shape we mint.
    pub fn parse(value: &str) -> Option<Self> {
        let body = value.strip_prefix(PREFIX)?;
        let well_formed = body.len() == 43
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(Zeroizing::new(value.to_owned())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> HandleDigest {
        HandleDigest(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handle(..)")
    }
}

/// SHA-256 of a handle: the index under which a grant is found at redemption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HandleDigest([u8; 32]);

impl HandleDigest {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl TryFrom<String> for HandleDigest {
    type Error = hex::FromHexError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(value, &mut out)?;
        Ok(Self(out))
    }
}

impl From<HandleDigest> for String {
    fn from(d: HandleDigest) -> String {
        d.to_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_handle_parses_and_debug_hides_it() {
        let h = Handle::generate();
        assert!(h.expose().starts_with("cbh_"));
        assert_eq!(Handle::parse(h.expose()).unwrap().digest(), h.digest());
        assert!(!format!("{h:?}").contains(&h.expose()[4..]));
    }

    #[test]
    fn malformed_handles_are_refused() {
        let h = Handle::generate();
        for bad in [
            "",
            "cbh_",
            &h.expose()[1..],
            &format!("{}x", h.expose()),
            &h.expose().replace("cbh_", "cbx_"),
        ] {
            assert!(Handle::parse(bad).is_none(), "{bad:?}");
        }
    }
}

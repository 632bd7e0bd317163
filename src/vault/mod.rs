//! The vault: the only place that touches the AEAD cipher.
//!
//! Owns the key-encryption keys ([`Keyring`]) and the envelope format
//! ([`Sealed`]) that stored credentials are kept in.
//!
//! Invariants:
//! - No code outside this module imports `aes_gcm` or sees raw key bytes.
//! - Every nonce and data key comes fresh from the operating system's RNG.
//! - No `Debug`, `Display` or error output contains key material or plaintext.

pub mod envelope;
pub mod keyring;

pub use envelope::{SealContext, Sealed, Vault, VaultError};
pub use keyring::{Kek, KeyId, Keyring, KeyringError};

/// Fills `buf` from the operating system's RNG.
///
/// # Panics
/// If the OS RNG fails. Without it no key or nonce can be trusted, so there is
/// no safe way to continue.
fn fill_random(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        panic!(
            "the operating system's random number generator failed ({err}); \
             refusing to create keys or nonces without it"
        );
    }
}

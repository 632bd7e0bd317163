//! Randomness for identifiers and tokens: the OS CSPRNG, nothing else.
//!
//! Every id, handle, CSRF token and service token in the broker comes from here, so that
//! the source can be audited in one place.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `N` bytes from the operating system's CSPRNG.
///
/// # Panics
/// When the OS RNG fails. There is no safe way to mint a credential without it, so the
/// broker stops rather than hand out a guessable value.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// `N` random bytes as unpadded base64url text.
pub fn token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<N>())
}

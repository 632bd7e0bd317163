//! Key-encryption keys and the keyring that names them.
//!
//! Owns [`KeyId`] (a validated key name), [`Kek`] (a 256-bit key-encryption
//! key) and [`Keyring`] (the set of keys plus which one seals new records).
//!
//! Invariants:
//! - A [`KeyId`] is always 1–64 characters of `[A-Za-z0-9._-]`.
//! - A [`Kek`] is always exactly 32 bytes, zeroized on drop, and never printed.
//! - A [`Keyring`] is never empty and its active key is always present.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Length of a key-encryption key in bytes.
const KEK_LEN: usize = 32;

/// Longest permitted key id, in characters.
const KEY_ID_MAX: usize = 64;

/// Decoding accepts padded and unpadded input alike.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Why a key id, key or keyring was refused. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("key id `{0}` must be 1–64 characters of A–Z a–z 0–9 . _ -")]
    InvalidKeyId(String),
    #[error("a key must be 32 bytes (256 bits) of base64; this one is not valid base64")]
    NotBase64,
    #[error("a key must be 32 bytes (256 bits) of base64; this one decodes to {got} bytes")]
    WrongLength { got: usize },
    #[error("the keyring has no keys")]
    Empty,
    #[error("the active key `{0}` is not in the keyring")]
    ActiveMissing(KeyId),
}

/// The name of a key in the keyring; recorded in every sealed record.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = KeyringError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if (1..=KEY_ID_MAX).contains(&s.len()) && s.chars().all(valid_char) {
            Ok(KeyId(s))
        } else {
            Err(KeyringError::InvalidKeyId(s))
        }
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> String {
        id.0
    }
}

impl FromStr for KeyId {
    type Err = KeyringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyId::try_from(s.to_owned())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 256-bit key-encryption key. Zeroized on drop; `Debug` prints `Kek(..)`.
pub struct Kek(Zeroizing<[u8; KEK_LEN]>);

impl Kek {
    /// Generates a fresh key from the operating system's RNG.
    ///
    /// # Panics
    /// If the OS RNG fails: there is no safe way to continue without it.
    pub fn generate() -> Kek {
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        super::fill_random(bytes.as_mut_slice());
        Kek(bytes)
    }

    /// Parses a key from base64 (standard or URL-safe alphabet, padded or
    /// not, surrounding whitespace ignored). It must decode to 32 bytes.
    pub fn from_base64(s: &str) -> Result<Kek, KeyringError> {
        let s = s.trim();
        let decoded = STANDARD_LENIENT
            .decode(s)
            .or_else(|_| URL_SAFE_LENIENT.decode(s))
            .map(Zeroizing::new)
            // The decoder's error names the offending byte: drop it.
            .map_err(|_| KeyringError::NotBase64)?;
        if decoded.len() != KEK_LEN {
            return Err(KeyringError::WrongLength { got: decoded.len() });
        }
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        bytes.copy_from_slice(&decoded);
        Ok(Kek(bytes))
    }

    /// Encodes the key as standard, padded base64.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.as_slice()))
    }

    /// The raw key bytes, for the envelope code only.
    pub(super) fn bytes(&self) -> &[u8; KEK_LEN] {
        &self.0
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(..)")
    }
}

/// The named key-encryption keys, and which one seals new records.
pub struct Keyring {
    active: KeyId,
    keys: BTreeMap<KeyId, Kek>,
}

impl Keyring {
    /// Builds a keyring; `active` must be one of `keys`.
    pub fn new(active: KeyId, keys: BTreeMap<KeyId, Kek>) -> Result<Keyring, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        if !keys.contains_key(&active) {
            return Err(KeyringError::ActiveMissing(active));
        }
        Ok(Keyring { active, keys })
    }

    /// The key that new records are sealed (and old ones re-wrapped) under.
    pub fn active_id(&self) -> &KeyId {
        &self.active
    }

    pub fn contains(&self, id: &KeyId) -> bool {
        self.keys.contains_key(id)
    }

    /// All key ids, in sorted order.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    pub(crate) fn key(&self, id: &KeyId) -> Option<&Kek> {
        self.keys.get(id)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    fn id(s: &str) -> KeyId {
        s.parse().unwrap()
    }

    /// Bytes chosen so the standard and URL-safe encodings differ (`+`/`/` vs `-`/`_`).
    fn awkward_bytes() -> [u8; 32] {
        let mut b = [0xfb; 32];
        b[0] = 0xff;
        b
    }

    #[test]
    fn a_key_id_of_allowed_characters_round_trips() {
        let k = id("k-2024.01_a");
        assert_eq!(k.as_str(), "k-2024.01_a");
        assert_eq!(k.to_string(), "k-2024.01_a");
        assert!(KeyId::from_str(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn a_key_id_that_is_empty_too_long_or_has_odd_characters_is_refused() {
        for bad in ["", &"a".repeat(65), "a/b", "k 1", "ké"] {
            let err = KeyId::from_str(bad).unwrap_err();
            assert!(matches!(err, KeyringError::InvalidKeyId(_)), "{bad:?}");
        }
    }

    #[test]
    fn a_key_id_serializes_as_a_string_and_is_validated_when_deserialized() {
        assert_eq!(serde_json::to_string(&id("k1")).unwrap(), "\"k1\"");
        assert_eq!(serde_json::from_str::<KeyId>("\"k1\"").unwrap(), id("k1"));
        assert!(serde_json::from_str::<KeyId>("\"a/b\"").is_err());
    }

    #[test]
    fn a_kek_is_accepted_in_standard_or_url_safe_base64_padded_or_not() {
        let bytes = awkward_bytes();
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let text = format!("  {}\n", engine.encode(bytes));
            let kek = Kek::from_base64(&text).unwrap();
            assert_eq!(kek.bytes(), &bytes, "{text:?}");
        }
    }

    #[test]
    fn a_kek_of_the_wrong_length_is_refused_naming_the_byte_count() {
        for len in [16, 33] {
            let err = Kek::from_base64(&STANDARD.encode(vec![7u8; len])).unwrap_err();
            assert!(matches!(err, KeyringError::WrongLength { got } if got == len));
            let msg = err.to_string();
            assert!(msg.contains(&format!("{len} bytes")), "{msg}");
            assert!(msg.contains("32 bytes"), "{msg}");
        }
    }

    #[test]
    fn a_kek_that_is_not_base64_is_refused_without_echoing_it() {
        let err = Kek::from_base64("not*base64*secretive").unwrap_err();
        assert!(matches!(err, KeyringError::NotBase64));
        assert!(!err.to_string().contains("secretive"));
        assert!(!format!("{err:?}").contains("secretive"));
    }

    #[test]
    fn a_kek_round_trips_through_standard_padded_base64() {
        let kek = Kek::generate();
        let text = kek.to_base64();
        assert!(text.ends_with('='));
        assert_eq!(Kek::from_base64(&text).unwrap().bytes(), kek.bytes());
    }

    #[test]
    fn generated_keks_differ() {
        assert_ne!(Kek::generate().bytes(), Kek::generate().bytes());
    }

    #[test]
    fn debug_output_of_a_kek_and_a_keyring_does_not_contain_the_key() {
        let kek = Kek::generate();
        let secret = kek.to_base64();
        assert_eq!(format!("{kek:?}"), "Kek(..)");
        let ring = Keyring::new(id("k1"), BTreeMap::from([(id("k1"), kek)])).unwrap();
        let shown = format!("{ring:?}");
        assert!(shown.contains("k1"));
        assert!(!shown.contains(secret.as_str()));
    }

    #[test]
    fn a_keyring_without_keys_is_refused() {
        let err = Keyring::new(id("k1"), BTreeMap::new()).unwrap_err();
        assert!(matches!(err, KeyringError::Empty));
    }

    #[test]
    fn a_keyring_whose_active_key_is_missing_is_refused() {
        let keys = BTreeMap::from([(id("k1"), Kek::generate())]);
        let err = Keyring::new(id("k2"), keys).unwrap_err();
        assert!(matches!(&err, KeyringError::ActiveMissing(k) if *k == id("k2")));
        assert!(err.to_string().contains("`k2`"));
    }

    #[test]
    fn a_keyring_reports_its_active_key_and_members() {
        let keys = BTreeMap::from([(id("k2"), Kek::generate()), (id("k1"), Kek::generate())]);
        let ring = Keyring::new(id("k2"), keys).unwrap();
        assert_eq!(ring.active_id(), &id("k2"));
        assert!(ring.contains(&id("k1")));
        assert!(!ring.contains(&id("k3")));
        assert!(ring.key(&id("k3")).is_none());
        let ids: Vec<_> = ring.key_ids().map(KeyId::as_str).collect();
        assert_eq!(ids, ["k1", "k2"]);
    }
}

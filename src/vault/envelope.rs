//! Envelope encryption of stored secrets.
//!
//! Owns the [`Sealed`] record format and the [`Vault`] that seals, opens and
//! re-wraps records with AES-256-GCM.
//!
//! Format (`||` is concatenation):
//! - `wrapped_key = nonce(12) || AES-256-GCM_kek(data_key) || tag(16)`, 60 bytes,
//!   under the keyring's active key, AAD = `"consent-broker/v1/data-key"`,
//!   key id, grant id, service, subject, provider.
//! - `ciphertext = nonce(12) || AES-256-GCM_data_key(plaintext) || tag(16)`,
//!   AAD = `"consent-broker/v1/secret"`, grant id, service, subject, provider.
//! - Every AAD item (the label included) is a u32 big-endian length followed
//!   by its bytes, so no two different contexts encode alike.
//!
//! Invariants:
//! - Every seal draws a fresh random data key (zeroized after use) and every
//!   encryption a fresh random 96-bit nonce.
//! - The key id is bound through the wrapped key's AAD, so re-wrapping never
//!   touches the ciphertext.
//! - Every parse or authentication failure is [`VaultError::Corrupt`]; no
//!   input panics (lengths are checked before slicing).

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keyring::{KeyId, Keyring};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DATA_KEY_LEN: usize = 32;
const WRAPPED_KEY_LEN: usize = NONCE_LEN + DATA_KEY_LEN + TAG_LEN;

const DATA_KEY_LABEL: &[u8] = b"consent-broker/v1/data-key";
const SECRET_LABEL: &[u8] = b"consent-broker/v1/secret";

/// What a sealed record belongs to. It is authenticated (not encrypted), so
/// a record only opens for the exact context it was sealed for.
#[derive(Clone, Copy, Debug)]
pub struct SealContext<'a> {
    pub grant_id: &'a str,
    pub service: &'a str,
    pub subject: &'a str,
    pub provider: &'a str,
}

/// An encrypted secret, as stored. Both byte fields are base64url (no padding) in serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// The key-encryption key that `wrapped_key` is sealed under.
    pub key_id: KeyId,
    #[serde(with = "b64")]
    pub wrapped_key: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

/// Why a record could not be opened. Never contains key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("sealed with key `{0}`, which is not in the keyring")]
    UnknownKey(KeyId),
    #[error(
        "sealed record failed authentication (tampered, truncated, or moved from another record)"
    )]
    Corrupt,
}

/// Seals and opens records with the keys of a [`Keyring`].
#[derive(Debug)]
pub struct Vault {
    keyring: Keyring,
}

impl Vault {
    pub fn new(keyring: Keyring) -> Vault {
        Vault { keyring }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Encrypts `plaintext` for `ctx` under a fresh data key, wrapped with the active key.
    ///
    /// Fails only if the plaintext exceeds AES-GCM's limit (64 GiB) or a
    /// context field exceeds 4 GiB; both are reported as [`VaultError::Corrupt`].
    pub fn seal(&self, ctx: SealContext<'_>, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        super::fill_random(data_key.as_mut_slice());
        let ciphertext = encrypt(data_key.as_slice(), &secret_aad(ctx)?, plaintext)?;
        let (key_id, wrapped_key) = self.wrap(ctx, data_key.as_slice())?;
        Ok(Sealed {
            key_id,
            wrapped_key,
            ciphertext,
        })
    }

    /// Decrypts a record sealed for exactly `ctx`.
    pub fn open(
        &self,
        ctx: SealContext<'_>,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let data_key = self.unwrap_data_key(ctx, sealed)?;
        decrypt(&data_key, &secret_aad(ctx)?, &sealed.ciphertext)
    }

    /// Re-wraps the record's data key under the active key (fresh nonce);
    /// the ciphertext is unchanged. A record already under the active key is
    /// returned as is.
    pub fn rewrap(&self, ctx: SealContext<'_>, sealed: &Sealed) -> Result<Sealed, VaultError> {
        if !self.needs_rewrap(sealed) {
            return Ok(sealed.clone());
        }
        let data_key = self.unwrap_data_key(ctx, sealed)?;
        let (key_id, wrapped_key) = self.wrap(ctx, &data_key)?;
        Ok(Sealed {
            key_id,
            wrapped_key,
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    /// Whether the record is wrapped under a key other than the active one.
    pub fn needs_rewrap(&self, sealed: &Sealed) -> bool {
        sealed.key_id != *self.keyring.active_id()
    }

    /// Wraps `data_key` under the active key, returning the key id used.
    fn wrap(&self, ctx: SealContext<'_>, data_key: &[u8]) -> Result<(KeyId, Vec<u8>), VaultError> {
        let id = self.keyring.active_id();
        // `Keyring` guarantees its active key is present; no panic either way.
        let kek = self
            .keyring
            .key(id)
            .ok_or_else(|| VaultError::UnknownKey(id.clone()))?;
        let wrapped = encrypt(kek.bytes(), &data_key_aad(id, ctx)?, data_key)?;
        Ok((id.clone(), wrapped))
    }

    /// Recovers the record's data key with the key its `key_id` names.
    fn unwrap_data_key(
        &self,
        ctx: SealContext<'_>,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let kek = self
            .keyring
            .key(&sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.wrapped_key.len() != WRAPPED_KEY_LEN {
            return Err(VaultError::Corrupt);
        }
        decrypt(
            kek.bytes(),
            &data_key_aad(&sealed.key_id, ctx)?,
            &sealed.wrapped_key,
        )
    }
}

/// AAD for the wrapped data key: label, key id, then the context.
fn data_key_aad(key_id: &KeyId, ctx: SealContext<'_>) -> Result<Vec<u8>, VaultError> {
    let [grant, service, subject, provider] = context_fields(ctx);
    encode_aad(&[
        DATA_KEY_LABEL,
        key_id.as_str().as_bytes(),
        grant,
        service,
        subject,
        provider,
    ])
}

/// AAD for the secret itself: label, then the context.
fn secret_aad(ctx: SealContext<'_>) -> Result<Vec<u8>, VaultError> {
    let [grant, service, subject, provider] = context_fields(ctx);
    encode_aad(&[SECRET_LABEL, grant, service, subject, provider])
}

fn context_fields(ctx: SealContext<'_>) -> [&[u8]; 4] {
    [
        ctx.grant_id.as_bytes(),
        ctx.service.as_bytes(),
        ctx.subject.as_bytes(),
        ctx.provider.as_bytes(),
    ]
}

/// Each item as a u32 big-endian length then its bytes.
fn encode_aad(items: &[&[u8]]) -> Result<Vec<u8>, VaultError> {
    let mut aad = Vec::with_capacity(items.iter().map(|item| 4 + item.len()).sum());
    for item in items {
        let len = u32::try_from(item.len()).map_err(|_| VaultError::Corrupt)?;
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(item);
    }
    Ok(aad)
}

/// Builds the cipher. Both callers pass 32-byte keys, so this cannot fail;
/// if it somehow did, the record is treated as corrupt rather than panicking.
fn cipher(key: &[u8]) -> Result<Aes256Gcm, VaultError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::Corrupt)
}

/// Returns `nonce || ciphertext || tag` under a fresh random nonce.
fn encrypt(key: &[u8], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    super::fill_random(&mut nonce);
    // Fails only for a message over AES-GCM's 64 GiB limit.
    let body = cipher(key)?
        .encrypt(&nonce.into(), Payload { msg, aad })
        .map_err(|_| VaultError::Corrupt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + body.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens `nonce || ciphertext || tag`; any malformed or inauthentic input is `Corrupt`.
fn decrypt(key: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let (nonce, body) = sealed
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(VaultError::Corrupt)?;
    if body.len() < TAG_LEN {
        return Err(VaultError::Corrupt);
    }
    cipher(key)?
        .decrypt(&(*nonce).into(), Payload { msg: body, aad })
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Corrupt)
}

/// Serde helper: bytes as base64url without padding.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        URL_SAFE_NO_PAD.decode(text).map_err(|err| {
            D::Error::custom(format_args!("expected base64url without padding: {err}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::vault::Kek;

    const CTX: SealContext<'static> = SealContext {
        grant_id: "grant-1",
        service: "github",
        subject: "user-1",
        provider: "oauth",
    };

    fn id(s: &str) -> KeyId {
        s.parse().unwrap()
    }

    /// A key whose 32 bytes are all `byte`, so tests can build the same key twice.
    fn kek(byte: u8) -> Kek {
        Kek::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    /// A vault whose keys are `(id, byte)` pairs, the first one active.
    fn vault(keys: &[(&str, u8)]) -> Vault {
        let ring: BTreeMap<_, _> = keys.iter().map(|&(k, b)| (id(k), kek(b))).collect();
        Vault::new(Keyring::new(id(keys[0].0), ring).unwrap())
    }

    fn assert_corrupt(result: Result<impl Sized, VaultError>) {
        assert!(matches!(result, Err(VaultError::Corrupt)));
    }

    #[test]
    fn a_sealed_record_opens_to_the_original_plaintext() {
        let v = vault(&[("k1", 1)]);
        let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        for plaintext in [&b""[..], b"ghp_secret", &big] {
            let sealed = v.seal(CTX, plaintext).unwrap();
            assert_eq!(sealed.key_id, id("k1"));
            assert_eq!(sealed.wrapped_key.len(), WRAPPED_KEY_LEN);
            assert_eq!(
                sealed.ciphertext.len(),
                NONCE_LEN + plaintext.len() + TAG_LEN
            );
            assert_eq!(v.open(CTX, &sealed).unwrap().as_slice(), plaintext);
        }
    }

    #[test]
    fn sealing_the_same_plaintext_twice_gives_different_records() {
        let v = vault(&[("k1", 1)]);
        let a = v.seal(CTX, b"same").unwrap();
        let b = v.seal(CTX, b"same").unwrap();
        assert_ne!(a.wrapped_key[..NONCE_LEN], b.wrapped_key[..NONCE_LEN]);
        assert_ne!(a.wrapped_key[NONCE_LEN..], b.wrapped_key[NONCE_LEN..]);
        assert_ne!(a.ciphertext[..NONCE_LEN], b.ciphertext[..NONCE_LEN]);
        assert_ne!(a.ciphertext[NONCE_LEN..], b.ciphertext[NONCE_LEN..]);
    }

    #[test]
    fn flipping_any_byte_of_the_wrapped_key_makes_the_record_corrupt() {
        let v = vault(&[("k1", 1)]);
        let sealed = v.seal(CTX, b"secret").unwrap();
        for i in 0..sealed.wrapped_key.len() {
            let mut bad = sealed.clone();
            bad.wrapped_key[i] ^= 0x01;
            assert_corrupt(v.open(CTX, &bad));
        }
    }

    #[test]
    fn flipping_any_byte_of_the_ciphertext_makes_the_record_corrupt() {
        let v = vault(&[("k1", 1)]);
        let sealed = v.seal(CTX, b"secret").unwrap();
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 0x80;
            assert_corrupt(v.open(CTX, &bad));
        }
    }

    #[test]
    fn a_record_does_not_open_if_any_context_field_changes() {
        let v = vault(&[("k1", 1)]);
        let sealed = v.seal(CTX, b"secret").unwrap();
        let changed = [
            SealContext {
                grant_id: "grant-2",
                ..CTX
            },
            SealContext {
                service: "gitlab",
                ..CTX
            },
            SealContext {
                subject: "user-2",
                ..CTX
            },
            SealContext {
                provider: "pat",
                ..CTX
            },
        ];
        for ctx in changed {
            assert_corrupt(v.open(ctx, &sealed));
        }
    }

    #[test]
    fn context_fields_cannot_be_shifted_across_boundaries() {
        let v = vault(&[("k1", 1)]);
        let ctx = SealContext {
            grant_id: "ab",
            service: "c",
            ..CTX
        };
        let sealed = v.seal(ctx, b"secret").unwrap();
        let shifted = SealContext {
            grant_id: "a",
            service: "bc",
            ..CTX
        };
        assert_corrupt(v.open(shifted, &sealed));
    }

    #[test]
    fn a_record_sealed_for_one_grant_does_not_open_for_another() {
        let v = vault(&[("k1", 1)]);
        let ctx_a = SealContext {
            grant_id: "grant-a",
            ..CTX
        };
        let ctx_b = SealContext {
            grant_id: "grant-b",
            ..CTX
        };
        let a = v.seal(ctx_a, b"secret-a").unwrap();
        let b = v.seal(ctx_b, b"secret-b").unwrap();
        assert_corrupt(v.open(ctx_b, &a));
        assert_corrupt(v.open(ctx_a, &b));
        // Nor can the two halves of different records be mixed.
        let mixed = Sealed {
            ciphertext: b.ciphertext.clone(),
            ..a.clone()
        };
        assert_corrupt(v.open(ctx_a, &mixed));
        assert_corrupt(v.open(ctx_b, &mixed));
    }

    #[test]
    fn a_record_relabelled_with_another_key_in_the_keyring_is_corrupt() {
        // k2 even holds the same bytes as k1: only the key id in the AAD tells them apart.
        for k2_byte in [1, 2] {
            let v = vault(&[("k1", 1), ("k2", k2_byte)]);
            let mut sealed = v.seal(CTX, b"secret").unwrap();
            sealed.key_id = id("k2");
            assert_corrupt(v.open(CTX, &sealed));
        }
    }

    #[test]
    fn a_record_under_a_key_not_in_the_keyring_reports_the_unknown_key() {
        let v = vault(&[("k1", 1)]);
        let mut sealed = v.seal(CTX, b"secret").unwrap();
        sealed.key_id = id("k9");
        let err = v.open(CTX, &sealed).unwrap_err();
        assert!(matches!(&err, VaultError::UnknownKey(k) if *k == id("k9")));
        assert!(err.to_string().contains("`k9`"));
    }

    #[test]
    fn a_record_opened_with_different_bytes_under_the_same_key_id_is_corrupt() {
        let sealed = vault(&[("k1", 1)]).seal(CTX, b"secret").unwrap();
        assert_corrupt(vault(&[("k1", 2)]).open(CTX, &sealed));
    }

    #[test]
    fn a_record_truncated_to_any_shorter_length_is_corrupt() {
        let v = vault(&[("k1", 1)]);
        let rotating = vault(&[("k2", 2), ("k1", 1)]);
        let sealed = v.seal(CTX, b"secret").unwrap();
        for len in 0..sealed.wrapped_key.len() {
            let mut bad = sealed.clone();
            bad.wrapped_key.truncate(len);
            assert_corrupt(v.open(CTX, &bad));
            assert_corrupt(rotating.rewrap(CTX, &bad));
        }
        for len in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext.truncate(len);
            assert_corrupt(v.open(CTX, &bad));
        }
    }

    #[test]
    fn rewrapping_moves_a_record_to_the_new_active_key() {
        let sealed = vault(&[("old", 1)]).seal(CTX, b"secret").unwrap();
        let rotating = vault(&[("new", 2), ("old", 1)]);
        assert!(rotating.needs_rewrap(&sealed));

        let rewrapped = rotating.rewrap(CTX, &sealed).unwrap();
        assert_eq!(rewrapped.key_id, id("new"));
        assert_ne!(rewrapped.wrapped_key, sealed.wrapped_key);
        assert_eq!(rewrapped.ciphertext, sealed.ciphertext);
        assert!(!rotating.needs_rewrap(&rewrapped));

        let new_only = vault(&[("new", 2)]);
        assert_eq!(
            new_only.open(CTX, &rewrapped).unwrap().as_slice(),
            b"secret"
        );
    }

    #[test]
    fn rewrapping_a_record_already_under_the_active_key_returns_it_unchanged() {
        let v = vault(&[("k1", 1)]);
        let sealed = v.seal(CTX, b"secret").unwrap();
        assert!(!v.needs_rewrap(&sealed));
        assert_eq!(v.rewrap(CTX, &sealed).unwrap(), sealed);
    }

    #[test]
    fn rewrapping_checks_the_context_and_the_old_key() {
        let sealed = vault(&[("old", 1)]).seal(CTX, b"secret").unwrap();
        let rotating = vault(&[("new", 2), ("old", 1)]);
        assert_corrupt(rotating.rewrap(
            SealContext {
                grant_id: "other",
                ..CTX
            },
            &sealed,
        ));
        let err = vault(&[("new", 2)]).rewrap(CTX, &sealed).unwrap_err();
        assert!(matches!(err, VaultError::UnknownKey(k) if k == id("old")));
    }

    #[test]
    fn a_sealed_record_round_trips_through_json_as_base64url() {
        let v = vault(&[("k1", 1)]);
        let sealed = v.seal(CTX, &[0xfb; 40]).unwrap();
        let json = serde_json::to_string(&sealed).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["key_id"], "k1");
        for field in ["wrapped_key", "ciphertext"] {
            let text = value[field].as_str().unwrap();
            assert!(!text.contains(['+', '/', '=']), "{field}: {text}");
        }
        let back: Sealed = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sealed);
        assert_eq!(v.open(CTX, &back).unwrap().as_slice(), &[0xfb; 40]);
    }

    #[test]
    fn a_sealed_record_with_an_unknown_json_field_is_refused() {
        let v = vault(&[("k1", 1)]);
        let mut value = serde_json::to_value(v.seal(CTX, b"secret").unwrap()).unwrap();
        value["extra"] = serde_json::Value::from(1);
        assert!(serde_json::from_value::<Sealed>(value).is_err());
    }

    #[test]
    fn a_sealed_record_with_an_invalid_key_id_or_bad_base64_is_refused() {
        let bad_id = r#"{"key_id":"a/b","wrapped_key":"AA","ciphertext":"AA"}"#;
        let bad_b64 = r#"{"key_id":"k1","wrapped_key":"A+A=","ciphertext":"AA"}"#;
        assert!(serde_json::from_str::<Sealed>(bad_id).is_err());
        assert!(serde_json::from_str::<Sealed>(bad_b64).is_err());
    }

    #[test]
    fn debug_output_of_a_vault_does_not_contain_the_key() {
        let kek = kek(7);
        let secret = kek.to_base64();
        let v = Vault::new(Keyring::new(id("k1"), BTreeMap::from([(id("k1"), kek)])).unwrap());
        let shown = format!("{v:?}");
        assert!(shown.contains("k1"));
        assert!(!shown.contains(secret.as_str()));
        assert!(!shown.contains("7, 7, 7"));
    }
}

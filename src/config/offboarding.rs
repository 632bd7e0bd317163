//! Validation of the offboarding sections, `[scim]` and `[shared_signals]`, into the
//! settings the SCIM endpoint and the Shared Signals receiver run on. Every problem names
//! its field; a bearer token is only ever held as its SHA-256.

use std::time::Duration;

use url::Url;

use super::problems::{Problems, check_http_url, is_loopback};
use super::{ScimConfig, SharedSignalsConfig, SubjectFormat};

/// The SCIM client allowed to deprovision users.
#[derive(Debug, Clone)]
pub struct ScimSettings {
    /// SHA-256 of the bearer token the IdP sends.
    pub token_sha256: [u8; 32],
    /// Names the client in the audit trail.
    pub client_name: String,
}

/// The Shared Signals transmitter whose SETs may offboard users.
#[derive(Debug, Clone)]
pub struct SharedSignalsSettings {
    pub issuer: String,
    pub jwks_url: Url,
    pub audience: String,
    pub subject_format: SubjectFormat,
    /// The `iss` an `iss_sub` subject must carry.
    pub subject_issuer: String,
    /// Oldest `iat` accepted; each `jti` is remembered this long.
    pub max_age: Duration,
    /// SHA-256 of the bearer token the transmitter must send, if one is configured.
    pub token_sha256: Option<[u8; 32]>,
}

/// Longest `max_age_seconds`: a week of remembered `jti`s.
const MAX_AGE_LIMIT: u32 = 7 * 24 * 3600;

fn digest(hex_digest: &str, field: &str, errors: &mut Problems) -> [u8; 32] {
    let mut out = [0u8; 32];
    if hex::decode_to_slice(hex_digest, &mut out).is_err() {
        errors.push(format!(
            "{field}: must be 64 hex digits (run `consent-broker service-token generate`)"
        ));
    }
    out
}

pub(super) fn scim(
    c: &ScimConfig,
    service_digests: &[[u8; 32]],
    errors: &mut Problems,
) -> ScimSettings {
    let token_sha256 = digest(&c.token_sha256, "scim.token_sha256", errors);
    if service_digests.contains(&token_sha256) {
        errors.push("scim.token_sha256: must not be a service's token".into());
    }
    let name_ok = !c.client_name.is_empty()
        && c.client_name.len() <= 64
        && c.client_name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if !name_ok {
        errors.push(
            "scim.client_name: 1 to 64 letters, digits, `-`, `_` or `.` (it names the client \
             in the audit trail)"
                .into(),
        );
    }
    ScimSettings {
        token_sha256,
        client_name: c.client_name.clone(),
    }
}

pub(super) fn shared_signals(
    c: &SharedSignalsConfig,
    dev: bool,
    errors: &mut Problems,
) -> SharedSignalsSettings {
    if c.issuer.trim().is_empty() {
        errors.push("shared_signals.issuer: must not be empty".into());
    }
    if c.audience.trim().is_empty() {
        errors.push("shared_signals.audience: must not be empty".into());
    }
    check_http_url(&c.jwks_url, "shared_signals.jwks_url", errors);
    if c.jwks_url.scheme() == "http" && !dev && !is_loopback(&c.jwks_url) {
        errors.push(
            "shared_signals.jwks_url: plain http is only allowed for loopback or with --dev; \
             the keys it serves decide who may offboard users"
                .into(),
        );
    }
    if !(60..=MAX_AGE_LIMIT).contains(&c.max_age_seconds) {
        errors.push(format!(
            "shared_signals.max_age_seconds: must be between 60 and {MAX_AGE_LIMIT}"
        ));
    }
    if c.subject_issuer.is_some() && c.subject_format != SubjectFormat::IssSub {
        errors.push(
            "shared_signals.subject_issuer: only applies when subject_format = \"iss_sub\"".into(),
        );
    }
    let token_sha256 = c
        .token_sha256
        .as_deref()
        .map(|d| digest(d, "shared_signals.token_sha256", errors));
    SharedSignalsSettings {
        issuer: c.issuer.clone(),
        jwks_url: c.jwks_url.clone(),
        audience: c.audience.clone(),
        subject_format: c.subject_format,
        subject_issuer: c.subject_issuer.clone().unwrap_or_else(|| c.issuer.clone()),
        max_age: Duration::from_secs(c.max_age_seconds.into()),
        token_sha256,
    }
}

#[cfg(test)]
mod tests {
    //! Each rule that refuses an offboarding section, with the line the operator reads.

    use crate::config::{Config, Settings};

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn problems(toml: &str) -> Vec<String> {
        let config: Config = toml::from_str(toml).expect("the test's TOML parses");
        match Settings::from_config(&config, false) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    const SSF: &str = "[shared_signals]\nissuer = \"https://idp.example\"\n\
                       audience = \"https://broker.example/ssf\"\nsubject_format = \"email\"\n";

    #[test]
    fn a_complete_offboarding_configuration_is_accepted() {
        let toml = format!(
            "[scim]\ntoken_sha256 = \"{DIGEST}\"\nclient_name = \"okta\"\n\
             {SSF}jwks_url = \"https://idp.example/jwks\"\nmax_age_seconds = 3600\n"
        );
        let config: Config = toml::from_str(&toml).unwrap();
        let settings = Settings::from_config(&config, false).unwrap();
        let scim = settings.scim.unwrap();
        assert_eq!(scim.client_name, "okta");
        assert_eq!(hex::encode(scim.token_sha256), DIGEST);
        let ssf = settings.shared_signals.unwrap();
        assert_eq!(ssf.subject_issuer, "https://idp.example");
        assert_eq!(ssf.max_age.as_secs(), 3600);
        assert!(ssf.token_sha256.is_none());
    }

    #[test]
    fn the_scim_token_is_a_digest_and_the_client_a_short_name() {
        assert_eq!(
            problems("[scim]\ntoken_sha256 = \"cbs_plaintext\"\n"),
            vec![
                "scim.token_sha256: must be 64 hex digits (run `consent-broker service-token \
                 generate`)"
            ]
        );
        assert_eq!(
            problems(&format!(
                "[scim]\ntoken_sha256 = \"{DIGEST}\"\nclient_name = \"o k\"\n"
            )),
            vec![
                "scim.client_name: 1 to 64 letters, digits, `-`, `_` or `.` (it names the \
                 client in the audit trail)"
            ]
        );
        let shared = format!(
            "[scim]\ntoken_sha256 = \"{DIGEST}\"\n[[services]]\nid = \"svc\"\nname = \"S\"\n\
             token_sha256 = \"{DIGEST}\"\n"
        );
        assert_eq!(
            problems(&shared),
            vec!["scim.token_sha256: must not be a service's token"]
        );
    }

    #[test]
    fn the_shared_signals_receiver_is_checked() {
        assert_eq!(
            problems(&format!("{SSF}jwks_url = \"http://idp.example/jwks\"\n")),
            vec![
                "shared_signals.jwks_url: plain http is only allowed for loopback or with \
                 --dev; the keys it serves decide who may offboard users"
            ]
        );
        assert!(problems(&format!("{SSF}jwks_url = \"http://127.0.0.1:9/jwks\"\n")).is_empty());
        assert_eq!(
            problems(&format!(
                "{SSF}jwks_url = \"https://idp.example/jwks\"\nmax_age_seconds = 5\n"
            )),
            vec!["shared_signals.max_age_seconds: must be between 60 and 604800"]
        );
        assert_eq!(
            problems(&format!(
                "{SSF}jwks_url = \"https://idp.example/jwks\"\nsubject_issuer = \"https://x\"\n"
            )),
            vec!["shared_signals.subject_issuer: only applies when subject_format = \"iss_sub\""]
        );
        assert_eq!(
            problems(&format!(
                "{}jwks_url = \"https://idp.example/jwks\"\n",
                SSF.replace("https://broker.example/ssf", " ")
            )),
            vec!["shared_signals.audience: must not be empty"]
        );
        let bad_format: Result<Config, _> = toml::from_str(&format!(
            "{}jwks_url = \"https://idp.example/jwks\"\n",
            SSF.replace("\"email\"", "\"phone_number\"")
        ));
        assert!(bad_format.is_err(), "only the three formats parse");
    }
}

//! Collecting configuration problems, one line each naming its field, and the checks
//! several sections share (secrets inline or in a file, http(s) URLs, loopback hosts).

use secrecy::SecretString;
use url::Url;

/// What validation found. `push` records an error; with `secret_files_optional` (for
/// `check-config` on a machine without the production secrets) a missing secret file is
/// only a note.
pub(super) struct Problems {
    pub(super) errors: Vec<String>,
    pub(super) notes: Vec<String>,
    pub(super) secret_files_optional: bool,
}

impl Problems {
    pub(super) fn push(&mut self, error: String) {
        self.errors.push(error);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A secret given inline or in a file (exactly one of the two).
pub(super) fn secret(
    inline: &Option<SecretString>,
    file: &Option<std::path::PathBuf>,
    field: &str,
    errors: &mut Problems,
) -> SecretString {
    match (inline, file) {
        (Some(s), None) => s.clone(),
        (None, Some(path)) if errors.secret_files_optional && !path.exists() => {
            errors.notes.push(format!(
                "note: {field}_file {} is not present here; not checked",
                path.display()
            ));
            SecretString::from(String::new())
        }
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned()),
            Err(e) => {
                errors.push(format!("{field}_file: cannot read {}: {e}", path.display()));
                SecretString::from(String::new())
            }
        },
        _ => {
            errors.push(format!(
                "{field}: give exactly one of `{field}` and `{field}_file`"
            ));
            SecretString::from(String::new())
        }
    }
}

pub(super) fn check_http_url(url: &Url, field: &str, errors: &mut Problems) {
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
        errors.push(format!("{field}: must be an http(s) URL without fragment"));
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

//! Terms acceptance: the credential is the record of which version (and which exact text,
//! by digest) the user accepted. The time is the grant's creation time.

use crate::config::ProviderSpec;
use crate::domain::Credential;

/// The acceptance record for a terms provider's current version; `None` for other kinds.
pub fn acceptance(spec: &ProviderSpec) -> Option<Credential> {
    match spec {
        ProviderSpec::Terms {
            version,
            text_sha256,
            ..
        } => Some(Credential::Terms {
            version: version.clone(),
            text_sha256: text_sha256.clone(),
        }),
        ProviderSpec::ApiKey { .. } | ProviderSpec::Oauth2(_) => None,
    }
}

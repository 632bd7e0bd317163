//! How the tool presents the user's credential to the upstream, by the kind the broker's
//! `/v1/redeem` answer names: an OAuth token in `Authorization`, an API key in the header the
//! provider names, or nothing for an accepted-terms grant. The credential goes upstream only,
//! never to the MCP client and never into a log.

use consent_broker_client::api::{CredentialView, Secret};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};

/// The credential as the upstream request carries it.
pub enum UpstreamAuth {
    /// A header with a secret value (`Authorization: Bearer …`, `X-API-Key: …`).
    Header { name: HeaderName, value: Secret },
    /// The user accepted the provider's terms: nothing to send, the grant is the proof.
    None,
}

/// A credential that cannot be put in a header.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the provider's header name is not a valid HTTP header name")]
    HeaderName,
}

impl UpstreamAuth {
    pub fn from_credential(credential: &CredentialView) -> Result<Self, CredentialError> {
        Ok(match credential {
            CredentialView::Oauth2 {
                access_token,
                token_type,
                ..
            } => {
                // RFC 6750: the scheme is case-insensitive; providers answer `bearer` too.
                let scheme = if token_type.eq_ignore_ascii_case("bearer") || token_type.is_empty() {
                    "Bearer"
                } else {
                    token_type.as_str()
                };
                UpstreamAuth::Header {
                    name: AUTHORIZATION,
                    value: Secret::from(format!("{scheme} {}", access_token.expose())),
                }
            }
            CredentialView::ApiKey { api_key, header } => UpstreamAuth::Header {
                name: HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| CredentialError::HeaderName)?,
                value: api_key.clone(),
            },
            CredentialView::Terms { .. } => UpstreamAuth::None,
        })
    }

    /// Adds the credential to an upstream request (marked sensitive: kept out of debug output).
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            UpstreamAuth::Header { name, value } => match HeaderValue::from_str(value.expose()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request.header(name.clone(), value)
                }
                // A value no header can hold: send nothing rather than something else.
                Err(_) => request,
            },
            UpstreamAuth::None => request,
        }
    }
}

//! API keys: the user types the key; it must match the provider's format and, when a
//! verify URL is configured, the provider must accept it there. The key is held in
//! zeroizing memory, sent only in the configured header, and never logged or echoed.

use zeroize::Zeroizing;

use crate::Error;
use crate::config::{Provider, ProviderSpec};
use crate::domain::Credential;

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 4096;

pub async fn check(
    provider: &Provider,
    key: Zeroizing<String>,
    http: &reqwest::Client,
) -> Result<Credential, Error> {
    let ProviderSpec::ApiKey {
        header,
        format,
        verify_url,
    } = &provider.spec
    else {
        return Err(Error::InvalidRequest(
            "this request is not for an API key".into(),
        ));
    };
    let key = Zeroizing::new(key.trim().to_owned());
    if key.is_empty() {
        return Err(Error::CredentialRejected("Enter the API key".into()));
    }
    if key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(Error::CredentialRejected(format!(
            "That does not look like a valid {} API key",
            provider.name
        )));
    }
    if let Some(format) = format
        && !format.is_match(&key)
    {
        return Err(Error::CredentialRejected(format!(
            "That does not look like a valid {} API key",
            provider.name
        )));
    }
    if let Some(url) = verify_url {
        let mut value = reqwest::header::HeaderValue::from_str(&key).map_err(|_| {
            Error::CredentialRejected(format!(
                "That does not look like a valid {} API key",
                provider.name
            ))
        })?;
        value.set_sensitive(true);
        let response = http
            .get(url.clone())
            .header(header.as_str(), value)
            .send()
            .await
            .map_err(|_| {
                Error::UpstreamUnavailable(format!(
                    "{} could not check the key right now",
                    provider.name
                ))
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Error::CredentialRejected(format!(
                "{} did not accept this key",
                provider.name
            )));
        }
        if !status.is_success() {
            return Err(Error::UpstreamUnavailable(format!(
                "{} could not check the key right now (it answered {})",
                provider.name,
                status.as_u16()
            )));
        }
    }
    Ok(Credential::ApiKey {
        api_key: key.to_string(),
        header: header.clone(),
    })
}

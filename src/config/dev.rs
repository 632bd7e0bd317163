//! `--dev` conveniences: an example service with a fresh token, an example API-key and
//! terms provider, so `cargo run -- serve --dev` is a working broker with no config file.

use std::collections::BTreeMap;

use super::{Config, ProviderConfig, ServiceConfig};

pub const DEMO_SERVICE: &str = "demo";
pub const DEMO_API_KEY_PROVIDER: &str = "example-api-key";
pub const DEMO_TERMS_PROVIDER: &str = "example-terms";

/// Adds the examples beside what the config declares. Returns the demo service's token,
/// minted now by `mint_token` (which answers a token and its digest; only the digest is
/// kept), or `None` when the config already uses one of the examples' ids (then nothing is
/// added: the operator's entries win).
pub fn add_examples(
    config: &mut Config,
    mint_token: impl FnOnce() -> (String, String),
) -> Option<String> {
    let taken = config.services.iter().any(|s| s.id == DEMO_SERVICE)
        || config
            .providers
            .iter()
            .any(|p| [DEMO_API_KEY_PROVIDER, DEMO_TERMS_PROVIDER].contains(&provider_id(p)));
    if taken {
        return None;
    }
    config.providers.extend([
        ProviderConfig::ApiKey {
            id: DEMO_API_KEY_PROVIDER.into(),
            name: "Example".into(),
            header: "X-API-Key".into(),
            format: Some("^[A-Za-z0-9_-]{8,128}$".into()),
            verify_url: None,
            scopes: BTreeMap::from([
                ("read".into(), "Read your example data".into()),
                ("write".into(), "Create and change your example data".into()),
            ]),
        },
        ProviderConfig::Terms {
            id: DEMO_TERMS_PROVIDER.into(),
            name: "Example Corp".into(),
            title: "Example data-processing terms".into(),
            version: "1.0".into(),
            text: Some(
                "1. The assistant may read the documents you point it to.\n\
                 2. Nothing is shared outside Example Corp.\n\
                 3. You can withdraw this acceptance at any time under Your connections."
                    .into(),
            ),
            text_file: None,
        },
    ]);
    let (token, digest) = mint_token();
    config.services.push(ServiceConfig {
        id: DEMO_SERVICE.into(),
        name: "Demo MCP service".into(),
        token_sha256: Some(digest),
        allow: BTreeMap::from([
            (
                DEMO_API_KEY_PROVIDER.into(),
                vec!["read".into(), "write".into()],
            ),
            (DEMO_TERMS_PROVIDER.into(), vec![]),
        ]),
        webhook_url: None,
        webhook_secret: None,
        ..Default::default()
    });
    Some(token)
}

fn provider_id(p: &ProviderConfig) -> &str {
    match p {
        ProviderConfig::ApiKey { id, .. } | ProviderConfig::Terms { id, .. } => id,
        ProviderConfig::Oauth2(o) => &o.id,
    }
}

//! The compiled-in provider presets (`preset = "github"`): one TOML file each under
//! `presets/`, holding what the provider's documentation says (with the sources and the
//! date they were read) as ordinary `[[providers]]` keys. A preset is rendered with the
//! operator's `tenant` / `domain`, then the operator's own keys override it.

use std::collections::BTreeMap;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use super::{OAuth2Config, RevocationConfig};
use crate::upstream::{BodyFormat, ClientAuth, GrantedScopes, ScopeSeparator};

const FILES: [(&str, &str); 12] = [
    ("atlassian", include_str!("presets/atlassian.toml")),
    ("dropbox", include_str!("presets/dropbox.toml")),
    ("entra", include_str!("presets/entra.toml")),
    ("github", include_str!("presets/github.toml")),
    ("github-app", include_str!("presets/github-app.toml")),
    ("gitlab", include_str!("presets/gitlab.toml")),
    ("google", include_str!("presets/google.toml")),
    ("hubspot", include_str!("presets/hubspot.toml")),
    ("linear", include_str!("presets/linear.toml")),
    ("notion", include_str!("presets/notion.toml")),
    ("salesforce", include_str!("presets/salesforce.toml")),
    ("slack", include_str!("presets/slack.toml")),
];

/// A template variable a preset's URLs may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// A directory tenant id or domain (Entra).
    Tenant,
    /// A host name (Salesforce My Domain, self-managed GitLab).
    Domain,
}

impl Variable {
    pub fn key(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Domain => "domain",
        }
    }

    fn of(self, c: &OAuth2Config) -> Option<&String> {
        match self {
            Self::Tenant => c.tenant.as_ref(),
            Self::Domain => c.domain.as_ref(),
        }
    }

    /// Values are pasted into URLs: host-name characters only, so nothing can reach
    /// another host, path or query.
    fn valid(self, value: &str) -> bool {
        let host_chars = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        !value.is_empty()
            && value.len() <= 253
            && !value.starts_with(['.', '-'])
            && match self {
                Self::Tenant => value.chars().all(host_chars),
                Self::Domain => value.chars().all(|c| host_chars(c) || c == ':'),
            }
    }
}

/// What a preset says about itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetMeta {
    pub name: String,
    /// When the documentation the preset follows was read (YYYY-MM-DD).
    pub documented: String,
    pub sources: Vec<String>,
    #[serde(default)]
    pub needs: Vec<Variable>,
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Why the provider refuses RFC 8707 `resource`, when it does.
    pub refuses_resource: Option<String>,
    #[serde(default)]
    pub limits: Vec<String>,
}

pub struct Preset {
    pub key: &'static str,
    pub meta: PresetMeta,
    text: &'static str,
}

/// Every preset, by key. A file that does not parse is left out (a unit test makes sure
/// every one does).
pub fn all() -> Vec<Preset> {
    FILES
        .iter()
        .filter_map(|(key, text)| {
            let meta = Figment::from(Toml::string(text))
                .extract_inner::<PresetMeta>("preset")
                .ok()?;
            Some(Preset { key, meta, text })
        })
        .collect()
}

pub fn find(key: &str) -> Option<Preset> {
    all().into_iter().find(|p| p.key == key)
}

impl Preset {
    /// An operator's entry giving `tenant` and `domain` where this preset needs them.
    fn operator_with(&self, tenant: &str, domain: &str) -> OAuth2Config {
        let needs = |v| self.meta.needs.contains(&v);
        OAuth2Config {
            tenant: needs(Variable::Tenant).then(|| tenant.to_owned()),
            domain: needs(Variable::Domain).then(|| domain.to_owned()),
            ..OAuth2Config::default()
        }
    }

    /// The keys an operator must write, with the variables' defaults.
    fn needs(&self) -> Vec<String> {
        ["client_id", "client_secret"]
            .into_iter()
            .chain(self.meta.needs.iter().map(|v| v.key()))
            .map(|n| match self.meta.defaults.get(n) {
                Some(d) => format!("`{n}` (default `{d}`)"),
                None => format!("`{n}`"),
            })
            .collect()
    }

    /// The preset's provider keys with the operator's `tenant` / `domain` filled in, or
    /// the problems with those.
    pub fn resolve(
        &self,
        own: &OAuth2Config,
        at: &dyn Fn(&str) -> String,
    ) -> Result<OAuth2Config, Vec<String>> {
        let mut problems = Vec::new();
        let mut text = self.text.to_owned();
        for variable in [Variable::Tenant, Variable::Domain] {
            let key = variable.key();
            let needed = self.meta.needs.contains(&variable);
            let value = variable.of(own).or_else(|| self.meta.defaults.get(key));
            match (needed, value) {
                (true, None) => problems.push(format!(
                    "{}: the `{}` preset needs it ({})",
                    at(key),
                    self.key,
                    match variable {
                        Variable::Tenant => "your directory's tenant id or domain",
                        Variable::Domain => "the host name, e.g. acme.my.salesforce.com",
                    }
                )),
                (false, Some(_)) => problems.push(format!(
                    "{}: the `{}` preset does not use it",
                    at(key),
                    self.key
                )),
                (true, Some(v)) if !variable.valid(v) => problems.push(format!(
                    "{}: `{v}` is not a host name (letters, digits, `-`, `.`)",
                    at(key)
                )),
                (true, Some(v)) => text = text.replace(&format!("{{{key}}}"), v),
                (false, None) => {}
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Figment::from(Toml::string(&text))
            .extract_inner::<OAuth2Config>("provider")
            .map_err(|e| vec![format!("{}: preset `{}`: {e}", at("preset"), self.key)])
    }
}

/// One line per preset for `consent-broker providers`: key, name, what it needs.
pub fn listing() -> String {
    let mut out = String::new();
    for p in all() {
        out.push_str(&format!(
            "{:<12} {:<26} needs {} (documentation read {})\n",
            p.key,
            p.meta.name,
            p.needs().join(", ").replace('`', ""),
            p.meta.documented
        ));
    }
    out
}

/// The presets section of docs/providers.md, generated from the preset files (a test
/// keeps the document equal to it; `consent-broker providers --markdown` prints it).
pub fn markdown() -> String {
    let mut out = String::new();
    for p in all() {
        // Render with stand-ins, then show the variables as the operator writes them.
        let own = p.operator_with("tenantvar", "domainvar.invalid");
        let Ok(c) = p.resolve(&own, &|f| f.to_owned()) else {
            continue;
        };
        let url = |u: &Option<url::Url>| {
            u.as_ref().map_or("discovered".to_owned(), |u| {
                format!(
                    "`{}`",
                    u.as_str()
                        .replace("tenantvar", "{tenant}")
                        .replace("domainvar.invalid", "{domain}")
                        .replace("%7B", "{")
                        .replace("%7D", "}")
                )
            })
        };
        let code_list = |items: &[String]| {
            if items.is_empty() {
                "none".to_owned()
            } else {
                items
                    .iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let needs = p.needs().join(", ");
        let mut connect = format!(
            "{}; scopes {}-separated in `{}`",
            url(&c.authorization_endpoint),
            c.scope_separator.unwrap_or(ScopeSeparator::Space).as_str(),
            c.scope_param.as_deref().unwrap_or("scope"),
        );
        if let Some(extra) = &c.extra_scopes {
            connect.push_str(&format!(", always with {}", code_list(extra)));
        }
        for (k, v) in &c.authorize_params {
            connect.push_str(&format!(", `{k}={v}`"));
        }
        let token = format!(
            "{}; client authentication `{}`, {} body{}",
            url(&c.token_endpoint),
            c.client_auth.unwrap_or(ClientAuth::Basic).as_str(),
            match c.token_request_format {
                Some(BodyFormat::Json) => "JSON",
                _ => "form",
            },
            c.token_path
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(|p| format!("; tokens under `{p}`"))
                .unwrap_or_default(),
        );
        let refresh = format!(
            "re-authorize on {}; {}",
            code_list(c.reauthorize_errors.as_deref().unwrap_or_default()),
            match c.default_token_lifetime_seconds {
                Some(s) => format!("tokens without `expires_in` are refreshed after {s} s"),
                None => "tokens without `expires_in` do not expire".into(),
            }
        );
        let revoke = match &c.revocation {
            None | Some(RevocationConfig::Rfc7009) => {
                format!("RFC 7009 at {}", url(&c.revocation_endpoint))
            }
            Some(RevocationConfig::None) => "none: the provider offers no revocation".into(),
            Some(RevocationConfig::Request {
                method,
                url,
                auth,
                token,
                done_statuses,
                gone_statuses,
                gone_errors,
                ..
            }) => {
                let gone: Vec<String> = gone_statuses
                    .iter()
                    .map(u16::to_string)
                    .chain(gone_errors.iter().cloned())
                    .collect();
                format!(
                    "`{} {}` with the {} token ({} auth); done on {}{}",
                    method.as_str(),
                    url.replace("domainvar.invalid", "{domain}"),
                    token.as_str(),
                    auth.as_str(),
                    code_list(&done_statuses.iter().map(u16::to_string).collect::<Vec<_>>()),
                    if gone.is_empty() {
                        String::new()
                    } else {
                        format!("; already revoked on {}", code_list(&gone))
                    }
                )
            }
        };
        out.push_str(&format!(
            "### {} (`preset = \"{}\"`)\n\n| | |\n|---|---|\n",
            p.meta.name, p.key
        ));
        let rows = [
            ("Needs", needs),
            ("Connect", connect),
            ("Token", token),
            (
                "Granted scopes",
                format!(
                    "`{}`",
                    c.granted_scopes.unwrap_or(GrantedScopes::Echo).as_str()
                ),
            ),
            ("Refresh", refresh),
            ("Revoke", revoke),
            (
                "Metadata",
                code_list(c.metadata.as_deref().unwrap_or_default()),
            ),
            (
                "RFC 8707 `resource`",
                p.meta
                    .refuses_resource
                    .as_ref()
                    .map_or("allowed when configured".into(), |why| {
                        format!("refused ({why})")
                    }),
            ),
            ("Known limits", p.meta.limits.join("<br>")),
            (
                "Documentation",
                format!(
                    "read {}: {}",
                    p.meta.documented,
                    p.meta
                        .sources
                        .iter()
                        .map(|s| format!("<{s}>"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        ];
        for (name, value) in rows {
            out.push_str(&format!("| {name} | {value} |\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_file_parses_and_resolves_with_example_values() {
        assert_eq!(all().len(), FILES.len(), "a preset file does not parse");
        for preset in all() {
            let own = preset.operator_with("contoso.onmicrosoft.com", "acme.my.salesforce.com");
            let resolved = preset
                .resolve(&own, &|f| f.to_owned())
                .unwrap_or_else(|e| panic!("{}: {e:?}", preset.key));
            assert!(
                resolved.authorization_endpoint.is_some() && resolved.token_endpoint.is_some(),
                "{}",
                preset.key
            );
            assert!(
                !preset.meta.sources.is_empty(),
                "{} cites nothing",
                preset.key
            );
        }
    }

    #[test]
    fn docs_providers_md_shows_every_preset_as_it_is() {
        let doc = include_str!("../../docs/providers.md");
        let section = doc
            .split_once("<!-- presets:begin -->\n")
            .and_then(|(_, rest)| rest.split_once("<!-- presets:end -->"))
            .map(|(section, _)| section)
            .expect("docs/providers.md has the presets markers");
        assert!(
            section == markdown(),
            "docs/providers.md is out of date: paste `consent-broker providers --markdown` \
             between its presets markers"
        );
    }

    #[test]
    fn variables_cannot_reach_another_host_or_path() {
        for bad in ["evil.com/x", "a@b", "x?y", "", ".lead", "a b", "a\"b"] {
            assert!(!Variable::Domain.valid(bad), "{bad}");
            assert!(!Variable::Tenant.valid(bad), "{bad}");
        }
        assert!(Variable::Domain.valid("gitlab.example.com:8443"));
        assert!(!Variable::Tenant.valid("login.example.com:8443"));
        assert!(Variable::Tenant.valid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    }
}

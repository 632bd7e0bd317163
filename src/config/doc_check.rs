//! Keeps docs/configuration.md complete: every key the config file accepts (every field of
//! [`super::Config`], followed through its sections, lists and provider kinds) must appear
//! in the document as a dotted path in backticks, e.g. `` `store.key_prefix` `` or
//! `` `providers[].client_id` ``. The keys are read from this module's source, so a field
//! added to a config struct without a line in the document fails the test.

use std::collections::{BTreeMap, BTreeSet};

const SOURCE: &str = include_str!("mod.rs");
const DOC: &str = include_str!("../../docs/configuration.md");

/// The fields of each config struct and of each variant of each tagged enum, by type name
/// (enum variants' fields merged: a provider key is documented once for all kinds).
fn fields_by_type() -> BTreeMap<String, Vec<(String, String)>> {
    let mut types: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current: Option<(String, bool)> = None;
    for line in SOURCE.lines() {
        if let Some(rest) = line.strip_prefix("pub struct ") {
            current = rest
                .strip_suffix(" {")
                .map(|name| (name.trim().to_owned(), false));
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub enum ") {
            current = rest
                .strip_suffix(" {")
                .map(|name| (name.trim().to_owned(), true));
            continue;
        }
        if line == "}" {
            current = None;
            continue;
        }
        let Some((name, is_enum)) = &current else {
            continue;
        };
        // A newtype variant (`    Oauth2(OAuth2Config),`): its struct's keys sit beside
        // the tag.
        if *is_enum
            && let Some(inner) = line
                .strip_prefix("    ")
                .and_then(|l| l.strip_suffix("),"))
                .and_then(|l| l.split_once('('))
                .map(|(_, ty)| ty)
        {
            types
                .entry(name.clone())
                .or_default()
                .push((String::new(), inner.to_owned()));
            continue;
        }
        let field = if *is_enum {
            line.strip_prefix("        ")
                .filter(|l| !l.starts_with(' '))
        } else {
            // A field, public or not (serde reads both): `    [pub ]name: Type,`.
            line.strip_prefix("    ")
                .filter(|l| !l.starts_with(' '))
                .map(|l| l.strip_prefix("pub ").unwrap_or(l))
        };
        let Some((key, ty)) = field.and_then(|f| f.strip_suffix(',')?.split_once(": ")) else {
            continue;
        };
        if key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        {
            types
                .entry(name.clone())
                .or_default()
                .push((key.to_owned(), ty.to_owned()));
        }
    }
    types
}

/// Every key path, from `Config` down.
fn key_paths() -> BTreeSet<String> {
    let types = fields_by_type();
    let mut paths = BTreeSet::new();
    let mut todo = vec![(String::new(), "Config".to_owned())];
    while let Some((prefix, ty)) = todo.pop() {
        let Some(fields) = types.get(&ty) else {
            continue;
        };
        for tag in ["kind", "style"] {
            let attribute = format!(
                "tag = \"{tag}\", rename_all = \"snake_case\", deny_unknown_fields)]\npub enum {ty} "
            );
            if SOURCE.contains(&attribute) {
                paths.insert(format!("{prefix}{tag}"));
            }
        }
        for (key, field_ty) in fields {
            let (inner, list) = unwrap_type(field_ty);
            if key.is_empty() {
                todo.push((prefix.clone(), inner.to_owned()));
                continue;
            }
            let path = format!("{prefix}{key}");
            if types.contains_key(inner) {
                let nested = if list {
                    format!("{path}[].")
                } else {
                    format!("{path}.")
                };
                todo.push((nested, inner.to_owned()));
            } else {
                paths.insert(path);
            }
        }
    }
    paths
}

/// The type inside `Option<…>` / `Vec<…>`, and whether it is a list.
fn unwrap_type(ty: &str) -> (&str, bool) {
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return unwrap_type(inner);
    }
    if let Some(inner) = ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        return (unwrap_type(inner).0, true);
    }
    (ty, false)
}

#[test]
fn every_config_key_is_documented() {
    let paths = key_paths();
    for expected in [
        "server.bind",
        "store.kind",
        "identity.oidc.issuer",
        "services[].token_sha256",
        "providers[].kind",
        "providers[].client_id",
        "providers[].verify_url",
        "providers[].preset",
        "providers[].revocation.style",
        "providers[].revocation.done_statuses",
        "telemetry.log_format",
    ] {
        assert!(
            paths.contains(expected),
            "the reader missed {expected}: {paths:?}"
        );
    }
    let missing: Vec<_> = paths
        .iter()
        .filter(|p| !DOC.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document these config keys: {missing:?}"
    );
}

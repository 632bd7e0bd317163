//! Governance vocabulary: the claims a signed-in user carries for policy, and what the
//! policy decides about one request (who may grant which scope, which scopes wait for an
//! administrator, how long the grant may live). The rules themselves are config
//! (`config::policy`); this module only names the decision.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Scope;

/// The identity-provider claims policy rules read (`groups`, `department`, …), by name,
/// each as the set of its string values. Only claims some rule names are kept, never the
/// ID token itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Claims(BTreeMap<String, BTreeSet<String>>);

impl Claims {
    /// The values of the claims named in `wanted`, read from a verified ID token's
    /// payload: a string claim gives one value, an array its string items.
    pub fn from_payload<'a>(
        payload: &serde_json::Value,
        wanted: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut kept = BTreeMap::new();
        for name in wanted {
            let values: BTreeSet<String> = match payload.get(name) {
                Some(serde_json::Value::String(s)) => BTreeSet::from([s.clone()]),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
                _ => BTreeSet::new(),
            };
            kept.insert(name.to_owned(), values);
        }
        Self(kept)
    }

    /// Whether claim `name` holds any of `values`.
    pub fn holds_any(&self, name: &str, values: &BTreeSet<String>) -> bool {
        self.0
            .get(name)
            .is_some_and(|held| !held.is_disjoint(values))
    }
}

/// Who must agree before a grant is usable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// The user's consent is enough.
    #[default]
    None,
    /// An administrator must approve after the user consents.
    Admin,
}

/// What the policy says about one request, for one user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Why the user may not grant the request, one sentence per refused scope (or one for
    /// the request as a whole). Empty: allowed.
    pub refusals: Vec<String>,
    /// Scopes an administrator must approve (`None` in the set: the request as a whole,
    /// for providers without scopes).
    pub approval: BTreeSet<Option<Scope>>,
    /// The longest the grant may live, if any rule limits it.
    pub max_lifetime: Option<time::Duration>,
}

impl Decision {
    pub fn is_refused(&self) -> bool {
        !self.refusals.is_empty()
    }

    pub fn needs_approval(&self) -> bool {
        !self.approval.is_empty()
    }
}

//! OAuth-style scopes (RFC 6749 §3.3 scope-token syntax) and sets of them.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One scope token: 1-128 printable ASCII characters, no space, `"` or `\`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidScope {
    #[error(
        "a scope must be 1-128 printable ASCII characters without spaces, quotes or backslashes"
    )]
    Syntax,
    #[error("at most {MAX_SCOPES} scopes may be requested")]
    TooMany,
}

/// The most scopes one request may carry.
pub const MAX_SCOPES: usize = 32;

impl Scope {
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidScope> {
        let value = value.into();
        let ok = (1..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(Self(value))
        } else {
            Err(InvalidScope::Syntax)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Scope {
    type Error = InvalidScope;
    fn try_from(value: String) -> Result<Self, InvalidScope> {
        Self::parse(value)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of scopes, ordered and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Scope>", into = "Vec<Scope>")]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `self` with `more` added; `None` when that would exceed [`MAX_SCOPES`].
    pub fn union<'a>(&self, more: impl Iterator<Item = &'a Scope>) -> Option<Scopes> {
        let mut all = self.0.clone();
        all.extend(more.cloned());
        (all.len() <= MAX_SCOPES).then_some(Self(all))
    }

    /// True when every scope of `other` is in `self`.
    pub fn covers(&self, other: &Scopes) -> bool {
        other.0.is_subset(&self.0)
    }
}

impl TryFrom<Vec<Scope>> for Scopes {
    type Error = InvalidScope;
    fn try_from(scopes: Vec<Scope>) -> Result<Self, InvalidScope> {
        if scopes.len() > MAX_SCOPES {
            return Err(InvalidScope::TooMany);
        }
        Ok(Self(scopes.into_iter().collect()))
    }
}

impl From<Scopes> for Vec<Scope> {
    fn from(s: Scopes) -> Vec<Scope> {
        s.0.into_iter().collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined: Vec<&str> = self.0.iter().map(Scope::as_str).collect();
        f.write_str(&joined.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Scopes {
        list.iter()
            .map(|s| Scope::parse(*s).unwrap())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap()
    }

    #[test]
    fn a_set_covers_its_subsets_only() {
        assert!(scopes(&["read", "write"]).covers(&scopes(&["read"])));
        assert!(scopes(&["read"]).covers(&scopes(&[])));
        assert!(!scopes(&["read"]).covers(&scopes(&["read", "write"])));
    }

    #[test]
    fn scope_syntax_follows_rfc_6749() {
        assert!(Scope::parse("repo:read").is_ok());
        assert!(Scope::parse("https://graph.microsoft.com/.default").is_ok());
        for bad in ["", "two words", "quo\"te", "back\\slash", "tab\t", "é"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
    }
}

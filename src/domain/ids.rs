//! Identifier newtypes. Config ids (services, providers) are short slugs; subjects are the
//! user identities MCP services send (an IdP `sub`); elicitation and grant ids are 128-bit
//! random values in base64url, safe to put in URLs because they carry no meaning.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string was refused as an identifier. The message names the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct InvalidId {
    what: &'static str,
    rule: &'static str,
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                let check: fn(&str) -> bool = $check;
                if check(&value) {
                    Ok(Self(value))
                } else {
                    Err(InvalidId { what: $what, rule: $rule })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn is_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// 1-255 characters (not bytes: the API document can only count characters).
fn is_subject(s: &str) -> bool {
    !s.is_empty()
        && s.chars().nth(255).is_none()
        && !s.chars().any(char::is_control)
        && s.trim() == s
}

fn is_random_id(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

string_id!(
    /// A configured MCP service.
    ServiceId, "service id", is_slug, "must be 1-64 characters of a-z 0-9 - _, starting with a letter or digit"
);
string_id!(
    /// A configured upstream provider.
    ProviderId, "provider id", is_slug, "must be 1-64 characters of a-z 0-9 - _, starting with a letter or digit"
);
string_id!(
    /// The user's identity, as the enterprise IdP names it (OIDC `sub` by default). It is the
    /// join key between what an MCP service asks for and who signs in at the broker.
    Subject, "subject", is_subject, "must be 1-255 characters without control characters or surrounding spaces"
);
string_id!(
    /// An elicitation: 128 random bits, base64url. Appears in consent URLs.
    ElicitationId, "elicitation id", is_random_id, "must be 22 base64url characters"
);
string_id!(
    /// A grant: 128 random bits, base64url. Not a secret (admins and services see it).
    GrantId, "grant id", is_random_id, "must be 22 base64url characters"
);

impl ElicitationId {
    pub fn generate() -> Self {
        Self(crate::random::token::<16>())
    }
}

impl GrantId {
    pub fn generate() -> Self {
        Self(crate::random::token::<16>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = ElicitationId::generate();
        assert_eq!(ElicitationId::parse(id.as_str()).unwrap(), id);
        let id = GrantId::generate();
        assert_eq!(GrantId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn odd_bytes_and_traversal_are_refused_as_ids() {
        for bad in [
            "",
            "../../etc/passwd",
            "a/b",
            "AAAAAAAAAAAAAAAAAAAAA%",
            "é",
            "x".repeat(300).as_str(),
        ] {
            assert!(ElicitationId::parse(bad).is_err(), "{bad:?}");
            assert!(ServiceId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Subject::parse("alice\n").is_err());
        assert!(Subject::parse(" alice").is_err());
        assert!(Subject::parse("alice@example.com").is_ok());
    }
}

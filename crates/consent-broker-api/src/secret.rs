//! [`Secret`]: a string that must not be printed (grant handles, access tokens, API keys).
//! Its JSON is the plain string; its `Debug` is `Secret(…)`, so a logged value shows nothing.

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value_and_json_is_the_plain_string() {
        let s = Secret::new("cbh_very_secret");
        assert!(!format!("{s:?}").contains("very_secret"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"cbh_very_secret\"");
    }
}

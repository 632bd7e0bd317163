//! How one upstream OAuth 2 provider departs from RFC 6749 / 7009, as typed settings: the
//! scope syntax it speaks, how it wants the client authenticated, where the tokens sit in
//! its answers, how it reports errors, and how (if at all) it revokes. `config` fills
//! these from a provider's `[[providers]]` entry and its preset; `flows::oauth2` obeys
//! them. Nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// How scopes are joined when sent (`scope_separator`). Echoes are split on whitespace and
/// commas whatever the separator: providers echo in a syntax other than the one they read
/// (Linear reads commas and echoes spaces), and no scope token contains either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeSeparator {
    Space,
    Comma,
}

impl ScopeSeparator {
    pub fn join<'a>(self, scopes: impl IntoIterator<Item = &'a str>) -> String {
        let sep = match self {
            Self::Space => " ",
            Self::Comma => ",",
        };
        scopes.into_iter().collect::<Vec<_>>().join(sep)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Space => "space",
            Self::Comma => "comma",
        }
    }
}

/// The scopes named in an echo (a string in either syntax, or a JSON array of strings).
pub fn echoed_scopes(echo: &Value) -> Option<Vec<String>> {
    match echo {
        Value::String(s) => Some(
            s.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

/// What a grant records as its scopes, and so which later requests it covers without
/// asking the user again (`granted_scopes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantedScopes {
    /// What the provider says it granted (what was asked when it says nothing). Right for
    /// providers whose echo uses the names that were asked for.
    Echo,
    /// What the user approved on the consent page. For providers that rewrite the echo
    /// (Google expands `email`, Entra prefixes Graph scopes and drops `offline_access`):
    /// the upstream still enforces what it really granted.
    Requested,
    /// Both: the request is covered again in either spelling.
    Union,
}

impl GrantedScopes {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Requested => "requested",
            Self::Union => "union",
        }
    }
}

/// How the broker authenticates as the client at the token endpoint (`client_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the request body.
    Post,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Post => "post",
        }
    }
}

/// A request body's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` (RFC 6749).
    Form,
    /// A JSON object (Atlassian, Notion).
    Json,
}

/// A dotted path to a member of a JSON answer: `""` is the answer itself, `team.id` the
/// `id` member of its `team` object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberPath(Vec<String>);

impl MemberPath {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Ok(Self::default());
        }
        let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
        if segments.iter().any(|s| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }) {
            return Err("must be member names (letters, digits, `_`, `-`) joined by dots");
        }
        Ok(Self(segments))
    }

    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(value, |v, segment| v.get(segment))
    }

    /// True when a segment names something secret (a token, a secret, a signature):
    /// such members are never kept as metadata.
    pub fn names_a_secret(&self) -> bool {
        self.0.iter().any(|s| {
            let s = s.to_ascii_lowercase();
            [
                "token",
                "secret",
                "password",
                "signature",
                "code",
                "assertion",
            ]
            .iter()
            .any(|word| s.contains(word))
        })
    }
}

impl fmt::Display for MemberPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// Which token a declared revocation request revokes (`revocation.token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedToken {
    Access,
    Refresh,
    /// The refresh token when there is one (revoking it ends the grant), else the access
    /// token.
    RefreshElseAccess,
}

/// How a declared revocation request authenticates (`revocation.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationAuth {
    /// No credentials: the token itself is the proof (Google, Salesforce, HubSpot).
    None,
    /// The client id and secret in HTTP Basic (GitHub, Notion).
    Basic,
    /// The client id and secret in the body.
    Post,
    /// `Authorization: Bearer <the token being revoked>` (Slack, Dropbox, Linear).
    Bearer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RevocationMethod {
    Post,
    Delete,
}

impl RevocationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

impl RevocationAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "no client",
            Self::Basic => "basic",
            Self::Post => "post",
            Self::Bearer => "bearer",
        }
    }
}

impl RevokedToken {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
            Self::RefreshElseAccess => "refresh (else access)",
        }
    }
}

/// A provider's own revocation API, declared rather than coded.
#[derive(Debug, Clone)]
pub struct RevocationRequest {
    pub method: RevocationMethod,
    /// May contain `{client_id}` and `{token}` (the token is then in the URL: HubSpot).
    pub url: String,
    pub auth: RevocationAuth,
    pub token: RevokedToken,
    pub headers: BTreeMap<String, String>,
    /// Body members; values may contain `{token}` and `{client_id}`. `None`: no body.
    pub body: Option<(BodyFormat, BTreeMap<String, String>)>,
    /// Statuses meaning "revoked now".
    pub done_statuses: Vec<u16>,
    /// Statuses meaning "this token was already dead" (a repeat, or revoked upstream).
    pub gone_statuses: Vec<u16>,
    /// Error codes (at the provider's `error_field`) meaning the same.
    pub gone_errors: BTreeSet<String>,
}

/// How the broker revokes a grant's tokens upstream (`revocation.style`).
#[derive(Debug, Clone)]
pub enum Revocation {
    /// RFC 7009 at the revocation endpoint (configured or discovered): the refresh token,
    /// then the access token. `invalid_token` for the second means the first took both.
    Rfc7009,
    /// The provider offers no revocation: recorded as `not_supported`.
    None,
    Request(RevocationRequest),
}

/// Everything about one provider that departs from the RFCs. [`Quirks::default`] is a
/// spec-perfect authorization server.
#[derive(Debug, Clone)]
pub struct Quirks {
    /// Extra authorization request parameters (`access_type=offline`, `audience=…`).
    pub authorize_params: BTreeMap<String, String>,
    /// The authorization request parameter carrying scopes (Slack user tokens: `user_scope`).
    pub scope_param: String,
    pub scope_separator: ScopeSeparator,
    /// Scopes always asked for besides the requested ones (`offline_access`); never shown
    /// as something the service asked for.
    pub extra_scopes: Vec<String>,
    pub granted_scopes: GrantedScopes,
    pub client_auth: ClientAuth,
    pub token_format: BodyFormat,
    /// Extra token request headers (`Notion-Version`).
    pub token_headers: BTreeMap<String, String>,
    /// Where `access_token` & co. sit in a code exchange answer (Slack: `authed_user`)…
    pub token_path: MemberPath,
    /// …and in a refresh answer.
    pub refresh_token_path: MemberPath,
    /// Members of the code exchange answer kept as grant metadata (never secrets).
    pub metadata: Vec<MemberPath>,
    /// Where an error answer puts its code (`error`; HubSpot `status`, Notion `code`).
    pub error_field: String,
    /// A boolean member that is `false` on errors even with HTTP 200 (Slack `ok`).
    pub ok_field: Option<String>,
    /// Error codes meaning the user must authorize again (`invalid_grant`, …).
    pub reauthorize_errors: BTreeSet<String>,
    /// Lifetime assumed for access tokens answered without `expires_in`, so that they are
    /// refreshed (Salesforce); `None`: such tokens do not expire.
    pub default_token_lifetime_seconds: Option<u32>,
    pub revocation: Revocation,
}

impl Default for Quirks {
    fn default() -> Self {
        Self {
            authorize_params: BTreeMap::new(),
            scope_param: "scope".into(),
            scope_separator: ScopeSeparator::Space,
            extra_scopes: Vec::new(),
            granted_scopes: GrantedScopes::Echo,
            client_auth: ClientAuth::Basic,
            token_format: BodyFormat::Form,
            token_headers: BTreeMap::new(),
            token_path: MemberPath::default(),
            refresh_token_path: MemberPath::default(),
            metadata: Vec::new(),
            error_field: "error".into(),
            ok_field: None,
            reauthorize_errors: BTreeSet::from(["invalid_grant".to_owned()]),
            default_token_lifetime_seconds: None,
            revocation: Revocation::Rfc7009,
        }
    }
}

/// Authorization request parameters the broker sets itself; `authorize_params` may not.
pub const RESERVED_AUTHORIZE_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "scope",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn echoes_split_on_commas_and_whitespace_or_come_as_arrays() {
        assert_eq!(
            echoed_scopes(&json!("repo,gist")).unwrap(),
            ["repo", "gist"]
        );
        assert_eq!(
            echoed_scopes(&json!("read write")).unwrap(),
            ["read", "write"]
        );
        assert_eq!(echoed_scopes(&json!(["a", "b"])).unwrap(), ["a", "b"]);
        assert_eq!(echoed_scopes(&json!("")).unwrap(), Vec::<String>::new());
        assert!(echoed_scopes(&json!(7)).is_none());
    }

    #[test]
    fn member_paths_read_nested_members_and_know_secret_names() {
        let answer = json!({"team": {"id": "T1"}, "authed_user": {"access_token": "x"}});
        let team = MemberPath::parse("team.id").unwrap();
        assert_eq!(team.get(&answer), Some(&json!("T1")));
        assert!(!team.names_a_secret());
        assert!(
            MemberPath::parse("authed_user.access_token")
                .unwrap()
                .names_a_secret()
        );
        assert!(MemberPath::parse("signature").unwrap().names_a_secret());
        assert_eq!(MemberPath::parse("").unwrap().get(&answer), Some(&answer));
        assert!(MemberPath::parse("team..id").is_err());
        assert!(MemberPath::parse("a b").is_err());
    }
}

//! Elicitations: the create request, the view a service reads (with the ready-made MCP
//! objects while pending), and the "ready" answer when an active grant already covers a
//! request.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// `POST /v1/elicitations`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateElicitation {
    /// The user, as the MCP service knows them from MCP authorization (the token's `sub`):
    /// no control characters, no surrounding spaces, no bidirectional or invisible format
    /// characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 255,
            pattern = "^[^\\s\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB](?:[^\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*[^\\s\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB])?$"
        )
    )]
    pub subject: String,
    /// A provider id from the broker's config.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")
    )]
    pub provider: String,
    /// Scopes to ask for; must be allowed for this service and provider.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<ScopeName>))]
    pub scopes: Vec<String>,
    /// Shown to the user on the consent page, attributed to the service (no control
    /// characters but newlines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 500, pattern = "^[^\\x00-\\x09\\x0B-\\x1F\\x7F-\\x9F]*$")
    )]
    pub message: Option<String>,
    /// Proof of the user (RFC 8693 vocabulary): the access token the MCP client presented
    /// to this service, a JWT the broker verifies against its trusted issuers for the
    /// service's `resource`; its subject must be `subject`. Required when the service's
    /// `subject_proof` is `required`, verified when sent and `optional`, ignored when `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_token: Option<crate::Secret>,
}

/// One scope, as the API accepts it: 1-128 printable ASCII characters without spaces,
/// quotes or backslashes (RFC 6749's `scope-token`). Documentation only.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^[!#-\\[\\]-~]{1,128}$")]
pub struct ScopeName(pub String);

/// The only elicitation mode the broker speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UrlMode {
    #[serde(rename = "url")]
    Url,
}

/// The `params` of an MCP `elicitation/create` request in URL mode (MCP 2025-11-25).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct McpUrlElicitation {
    /// Always `url`.
    pub mode: UrlMode,
    pub elicitation_id: String,
    pub url: String,
    pub message: String,
}

/// The JSON-RPC error an MCP server may return instead (code -32042, URL elicitation required).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct McpUrlElicitationRequired {
    pub code: i32,
    pub message: String,
    pub data: McpElicitations,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct McpElicitations {
    pub elicitations: Vec<McpUrlElicitation>,
}

/// Where an elicitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ElicitationStatus {
    Pending,
    /// The user consented; an administrator must approve before the grant is usable.
    AwaitingApproval,
    Completed,
    Declined,
    Expired,
    Failed,
}

impl ElicitationStatus {
    /// True while the user can still act on it.
    pub fn is_pending(self) -> bool {
        self == Self::Pending
    }

    /// True until it ends: pending, or waiting for an administrator.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::AwaitingApproval)
    }
}

/// An elicitation as its service sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ElicitationView {
    pub id: String,
    /// `pending`, `awaiting_approval`, `completed`, `declined`, `expired` or `failed`.
    pub status: ElicitationStatus,
    pub subject: String,
    pub provider: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: String,
    /// The consent page, while pending (and, while awaiting approval, the page that says
    /// so). Holds only the opaque id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Ready to pass to the MCP client unchanged, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpUrlElicitation>,
    /// The same as a JSON-RPC error body, for servers that prefer the error form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_error: Option<McpUrlElicitationRequired>,
    /// When completed: the grant and its handle, for this service only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Always `ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReadyStatus {
    #[serde(rename = "ready")]
    Ready,
}

/// An active grant already covers the request: no user interaction needed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadyView {
    /// Always `ready`.
    pub status: ReadyStatus,
    pub grant_id: String,
    pub handle: Secret,
    pub subject: String,
    pub provider: String,
    pub scopes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_view_round_trips_with_its_documented_field_names() {
        let json = serde_json::json!({
            "id": "e1", "status": "pending", "subject": "alice", "provider": "acme",
            "scopes": ["read"], "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-01T00:15:00Z", "url": "https://b.example/e/e1",
            "mcp": {"mode": "url", "elicitationId": "e1", "url": "https://b.example/e/e1", "message": "m"},
            "mcp_error": {"code": -32042, "message": "x", "data": {"elicitations": [
                {"mode": "url", "elicitationId": "e1", "url": "https://b.example/e/e1", "message": "m"}]}}
        });
        let view: ElicitationView = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(view.status, ElicitationStatus::Pending);
        assert_eq!(serde_json::to_value(&view).unwrap(), json);
    }

    #[test]
    fn a_create_request_with_an_unknown_field_is_refused() {
        let r = serde_json::from_value::<CreateElicitation>(
            serde_json::json!({"subject": "a", "provider": "p", "scope": []}),
        );
        assert!(r.is_err());
    }
}

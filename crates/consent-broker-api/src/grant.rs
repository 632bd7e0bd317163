//! Grants: the handle body of `/v1/redeem` and `/v1/revoke`, a redemption's credential, and
//! a grant's public metadata.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// `{handle}`: the body of `POST /v1/redeem` and `POST /v1/revoke`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HandleBody {
    /// A grant handle (`cbh_…`) this service received.
    pub handle: Secret,
}

/// The body of `POST /v1/redeem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedeemBody {
    /// A grant handle (`cbh_…`) this service received.
    pub handle: Secret,
    /// The upstream refused the access token (HTTP 401): refresh it before answering. At
    /// most one refresh per grant per 30 seconds; within that, the tokens just obtained
    /// are returned. No effect on credentials that cannot be refreshed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_refresh: bool,
    /// The access token the user's MCP client presented (RFC 8693 vocabulary), when the
    /// service's `subject_proof` asks for it: it must name the grant's user, so a handle
    /// alone is not enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_token: Option<crate::Secret>,
}

/// What a redemption returns: grant metadata and the credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedeemedView {
    pub grant_id: String,
    pub subject: String,
    pub provider: String,
    /// `api_key` or `terms`.
    pub kind: String,
    pub scopes: Vec<String>,
    pub credential: CredentialView,
    /// Non-secret members of the provider's token answer, by their path in it (Salesforce
    /// `instance_url`, Slack `team.id`). Empty for most providers.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CredentialView {
    /// Send `api_key` in the `header` header upstream.
    ApiKey { api_key: Secret, header: String },
    /// The user accepted `version` (text digest `text_sha256`) at `accepted_at`.
    Terms {
        version: String,
        text_sha256: String,
        accepted_at: String,
    },
    /// Send `Authorization: <token_type> <access_token>` upstream until `expires_at`.
    Oauth2 {
        access_token: Secret,
        token_type: String,
        expires_at: Option<String>,
        scopes: Vec<String>,
    },
}

/// A grant's public metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantView {
    pub grant_id: String,
    pub status: String,
    pub subject: String,
    pub provider: String,
    pub revoked_at: Option<String>,
    /// Outcome of revoking the upstream tokens: `revoked`, `already_revoked` (the provider
    /// said they were dead already), `failed` (they may still work upstream) or
    /// `not_supported` (the provider offers no revocation; they live until they expire).
    pub upstream_revocation: Option<String>,
}

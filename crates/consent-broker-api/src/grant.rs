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
    /// Outcome of revoking the upstream tokens: `revoked`, `failed` or `not_supported`.
    pub upstream_revocation: Option<String>,
}

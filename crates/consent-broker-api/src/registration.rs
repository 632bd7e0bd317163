//! Registration of a service (RFC 7591 request and response shapes, with this broker's
//! manifest: the providers and scopes it asks for) and RFC 7592-style management: read,
//! token rotation, deregistration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// The body of `POST /v1/register` (sent with an initial access token as its bearer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationRequest {
    /// Shown to users and administrators (RFC 7591 `client_name`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub client_name: String,
    /// How to reach the people who run the service (RFC 7591 `contacts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 5))]
    pub contacts: Vec<String>,
    /// The manifest: provider id → the scopes the service will ask users for. An
    /// administrator approves it, possibly narrowed.
    pub requested_scopes: BTreeMap<String, Vec<String>>,
    /// The MCP service's own resource URL (RFC 9728): the audience of the user tokens it
    /// will pass as `subject_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// A registered service as the registration endpoints show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationView {
    /// The service id (RFC 7591 `client_id`).
    pub client_id: String,
    /// When it registered, seconds since the epoch.
    pub client_id_issued_at: i64,
    pub client_name: String,
    pub contacts: Vec<String>,
    pub requested_scopes: BTreeMap<String, Vec<String>>,
    /// What an administrator allowed: empty while `pending`.
    pub allowed_scopes: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `pending` (waiting for an administrator), `active` or `suspended`.
    pub status: String,
    /// Where to read, rotate or delete this registration (RFC 7592).
    pub registration_client_uri: String,
}

/// What `POST /v1/register` answers (201): the registration and its credentials, shown
/// this once (only their digests are kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    #[serde(flatten)]
    pub registration: RegistrationView,
    /// The service's bearer token (`cbs_…`) for `/v1` once approved (RFC 7591
    /// `client_secret`).
    pub client_secret: Secret,
    /// 0: the token does not expire (rotate it with the registration access token).
    pub client_secret_expires_at: i64,
    /// RFC 7592 registration access token (`cbr_…`): reads, rotates and deletes this
    /// registration, nothing else.
    pub registration_access_token: Secret,
}

/// What `POST /v1/register/{client_id}/rotate` answers: the new token; the old one keeps
/// working until `previous_valid_until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rotated {
    pub client_secret: Secret,
    /// RFC 3339.
    pub previous_valid_until: String,
}

//! The wire types of consent-broker's service API under `/v1`, shared by the broker (which
//! serializes them) and its clients (which deserialize them), so the two cannot drift.
//!
//! Invariants: the JSON of every type is the API's documented JSON, byte for byte; request
//! types refuse unknown fields; every secret (a handle, an access token, an API key) is a
//! [`Secret`], whose `Debug` prints nothing. This crate depends on serde only (and on
//! `utoipa` with the `openapi` feature), so an MCP service can use it without the broker.

mod elicitation;
mod grant;
mod problem;
mod registration;
mod secret;
mod webhook;

#[cfg(feature = "openapi")]
pub use elicitation::ScopeName;
pub use elicitation::{
    CreateElicitation, ElicitationStatus, ElicitationView, McpElicitations, McpUrlElicitation,
    McpUrlElicitationRequired, ReadyStatus, ReadyView, UrlMode,
};
pub use grant::{CredentialView, GrantView, HandleBody, RedeemBody, RedeemedView};
pub use problem::{PROBLEM_TYPE_PREFIX, Problem};
pub use registration::{Registered, RegistrationRequest, RegistrationView, Rotated};
pub use secret::Secret;
pub use webhook::{WebhookEvent, WebhookEventType, headers as webhook_headers};

/// JSON-RPC error code of MCP's "URL elicitation required" error (MCP 2025-11-25).
pub const URL_ELICITATION_REQUIRED: i32 = -32042;

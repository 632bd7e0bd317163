//! The completion webhook's body and headers (Standard Webhooks). The body says which
//! elicitation settled and how, and nothing else: never a handle, never a credential. The
//! service fetches the handle with `GET /v1/elicitations/{id}`, authenticated.

use serde::{Deserialize, Serialize};

use crate::ElicitationStatus;

/// Header names of the Standard Webhooks scheme.
pub mod headers {
    /// Unique per event; the same across retries of one event (for idempotency).
    pub const ID: &str = "webhook-id";
    /// Unix seconds of this attempt; signed, so a receiver can refuse stale deliveries.
    pub const TIMESTAMP: &str = "webhook-timestamp";
    /// `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, space-separated if several.
    pub const SIGNATURE: &str = "webhook-signature";
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookEventType {
    /// The elicitation left `pending`: completed, declined or failed.
    #[serde(rename = "elicitation.settled")]
    ElicitationSettled,
}

/// The JSON body of a completion webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub type_: WebhookEventType,
    pub elicitation_id: String,
    pub status: ElicitationStatus,
}

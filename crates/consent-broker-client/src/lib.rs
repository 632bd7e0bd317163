//! A typed client of consent-broker's service API (`/v1`) for MCP services: create an
//! elicitation, hand it to the MCP client in the shape its protocol revision speaks, wait for
//! it (long-poll, or a verified completion webhook), then redeem the handle for a credential.
//!
//! ```no_run
//! # async fn tool(broker: consent_broker_client::BrokerClient) -> Result<(), consent_broker_client::Error> {
//! use consent_broker_client::{Created, api::CreateElicitation};
//! let request = CreateElicitation {
//!     subject: "alice".into(), // the `sub` of the MCP client's token
//!     provider: "github".into(),
//!     scopes: vec!["repo".into()],
//!     message: None,
//!     subject_token: None,
//! };
//! match broker.create(&request).await? {
//!     Created::Ready(ready) => { let _credential = broker.redeem(&ready.handle).await?; }
//!     Created::Pending(pending) => {
//!         // 2025-11-25: send `elicitation/create` with these params (or the -32042 error).
//!         let _params = consent_broker_client::mcp::url_elicitation(&pending);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Invariants: handles and credentials are [`api::Secret`]s and travel only in request
//! bodies; every problem the broker answers becomes one [`Error`] variant.

mod client;
mod credential;
mod error;
pub mod mcp;
pub mod webhook;

pub use client::{BrokerClient, Created};
pub use consent_broker_api as api;
pub use credential::{AssertionSigner, Credential};
pub use error::Error;
pub use webhook::{WebhookError, WebhookSecret, verify_signature, verify_webhook};

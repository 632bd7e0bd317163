//! The broker's vocabulary: validated newtypes and the state machines of elicitations and
//! grants. Everything that crosses a boundary (HTTP, config, store) is parsed into these
//! types first; code past the boundary never re-validates.

pub mod audit;
pub mod clock;
pub mod elicitation;
pub mod error_kind;
pub mod flow;
pub mod grant;
pub mod handle;
pub mod ids;
pub mod policy;
pub mod scope;
pub mod service;
pub mod text;
pub mod webhook;

pub use audit::{Actor, AuditAction, AuditEvent, AuditReason, IdpClient, Outcome};
pub use clock::Clock;
pub use elicitation::{Elicitation, ElicitationStatus};
pub use error_kind::ErrorKind;
pub use flow::FlowRecord;
pub use grant::{
    Credential, Grant, GrantChange, GrantSecret, GrantStatus, ProviderKind, UpstreamRevocation,
};
pub use handle::{Handle, HandleDigest};
pub use ids::{ElicitationId, GrantId, ProviderId, ServiceId, Subject};
pub use scope::{Scope, Scopes};
pub use service::{
    InitialAccessToken, RegisteredBy, RegisteredService, ScopeGrants, ServiceStatus,
    ServiceWebhook, SubjectProof, TokenDigest,
};
pub use webhook::WebhookKey;

/// Wall-clock instants; stored and sent as RFC 3339 in UTC.
pub type Timestamp = time::OffsetDateTime;

/// The current time, truncated to milliseconds so that stored and fresh values compare
/// equal after a round trip.
pub fn now() -> Timestamp {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

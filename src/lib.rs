//! consent-broker: the out-of-band consent page and credential vault behind MCP URL-mode
//! elicitation. MCP services ask for a user's upstream credential; the user approves in
//! the browser; the broker seals the credential and hands the service an opaque handle.

pub mod app; // build, bind and run the HTTP server
pub mod broker; // the use cases: elicitations, consent, grants, audit
pub mod cli; // command-line interface
pub mod config; // layered, validated configuration and keyring loading
pub mod domain; // newtypes and state machines
pub mod error; // the one domain error
pub mod flows; // one module per provider kind
pub mod http; // routes, extractors, renderings
pub mod identity; // service tokens and signed-in users
pub mod limits; // rate limits per service and per client address
pub mod metrics; // Prometheus metrics: families, label rules, `/metrics`
pub mod random; // the CSPRNG, for ids and tokens
pub mod store; // storage traits and backends
pub mod telemetry; // logging setup, request ids, the request span and its log line
pub mod upstream; // how each upstream OAuth provider departs from the RFCs
pub mod vault; // keyring and envelope encryption: the only user of aes-gcm

pub use error::Error;

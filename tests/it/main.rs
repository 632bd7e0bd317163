//! Every integration test of consent-broker, in one binary (one link of the crate instead
//! of one per file): a module per area, and `common`, the harness they share.

// Tests and their harness may panic on a broken expectation: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

mod admin;
mod admin_scale;
mod browser;
mod cli;
mod csrf;
mod docs;
mod fake_upstream;
mod governance;
mod hardening;
mod integrating;
mod journeys;
mod keys;
mod languages;
mod lifecycle;
mod mcp;
mod oauth;
mod offboarding;
mod operations;
mod pages_a11y;
mod providers;
mod redis_instances;
mod refusals;
mod registration;
mod service_identity;
mod store_contract;
mod webhooks;

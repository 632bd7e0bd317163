//! Who is calling: services by bearer token, people by a sign-in session, an identity
//! provider by its SCIM token or its signed Security Event Tokens (`security_events`).
//! This module owns the types that say so; the extractors in `http::extract` produce them.

pub mod caller_jwt;
pub mod jwks;
pub mod oidc;
pub mod security_events;
pub mod service_token;
pub mod session;

pub use session::{SessionUser, SignInMethod};

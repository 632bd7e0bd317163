//! Who is calling: services by bearer token, people by a sign-in session. This module owns
//! the types that say so; the extractors in `http::extract` produce them.

pub mod oidc;
pub mod service_token;
pub mod session;

pub use session::{SessionUser, SignInMethod};

//! One module per provider kind: how a user's approval becomes a credential.

pub mod api_key;
pub mod oauth2;
pub mod terms;

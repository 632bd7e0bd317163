//! Per-session random values: the CSRF token and the upstream-flow binding.
//!
//! CSRF protection for every browser form: a synchronizer token kept in the server-side
//! session and echoed in a hidden field, compared in constant time (by the `CsrfForm`
//! extractor, the only way a handler receives a form). SameSite=Lax cookies are a second
//! layer, not the only one. The token changes at sign-in (`SessionUser::sign_in` drops it)
//! and at sign-out (the session is deleted).

use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::Error;
use crate::identity::session::{CSRF_KEY as KEY, session_error};

/// The per-session random value upstream authorization flows are bound to.
const FLOW_BINDING: &str = "flow_binding";

/// The session's token, created on first use.
pub async fn token(session: &Session) -> Result<String, Error> {
    session_random(session, KEY).await
}

/// The session's flow binding, created on first use.
pub async fn flow_binding(session: &Session) -> Result<String, Error> {
    session_random(session, FLOW_BINDING).await
}

/// The session's flow binding, if it has one.
pub async fn existing_flow_binding(session: &Session) -> Result<Option<String>, Error> {
    session
        .get::<String>(FLOW_BINDING)
        .await
        .map_err(session_error)
}

async fn session_random(session: &Session, key: &str) -> Result<String, Error> {
    if let Some(t) = session.get::<String>(key).await.map_err(session_error)? {
        return Ok(t);
    }
    let t = crate::random::token::<32>();
    session.insert(key, &t).await.map_err(session_error)?;
    Ok(t)
}

/// Refuses unless `presented` equals the session's token. Only `extract::CsrfForm` calls this.
pub(super) async fn verify(session: &Session, presented: &str) -> Result<(), Error> {
    let expected = session.get::<String>(KEY).await.map_err(session_error)?;
    match expected {
        Some(t)
            if !presented.is_empty() && bool::from(t.as_bytes().ct_eq(presented.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(Error::CsrfRejected),
    }
}

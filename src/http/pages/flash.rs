//! One-shot notices carried across a POST-redirect-GET in the server-side session ("Grant
//! revoked."). Text is always composed by the broker, never taken from a request.

use tower_sessions::Session;

use crate::Error;
use crate::identity::session::session_error;

const KEY: &str = "flash";

pub async fn set(session: &Session, message: &str) -> Result<(), Error> {
    session.insert(KEY, message).await.map_err(session_error)
}

/// The notice, removed from the session as it is read.
pub async fn take(session: &Session) -> Result<Option<String>, Error> {
    session.remove(KEY).await.map_err(session_error)
}

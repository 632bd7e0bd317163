//! The signed-in person, as kept in the server-side session. The cookie holds only the
//! session id; the id is cycled at sign-in so a planted id never becomes authenticated.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::Error;
use crate::domain::Subject;
use crate::domain::policy::Claims;

const USER_KEY: &str = "user";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethod {
    /// `--dev` only: the user typed a name, nothing verified it.
    Dev,
    /// Enterprise sign-in with OpenID Connect.
    Oidc,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub subject: Subject,
    pub method: SignInMethod,
    /// May use the admin console.
    #[serde(default)]
    pub admin: bool,
    /// The ID-token claims policy rules read (`[[policies]]`), nothing else.
    #[serde(default)]
    pub claims: Claims,
    /// The name and e-mail address the IdP gave (`name`, `email`), shown beside the
    /// subject so the person can tell which account this is; never used to decide anything.
    #[serde(default)]
    pub profile: Option<String>,
}

impl SessionUser {
    pub async fn current(session: &Session) -> Result<Option<SessionUser>, Error> {
        session.get(USER_KEY).await.map_err(session_error)
    }

    /// Signs `self` in: a new session id and a new CSRF token (a form served before
    /// sign-in no longer posts), then the identity.
    pub async fn sign_in(self, session: &Session) -> Result<(), Error> {
        session.cycle_id().await.map_err(session_error)?;
        session
            .remove_value(CSRF_KEY)
            .await
            .map_err(session_error)?;
        session.insert(USER_KEY, self).await.map_err(session_error)
    }

    /// Ends the session everywhere: the record is deleted from the store.
    pub async fn sign_out(session: &Session) -> Result<(), Error> {
        session.flush().await.map_err(session_error)
    }
}

/// Where the session keeps its CSRF token (`http::csrf` makes and checks it; signing in
/// drops it so that a new one is made).
pub const CSRF_KEY: &str = "csrf";

pub fn session_error(e: tower_sessions::session::Error) -> Error {
    Error::StoreUnavailable(crate::store::StoreError::Unavailable(format!(
        "session: {e}"
    )))
}

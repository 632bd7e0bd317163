//! Enterprise sign-in as a use case: start the OIDC flow, finish it and audit the
//! sign-in (`signed_in`) before the session learns of it. Without OIDC configured, both
//! steps answer "not found", as the routes do not exist then.

use super::Broker;
use crate::Error;
use crate::domain::{Actor, AuditAction, AuditEvent, Outcome};
use crate::identity::SessionUser;
use crate::identity::oidc::{OidcLogin, PendingSignIn, SignInCallback};

impl Broker {
    /// The single sign-on button's label, when OIDC sign-in is configured.
    pub fn single_sign_on_label(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.settings.display_name.as_str())
    }

    /// Whether OIDC sign-in is configured.
    pub fn offers_single_sign_on(&self) -> bool {
        self.oidc.is_some()
    }

    /// The IdP URL to send the browser to, and what to keep in its session until it
    /// comes back; afterwards it goes to `return_to`.
    pub async fn start_sign_in(
        &self,
        return_to: String,
    ) -> Result<(url::Url, PendingSignIn), Error> {
        self.oidc()?
            .start(&self.http, &self.sign_in_redirect(), return_to)
            .await
    }

    /// Verifies the IdP's answer against the pending sign-in and audits who signed in.
    pub async fn finish_sign_in(
        &self,
        pending: PendingSignIn,
        callback: SignInCallback,
    ) -> Result<SessionUser, Error> {
        let user = self
            .oidc()?
            .finish(
                &self.http,
                &self.sign_in_redirect(),
                pending,
                callback,
                &self.settings.policy.claims_read(),
            )
            .await?;
        self.audit(AuditEvent::new(
            Actor::User(user.subject.clone()),
            AuditAction::SignedIn,
            Outcome::Success,
        ))
        .await?;
        Ok(user)
    }

    fn oidc(&self) -> Result<&OidcLogin, Error> {
        self.oidc.as_ref().ok_or(Error::ElicitationNotFound)
    }

    fn sign_in_redirect(&self) -> url::Url {
        self.public_url
            .join("auth/callback")
            .unwrap_or_else(|_| self.public_url.clone())
    }
}

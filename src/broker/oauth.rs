//! Upstream OAuth flows, from Approve to `/oauth/callback`. Every refusal here is audited:
//! an unknown, replayed or foreign `state`, an issuer mix-up, an upstream refusal.

use secrecy::ExposeSecret;
use url::Url;

use super::Broker;
use super::consent::{Finished, Opened};
use crate::Error;
use crate::config::{Provider, ProviderSpec};
use crate::domain::flow::{FLOW_TTL, digest_hex};
use crate::domain::{Actor, AuditAction, AuditEvent, Elicitation, FlowRecord, Outcome};
use crate::flows::oauth2::{self, AsMetadata, ExchangeError};
use crate::identity::SessionUser;
use crate::identity::oidc::{SignInCallback, safe_code};
use crate::store::Settlement;
use crate::vault::SealContext;

impl Broker {
    /// Where authorization servers send the browser back to: exactly this URL.
    pub fn oauth_redirect_uri(&self) -> Url {
        self.public_url
            .join("oauth/callback")
            .unwrap_or_else(|_| self.public_url.clone())
    }

    pub async fn oauth_metadata(
        &self,
        provider: &Provider,
    ) -> Result<std::sync::Arc<AsMetadata>, Error> {
        let ProviderSpec::Oauth2(spec) = &provider.spec else {
            return Err(Error::InvalidRequest("not an OAuth provider".into()));
        };
        oauth2::metadata(
            &provider.id,
            &provider.name,
            spec,
            &self.http,
            &self.oauth_metadata,
        )
        .await
    }

    /// Starts the upstream authorization for an approved elicitation; returns the URL to
    /// send the browser to. `binding` is the browser session's flow binding.
    pub async fn start_oauth(
        &self,
        user: &SessionUser,
        id: &str,
        binding: &str,
    ) -> Result<Url, Error> {
        let opened = self.open_pending(user, id).await?;
        let ProviderSpec::Oauth2(spec) = &opened.provider.spec else {
            return Err(Error::InvalidRequest(
                "this request is not for an OAuth provider".into(),
            ));
        };
        let metadata = match self.oauth_metadata(opened.provider).await {
            Ok(m) => m,
            Err(e @ Error::ProviderUnsupported(_)) => {
                self.fail(user, &opened, e.kind().as_str()).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let request = oauth2::authorization_request(
            spec,
            &metadata,
            &self.oauth_redirect_uri(),
            &opened.elicitation.scopes,
        );
        let key = digest_hex(request.state.expose_secret());
        let sealed_verifier = self
            .vault
            .seal(
                flow_context(&key, &opened.elicitation),
                request.verifier.expose_secret().as_bytes(),
            )
            .map_err(|e| Error::Internal(format!("seal: {e}")))?;
        let flow = FlowRecord {
            elicitation: opened.elicitation.id.clone(),
            binding_sha256: digest_hex(binding),
            expires_at: self.clock().now() + FLOW_TTL,
            sealed_verifier,
        };
        self.stores.flows.put_flow(&key, &flow).await?;
        self.audit(
            AuditEvent::new(
                Actor::User(user.subject.clone()),
                AuditAction::OauthAuthorizationStarted,
                Outcome::Success,
            )
            .elicitation(&opened.elicitation),
        )
        .await?;
        Ok(request.url)
    }

    /// Handles the authorization server's answer. Returns the settled elicitation, or an
    /// error when nothing could be settled (the flow is spent either way).
    pub async fn finish_oauth(
        &self,
        user: &SessionUser,
        binding: Option<&str>,
        callback: SignInCallback,
    ) -> Result<Elicitation, Error> {
        let actor = Actor::User(user.subject.clone());
        let rejected = |reason: &str| {
            AuditEvent::new(
                actor.clone(),
                AuditAction::OauthCallbackRejected,
                Outcome::Denied,
            )
            .reason(reason)
        };
        let Some(state) = callback.state.as_deref() else {
            self.audit(rejected("missing_state")).await?;
            return Err(Error::FlowStateRejected);
        };
        let key = digest_hex(state);
        let Some(flow) = self
            .stores
            .flows
            .take_flow(&key, self.clock().now())
            .await?
        else {
            self.audit(rejected("unknown_state")).await?;
            return Err(Error::FlowStateRejected);
        };
        if binding.map(digest_hex).as_deref() != Some(flow.binding_sha256.as_str()) {
            self.audit(rejected("foreign_state")).await?;
            return Err(Error::FlowStateRejected);
        }
        let opened = self.open_pending(user, flow.elicitation.as_str()).await?;
        let ProviderSpec::Oauth2(spec) = &opened.provider.spec else {
            return Err(Error::Internal("flow for a non-OAuth provider".into()));
        };
        let metadata = self.oauth_metadata(opened.provider).await?;
        // RFC 9207: an `iss` must name the server we sent the user to (mix-up defence).
        // Without a known issuer an `iss` cannot be checked: the flow record already binds
        // this code to the provider it was started for, the defence RFC 9207 §1 names for
        // clients that know each server apart.
        let expected_iss = metadata.issuer.as_deref().map(|i| i.trim_end_matches('/'));
        let iss_ok = match (callback.iss.as_deref(), expected_iss) {
            (Some(got), Some(want)) => got.trim_end_matches('/') == want,
            (Some(_), None) => true,
            (None, _) => !metadata.authorization_response_iss_parameter_supported,
        };
        if !iss_ok {
            // The code may come from another server: never exchange it.
            return self.fail(user, &opened, "issuer_mismatch").await;
        }
        if let Some(error) = callback.error.as_deref() {
            let error = safe_code(error);
            if error == "access_denied" {
                let e = self
                    .settle(&opened.elicitation.id, Settlement::Declined(None))
                    .await?;
                self.audit(
                    AuditEvent::new(actor, AuditAction::ElicitationDeclined, Outcome::Success)
                        .elicitation(&e)
                        .reason("access_denied"),
                )
                .await?;
                return Ok(e);
            }
            return self.fail(user, &opened, &error).await;
        }
        let Some(code) = callback.code.as_deref() else {
            return self.fail(user, &opened, "invalid_callback").await;
        };
        let verifier = self
            .vault
            .open(
                flow_context(&key, &opened.elicitation),
                &flow.sealed_verifier,
            )
            .map_err(|_| Error::GrantCorrupt)?;
        let verifier = String::from_utf8_lossy(&verifier).into_owned();
        let redirect = self.oauth_redirect_uri();
        match oauth2::exchange(
            spec,
            &metadata,
            &redirect,
            code,
            &verifier,
            &opened.elicitation.scopes,
            &self.http,
            self.clock().now(),
        )
        .await
        {
            Ok(tokens) => {
                let finished = Finished {
                    credential: tokens.credential,
                    terms_version: None,
                    metadata: tokens.metadata,
                };
                self.complete(user, &opened, finished).await
            }
            Err(ExchangeError::Refused(reason) | ExchangeError::Reauthorize(reason)) => {
                self.fail(user, &opened, &safe_code(&reason)).await
            }
            Err(ExchangeError::Unavailable) => Err(Error::UpstreamUnavailable(format!(
                "{} did not answer; go back to the request and try again",
                opened.provider.name
            ))),
        }
    }

    /// Ends an elicitation as failed with a short reason code the service can read.
    async fn fail(
        &self,
        user: &SessionUser,
        opened: &Opened<'_>,
        reason: &str,
    ) -> Result<Elicitation, Error> {
        let e = self
            .settle(
                &opened.elicitation.id,
                Settlement::Failed(reason.to_owned()),
            )
            .await?;
        self.audit(
            AuditEvent::new(
                Actor::User(user.subject.clone()),
                AuditAction::ElicitationFailed,
                Outcome::Failure,
            )
            .elicitation(&e)
            .reason(reason),
        )
        .await?;
        Ok(e)
    }
}

/// The vault context of a flow's verifier: bound to the flow and its elicitation.
fn flow_context<'a>(key: &'a str, e: &'a Elicitation) -> SealContext<'a> {
    SealContext {
        grant_id: key,
        service: e.service.as_str(),
        subject: e.subject.as_str(),
        provider: e.provider.as_str(),
    }
}

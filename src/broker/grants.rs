//! Redemption, token refresh and revocation.
//!
//! - A handle only works for the service it is bound to; for any other caller it is
//!   indistinguishable from an unknown handle.
//! - An OAuth access token expiring within the refresh skew (at most half its lifetime) is
//!   refreshed before it is handed out, single-flight per grant across every broker
//!   instance: one holder of the store lock `refresh:<grant>` talks to the upstream, and
//!   everyone who waited reuses what it stored. The new tokens are resealed with a
//!   compare-and-set on the old sealed record, so a refresh can never overwrite another.
//! - `force_refresh` (the upstream refused the token) refreshes through the same path, at
//!   most once per grant per [`FORCE_REFRESH_INTERVAL`].
//! - One of the provider's `reauthorize_errors` (`invalid_grant`, …) marks the grant
//!   `needs_reauth` and answers `reauthorization_required` with a ready elicitation (reused
//!   while it is open); any other failure answers a retryable error and leaves the grant
//!   alone.
//! - A grant past its `expires_at` (policy's lifetime) is marked `needs_reauth` the same
//!   way, audited `grant_expired`; one waiting for approval is never redeemed.
//! - Revocation disables the grant first, then revokes its upstream tokens the provider's
//!   way (RFC 7009, its own request, or none) with bounded retries, and records what the
//!   provider answered on the grant.

use std::time::Duration;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Broker, NewElicitation};
use crate::Error;
use crate::config::{ProviderSpec, Service};
use crate::domain::{
    Actor, AuditAction, AuditEvent, Credential, Elicitation, Grant, GrantChange, GrantId,
    GrantSecret, GrantStatus, Handle, Outcome, Scope, Scopes, UpstreamRevocation,
};
use crate::flows::oauth2::{self, ExchangeError};
use crate::store::Updated;
use crate::upstream::{Revocation, RevocationAuth};

/// How long a refresh may hold its lock (it expires by itself if the holder dies).
const REFRESH_LOCK_TTL: Duration = Duration::from_secs(30);
/// How long a redemption waits for another instance's refresh before giving up.
const REFRESH_WAIT: Duration = Duration::from_secs(15);
const REFRESH_POLL: Duration = Duration::from_millis(50);
/// A forced refresh of tokens younger than this returns them as they are: one refresh per
/// grant per interval, however many callers report a refused token.
pub const FORCE_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

pub struct Redeemed {
    pub grant: Grant,
    pub credential: Credential,
}

pub enum RevokeTarget<'a> {
    Handle(&'a str),
    Id(&'a str),
}

impl Broker {
    /// The credential behind a handle, for a service that proves its user by its
    /// `subject_proof` (`subject_token`, as on create). `force_refresh` (the upstream refused the token)
    /// refreshes it first, unless it was obtained within [`FORCE_REFRESH_INTERVAL`]: then
    /// the tokens just obtained are the answer.
    pub async fn redeem(
        &self,
        service: &Service,
        presented: &str,
        force_refresh: bool,
        subject_token: Option<&str>,
    ) -> Result<Redeemed, Error> {
        let grant = self.bound_grant(service, presented).await?;
        // A service that must prove its user does so here too: a handle alone is not
        // enough.
        self.prove_subject(service, subject_token, &grant.subject)
            .await?;
        let secret = match self.usable(service, &grant).await {
            Ok(secret) => secret,
            Err(error) => return Err(self.refused(service, &grant, error).await?),
        };
        if !bool::from(secret.handle.as_bytes().ct_eq(presented.as_bytes())) {
            return Err(self.refused(service, &grant, Error::GrantCorrupt).await?);
        }
        let forced = force_refresh && self.may_force_refresh(&secret.credential);
        let (grant, credential) = if forced || self.needs_refresh(&secret.credential) {
            match self.refreshed(service, grant.clone()).await {
                Ok(fresh) => fresh,
                Err(error) => return Err(self.refused(service, &grant, error).await?),
            }
        } else {
            (grant, secret.credential.clone())
        };
        // The use count and the audit event in one write: durable before the answer.
        self.audit_redemption(
            &grant.id,
            AuditEvent::new(
                Actor::Service(service.id.clone()),
                AuditAction::GrantRedeemed,
                Outcome::Success,
            )
            .grant(&grant),
        )
        .await?;
        Ok(Redeemed { grant, credential })
    }

    /// Audits a refused redemption; returns the error to answer with.
    async fn refused(
        &self,
        service: &Service,
        grant: &Grant,
        error: Error,
    ) -> Result<Error, Error> {
        let outcome = if error.status().is_server_error() {
            Outcome::Failure
        } else {
            Outcome::Denied
        };
        let event = AuditEvent::new(
            Actor::Service(service.id.clone()),
            AuditAction::GrantRedeemed,
            outcome,
        )
        .grant(grant)
        .reason(error.kind());
        self.audit(event).await?;
        Ok(error)
    }

    /// The grant's sealed secret, if the grant may be redeemed as it stands.
    async fn usable(&self, service: &Service, grant: &Grant) -> Result<GrantSecret, Error> {
        match grant.status {
            GrantStatus::Active if grant.is_expired(self.clock().now()) => {
                // The consent lapsed (policy's lifetime): the same path as a dead refresh
                // token, so the service gets a link for the user to grant it again.
                let elicitation = self.reauthorization(service, grant).await?;
                self.audit(
                    AuditEvent::new(Actor::System, AuditAction::GrantExpired, Outcome::Success)
                        .grant(grant),
                )
                .await?;
                Err(Error::ReauthorizationRequired(Some(Box::new(elicitation))))
            }
            GrantStatus::Active => self.open_secret(grant),
            GrantStatus::AwaitingApproval => Err(Error::ApprovalPending),
            GrantStatus::Revoked if grant.superseded_by.is_some() => Err(Error::GrantSuperseded),
            GrantStatus::Revoked => Err(Error::GrantRevoked),
            GrantStatus::NeedsReauth => {
                let elicitation = self.reauthorization(service, grant).await?;
                Err(Error::ReauthorizationRequired(Some(Box::new(elicitation))))
            }
        }
    }

    /// True for OAuth tokens that expire within the skew: the configured one, but at most
    /// half their lifetime (else short-lived tokens would be refreshed at every use).
    fn needs_refresh(&self, credential: &Credential) -> bool {
        let Credential::Oauth2 {
            expires_at: Some(expires_at),
            obtained_at,
            refresh_token: Some(_),
            ..
        } = credential
        else {
            return false;
        };
        let configured = i64::try_from(self.settings.refresh_skew.as_secs()).unwrap_or(i64::MAX);
        let lifetime = expires_at - obtained_at;
        let skew = if *obtained_at > 0 && lifetime > 0 {
            configured.min(lifetime / 2)
        } else {
            configured
        };
        *expires_at - self.clock().now().unix_timestamp() <= skew
    }

    /// True for OAuth tokens with a refresh token, obtained long enough ago that a forced
    /// refresh is not a storm.
    fn may_force_refresh(&self, credential: &Credential) -> bool {
        let Credential::Oauth2 {
            obtained_at,
            refresh_token: Some(_),
            ..
        } = credential
        else {
            return false;
        };
        let interval = i64::try_from(FORCE_REFRESH_INTERVAL.as_secs()).unwrap_or(i64::MAX);
        self.clock().now().unix_timestamp() - obtained_at >= interval
    }

    /// Fresh tokens for `grant`: refreshed here under the grant's lock, or by whoever held
    /// the lock while this call waited.
    async fn refreshed(
        &self,
        service: &Service,
        grant: Grant,
    ) -> Result<(Grant, Credential), Error> {
        let lock = format!("refresh:{}", grant.id);
        let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
        loop {
            if let Some(token) = self.stores.locks.try_lock(&lock, REFRESH_LOCK_TTL).await? {
                let result = self.refresh_locked(service, &grant).await;
                if let Err(e) = self.stores.locks.unlock(&lock, &token).await {
                    tracing::warn!(grant = grant.id.as_str(), error = %e, "refresh lock not released; it will lapse");
                }
                return result;
            }
            tokio::time::sleep(REFRESH_POLL).await;
            if let Some(fresh) = self.changed_since(service, &grant).await? {
                return Ok(fresh);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::UpstreamUnavailable(
                    "a token refresh for this grant is still running; retry".into(),
                ));
            }
        }
    }

    /// The grant as stored now, if its sealed record changed since `seen` (a refresh, a
    /// revocation, a re-authorization): then whatever it holds is the answer.
    async fn changed_since(
        &self,
        service: &Service,
        seen: &Grant,
    ) -> Result<Option<(Grant, Credential)>, Error> {
        let current = self
            .stores
            .grants
            .grant(&seen.id)
            .await?
            .ok_or(Error::UnknownHandle)?;
        if current.sealed == seen.sealed && current.status == seen.status {
            return Ok(None);
        }
        let secret = self.usable(service, &current).await?;
        Ok(Some((current, secret.credential.clone())))
    }

    /// Refreshes while holding the grant's lock.
    async fn refresh_locked(
        &self,
        service: &Service,
        seen: &Grant,
    ) -> Result<(Grant, Credential), Error> {
        if let Some(fresh) = self.changed_since(service, seen).await? {
            return Ok(fresh);
        }
        let secret = self.open_secret(seen)?;
        let Credential::Oauth2 {
            refresh_token: Some(refresh_token),
            ..
        } = &secret.credential
        else {
            return Err(Error::Internal(
                "refresh of a grant without a refresh token".into(),
            ));
        };
        let provider = self
            .settings
            .provider(&seen.provider)
            .ok_or(Error::GrantRevoked)?;
        let ProviderSpec::Oauth2(spec) = &provider.spec else {
            return Err(Error::Internal("refresh of a non-OAuth grant".into()));
        };
        let metadata = self.oauth_metadata(provider).await?;
        let actor = Actor::Service(service.id.clone());
        match oauth2::refresh(
            spec,
            &metadata,
            refresh_token,
            &seen.scopes,
            &self.http,
            self.clock().now(),
        )
        .await
        {
            Ok(credential) => {
                let renewed = GrantSecret {
                    handle: secret.handle.clone(),
                    credential,
                };
                let plain = Zeroizing::new(
                    serde_json::to_vec(&renewed).map_err(|e| Error::Internal(e.to_string()))?,
                );
                let sealed = self
                    .vault
                    .seal(seen.seal_context(), &plain)
                    .map_err(|e| Error::Internal(format!("seal: {e}")))?;
                let change = GrantChange::Reseal {
                    expected: seen.sealed.clone(),
                    sealed,
                };
                match self.stores.grants.update_grant(&seen.id, change).await? {
                    Updated::Applied(grant) => {
                        self.audit(
                            AuditEvent::new(actor, AuditAction::GrantRefreshed, Outcome::Success)
                                .grant(&grant),
                        )
                        .await?;
                        Ok((grant, renewed.credential.clone()))
                    }
                    // Revoked (or otherwise changed) meanwhile: its state wins.
                    Updated::Unchanged(current) => {
                        let secret = self.usable(service, &current).await?;
                        Ok((current, secret.credential.clone()))
                    }
                    Updated::NotFound => Err(Error::UnknownHandle),
                }
            }
            Err(ExchangeError::Reauthorize(reason)) => {
                let elicitation = self.reauthorization(service, seen).await?;
                self.audit(
                    AuditEvent::new(actor, AuditAction::GrantNeedsReauth, Outcome::Failure)
                        .grant(seen)
                        .reason(&reason),
                )
                .await?;
                Err(Error::ReauthorizationRequired(Some(Box::new(elicitation))))
            }
            Err(failure) => {
                let reason = match failure {
                    ExchangeError::Refused(reason) | ExchangeError::Reauthorize(reason) => reason,
                    ExchangeError::Unavailable => "upstream_unavailable".into(),
                };
                self.audit(
                    AuditEvent::new(actor, AuditAction::GrantRefreshFailed, Outcome::Failure)
                        .grant(seen)
                        .reason(&reason),
                )
                .await?;
                Err(Error::UpstreamUnavailable(format!(
                    "{} could not refresh the token ({reason}); retry later",
                    provider.name
                )))
            }
        }
    }

    /// The open elicitation asking the user to authorise `grant` again, made (and noted
    /// on the grant) when there is none.
    async fn reauthorization(
        &self,
        service: &Service,
        grant: &Grant,
    ) -> Result<Elicitation, Error> {
        if let Some(id) = &grant.reauth_elicitation
            && let Some(e) = self.stores.elicitations.elicitation(id).await?
            && e.is_open(self.clock().now())
        {
            return Ok(e);
        }
        let provider_name = self
            .settings
            .provider(&grant.provider)
            .map_or(grant.provider.as_str(), |p| p.name.as_str());
        // Only scopes the service may ask for: a provider's own spellings, recorded by
        // `granted_scopes = "union"` or `"echo"`, are not asked for again.
        let scopes: Vec<Scope> = grant
            .scopes
            .iter()
            .filter(|s| service.allows_scope(&grant.provider, s))
            .cloned()
            .collect();
        let request = NewElicitation {
            subject: grant.subject.clone(),
            provider: grant.provider.clone(),
            scopes: Scopes::try_from(scopes).unwrap_or_default(),
            message: Some(format!(
                "Your {provider_name} connection has expired. Open this link to connect it again."
            )),
        };
        let elicitation = self.insert_pending(service, request).await?;
        self.stores
            .grants
            .update_grant(
                &grant.id,
                GrantChange::NeedsReauth {
                    elicitation: elicitation.id.clone(),
                },
            )
            .await?;
        Ok(elicitation)
    }

    /// Revocation by the bound service, by handle or by grant id.
    pub async fn revoke_for_service(
        &self,
        service: &Service,
        target: RevokeTarget<'_>,
    ) -> Result<Grant, Error> {
        let grant = match target {
            RevokeTarget::Handle(h) => self.bound_grant(service, h).await?,
            RevokeTarget::Id(id) => {
                let id = GrantId::parse(id).map_err(|_| Error::UnknownHandle)?;
                match self.stores.grants.grant(&id).await? {
                    Some(g) if g.service == service.id => g,
                    _ => return Err(Error::UnknownHandle),
                }
            }
        };
        self.revoke(Actor::Service(service.id.clone()), &grant)
            .await
    }

    /// Disables a grant at once, then revokes its upstream tokens. Revoking again retries
    /// an upstream revocation that failed; otherwise it changes nothing.
    pub async fn revoke(&self, actor: Actor, grant: &Grant) -> Result<Grant, Error> {
        let mut revoked = self
            .stores
            .grants
            .revoke_grant(&grant.id, crate::domain::now())
            .await?
            .ok_or(Error::UnknownHandle)?;
        self.audit(
            AuditEvent::new(actor.clone(), AuditAction::GrantRevoked, Outcome::Success)
                .grant(&revoked),
        )
        .await?;
        let upstream_done = matches!(
            revoked.upstream_revocation,
            Some(
                UpstreamRevocation::Revoked
                    | UpstreamRevocation::AlreadyRevoked
                    | UpstreamRevocation::NotSupported
            )
        );
        if revoked.kind == crate::domain::ProviderKind::Oauth2
            && revoked.superseded_by.is_none()
            && !upstream_done
        {
            let outcome = self.revoke_upstream(&revoked).await;
            if let Updated::Applied(g) = self
                .stores
                .grants
                .update_grant(&revoked.id, GrantChange::UpstreamRevocation(outcome))
                .await?
            {
                revoked = g;
            }
            let result = if outcome == UpstreamRevocation::Failed {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            self.audit(
                AuditEvent::new(actor, AuditAction::UpstreamRevocation, result)
                    .grant(&revoked)
                    .reason(outcome.as_str()),
            )
            .await?;
        }
        Ok(revoked)
    }

    /// Revokes the grant's tokens the provider's way (see `flows::oauth2::revoke`).
    async fn revoke_upstream(&self, grant: &Grant) -> UpstreamRevocation {
        let Ok(secret) = self.open_secret(grant) else {
            return UpstreamRevocation::Failed;
        };
        let Credential::Oauth2 {
            access_token,
            refresh_token,
            expires_at,
            ..
        } = &secret.credential
        else {
            return UpstreamRevocation::NotSupported;
        };
        let Some(provider) = self.settings.provider(&grant.provider) else {
            return UpstreamRevocation::Failed;
        };
        let ProviderSpec::Oauth2(spec) = &provider.spec else {
            return UpstreamRevocation::NotSupported;
        };
        let Ok(metadata) = self.oauth_metadata(provider).await else {
            return UpstreamRevocation::Failed;
        };
        let (mut access, mut refresh) = (access_token.clone(), refresh_token.clone());
        // A revocation that authenticates with the access token itself (Dropbox) needs a
        // live one: an expired token would only be refused, and the refresh token live on.
        let bearer = matches!(&spec.quirks.revocation, Revocation::Request(r) if r.auth == RevocationAuth::Bearer);
        let expired = expires_at.is_some_and(|at| at <= self.clock().now().unix_timestamp());
        if bearer
            && expired
            && let Some(r) = &refresh
            && let Ok(fresh) = oauth2::refresh(
                spec,
                &metadata,
                r,
                &grant.scopes,
                &self.http,
                self.clock().now(),
            )
            .await
            && let Credential::Oauth2 {
                access_token,
                refresh_token,
                ..
            } = &fresh
        {
            access = access_token.clone();
            refresh = refresh_token.clone();
        }
        let outcome = oauth2::revoke(
            spec,
            metadata.revocation_endpoint.as_ref(),
            &access,
            refresh.as_deref(),
            self.settings.revocation_attempts,
            &self.http,
        )
        .await;
        if outcome == UpstreamRevocation::Failed {
            tracing::warn!(
                grant = grant.id.as_str(),
                "upstream token revocation failed"
            );
        }
        outcome
    }

    /// The grant a handle names, if it is bound to `service`; otherwise `UnknownHandle`.
    async fn bound_grant(&self, service: &Service, presented: &str) -> Result<Grant, Error> {
        let handle = Handle::parse(presented).ok_or(Error::UnknownHandle)?;
        match self.stores.grants.grant_by_handle(&handle.digest()).await? {
            Some(g) if g.service == service.id => Ok(g),
            Some(g) => {
                // Off the request path: the answer costs what an unknown handle's does.
                self.audit_off_path(
                    AuditEvent::new(
                        Actor::Service(service.id.clone()),
                        AuditAction::ForeignHandlePresented,
                        Outcome::Denied,
                    )
                    .grant(&g)
                    .reason(crate::domain::ErrorKind::UnknownHandle),
                )
                .await?;
                Err(Error::UnknownHandle)
            }
            None => Err(Error::UnknownHandle),
        }
    }
}

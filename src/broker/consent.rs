//! The user side of an elicitation: open it (after the identity check), approve it with
//! the provider's flow, or decline it. Settling is atomic with storing the grant.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::Broker;
use crate::Error;
use crate::config::{Provider, ProviderSpec, Service};
use crate::domain::policy::Decision;
use crate::domain::{
    Actor, AuditAction, AuditEvent, Credential, Elicitation, ElicitationId, Grant, GrantChange,
    GrantId, GrantSecret, GrantStatus, Handle, Outcome, Scope, Scopes,
};
use crate::flows;
use crate::identity::SessionUser;
use crate::store::{Settled, Settlement, Updated};
use crate::vault::SealContext;

/// The reason a service reads on an elicitation the policy declined.
pub const POLICY_REASON: &str = "policy";

/// An elicitation the signed-in user may act on, with its config context.
pub struct Opened<'a> {
    pub elicitation: Elicitation,
    pub provider: &'a Provider,
    pub service: std::sync::Arc<Service>,
}

/// What a finished consent yields: the credential, the terms version accepted (terms) and
/// the provider's non-secret metadata (OAuth).
pub(super) struct Finished {
    pub credential: Credential,
    pub terms_version: Option<String>,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl Finished {
    pub fn new(credential: Credential, terms_version: Option<String>) -> Self {
        Self {
            credential,
            terms_version,
            metadata: BTreeMap::new(),
        }
    }
}

impl Broker {
    /// Loads an elicitation for `user`. Another user gets `IdentityMismatch` (audited):
    /// a forwarded or phished link never reaches someone else's consent.
    pub async fn open_elicitation(
        &self,
        user: &SessionUser,
        id: &str,
    ) -> Result<Opened<'_>, Error> {
        let id = ElicitationId::parse(id).map_err(|_| Error::ElicitationNotFound)?;
        let elicitation = self
            .stores
            .elicitations
            .elicitation(&id)
            .await?
            .ok_or(Error::ElicitationNotFound)?;
        if elicitation.subject != user.subject {
            self.audit(
                AuditEvent::new(
                    Actor::User(user.subject.clone()),
                    AuditAction::IdentityMismatch,
                    Outcome::Denied,
                )
                .elicitation(&elicitation)
                .reason(crate::domain::ErrorKind::IdentityMismatch),
            )
            .await?;
            return Err(Error::IdentityMismatch);
        }
        let (Some(provider), Some(service)) = (
            self.settings.provider(&elicitation.provider),
            self.service(&elicitation.service).await?,
        ) else {
            // The config changed under a live elicitation: it cannot be completed safely.
            return Err(Error::ElicitationSettled(elicitation.status));
        };
        Ok(Opened {
            elicitation,
            provider,
            service,
        })
    }

    /// Like `open_elicitation`, and it must still be pending.
    pub async fn open_pending(&self, user: &SessionUser, id: &str) -> Result<Opened<'_>, Error> {
        let opened = self.open_elicitation(user, id).await?;
        match opened.elicitation.status_at(self.clock().now()) {
            crate::domain::ElicitationStatus::Pending => Ok(opened),
            crate::domain::ElicitationStatus::Expired => Err(Error::ElicitationExpired),
            other => Err(Error::ElicitationSettled(other)),
        }
    }

    /// What the policy says about `user` granting this elicitation.
    pub fn policy_for(&self, user: &SessionUser, e: &Elicitation) -> Decision {
        self.settings.policy.decide(
            &user.subject,
            &user.claims,
            &e.service,
            &e.provider,
            &e.scopes,
        )
    }

    /// Declines an elicitation the policy does not let `user` grant: the service is told
    /// `declined` with reason `policy`, the trail records why in words.
    pub async fn refuse_by_policy(
        &self,
        user: &SessionUser,
        opened: &Opened<'_>,
        refusals: Vec<String>,
    ) -> Result<Error, Error> {
        let actor = Actor::User(user.subject.clone());
        self.audit(
            AuditEvent::new(actor.clone(), AuditAction::PolicyRefused, Outcome::Denied)
                .elicitation(&opened.elicitation)
                .reason(crate::domain::ErrorKind::PolicyRefused),
        )
        .await?;
        match self
            .settle(
                &opened.elicitation.id,
                Settlement::Declined(Some(POLICY_REASON.into())),
            )
            .await
        {
            Ok(e) => {
                self.audit(
                    AuditEvent::new(actor, AuditAction::ElicitationDeclined, Outcome::Success)
                        .elicitation(&e)
                        .reason(POLICY_REASON),
                )
                .await?;
            }
            // Already ended meanwhile: the refusal still stands for this user.
            Err(Error::ElicitationSettled(_) | Error::ElicitationExpired) => {}
            Err(other) => return Err(other),
        }
        Ok(Error::PolicyRefused(refusals))
    }

    /// Records acceptance of the provider's current terms.
    pub async fn accept_terms(&self, user: &SessionUser, id: &str) -> Result<Elicitation, Error> {
        let opened = self.open_pending(user, id).await?;
        let ProviderSpec::Terms { version, .. } = &opened.provider.spec else {
            return Err(Error::InvalidRequest(
                "this request is not for terms".into(),
            ));
        };
        let credential = flows::terms::acceptance(&opened.provider.spec)
            .ok_or(Error::Internal("terms".into()))?;
        let version = Some(version.clone());
        self.complete(user, &opened, Finished::new(credential, version))
            .await
    }

    /// Checks and stores an API key the user typed. The key is never echoed or logged.
    pub async fn submit_api_key(
        &self,
        user: &SessionUser,
        id: &str,
        key: Zeroizing<String>,
    ) -> Result<Elicitation, Error> {
        let opened = self.open_pending(user, id).await?;
        let credential = match flows::api_key::check(opened.provider, key, &self.http).await {
            Ok(c) => c,
            Err(e) => {
                self.audit(
                    AuditEvent::new(
                        Actor::User(user.subject.clone()),
                        AuditAction::ApiKeyRejected,
                        Outcome::Failure,
                    )
                    .elicitation(&opened.elicitation)
                    .reason(e.kind()),
                )
                .await?;
                return Err(e);
            }
        };
        self.complete(user, &opened, Finished::new(credential, None))
            .await
    }

    pub async fn decline(&self, user: &SessionUser, id: &str) -> Result<Elicitation, Error> {
        let opened = self.open_pending(user, id).await?;
        let e = self
            .settle(&opened.elicitation.id, Settlement::Declined(None))
            .await?;
        self.audit(
            AuditEvent::new(
                Actor::User(user.subject.clone()),
                AuditAction::ElicitationDeclined,
                Outcome::Success,
            )
            .elicitation(&e),
        )
        .await?;
        Ok(e)
    }

    /// Seals the credential with a fresh handle and settles the elicitation with the grant.
    pub(super) async fn complete(
        &self,
        user: &SessionUser,
        opened: &Opened<'_>,
        finished: Finished,
    ) -> Result<Elicitation, Error> {
        let Finished {
            credential,
            terms_version,
            metadata,
        } = finished;
        let e = &opened.elicitation;
        // Checked again at the end (the page checked it before): claims or config may have
        // changed while the user was at the provider.
        let decision = self.policy_for(user, e);
        if decision.is_refused() {
            return Err(self
                .refuse_by_policy(user, opened, decision.refusals)
                .await?);
        }
        // An OAuth server may grant less than was asked: the grant records what it got.
        let scopes = match &credential {
            Credential::Oauth2 { scopes, .. } => {
                let granted: Vec<Scope> = scopes
                    .iter()
                    .filter_map(|s| Scope::parse(s.as_str()).ok())
                    .collect();
                Scopes::try_from(granted).unwrap_or_else(|_| e.scopes.clone())
            }
            _ => e.scopes.clone(),
        };
        let now = self.clock().now();
        let id = GrantId::generate();
        let handle = Handle::generate();
        let context = SealContext {
            grant_id: id.as_str(),
            service: e.service.as_str(),
            subject: e.subject.as_str(),
            provider: e.provider.as_str(),
        };
        let secret = GrantSecret {
            handle: handle.expose().to_owned(),
            credential,
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(&secret).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let sealed = self
            .vault
            .seal(context, &plain)
            .map_err(|e| Error::Internal(format!("seal: {e}")))?;
        let grant = Grant {
            id,
            handle_digest: handle.digest(),
            service: e.service.clone(),
            subject: e.subject.clone(),
            provider: e.provider.clone(),
            kind: opened.provider.kind(),
            scopes,
            status: GrantStatus::Active,
            created_at: now,
            last_used_at: None,
            use_count: 0,
            revoked_at: None,
            terms_version,
            sealed,
            superseded_by: None,
            reauth_elicitation: None,
            upstream_revocation: None,
            metadata,
            expires_at: decision.max_lifetime.map(|l| now + l),
            elicitation: Some(e.id.clone()),
        };
        let actor = Actor::User(user.subject.clone());
        if decision.needs_approval() {
            // Sealed and stored, never redeemable until an administrator approves.
            let grant = Grant {
                status: GrantStatus::AwaitingApproval,
                ..grant
            };
            let until = now + self.settings.governance.approval_window;
            let waiting = Settlement::AwaitingApproval {
                grant: Box::new(grant.clone()),
                until,
            };
            let settled = self.settle(&e.id, waiting).await?;
            self.audit(
                AuditEvent::new(actor.clone(), AuditAction::GrantCreated, Outcome::Success)
                    .grant(&grant),
            )
            .await?;
            self.audit(
                AuditEvent::new(actor, AuditAction::ApprovalRequested, Outcome::Success)
                    .elicitation(&settled),
            )
            .await?;
            return Ok(settled);
        }
        let settled = self
            .settle(&e.id, Settlement::Completed(Box::new(grant.clone())))
            .await?;
        self.audit(
            AuditEvent::new(actor.clone(), AuditAction::GrantCreated, Outcome::Success)
                .grant(&grant),
        )
        .await?;
        self.audit(
            AuditEvent::new(
                actor.clone(),
                AuditAction::ElicitationCompleted,
                Outcome::Success,
            )
            .elicitation(&settled),
        )
        .await?;
        self.supersede_older(&actor, &grant).await?;
        Ok(settled)
    }

    /// Disables the user's older grants for the same service and provider: the new grant
    /// replaces them (a scope upgrade, a re-authorization, newer terms). Their upstream
    /// tokens are left alone, because the new authorization may share the upstream grant;
    /// sealed under a revoked grant, they are never used again.
    pub(super) async fn supersede_older(&self, actor: &Actor, newer: &Grant) -> Result<(), Error> {
        let now = crate::domain::now();
        for old in self.stores.grants.grants_of_subject(&newer.subject).await? {
            let same_binding = old.service == newer.service && old.provider == newer.provider;
            // A grant still waiting for approval is left to the administrator's decision.
            let standing = matches!(old.status, GrantStatus::Active | GrantStatus::NeedsReauth);
            if old.id == newer.id || !same_binding || !standing {
                continue;
            }
            let change = GrantChange::Superseded {
                by: newer.id.clone(),
                at: now,
            };
            if let Updated::Applied(old) = self.stores.grants.update_grant(&old.id, change).await? {
                self.audit(
                    AuditEvent::new(
                        actor.clone(),
                        AuditAction::GrantSuperseded,
                        Outcome::Success,
                    )
                    .grant(&old),
                )
                .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn settle(
        &self,
        id: &ElicitationId,
        settlement: Settlement,
    ) -> Result<Elicitation, Error> {
        match self
            .stores
            .elicitations
            .settle(id, settlement, self.clock().now())
            .await?
        {
            Settled::Now(e) => {
                self.notify_settled();
                Ok(e)
            }
            Settled::Already(e) => match e.status_at(self.clock().now()) {
                crate::domain::ElicitationStatus::Expired => Err(Error::ElicitationExpired),
                s => Err(Error::ElicitationSettled(s)),
            },
            Settled::NotFound => Err(Error::ElicitationNotFound),
        }
    }
}

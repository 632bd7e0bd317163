//! Governance in the console: administrators' decisions on grants the policy holds for
//! approval, and the review lists (grants whose consent lapses soon, grants nobody
//! redeems) with revocation of the unused ones.
//!
//! Approval order: the elicitation moves to `completed` first, then the grant to `active`.
//! A crash between the two leaves a completed elicitation whose grant still refuses every
//! redemption (`approval_pending`) until an administrator approves again: it fails closed.
//! For OAuth, the authorization code is exchanged when the user returns (codes live
//! minutes, approvals may take days); the tokens stay sealed and unredeemable until the
//! approval, and a refusal revokes them at the provider.

use super::Broker;
use crate::Error;
use crate::domain::{
    Actor, AuditAction, AuditEvent, ElicitationStatus, Grant, GrantChange, GrantId, GrantStatus,
    Outcome, Subject, Timestamp,
};
use crate::store::Settlement;
use crate::store::Updated;
use crate::store::admin::GrantFilter;

/// How a refused elicitation's reason starts; the administrator's words follow.
pub const ADMIN_REFUSAL: &str = "refused by an administrator: ";

/// Grants read per page while building a list.
const PAGE: usize = 500;
/// The longest list the console shows (the rest is counted).
const SHOWN: usize = 200;
/// Longest refusal reason kept, in characters.
const MAX_REASON_CHARS: usize = 300;

/// One review list: the grants shown and how many matched in all.
pub struct Listed {
    pub grants: Vec<Grant>,
    pub total: usize,
}

/// The console's review of standing grants.
pub struct Review {
    /// Active grants whose consent lapses within the configured window, soonest first.
    pub expiring: Listed,
    /// Active grants not redeemed within the configured window (never, or last long ago).
    pub unused: Listed,
    pub expiring_days: i64,
    pub unused_days: i64,
}

impl Broker {
    /// Grants waiting for an administrator, oldest first.
    pub async fn approval_queue(&self) -> Result<Listed, Error> {
        let filter = GrantFilter {
            status: Some(GrantStatus::AwaitingApproval),
            ..Default::default()
        };
        let mut all = self.matching(&filter, |_| true).await?;
        all.sort_by_key(|g| g.created_at);
        Ok(listed(all))
    }

    /// When an administrator must decide on `grant` by (its approval window's end).
    pub fn approval_deadline(&self, grant: &Grant) -> Timestamp {
        grant.created_at + self.settings.governance.approval_window
    }

    /// An administrator approves a waiting grant: its elicitation completes (the service
    /// gets the handle, and its webhook fires) and the grant becomes redeemable.
    pub async fn approve_grant(&self, admin: &Subject, id: &GrantId) -> Result<Grant, Error> {
        let grant = self.waiting(id).await?;
        let actor = Actor::Admin(admin.clone());
        let elicitation = match &grant.elicitation {
            Some(eid) => match self.settle(eid, Settlement::Approved).await {
                Ok(e) => Some(e),
                // Already completed by an earlier approval that stopped half-way.
                Err(Error::ElicitationSettled(ElicitationStatus::Completed)) => None,
                Err(Error::ElicitationExpired | Error::ElicitationNotFound) => {
                    // The window passed: the grant can never be approved; it goes.
                    self.revoke(Actor::System, &grant).await?;
                    return Err(Error::ElicitationExpired);
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let approved = match self
            .stores
            .grants
            .update_grant(&grant.id, GrantChange::Approve)
            .await?
        {
            Updated::Applied(g) => g,
            Updated::Unchanged(_) | Updated::NotFound => return Err(not_waiting()),
        };
        self.audit(
            AuditEvent::new(
                actor.clone(),
                AuditAction::ApprovalGranted,
                Outcome::Success,
            )
            .grant(&approved),
        )
        .await?;
        if let Some(e) = elicitation {
            self.audit(
                AuditEvent::new(
                    actor.clone(),
                    AuditAction::ElicitationCompleted,
                    Outcome::Success,
                )
                .elicitation(&e),
            )
            .await?;
        }
        self.supersede_older(&actor, &approved).await?;
        Ok(approved)
    }

    /// An administrator refuses a waiting grant: its elicitation ends `declined` with the
    /// reason, and the grant is revoked (its OAuth tokens at the provider too).
    pub async fn refuse_grant(
        &self,
        admin: &Subject,
        id: &GrantId,
        reason: &str,
    ) -> Result<Grant, Error> {
        let grant = self.waiting(id).await?;
        let actor = Actor::Admin(admin.clone());
        let reason: String = crate::domain::text::neutralise_format(reason.trim())
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_REASON_CHARS)
            .collect();
        if reason.is_empty() {
            return Err(Error::InvalidRequest(
                "Give a reason: the user's service is told it.".into(),
            ));
        }
        let told = format!("{ADMIN_REFUSAL}{reason}");
        let declined = match &grant.elicitation {
            Some(eid) => match self.settle(eid, Settlement::Declined(Some(told))).await {
                Ok(e) => Some(e),
                Err(Error::ElicitationExpired | Error::ElicitationSettled(_)) => None,
                Err(Error::ElicitationNotFound) => None,
                Err(other) => return Err(other),
            },
            None => None,
        };
        let revoked = self.revoke(actor.clone(), &grant).await?;
        self.audit(
            AuditEvent::new(
                actor.clone(),
                AuditAction::ApprovalRefused,
                Outcome::Success,
            )
            .grant(&revoked),
        )
        .await?;
        if let Some(e) = declined {
            self.audit(
                AuditEvent::new(actor, AuditAction::ElicitationDeclined, Outcome::Success)
                    .elicitation(&e),
            )
            .await?;
        }
        Ok(revoked)
    }

    /// The review lists, as of now.
    pub async fn review(&self) -> Result<Review, Error> {
        let now = self.clock().now();
        let g = self.settings.governance;
        let active = GrantFilter {
            status: Some(GrantStatus::Active),
            ..Default::default()
        };
        let standing = self.matching(&active, |_| true).await?;
        let mut expiring: Vec<Grant> = standing
            .iter()
            .filter(|x| x.expires_at.is_some_and(|at| at <= now + g.review_expiring))
            .cloned()
            .collect();
        expiring.sort_by_key(|x| x.expires_at);
        let mut unused: Vec<Grant> = standing
            .into_iter()
            .filter(|x| is_unused(x, now - g.review_unused))
            .collect();
        unused.sort_by_key(|x| x.last_used_at.unwrap_or(x.created_at));
        Ok(Review {
            expiring: listed(expiring),
            unused: listed(unused),
            expiring_days: g.review_expiring.whole_days(),
            unused_days: g.review_unused.whole_days(),
        })
    }

    /// An administrator revokes every active grant not redeemed within the review window;
    /// returns how many.
    pub async fn revoke_unused(&self, admin: &Subject) -> Result<usize, Error> {
        let since = self.clock().now() - self.settings.governance.review_unused;
        let active = GrantFilter {
            status: Some(GrantStatus::Active),
            ..Default::default()
        };
        let unused = self.matching(&active, |g| is_unused(g, since)).await?;
        for g in &unused {
            self.revoke(Actor::Admin(admin.clone()), g).await?;
        }
        Ok(unused.len())
    }

    /// The grant `id` if it is waiting for approval.
    async fn waiting(&self, id: &GrantId) -> Result<Grant, Error> {
        match self.stores.grants.grant(id).await? {
            Some(g) if g.status == GrantStatus::AwaitingApproval => Ok(g),
            Some(_) => Err(not_waiting()),
            None => Err(Error::UnknownHandle),
        }
    }

    /// Every grant under `filter` that `keep` accepts, read page by page.
    async fn matching(
        &self,
        filter: &GrantFilter,
        keep: impl Fn(&Grant) -> bool,
    ) -> Result<Vec<Grant>, Error> {
        let (mut out, mut after) = (Vec::new(), None);
        loop {
            let page = self
                .stores
                .admin
                .list_grants(filter, after.as_ref(), PAGE)
                .await?;
            out.extend(page.grants.into_iter().filter(|g| keep(g)));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }
}

/// Not redeemed since `since`: never used and made before it, or last used before it.
fn is_unused(g: &Grant, since: Timestamp) -> bool {
    g.last_used_at.unwrap_or(g.created_at) < since
}

fn listed(mut grants: Vec<Grant>) -> Listed {
    let total = grants.len();
    grants.truncate(SHOWN);
    Listed { grants, total }
}

fn not_waiting() -> Error {
    Error::InvalidRequest(
        "This grant is not waiting for approval (someone decided already).".into(),
    )
}

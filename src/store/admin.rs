//! The questions the admin console asks of a store: grants page by page under filters,
//! grant counts, the audit trail of one grant, and the audit log page by page.
//!
//! Invariants every backend keeps:
//! - **Order**: grants come newest first (by creation time, to the millisecond; ties in a
//!   fixed order of the backend's choosing). Paging with the returned cursor visits every
//!   grant present before the first page exactly once.
//! - **Bounded work per page**: grants are read from an index (all grants, or one user's,
//!   one provider's or one service's, each in creation order), never by scanning every
//!   record. Filters the chosen index does not answer (status, a second dimension) are
//!   applied to the records read, and at most [`SCAN_BUDGET`] index entries are examined
//!   per page: a page may then hold fewer than `limit` grants and still have a `next`.
//! - **Counts** are kept up to date by every write that creates a grant or changes its
//!   status (settle, revoke); any new status change must update them too.
//! - **Audit of one grant** comes from a per-grant index written with each event, so it
//!   never scans the log. The audit log page examines at most [`AUDIT_SCAN_BUDGET`] events.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{
    Actor, AuditAction, AuditEvent, Grant, GrantId, GrantStatus, Outcome, ProviderId, ServiceId,
    Subject,
};

/// Index entries examined per grant page at most.
pub const SCAN_BUDGET: usize = 2_000;
/// Audit events examined per audit page at most.
pub const AUDIT_SCAN_BUDGET: usize = 5_000;
/// Audit events kept per grant in the per-grant index (Redis trims to this).
pub const AUDIT_PER_GRANT: usize = 1_000;

/// Which grants to list. Empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantFilter {
    pub subject: Option<Subject>,
    pub provider: Option<ProviderId>,
    pub service: Option<ServiceId>,
    pub status: Option<GrantStatus>,
}

impl GrantFilter {
    pub fn matches(&self, g: &Grant) -> bool {
        self.subject.as_ref().is_none_or(|s| *s == g.subject)
            && self.provider.as_ref().is_none_or(|p| *p == g.provider)
            && self.service.as_ref().is_none_or(|s| *s == g.service)
            && self.status.is_none_or(|s| s == g.status)
    }

    /// The index a backend reads: the most selective dimension the filter names.
    pub fn index(&self) -> IndexChoice<'_> {
        if let Some(s) = &self.subject {
            IndexChoice::Subject(s)
        } else if let Some(p) = &self.provider {
            IndexChoice::Provider(p)
        } else if let Some(s) = &self.service {
            IndexChoice::Service(s)
        } else {
            IndexChoice::All
        }
    }
}

pub enum IndexChoice<'a> {
    All,
    Subject(&'a Subject),
    Provider(&'a ProviderId),
    Service(&'a ServiceId),
}

/// A position in the newest-first order: the creation millisecond and grant id of the last
/// entry examined. Travels in URLs as `<ms>.<grant id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantCursor {
    pub created_ms: i64,
    pub id: GrantId,
}

impl GrantCursor {
    pub fn of(grant: &Grant) -> Self {
        Self {
            created_ms: created_ms(grant),
            id: grant.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_ms, self.id.as_str())
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (ms, id) = raw.split_once('.')?;
        Some(Self {
            created_ms: ms.parse().ok()?,
            id: GrantId::parse(id).ok()?,
        })
    }
}

/// A grant's creation time in Unix milliseconds, the unit every index orders by.
pub fn created_ms(grant: &Grant) -> i64 {
    i64::try_from(grant.created_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[derive(Debug)]
pub struct GrantPage {
    pub grants: Vec<Grant>,
    /// Where the next page starts, if more index entries follow.
    pub next: Option<GrantCursor>,
}

/// How many grants have this status, provider and service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantCount {
    pub status: GrantStatus,
    pub provider: ProviderId,
    pub service: ServiceId,
    pub count: u64,
}

/// Key of a count, shared by backends: `status|provider|service` (`|` is in no slug).
pub fn count_key(status: GrantStatus, provider: &ProviderId, service: &ServiceId) -> String {
    format!(
        "{}|{}|{}",
        status.as_str(),
        provider.as_str(),
        service.as_str()
    )
}

pub fn parse_count_key(key: &str, count: u64) -> Option<GrantCount> {
    let mut parts = key.split('|');
    let status = match parts.next()? {
        "active" => GrantStatus::Active,
        "revoked" => GrantStatus::Revoked,
        "needs_reauth" => GrantStatus::NeedsReauth,
        _ => return None,
    };
    Some(GrantCount {
        status,
        provider: ProviderId::parse(parts.next()?).ok()?,
        service: ServiceId::parse(parts.next()?).ok()?,
        count,
    })
}

/// Which audit events to show. Empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// `service`, `user`, `admin`, `idp` or `system`.
    pub actor_kind: Option<String>,
    /// An action this build does not know matches the events that carry the same word.
    pub action: Option<AuditAction>,
    pub outcome: Option<Outcome>,
    pub subject: Option<Subject>,
    pub grant: Option<GrantId>,
    pub provider: Option<ProviderId>,
    pub service: Option<ServiceId>,
}

impl AuditFilter {
    pub fn matches(&self, e: &AuditEvent) -> bool {
        let kind = match &e.actor {
            Actor::Service(_) => "service",
            Actor::User(_) => "user",
            Actor::Admin(_) => "admin",
            Actor::Idp(_) => "idp",
            Actor::System => "system",
        };
        self.actor_kind.as_deref().is_none_or(|k| k == kind)
            && self.action.as_ref().is_none_or(|a| *a == e.action)
            && self.outcome.is_none_or(|o| o == e.outcome)
            && self
                .subject
                .as_ref()
                .is_none_or(|s| e.subject.as_ref() == Some(s) || e.actor_subject() == Some(s))
            && self
                .grant
                .as_ref()
                .is_none_or(|g| e.grant.as_ref() == Some(g))
            && self
                .provider
                .as_ref()
                .is_none_or(|p| e.provider.as_ref() == Some(p))
            && self
                .service
                .as_ref()
                .is_none_or(|s| e.service.as_ref() == Some(s))
    }
}

trait ActorSubject {
    fn actor_subject(&self) -> Option<&Subject>;
}

impl ActorSubject for AuditEvent {
    fn actor_subject(&self) -> Option<&Subject> {
        match &self.actor {
            Actor::User(s) | Actor::Admin(s) => Some(s),
            Actor::Service(_) | Actor::Idp(_) | Actor::System => None,
        }
    }
}

/// A position in the audit log (a backend's own event id), opaque to callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCursor(pub String);

#[derive(Debug)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Where the next (older) page starts, if older events remain.
    pub next: Option<AuditCursor>,
}

#[async_trait]
pub trait AdminQueries: Send + Sync {
    /// Grants matching `filter`, newest first, after `after` (exclusive). See the module
    /// header for the work bound.
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        after: Option<&GrantCursor>,
        limit: usize,
    ) -> StoreResult<GrantPage>;

    /// Every non-zero count of grants by status, provider and service.
    async fn count_grants(&self) -> StoreResult<Vec<GrantCount>>;

    /// The most recent events about one grant, newest first (at most `limit`, and at most
    /// [`AUDIT_PER_GRANT`]).
    async fn audit_of_grant(&self, id: &GrantId, limit: usize) -> StoreResult<Vec<AuditEvent>>;

    /// Events matching `filter`, newest first, older than `before` (exclusive).
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<&AuditCursor>,
        limit: usize,
    ) -> StoreResult<AuditPage>;
}

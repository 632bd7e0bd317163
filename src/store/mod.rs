//! Storage capabilities, one small trait each, held as `Arc<dyn …>`. Domain code never
//! learns which backend it talks to; every backend passes the same contract tests
//! (`tests/it/store_contract.rs`).
//!
//! Invariants every backend keeps:
//! - settling an elicitation is atomic with storing its grant: there is never a completed
//!   elicitation without its grant, nor a grant of an elicitation that was not pending;
//! - a grant is findable by its handle digest from the moment it is stored;
//! - audit events come back in the order they were appended;
//! - a lock is held by at most one holder until it is released by that holder (and only
//!   that holder: release checks the token) or its time runs out.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{
    AuditEvent, Elicitation, ElicitationId, FlowRecord, Grant, GrantChange, GrantId, HandleDigest,
    InitialAccessToken, RegisteredService, ServiceId, Subject, Timestamp, TokenDigest,
};

pub mod admin;
pub mod embedded;
pub mod local_locks;
pub mod redis;
pub mod sessions;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or refused the operation; retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A record could not be decoded. Nothing is overwritten because of it.
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long an ended elicitation is kept past its expiry (for the service to read its
/// outcome) before sweeps, or a backend's own TTLs, remove it.
pub const ELICITATION_RETENTION: time::Duration = time::Duration::days(1);

/// How an elicitation ends, or moves on to wait for an administrator.
#[derive(Debug)]
pub enum Settlement {
    /// From `pending`: the grant is stored and usable.
    Completed(Box<Grant>),
    /// From `pending`: the grant (status `awaiting_approval`) is stored, and the
    /// elicitation waits for an administrator until `until`.
    AwaitingApproval {
        grant: Box<Grant>,
        until: Timestamp,
    },
    /// From `awaiting_approval`: an administrator approved (the grant is activated apart).
    Approved,
    /// From either open state, with the reason the service is told, if any.
    Declined(Option<String>),
    Failed(String),
}

impl Settlement {
    /// Whether this settlement may move `e` on as it stands at `now`.
    pub fn applies_to(&self, e: &Elicitation, now: Timestamp) -> bool {
        use crate::domain::ElicitationStatus::{AwaitingApproval, Pending};
        matches!(
            (self, e.status_at(now)),
            (Self::Completed(_) | Self::AwaitingApproval { .. }, Pending)
                | (Self::Approved, AwaitingApproval)
                | (
                    Self::Declined(_) | Self::Failed(_),
                    Pending | AwaitingApproval
                )
        )
    }

    /// Writes the outcome into `e`; returns the grant to store with it, if any.
    pub fn apply(&self, e: &mut Elicitation) -> Option<&Grant> {
        use crate::domain::ElicitationStatus as S;
        match self {
            Self::Completed(grant) => {
                e.status = S::Completed;
                e.grant_id = Some(grant.id.clone());
                Some(grant)
            }
            Self::AwaitingApproval { grant, until } => {
                e.status = S::AwaitingApproval;
                e.grant_id = Some(grant.id.clone());
                e.expires_at = *until;
                Some(grant)
            }
            Self::Approved => {
                e.status = S::Completed;
                None
            }
            Self::Declined(reason) => {
                e.status = S::Declined;
                e.reason.clone_from(reason);
                None
            }
            Self::Failed(reason) => {
                e.status = S::Failed;
                e.reason = Some(reason.clone());
                None
            }
        }
    }
}

/// What `settle` found.
#[derive(Debug)]
pub enum Settled {
    /// The elicitation was pending and is now settled as asked.
    Now(Elicitation),
    /// It had already ended (or expired); nothing was written.
    Already(Elicitation),
    NotFound,
}

#[async_trait]
pub trait ElicitationStore: Send + Sync {
    async fn insert_elicitation(&self, elicitation: &Elicitation) -> StoreResult<()>;
    async fn elicitation(&self, id: &ElicitationId) -> StoreResult<Option<Elicitation>>;
    /// Atomically applies `settlement` to an open, unexpired elicitation it applies to
    /// ([`Settlement::applies_to`]), storing the grant it carries; otherwise changes
    /// nothing and answers `Already`.
    async fn settle(
        &self,
        id: &ElicitationId,
        settlement: Settlement,
        now: Timestamp,
    ) -> StoreResult<Settled>;
    /// Removes elicitations whose expiry is before `cutoff` (and, where the backend has no
    /// TTLs, other expired short-lived records); returns how many elicitations.
    async fn sweep_elicitations(&self, cutoff: Timestamp) -> StoreResult<usize>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>>;
    /// The grant a handle belongs to, for redeeming or revoking it. Its `use_count` and
    /// `last_used_at` may be behind (the embedded store does not read them here): show
    /// counts only from [`GrantStore::grant`] or [`GrantStore::grants_of_subject`].
    async fn grant_by_handle(&self, digest: &HandleDigest) -> StoreResult<Option<Grant>>;
    /// Every grant of a user, any status, newest first.
    async fn grants_of_subject(&self, subject: &Subject) -> StoreResult<Vec<Grant>>;
    /// Marks a grant revoked unless it already is; returns the grant as it now stands.
    async fn revoke_grant(&self, id: &GrantId, at: Timestamp) -> StoreResult<Option<Grant>> {
        Ok(
            match self.update_grant(id, GrantChange::Revoke { at }).await? {
                Updated::Applied(g) | Updated::Unchanged(g) => Some(g),
                Updated::NotFound => None,
            },
        )
    }
    /// Applies `change` atomically (compare-and-set on the record).
    async fn update_grant(&self, id: &GrantId, change: GrantChange) -> StoreResult<Updated>;
    /// Counts one redemption and moves `last_used_at`.
    async fn record_use(&self, id: &GrantId, at: Timestamp) -> StoreResult<()>;
    /// How many grants each key-encryption key seals: `(key id, status) → count`, for
    /// `/metrics` and key rotation. `None` when the backend does not count (the default).
    async fn grants_per_key(&self) -> StoreResult<Option<GrantCounts>> {
        Ok(None)
    }
}

/// Grants by `(key id, status)`.
pub type GrantCounts = std::collections::BTreeMap<(String, String), u64>;

/// Upstream authorization flows in progress, read at most once.
#[async_trait]
pub trait FlowStore: Send + Sync {
    async fn put_flow(&self, key: &str, flow: &FlowRecord) -> StoreResult<()>;
    /// Removes and returns the flow under `key`, if it exists and has not expired: a second
    /// take of the same key finds nothing, however close together the two calls are.
    async fn take_flow(&self, key: &str, now: Timestamp) -> StoreResult<Option<FlowRecord>>;
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, event: &AuditEvent) -> StoreResult<()>;
    /// The most recent events, newest first.
    async fn recent(&self, limit: usize) -> StoreResult<Vec<AuditEvent>>;
}

/// The writes of a successful redemption, together: one use counted on the grant (as
/// [`GrantStore::record_use`]) and its audit event appended (as [`AuditLog::append`]).
/// Both are durable before the call returns; a backend does them in one commit or one
/// round trip where it can, since this runs on every redemption.
#[async_trait]
pub trait RedemptionLog: Send + Sync {
    async fn record_redemption(
        &self,
        grant: &GrantId,
        at: Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()>;
}

/// Probe used by `/readyz`.
#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
}

/// Proof of holding a lock: a random value only the holder knows. Releasing with any
/// other token does nothing, so a holder whose lock lapsed cannot release its successor's.
#[derive(Clone, PartialEq, Eq)]
pub struct LockToken(String);

impl LockToken {
    pub fn generate() -> Self {
        Self(crate::random::token::<16>())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for LockToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockToken(..)")
    }
}

/// Short mutual exclusion between broker instances (e.g. one token refresh at a time per
/// grant). Locks expire on their own, so a crashed holder blocks others for `ttl` at most.
#[async_trait]
pub trait Locks: Send + Sync {
    /// Takes the lock `name` for `ttl` unless another holder has it; `None` if it is held.
    async fn try_lock(
        &self,
        name: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<Option<LockToken>>;
    /// Releases `name` if `token` still holds it; returns whether it did.
    async fn unlock(&self, name: &str, token: &LockToken) -> StoreResult<bool>;
}

/// One-time identifiers already seen (the `jti` of Security Event Tokens), shared by every
/// broker instance on the store, each kept until its expiry. A replay is refused by any
/// instance, not just the one that saw the original.
#[async_trait]
pub trait SeenIds: Send + Sync {
    /// Records `key` as seen until `until`. `true` the first time; `false` when it is
    /// already recorded and not yet expired (nothing is written then). Of concurrent
    /// calls with the same key, exactly one gets `true`.
    async fn first_sighting(&self, key: &SeenKey, until: Timestamp) -> StoreResult<bool>;
    /// Forgets `key`, so that a retry of work that failed after its first sighting is not
    /// taken for a replay.
    async fn forget(&self, key: &SeenKey) -> StoreResult<()>;
}

/// The key a one-time identifier is kept under: the SHA-256 (hex) of its scope and value,
/// so no identifier from a request is ever a store key as such.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenKey(String);

impl SeenKey {
    /// The key of `id` within `scope` (for a SET: its issuer and its `jti`).
    pub fn new(scope: &str, id: &str) -> Self {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(scope.as_bytes());
        hash.update([0u8]);
        hash.update(id.as_bytes());
        Self(hex::encode(hash.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Services registered at run time and the initial access tokens that let them register.
/// Few records (hundreds), read by id or by a credential's digest; every change of a
/// service is a compare-and-swap on its whole record, and the credential index moves with
/// it in the same atomic step, so a token never finds a service that no longer holds it.
#[async_trait]
pub trait ServiceRegistry: Send + Sync {
    /// Every registered service, by id.
    async fn registered_services(&self) -> StoreResult<Vec<RegisteredService>>;
    async fn registered_service(&self, id: &ServiceId) -> StoreResult<Option<RegisteredService>>;
    /// The service holding a credential with this digest (its token, the token being
    /// rotated out, or its registration access token).
    async fn service_by_credential(
        &self,
        digest: &TokenDigest,
    ) -> StoreResult<Option<RegisteredService>>;
    /// Stores a new service; `false` (nothing written) when its id is taken.
    async fn insert_service(&self, service: &RegisteredService) -> StoreResult<bool>;
    /// Replaces `old` by `new` (same id) if the stored record is still `old`; `false`
    /// (nothing written) when it changed or is gone.
    async fn replace_service(
        &self,
        old: &RegisteredService,
        new: &RegisteredService,
    ) -> StoreResult<bool>;
    /// Deletes `old` if the stored record is still `old`.
    async fn delete_service(&self, old: &RegisteredService) -> StoreResult<bool>;
    async fn insert_initial_token(&self, token: &InitialAccessToken) -> StoreResult<()>;
    /// Takes one use of the token with this digest if it has one left and has not expired
    /// at `now`: the token as it is after this use. Of concurrent calls for its last use,
    /// exactly one gets it.
    async fn use_initial_token(
        &self,
        digest: &TokenDigest,
        now: Timestamp,
    ) -> StoreResult<Option<InitialAccessToken>>;
    /// Every initial access token minted, with its uses left (used-up and expired ones too).
    async fn initial_tokens(&self) -> StoreResult<Vec<InitialAccessToken>>;
}

/// What `update_grant` did.
#[derive(Debug)]
pub enum Updated {
    Applied(Grant),
    /// The change's precondition did not hold; the grant as it stands.
    Unchanged(Grant),
    NotFound,
}

/// The capabilities of one backend, shared by the whole app.
#[derive(Clone)]
pub struct Stores {
    pub elicitations: Arc<dyn ElicitationStore>,
    pub grants: Arc<dyn GrantStore>,
    pub flows: Arc<dyn FlowStore>,
    pub audit: Arc<dyn AuditLog>,
    pub redemptions: Arc<dyn RedemptionLog>,
    pub health: Arc<dyn Health>,
    pub locks: Arc<dyn Locks>,
    /// One-time ids already seen (SET `jti`s).
    pub seen: Arc<dyn SeenIds>,
    /// Services registered at run time.
    pub services: Arc<dyn ServiceRegistry>,
    pub sessions: sessions::SharedSessionStore,
    /// The admin console's queries (grants by filter, counts, audit pages).
    pub admin: Arc<dyn admin::AdminQueries>,
}

impl Stores {
    /// All capabilities from one backend value.
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: ElicitationStore
            + GrantStore
            + FlowStore
            + AuditLog
            + RedemptionLog
            + Health
            + Locks
            + SeenIds
            + ServiceRegistry
            + admin::AdminQueries
            + tower_sessions::SessionStore
            + 'static,
    {
        Self {
            elicitations: backend.clone(),
            grants: backend.clone(),
            flows: backend.clone(),
            audit: backend.clone(),
            redemptions: backend.clone(),
            health: backend.clone(),
            locks: backend.clone(),
            seen: backend.clone(),
            services: backend.clone(),
            admin: backend.clone(),
            sessions: sessions::SharedSessionStore::new(backend),
        }
    }
}

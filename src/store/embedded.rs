//! The embedded backend: one `redb` file under the data directory. No server to run.
//!
//! Records are JSON values keyed by id; two index tables (handle digest → grant id, and
//! subject + grant id) keep lookups off full scans. Every write goes through the group
//! commit writer ([`super::group_commit`]): it runs in a redb transaction that is committed
//! durably before the call returns, so an acknowledged grant survives a crash; concurrent
//! writes share one transaction and one fsync. A write closure reads and judges first and
//! writes last, so a decode failure never leaves a partial write in its batch. Point reads
//! run inline on the async worker; scans run on the blocking pool. Expiry lives in the
//! record and is enforced on read and by sweeps. Locks are kept in process
//! ([`LocalLocks`]): redb lets only one process open the file, so there is no second
//! broker instance to exclude. The admin console's indexes and counts (module
//! [`admin`]) are written in the same transactions as the records they describe; so is
//! each grant's audit trail (module [`activity`]). A grant's use count and last use live
//! apart from its record and are written behind the redemptions, recounted from the
//! audit trail after a crash (same module): a redemption's commit only appends.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Serialize, de::DeserializeOwned};
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;

use self::activity::{Activities, View};
use super::group_commit::Writer;
use super::local_locks::LocalLocks;
use super::{
    AuditLog, ElicitationStore, FlowStore, GrantStore, Health, LockToken, Locks, RedemptionLog,
    Settled, Settlement, StoreError, StoreResult, Updated,
};
use crate::domain::{
    AuditEvent, Elicitation, ElicitationId, ElicitationStatus, FlowRecord, Grant, GrantChange,
    GrantId, HandleDigest, Subject, Timestamp,
};

const ELICITATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("elicitations");
const GRANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("grants");
const HANDLES: TableDefinition<&str, &str> = TableDefinition::new("grant_handles");
const SUBJECT_GRANTS: TableDefinition<&str, ()> = TableDefinition::new("subject_grants");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const FLOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("flows");

mod activity;
mod admin;
/// redb's own page cache (its default is 1 GiB, which a busy broker fills with written
/// pages). The operating system's page cache still holds the file; this only bounds what
/// the broker process keeps resident.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Separates subject and grant id in index keys; subjects cannot contain control characters.
const SEP: char = '\u{1f}';

#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Every write goes through it (group commit).
    writer: Arc<Writer>,
    /// Grants' use counts, last uses and newest events, written behind the writer.
    activities: Arc<Activities>,
    locks: Arc<LocalLocks>,
    /// The sweep keeps the newest this many audit events.
    audit_cap: u64,
}

/// Failures inside a blocking transaction, sorted into the two kinds callers act on.
pub(crate) enum Fail {
    Db(redb::Error),
    Decode(String),
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Fail {
            fn from(e: $t) -> Self {
                Fail::Db(e.into())
            }
        }
    )*};
}
db_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Db(e) => StoreError::Unavailable(e.to_string()),
            Fail::Decode(e) => StoreError::Corrupt(e),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs to JSON cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Fail> {
    serde_json::from_slice(bytes).map_err(|e| Fail::Decode(e.to_string()))
}

fn subject_key(subject: &str, grant: &str) -> String {
    format!("{subject}{SEP}{grant}")
}

impl EmbeddedStore {
    /// Opens (or creates) the database file and its tables.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let init = || -> Result<Database, Fail> {
            let db = Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(path)?;
            let tx = db.begin_write()?;
            tx.open_table(ELICITATIONS)?;
            tx.open_table(GRANTS)?;
            tx.open_table(HANDLES)?;
            tx.open_table(SUBJECT_GRANTS)?;
            tx.open_table(AUDIT)?;
            tx.open_table(SESSIONS)?;
            tx.open_table(FLOWS)?;
            admin::create_tables(&tx)?;
            activity::create_tables(&tx)?;
            tx.commit()?;
            Ok(db)
        };
        let db = Arc::new(init()?);
        let activities = Arc::new(Activities::default());
        Ok(Self {
            writer: Arc::new(Writer::start(db.clone(), activities.clone())?),
            activities,
            db,
            locks: Arc::default(),
            audit_cap: 1_000_000,
        })
    }

    /// Keeps at most `cap` audit events (the oldest go at the next sweep).
    pub fn with_audit_cap(mut self, cap: u64) -> Self {
        self.audit_cap = cap;
        self
    }

    /// Runs `f` on the blocking pool: redb is synchronous and may fsync.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, Fail> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
            .map_err(StoreError::from)
    }

    /// Runs `f` in a write transaction shared with concurrent writes; returns once it is
    /// durable. `f` reads and judges before it writes (see the module header).
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, Fail> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Runs a point read (a few B-tree pages, nearly always in redb's cache) right here
    /// on the async worker: that takes microseconds, less than handing it to the blocking
    /// pool and back (two thread switches). Scans and writes never run inline.
    fn read_now<T>(&self, f: impl FnOnce(&Database) -> Result<T, Fail>) -> StoreResult<T> {
        f(&self.db).map_err(StoreError::from)
    }

    /// Reads one JSON record by key from `table` (a point read, inline).
    fn get<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
    ) -> StoreResult<Option<T>> {
        self.read_now(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(table)?;
            let value = t.get(key)?;
            value.map(|v| decode(v.value())).transpose()
        })
    }
}

#[async_trait]
impl ElicitationStore for EmbeddedStore {
    async fn insert_elicitation(&self, elicitation: &Elicitation) -> StoreResult<()> {
        let (key, value) = (elicitation.id.as_str().to_owned(), encode(elicitation));
        self.write(move |tx| {
            tx.open_table(ELICITATIONS)?
                .insert(key.as_str(), value.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn elicitation(&self, id: &ElicitationId) -> StoreResult<Option<Elicitation>> {
        self.get(ELICITATIONS, id.as_str())
    }

    async fn settle(
        &self,
        id: &ElicitationId,
        settlement: Settlement,
        now: Timestamp,
    ) -> StoreResult<Settled> {
        let id = id.as_str().to_owned();
        self.write(move |tx| {
            let settled = {
                let mut elicitations = tx.open_table(ELICITATIONS)?;
                let current: Option<Elicitation> = elicitations
                    .get(id.as_str())?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                match current {
                    None => Settled::NotFound,
                    Some(e) if !e.is_open(now) => Settled::Already(e),
                    Some(mut e) => {
                        match settlement {
                            Settlement::Completed(grant) => {
                                let gid = grant.id.as_str();
                                tx.open_table(GRANTS)?
                                    .insert(gid, encode(&grant).as_slice())?;
                                tx.open_table(HANDLES)?
                                    .insert(grant.handle_digest.to_hex().as_str(), gid)?;
                                tx.open_table(SUBJECT_GRANTS)?.insert(
                                    subject_key(grant.subject.as_str(), gid).as_str(),
                                    (),
                                )?;
                                admin::index_new_grant(tx, &grant)?;
                                e.status = ElicitationStatus::Completed;
                                e.grant_id = Some(grant.id.clone());
                            }
                            Settlement::Declined => e.status = ElicitationStatus::Declined,
                            Settlement::Failed(reason) => {
                                e.status = ElicitationStatus::Failed;
                                e.reason = Some(reason);
                            }
                        }
                        elicitations.insert(id.as_str(), encode(&e).as_slice())?;
                        Settled::Now(e)
                    }
                }
            };
            Ok(settled)
        })
        .await
    }

    async fn sweep_elicitations(&self, cutoff: Timestamp) -> StoreResult<usize> {
        let (audit_cap, activities) = (self.audit_cap, self.activities.clone());
        self.write(move |tx| {
            // No replay may need the events about to go: every entry written first.
            activities.write_ahead(tx)?;
            let mut removed = 0;
            {
                let mut t = tx.open_table(ELICITATIONS)?;
                t.retain(|_, v| {
                    // An unreadable record is kept for an operator to look at, never dropped.
                    let expired = serde_json::from_slice::<Elicitation>(v)
                        .map(|e| e.expires_at < cutoff)
                        .unwrap_or(false);
                    removed += usize::from(expired);
                    !expired
                })?;
                // No TTLs here: expired flows and sessions go in the same sweep.
                let now = time::OffsetDateTime::now_utc();
                tx.open_table(FLOWS)?.retain(|_, v| {
                    serde_json::from_slice::<FlowRecord>(v).map_or(true, |f| f.expires_at > now)
                })?;
                let mut audit = tx.open_table(AUDIT)?;
                let last = audit.last()?.map(|(k, _)| k.value());
                if let Some(last) = last {
                    let keep_from = (last + 1).saturating_sub(audit_cap);
                    audit.retain_in(..keep_from, |_, _| false)?;
                    tx.open_table(activity::AUDIT_CHAIN)?
                        .retain_in(..keep_from, |_, _| false)?;
                }
                drop(audit);
                tx.open_table(SESSIONS)?.retain(|_, v| {
                    serde_json::from_slice::<Record>(v).map_or(true, |r| r.expiry_date > now)
                })?;
            }
            Ok(removed)
        })
        .await
    }
}

#[async_trait]
impl GrantStore for EmbeddedStore {
    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>> {
        self.read_now(|db| {
            let tx = db.begin_read()?;
            View::open(&tx, &self.activities)?.read_grant(&tx.open_table(GRANTS)?, id.as_str())
        })
    }

    async fn grant_by_handle(&self, digest: &HandleDigest) -> StoreResult<Option<Grant>> {
        let key = digest.to_hex();
        self.read_now(|db| {
            let tx = db.begin_read()?;
            let Some(id) = tx
                .open_table(HANDLES)?
                .get(key.as_str())?
                .map(|v| v.value().to_owned())
            else {
                return Ok(None);
            };
            View::open(&tx, &self.activities)?.read_grant(&tx.open_table(GRANTS)?, id.as_str())
        })
    }

    async fn grants_of_subject(&self, subject: &Subject) -> StoreResult<Vec<Grant>> {
        let prefix = format!("{}{SEP}", subject.as_str());
        let activities = self.activities.clone();
        self.run(move |db| {
            let tx = db.begin_read()?;
            let index = tx.open_table(SUBJECT_GRANTS)?;
            let (grants, uses) = (tx.open_table(GRANTS)?, View::open(&tx, &activities)?);
            let mut out: Vec<Grant> = Vec::new();
            for entry in index.range(prefix.as_str()..)? {
                let (key, _) = entry?;
                let Some(gid) = key.value().strip_prefix(prefix.as_str()) else {
                    break;
                };
                out.extend(uses.read_grant(&grants, gid)?);
            }
            out.sort_by_key(|g| std::cmp::Reverse(g.created_at));
            Ok(out)
        })
        .await
    }

    async fn update_grant(&self, id: &GrantId, change: GrantChange) -> StoreResult<Updated> {
        let id = id.as_str().to_owned();
        let activities = self.activities.clone();
        self.write(move |tx| {
            // The record keeps whatever counts it had; the answer shows the current ones,
            // read (like the record) before anything is written.
            let activity = activities.entry(tx, &id)?;
            let updated = {
                let mut t = tx.open_table(GRANTS)?;
                let current: Option<Grant> =
                    t.get(id.as_str())?.map(|v| decode(v.value())).transpose()?;
                match current {
                    None => Updated::NotFound,
                    Some(mut grant) => {
                        let before = grant.status;
                        if change.apply(&mut grant) {
                            t.insert(id.as_str(), encode(&grant).as_slice())?;
                            if grant.status != before {
                                admin::recount(tx, &grant, before)?;
                            }
                            Updated::Applied(activity::shown(grant, activity))
                        } else {
                            Updated::Unchanged(activity::shown(grant, activity))
                        }
                    }
                }
            };
            Ok(updated)
        })
        .await
    }

    async fn record_use(&self, id: &GrantId, at: Timestamp) -> StoreResult<()> {
        let (id, activities) = (id.as_str().to_owned(), self.activities.clone());
        self.write(move |tx| activities.count_use(tx, &id, at))
            .await
    }

    async fn grants_per_key(&self) -> StoreResult<Option<super::GrantCounts>> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let mut counts = super::GrantCounts::new();
            for entry in tx.open_table(GRANTS)?.iter()? {
                let (_, value) = entry?;
                let grant: Grant = decode(value.value())?;
                let key = (
                    grant.sealed.key_id.as_str().to_owned(),
                    grant.status.as_str().to_owned(),
                );
                *counts.entry(key).or_default() += 1;
            }
            Ok(Some(counts))
        })
        .await
    }
}

#[async_trait]
impl FlowStore for EmbeddedStore {
    async fn put_flow(&self, key: &str, flow: &FlowRecord) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), encode(flow));
        self.write(move |tx| {
            tx.open_table(FLOWS)?
                .insert(key.as_str(), value.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn take_flow(&self, key: &str, now: Timestamp) -> StoreResult<Option<FlowRecord>> {
        let key = key.to_owned();
        self.write(move |tx| {
            let mut flows = tx.open_table(FLOWS)?;
            // Decode before removing: an unreadable flow stays for an operator to look at.
            let taken = flows
                .get(key.as_str())?
                .map(|v| decode::<FlowRecord>(v.value()))
                .transpose()?;
            if taken.is_some() {
                flows.remove(key.as_str())?;
            }
            Ok(taken.filter(|f| f.expires_at > now))
        })
        .await
    }
}

#[async_trait]
impl AuditLog for EmbeddedStore {
    async fn append(&self, event: &AuditEvent) -> StoreResult<()> {
        let filing = Filing::of(event);
        let (value, activities) = (encode(event), self.activities.clone());
        self.write(move |tx| append_audit(tx, &activities, &value, &filing))
            .await
    }

    async fn recent(&self, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        self.run(move |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(AUDIT)?;
            let mut out = Vec::new();
            for entry in t.iter()?.rev().take(limit) {
                out.push(decode(entry?.1.value())?);
            }
            Ok(out)
        })
        .await
    }
}

/// Where an audit event goes in its grant's activity: the grant, and whether (when) it
/// counts a use of it ([`activity::used_at`], the rule replay applies too).
struct Filing {
    grant: Option<String>,
    used_at: Option<Timestamp>,
}

impl Filing {
    fn of(event: &AuditEvent) -> Self {
        Self {
            grant: event.grant.as_ref().map(|g| g.as_str().to_owned()),
            used_at: activity::used_at(event),
        }
    }
}

/// Appends one encoded audit event after the last one and files it in its grant's
/// activity (if it has a grant). Reads the grant's activity before it writes anything
/// (see the module header).
fn append_audit(
    tx: &WriteTransaction,
    activities: &Activities,
    event: &[u8],
    filing: &Filing,
) -> Result<(), Fail> {
    let before = filing
        .grant
        .as_deref()
        .map(|g| activities.before_event(tx, g).map(|a| (g, a)))
        .transpose()?;
    let seq = {
        let mut t = tx.open_table(AUDIT)?;
        let seq = t.last()?.map_or(0, |(k, _)| k.value() + 1);
        t.insert(seq, event)?;
        seq
    };
    match before {
        Some((g, a)) => activities.file_event(tx, g, a, seq, filing.used_at),
        None => Ok(()),
    }
}

#[async_trait]
impl RedemptionLog for EmbeddedStore {
    /// The use and the audit event in one transaction (so one commit, shared with
    /// whatever else is queued). A successful redemption event about the grant itself
    /// (always, from the broker) counts the use, by the rule that replays it after a
    /// crash (which takes the event's time as the use's: the broker passes that as `at`).
    async fn record_redemption(
        &self,
        grant: &GrantId,
        at: Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let mut filing = Filing::of(event);
        filing.used_at = filing.used_at.map(|_| at);
        let id = grant.as_str().to_owned();
        let (value, activities) = (encode(event), self.activities.clone());
        self.write(move |tx| {
            if filing.grant.as_deref() == Some(id.as_str()) && filing.used_at.is_some() {
                return append_audit(tx, &activities, &value, &filing);
            }
            // Every read before the first write (see the module header): the event's
            // grant's activity decodes now, so it decodes again in `append_audit`.
            if let Some(g) = filing.grant.as_deref() {
                activities.before_event(tx, g)?;
            }
            activities.count_use(tx, &id, at)?;
            append_audit(tx, &activities, &value, &filing)
        })
        .await
    }
}

#[async_trait]
impl Health for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.run(|db| {
            db.begin_read()?.open_table(GRANTS)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Locks for EmbeddedStore {
    async fn try_lock(
        &self,
        name: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<Option<LockToken>> {
        self.locks.try_lock(name, ttl)
    }

    async fn unlock(&self, name: &str, token: &LockToken) -> StoreResult<bool> {
        self.locks.unlock(name, token)
    }
}

fn session_error(e: StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Draw ids until one is free, in the same transaction as the insert.
        let mut candidate = record.clone();
        let stored = self
            .write(move |tx| {
                {
                    let mut t = tx.open_table(SESSIONS)?;
                    while t.get(candidate.id.to_string().as_str())?.is_some() {
                        candidate.id = Id::default();
                    }
                    t.insert(
                        candidate.id.to_string().as_str(),
                        encode(&candidate).as_slice(),
                    )?;
                }
                Ok(candidate)
            })
            .await
            .map_err(session_error)?;
        record.id = stored.id;
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (key, value) = (record.id.to_string(), encode(record));
        self.write(move |tx| {
            tx.open_table(SESSIONS)?
                .insert(key.as_str(), value.as_slice())?;
            Ok(())
        })
        .await
        .map_err(session_error)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let record: Option<Record> = self.get(SESSIONS, &id.to_string()).map_err(session_error)?;
        Ok(record.filter(|r| r.expiry_date > time::OffsetDateTime::now_utc()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let key = id.to_string();
        self.write(move |tx| {
            tx.open_table(SESSIONS)?.remove(key.as_str())?;
            Ok(())
        })
        .await
        .map_err(session_error)
    }
}

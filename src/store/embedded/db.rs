//! [`EmbeddedStore`]: the open redb file, its group-commit writer and in-process locks,
//! and the three ways the capability modules reach the database: a durable write
//! ([`EmbeddedStore::write`]), a point read inline ([`EmbeddedStore::read_now`]) and a
//! scan on the blocking pool ([`EmbeddedStore::run`]). Also the store's health probe and
//! locks.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;

use super::group_commit::Writer;
use super::tables::{self, Fail, GRANTS, decode};
use super::{activity, indexes};
use crate::store::local_locks::LocalLocks;
use crate::store::{Health, LockToken, Locks, StoreError, StoreResult};

/// redb's own page cache (its default is 1 GiB, which a busy broker fills with written
/// pages). The operating system's page cache still holds the file; this only bounds what
/// the broker process keeps resident.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    pub(super) db: Arc<Database>,
    /// Every write goes through it (group commit).
    writer: Arc<Writer>,
    locks: Arc<LocalLocks>,
    /// The sweep keeps the newest this many audit events.
    pub(super) audit_cap: u64,
}

impl EmbeddedStore {
    /// Opens (or creates) the database file and its tables.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let init = || -> Result<Database, Fail> {
            let db = Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(path)?;
            let tx = db.begin_write()?;
            tables::create_tables(&tx)?;
            indexes::create_tables(&tx)?;
            activity::create_tables(&tx)?;
            tx.commit()?;
            Ok(db)
        };
        let db = Arc::new(init()?);
        Ok(Self {
            writer: Arc::new(Writer::start(db.clone())?),
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
    pub(super) async fn run<T, F>(&self, f: F) -> StoreResult<T>
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
    /// durable. `f` reads and judges before it writes (see [`super::group_commit`]).
    pub(super) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, Fail> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Like [`EmbeddedStore::write`], for a write to the audit log and grants' activity
    /// only ([`activity::Hot`]): a run of such writes in one transaction shares their
    /// tables, opened once.
    pub(super) async fn write_hot<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&mut activity::Hot<'t>) -> Result<T, Fail> + Send + 'static,
    {
        self.writer.write_hot(f).await
    }

    /// Runs a point read (a few B-tree pages, nearly always in redb's cache) right here
    /// on the async worker: that takes microseconds, less than handing it to the blocking
    /// pool and back (two thread switches). Scans and writes never run inline.
    pub(super) fn read_now<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, Fail>,
    ) -> StoreResult<T> {
        f(&self.db).map_err(StoreError::from)
    }

    /// Reads one JSON record by key from `table` (a point read, inline).
    pub(super) fn get<T: DeserializeOwned>(
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

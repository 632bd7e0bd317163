//! The embedded backend: one `redb` file under the data directory. No server to run.
//!
//! Every write goes through the group-commit writer (`group_commit`): it runs in a redb
//! transaction that is committed durably before the call returns, so an acknowledged
//! write survives a crash; concurrent writes share one transaction and one fsync. A write
//! reads and judges first and writes last, so a decode failure never leaves a partial
//! write in its batch. Point reads run inline on the async worker; scans run on the
//! blocking pool. Expiry lives in the record and is enforced on read and by sweeps. Locks
//! are kept in process: redb lets only one process open the file, so there is no second
//! broker instance to exclude.
//!
//! Everything that describes a record is written in the same transaction as the record:
//! the admin console's indexes and counts (`indexes`), and each grant's use count, last
//! use and audit trail (`activity`). A redemption's use and its audit event are one
//! transaction, durable together before it returns; nothing is kept only in memory, so
//! nothing needs recounting after a crash.
//!
//! Modules, each importing only those listed before it: `tables` (record tables,
//! encoding, the failure type), `group_commit` (the writer), `activity`, `indexes`,
//! `db` ([`EmbeddedStore`] itself), then one per capability: `elicitations`,
//! `grants`, `audit`, `sessions` (and flows), `seen` (one-time ids), `services` (registered services), `admin`.

mod tables;

mod group_commit;

mod activity;
mod indexes;

mod db;

mod admin;
mod audit;
mod elicitations;
mod grants;
mod seen;
mod services;
mod sessions;

pub use self::db::EmbeddedStore;

//! The embedded store's record tables, how their values are encoded, and the failure
//! type of its transactions ([`Fail`]). Every other module of the backend builds on
//! this one; it imports none of them.
//!
//! Records are JSON values keyed by id; two index tables (handle digest → grant id, and
//! subject + grant id) keep lookups off full scans. The admin console's tables live in
//! [`super::indexes`], each grant's activity and trail in [`super::activity`].

use redb::{TableDefinition, WriteTransaction};
use serde::{Serialize, de::DeserializeOwned};

use crate::store::StoreError;

pub(super) const ELICITATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("elicitations");
pub(super) const GRANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("grants");
pub(super) const HANDLES: TableDefinition<&str, &str> = TableDefinition::new("grant_handles");
pub(super) const SUBJECT_GRANTS: TableDefinition<&str, ()> = TableDefinition::new("subject_grants");
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
pub(super) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
pub(super) const FLOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("flows");
/// One-time ids seen ([`crate::store::SeenIds`]): key → expiry in Unix milliseconds.
pub(super) const SEEN: TableDefinition<&str, i64> = TableDefinition::new("seen_ids");
/// Registered services ([`crate::store::ServiceRegistry`]): id → record.
pub(super) const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");
/// Credential digest (hex) → registered service id.
pub(super) const SERVICE_CREDENTIALS: TableDefinition<&str, &str> =
    TableDefinition::new("service_credentials");
/// Initial access tokens: digest (hex) → record.
pub(super) const INITIAL_TOKENS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("initial_access_tokens");

/// Separates parts of index keys; subjects and ids cannot contain control characters.
pub(super) const SEP: char = '\u{1f}';

/// Creates the record tables (the others are created by their own modules).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), Fail> {
    tx.open_table(ELICITATIONS)?;
    tx.open_table(GRANTS)?;
    tx.open_table(HANDLES)?;
    tx.open_table(SUBJECT_GRANTS)?;
    tx.open_table(AUDIT)?;
    tx.open_table(SESSIONS)?;
    tx.open_table(FLOWS)?;
    tx.open_table(SEEN)?;
    tx.open_table(SERVICES)?;
    tx.open_table(SERVICE_CREDENTIALS)?;
    tx.open_table(INITIAL_TOKENS)?;
    Ok(())
}

/// Key of a grant in [`SUBJECT_GRANTS`].
pub(super) fn subject_key(subject: &str, grant: &str) -> String {
    format!("{subject}{SEP}{grant}")
}

/// Failures inside a transaction, sorted into the two kinds callers act on.
pub(crate) enum Fail {
    /// The database failed; the group commit rolls back the whole batch.
    Db(redb::Error),
    /// A record could not be decoded (or encoded). Returned before an operation's first
    /// write, so the rest of its batch commits unaffected.
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

/// A record as stored. A value that cannot be encoded is refused (`Corrupt`), never
/// stored as an empty record.
pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Fail> {
    serde_json::to_vec(value).map_err(|e| Fail::Decode(format!("cannot encode a record: {e}")))
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Fail> {
    serde_json::from_slice(bytes).map_err(|e| Fail::Decode(e.to_string()))
}

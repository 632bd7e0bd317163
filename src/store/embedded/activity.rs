//! Each grant's activity on the embedded store: how often and when it was last used, and
//! its audit trail, kept so that a redemption rewrites one small entry and appends, and
//! touches no page of the grant records or of any per-grant index.
//!
//! - [`GRANT_ACTIVITY`]: one entry per grant, its use count, last use and newest audit
//!   event. A grant without an entry has had no activity since this table exists: its
//!   record's own counts stand, and its first entry starts from them.
//! - [`AUDIT_CHAIN`]: for each audit event about a grant, the grant's event before it, so
//!   a grant's trail is read newest first by following links from its entry. Events are
//!   appended in sequence, so this table only ever grows at its end.
//!
//! Before this, every redemption also rewrote a random page of a per-grant index
//! (`audit_by_grant`); a database that has that index is converted once when opened.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{AUDIT, Fail, GRANTS, SEP, decode};
use crate::domain::{AuditEvent, Grant, Timestamp};

/// Grant id → [`Activity`], in the 32 bytes of [`Activity::to_bytes`] (plain bytes: redb
/// formats a tuple type's name on every open of its table, which cost more than the write).
const GRANT_ACTIVITY: TableDefinition<&str, &[u8]> = TableDefinition::new("grant_activity");
/// Audit event → the same grant's event before it.
pub(super) const AUDIT_CHAIN: TableDefinition<u64, u64> = TableDefinition::new("audit_chain");
/// The former per-grant index, `grant id SEP seq (20 digits)` → ().
const LEGACY_AUDIT_BY_GRANT: TableDefinition<&str, ()> = TableDefinition::new("audit_by_grant");

/// One grant's activity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Activity {
    uses: u64,
    last_used: Option<i128>,
    last_event: Option<u64>,
}

impl Activity {
    const LEN: usize = 32;

    /// Uses, last use and last event, little-endian; `None` as the type's extreme value
    /// (no use is at `i128::MIN` nanoseconds, no event number reaches `u64::MAX`).
    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.uses.to_le_bytes());
        b[8..24].copy_from_slice(&self.last_used.unwrap_or(i128::MIN).to_le_bytes());
        b[24..].copy_from_slice(&self.last_event.unwrap_or(u64::MAX).to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Result<Self, Fail> {
        let b: &[u8; Self::LEN] = b
            .try_into()
            .map_err(|_| Fail::Decode("grant activity entry of the wrong size".into()))?;
        let (uses, rest) = b.split_at(8);
        let (last_used, last_event) = rest.split_at(16);
        let last_used = i128::from_le_bytes(last_used.try_into().unwrap_or_default());
        let last_event = u64::from_le_bytes(last_event.try_into().unwrap_or_default());
        Ok(Self {
            uses: u64::from_le_bytes(uses.try_into().unwrap_or_default()),
            last_used: (last_used != i128::MIN).then_some(last_used),
            last_event: (last_event != u64::MAX).then_some(last_event),
        })
    }
}

/// Creates the tables, and converts a database that still has the former per-grant index.
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), Fail> {
    tx.open_table(GRANT_ACTIVITY)?;
    tx.open_table(AUDIT_CHAIN)?;
    let legacy: Vec<(String, u64)> = {
        let t = tx.open_table(LEGACY_AUDIT_BY_GRANT)?;
        let mut all = Vec::new();
        for entry in t.iter()? {
            let (key, _) = entry?;
            if let Some((grant, seq)) = key.value().rsplit_once(SEP)
                && let Ok(seq) = seq.parse::<u64>()
            {
                all.push((grant.to_owned(), seq));
            }
        }
        all
    };
    // Sorted by grant, then by sequence: each grant's events link up in order.
    for (grant, seq) in legacy {
        let before = before_event(tx, &grant)?;
        file_event(tx, &grant, before, seq, None)?;
    }
    tx.delete_table(LEGACY_AUDIT_BY_GRANT)?;
    Ok(())
}

/// Grant `id`'s activity, or `None` when neither an entry nor the grant exists. Reads
/// the grant's record only when it has no entry yet.
fn load(tx: &WriteTransaction, id: &str) -> Result<Option<Activity>, Fail> {
    if let Some(v) = tx.open_table(GRANT_ACTIVITY)?.get(id)? {
        return Activity::from_bytes(v.value()).map(Some);
    }
    let grants = tx.open_table(GRANTS)?;
    let Some(v) = grants.get(id)? else {
        return Ok(None);
    };
    let grant: Grant = decode(v.value())?;
    Ok(Some(Activity {
        uses: grant.use_count,
        last_used: grant.last_used_at.map(Timestamp::unix_timestamp_nanos),
        last_event: None,
    }))
}

fn save(tx: &WriteTransaction, id: &str, activity: Activity) -> Result<(), Fail> {
    tx.open_table(GRANT_ACTIVITY)?
        .insert(id, activity.to_bytes().as_slice())?;
    Ok(())
}

/// Counts one use of grant `id` (if it exists); reads before it writes.
pub(super) fn count_use(tx: &WriteTransaction, id: &str, at: Timestamp) -> Result<(), Fail> {
    if let Some(mut a) = load(tx, id)? {
        a.uses += 1;
        a.last_used = Some(at.unix_timestamp_nanos());
        save(tx, id, a)?;
    }
    Ok(())
}

/// Grant `grant`'s activity before an event about it is appended: the read half of
/// [`file_event`], done before anything is written (it may fail to decode).
pub(super) fn before_event(tx: &WriteTransaction, grant: &str) -> Result<Activity, Fail> {
    Ok(load(tx, grant)?.unwrap_or_default())
}

/// Links audit event `seq`, just appended, into grant `grant`'s trail (its activity read
/// by [`before_event`]); with `used_at` (a redemption) also counts the use, in the same
/// entry. Only writes: it cannot fail to decode.
pub(super) fn file_event(
    tx: &WriteTransaction,
    grant: &str,
    mut a: Activity,
    seq: u64,
    used_at: Option<Timestamp>,
) -> Result<(), Fail> {
    if let Some(at) = used_at {
        a.uses += 1;
        a.last_used = Some(at.unix_timestamp_nanos());
    }
    if let Some(previous) = a.last_event {
        tx.open_table(AUDIT_CHAIN)?.insert(seq, previous)?;
    }
    a.last_event = Some(seq);
    save(tx, grant, a)
}

/// `grant` with its current use count and last use.
pub(super) fn with_uses(
    activity: &impl ReadableTable<&'static str, &'static [u8]>,
    mut grant: Grant,
) -> Result<Grant, Fail> {
    if let Some(v) = activity.get(grant.id.as_str())? {
        let a = Activity::from_bytes(v.value())?;
        grant.use_count = a.uses;
        grant.last_used_at = a
            .last_used
            .and_then(|at| time::OffsetDateTime::from_unix_timestamp_nanos(at).ok());
    }
    Ok(grant)
}

/// Grant `id` with its current use count and last use, if it exists.
pub(super) fn read_grant(
    grants: &impl ReadableTable<&'static str, &'static [u8]>,
    activity: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Grant>, Fail> {
    match grants.get(id)? {
        Some(v) => Ok(Some(with_uses(activity, decode(v.value())?)?)),
        None => Ok(None),
    }
}

/// The newest `limit` audit events about grant `id`, newest first. The trail ends where
/// the audit log's retention removed older events.
pub(super) fn trail(
    tx: &redb::ReadTransaction,
    id: &str,
    limit: usize,
) -> Result<Vec<AuditEvent>, Fail> {
    let (activity, chain, audit) = (
        tx.open_table(GRANT_ACTIVITY)?,
        tx.open_table(AUDIT_CHAIN)?,
        tx.open_table(AUDIT)?,
    );
    let mut next = match activity.get(id)? {
        Some(v) => Activity::from_bytes(v.value())?.last_event,
        None => None,
    };
    let mut out = Vec::new();
    while let Some(seq) = next {
        if out.len() >= limit {
            break;
        }
        let Some(event) = audit.get(seq)? else {
            break;
        };
        out.push(decode(event.value())?);
        next = chain.get(seq)?.map(|v| v.value());
    }
    Ok(out)
}

/// The tables a reader needs to complete grants with their activity.
pub(super) fn open_activity(
    tx: &redb::ReadTransaction,
) -> Result<redb::ReadOnlyTable<&'static str, &'static [u8]>, Fail> {
    Ok(tx.open_table(GRANT_ACTIVITY)?)
}

/// The same, in a write transaction.
pub(super) fn open_activity_mut(
    tx: &WriteTransaction,
) -> Result<redb::Table<'_, &'static str, &'static [u8]>, Fail> {
    Ok(tx.open_table(GRANT_ACTIVITY)?)
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::domain::{Actor, GrantId, Outcome};
    use crate::store::admin::AdminQueries;
    use crate::store::embedded::{EmbeddedStore, encode};

    #[test]
    fn activity_round_trips_through_its_bytes() {
        for a in [
            Activity::default(),
            Activity {
                uses: 7,
                last_used: Some(-3),
                last_event: Some(0),
            },
            Activity {
                uses: u64::MAX - 1,
                last_used: Some(1_764_000_000_000_000_000),
                last_event: Some(u64::MAX - 1),
            },
        ] {
            assert_eq!(Activity::from_bytes(&a.to_bytes()).ok(), Some(a));
        }
        assert!(Activity::from_bytes(&[0; 31]).is_err());
    }

    /// An unreadable activity entry refuses the redemption before anything is written:
    /// no audit event, no link, and the entry is left for an operator to look at.
    #[tokio::test]
    async fn an_unreadable_activity_entry_refuses_the_redemption_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("t.redb")).unwrap();
        let grant = GrantId::generate();
        {
            let tx = store.db.begin_write().unwrap();
            tx.open_table(GRANT_ACTIVITY)
                .unwrap()
                .insert(grant.as_str(), [1u8; 5].as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let mut event = AuditEvent::new(Actor::System, "grant_redeemed", Outcome::Success);
        event.grant = Some(grant.clone());
        let refused = crate::store::RedemptionLog::record_redemption(
            &store,
            &grant,
            crate::domain::now(),
            &event,
        )
        .await;
        assert!(matches!(refused, Err(crate::store::StoreError::Corrupt(_))));
        let recent = crate::store::AuditLog::recent(&store, 10).await.unwrap();
        assert!(recent.is_empty(), "{recent:?}");
        let tx = store.db.begin_read().unwrap();
        assert_eq!(
            tx.open_table(GRANT_ACTIVITY)
                .unwrap()
                .get(grant.as_str())
                .unwrap()
                .map(|v| v.value().len()),
            Some(5)
        );
    }

    /// A database written before this module, with its trail in the former per-grant
    /// index, opens with every grant's trail intact and newest first, and new events
    /// continue it.
    #[tokio::test]
    async fn a_former_per_grant_index_is_converted_into_trails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        let (a, b) = (GrantId::generate(), GrantId::generate());
        let event = |action: &str, grant: &GrantId| {
            let mut e = AuditEvent::new(Actor::System, action, Outcome::Success);
            e.grant = Some(grant.clone());
            e
        };
        let old = [
            event("grant_created", &a),
            event("grant_created", &b),
            event("grant_redeemed", &a),
            event("grant_revoked", &a),
        ];
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut audit = tx.open_table(AUDIT).unwrap();
                let mut index = tx.open_table(LEGACY_AUDIT_BY_GRANT).unwrap();
                for (seq, e) in (0u64..).zip(&old) {
                    audit.insert(seq, encode(e).as_slice()).unwrap();
                    let grant = e.grant.as_ref().unwrap().as_str();
                    index
                        .insert(format!("{grant}{SEP}{seq:020}").as_str(), ())
                        .unwrap();
                }
            }
            tx.commit().unwrap();
        }

        let store = EmbeddedStore::open(&path).unwrap();
        let actions =
            |events: Vec<AuditEvent>| events.into_iter().map(|e| e.action).collect::<Vec<_>>();
        assert_eq!(
            actions(store.audit_of_grant(&a, 10).await.unwrap()),
            ["grant_revoked", "grant_redeemed", "grant_created"]
        );
        assert_eq!(
            actions(store.audit_of_grant(&b, 10).await.unwrap()),
            ["grant_created"]
        );
        assert_eq!(
            actions(store.audit_of_grant(&a, 2).await.unwrap()),
            ["grant_revoked", "grant_redeemed"]
        );

        crate::store::AuditLog::append(&store, &event("grant_redeemed", &b))
            .await
            .unwrap();
        assert_eq!(
            actions(store.audit_of_grant(&b, 10).await.unwrap()),
            ["grant_redeemed", "grant_created"]
        );
        let tables: Vec<String> = store
            .db
            .begin_read()
            .unwrap()
            .list_tables()
            .unwrap()
            .map(|t| redb::TableHandle::name(&t).to_owned())
            .collect();
        assert!(!tables.contains(&"audit_by_grant".to_owned()), "{tables:?}");
    }
}

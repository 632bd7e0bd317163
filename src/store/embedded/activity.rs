//! Each grant's activity on the embedded store: how often and when it was last used, and
//! its audit trail, kept so that a redemption rewrites one small entry and appends, and
//! touches no page of the grant records or of any per-grant index.
//!
//! - [`GRANT_ACTIVITY`]: one entry per grant, its use count, last use and newest audit
//!   event, written in the same transaction as the event or use that changes it (so a
//!   redemption's count and its audit event are durable together). A grant without an
//!   entry has had no activity since this table exists: its record's own counts stand,
//!   and its first entry starts from them.
//! - [`AUDIT_CHAIN`]: for each audit event about a grant, the grant's event before it, so
//!   a grant's trail is read newest first by following links from its entry. Events are
//!   appended in sequence, so this table only ever grows at its end.
//!
//! Events and uses are written through [`Hot`] (the audit log's, the trail's and the
//! entries' tables, held open for a run of such writes); only the retention's
//! [`forget_before`] is an ordinary write. Every write reads first: a function that may
//! fail to decode does so before it writes anything (the group commit's rule,
//! [`super::group_commit`]).

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use super::tables::{AUDIT, Fail, GRANTS, decode};
use crate::domain::{AuditEvent, Grant, Timestamp};

/// Grant id → [`Activity`], in the 32 bytes of [`Activity::to_bytes`] (plain bytes: redb
/// formats a tuple type's name on every open of its table, which cost more than the write).
const GRANT_ACTIVITY: TableDefinition<&str, &[u8]> = TableDefinition::new("grant_activity");
/// Audit event → the same grant's event before it.
const AUDIT_CHAIN: TableDefinition<u64, u64> = TableDefinition::new("audit_chain");

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
        let wrong_size = || Fail::Decode("grant activity entry of the wrong size".into());
        if b.len() != Self::LEN {
            return Err(wrong_size());
        }
        let (uses, rest) = b.split_first_chunk::<8>().ok_or_else(wrong_size)?;
        let (last_used, last_event) = rest.split_first_chunk::<16>().ok_or_else(wrong_size)?;
        let last_event: &[u8; 8] = last_event.try_into().map_err(|_| wrong_size())?;
        let last_used = i128::from_le_bytes(*last_used);
        let last_event = u64::from_le_bytes(*last_event);
        Ok(Self {
            uses: u64::from_le_bytes(*uses),
            last_used: (last_used != i128::MIN).then_some(last_used),
            last_event: (last_event != u64::MAX).then_some(last_event),
        })
    }

    fn count_use(&mut self, at: Timestamp) {
        self.uses = self.uses.saturating_add(1);
        self.last_used = Some(at.unix_timestamp_nanos());
    }

    /// `grant` showing this activity's use count and last use.
    fn apply(self, mut grant: Grant) -> Grant {
        grant.use_count = self.uses;
        grant.last_used_at = self
            .last_used
            .and_then(|at| time::OffsetDateTime::from_unix_timestamp_nanos(at).ok());
        grant
    }
}

/// Creates the tables.
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), Fail> {
    tx.open_table(GRANT_ACTIVITY)?;
    tx.open_table(AUDIT_CHAIN)?;
    Ok(())
}

/// Grant `id`'s entry, if it has one.
pub(super) fn entry(tx: &WriteTransaction, id: &str) -> Result<Option<Activity>, Fail> {
    of(&tx.open_table(GRANT_ACTIVITY)?, id)
}

fn of(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Activity>, Fail> {
    table
        .get(id)?
        .map(|v| Activity::from_bytes(v.value()))
        .transpose()
}

/// The tables an audit event (and a redemption's use) writes, opened once for a run of
/// such writes in one transaction ([`super::group_commit`]): a redemption then opens no
/// table of its own, and the audit log's end is read once per run.
pub(super) struct Hot<'t> {
    tx: &'t WriteTransaction,
    entries: Table<'t, &'static str, &'static [u8]>,
    chain: Table<'t, u64, u64>,
    audit: Table<'t, u64, &'static [u8]>,
    /// The next audit event's number, once read.
    next: Option<u64>,
}

impl<'t> Hot<'t> {
    pub(super) fn open(tx: &'t WriteTransaction) -> Result<Self, Fail> {
        Ok(Self {
            tx,
            entries: tx.open_table(GRANT_ACTIVITY)?,
            chain: tx.open_table(AUDIT_CHAIN)?,
            audit: tx.open_table(AUDIT)?,
            next: None,
        })
    }

    /// Grant `id`'s activity, or `None` when neither an entry nor the grant exists.
    /// Reads the grant's record only when it has no entry yet.
    fn load(&self, id: &str) -> Result<Option<Activity>, Fail> {
        if let Some(a) = of(&self.entries, id)? {
            return Ok(Some(a));
        }
        let grants = self.tx.open_table(GRANTS)?;
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

    fn save(&mut self, id: &str, activity: Activity) -> Result<(), Fail> {
        self.entries.insert(id, activity.to_bytes().as_slice())?;
        Ok(())
    }

    /// Counts one use of grant `id` (if it exists); reads before it writes.
    pub(super) fn count_use(&mut self, id: &str, at: Timestamp) -> Result<(), Fail> {
        if let Some(mut a) = self.load(id)? {
            a.count_use(at);
            self.save(id, a)?;
        }
        Ok(())
    }

    /// Grant `grant`'s activity before an event about it is appended: the read half of
    /// [`Hot::append`], done before anything is written (it may fail to decode).
    pub(super) fn before_event(&self, grant: &str) -> Result<Activity, Fail> {
        Ok(self.load(grant)?.unwrap_or_default())
    }

    /// Appends one encoded audit event after the last one and, with the activity of its
    /// grant read by [`Hot::before_event`], links it into that grant's trail; with
    /// `used_at` (a redemption) also counts the use, in the same entry. Only writes: it
    /// cannot fail to decode.
    pub(super) fn append(
        &mut self,
        event: &[u8],
        grant: Option<(&str, Activity)>,
        used_at: Option<Timestamp>,
    ) -> Result<(), Fail> {
        let seq = match self.next {
            Some(seq) => seq,
            None => self.audit.last()?.map_or(0, |(k, _)| k.value() + 1),
        };
        self.audit.insert(seq, event)?;
        self.next = Some(seq + 1);
        let Some((grant, mut a)) = grant else {
            return Ok(());
        };
        if let Some(at) = used_at {
            a.count_use(at);
        }
        if let Some(previous) = a.last_event {
            self.chain.insert(seq, previous)?;
        }
        a.last_event = Some(seq);
        self.save(grant, a)
    }
}

/// Drops the links of audit events before `seq` (the audit log's retention removed them).
pub(super) fn forget_before(tx: &WriteTransaction, seq: u64) -> Result<(), Fail> {
    tx.open_table(AUDIT_CHAIN)?.retain_in(..seq, |_, _| false)?;
    Ok(())
}

/// `grant` with the activity read by [`entry`] (before anything was written).
pub(super) fn shown(grant: Grant, activity: Option<Activity>) -> Grant {
    match activity {
        Some(a) => a.apply(grant),
        None => grant,
    }
}

/// Grants' activity for a reader.
pub(super) struct View {
    table: redb::ReadOnlyTable<&'static str, &'static [u8]>,
}

impl View {
    pub(super) fn open(tx: &redb::ReadTransaction) -> Result<Self, Fail> {
        Ok(Self {
            table: tx.open_table(GRANT_ACTIVITY)?,
        })
    }

    fn of(&self, id: &str) -> Result<Option<Activity>, Fail> {
        of(&self.table, id)
    }

    /// Grant `id` with its current use count and last use, if it exists.
    pub(super) fn read_grant(
        &self,
        grants: &impl ReadableTable<&'static str, &'static [u8]>,
        id: &str,
    ) -> Result<Option<Grant>, Fail> {
        match grants.get(id)? {
            Some(v) => {
                let grant: Grant = decode(v.value())?;
                Ok(Some(shown(grant, self.of(id)?)))
            }
            None => Ok(None),
        }
    }
}

/// The newest `limit` audit events about grant `id`, newest first. The trail ends where
/// the audit log's retention removed older events.
pub(super) fn trail(
    tx: &redb::ReadTransaction,
    id: &str,
    limit: usize,
) -> Result<Vec<AuditEvent>, Fail> {
    let view = View::open(tx)?;
    let (chain, audit) = (tx.open_table(AUDIT_CHAIN)?, tx.open_table(AUDIT)?);
    let mut next = view.of(id)?.and_then(|a| a.last_event);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, AuditAction, GrantId, Outcome};
    use crate::store::embedded::EmbeddedStore;

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
        let mut event =
            AuditEvent::new(Actor::System, AuditAction::GrantRedeemed, Outcome::Success);
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
        let tx = redb::ReadableDatabase::begin_read(store.db.as_ref()).unwrap();
        assert_eq!(
            tx.open_table(GRANT_ACTIVITY)
                .unwrap()
                .get(grant.as_str())
                .unwrap()
                .map(|v| v.value().len()),
            Some(5)
        );
    }

    /// A redemption's use is written through with its event: once `record_redemption`
    /// returns, the file (what a restart after `kill -9` opens) holds the count, the last
    /// use and the trail, with nothing held back in memory.
    #[tokio::test]
    async fn a_redemptions_use_is_on_disk_with_its_event_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let grant = GrantId::generate();
        let mut event =
            AuditEvent::new(Actor::System, AuditAction::GrantRedeemed, Outcome::Success);
        event.grant = Some(grant.clone());
        let store = EmbeddedStore::open(&path).unwrap();
        for _ in 0..3 {
            crate::store::RedemptionLog::record_redemption(&store, &grant, event.at, &event)
                .await
                .unwrap();
        }
        let on_disk = |db: &redb::Database| {
            let tx = redb::ReadableDatabase::begin_read(db).unwrap();
            let a = View::open(&tx)
                .ok()
                .unwrap()
                .of(grant.as_str())
                .ok()
                .flatten();
            let trail = trail(&tx, grant.as_str(), 10).ok().unwrap();
            (a, trail.len())
        };
        let expected = Activity {
            uses: 3,
            last_used: Some(event.at.unix_timestamp_nanos()),
            last_event: Some(2),
        };
        assert_eq!(on_disk(&store.db), (Some(expected), 3));
        drop(store);
        let reopened = redb::Database::create(&path).unwrap();
        assert_eq!(on_disk(&reopened), (Some(expected), 3));
    }
}

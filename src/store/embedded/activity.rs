//! Each grant's activity on the embedded store: how often and when it was last used, and
//! its audit trail, kept so that a redemption's commit only appends (its audit event and
//! one link) and touches no page of the grant records or of any per-grant index.
//!
//! - [`AUDIT_CHAIN`]: for each audit event about a grant, the grant's event before it, so
//!   a grant's trail is read newest first by following links from its newest event.
//!   Written with the event, in the same transaction; only grows at its end.
//! - [`Activity`] (use count, last use, newest audit event) per grant: [`Activities`]
//!   holds in memory the entry of every grant used since the database was opened, and
//!   is the authority for those; [`GRANT_ACTIVITY`] holds the rest. Other events about a
//!   grant are written through. Uses are written behind: each batch's transaction also
//!   writes a share of the changed entries, consecutive in key order (so they share
//!   pages), sized to go round them all about once a second; the rest goes when the
//!   writer is idle and when the store closes. An entry redeemed many times a second is
//!   written about once a second, not at each use, and no commit stalls on a large write.
//!   A grant without an entry anywhere has had no activity since this table exists: its
//!   record's own counts stand, and its first entry starts there.
//!
//! Nothing acknowledged is lost in a crash: an activity is derived from the audit trail,
//! which is durable before any caller hears back. [`ACTIVITY_STATE`] holds the first
//! event the table does not reflect yet; opening the database replays the events from
//! there by the rule [`Activity::after`] (a successful `grant_redeemed` counts a use of
//! its grant at the event's time; every event about a grant becomes its newest). An
//! event only applies to an entry whose newest event is older, so an entry written
//! ahead of the rest (a use counted without an event, [`Activities::count_use`]) is
//! never counted twice. Readers see an entry once its batch is durable.
//!
//! Before this, every redemption also rewrote a random page of a per-grant index
//! (`audit_by_grant`); a database that has that index is converted once when opened.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

use super::{AUDIT, Fail, GRANTS, SEP, decode};
use crate::domain::{AuditEvent, Grant, Outcome, Timestamp};
use crate::store::group_commit::Behind;

/// Grant id → [`Activity`], in the 32 bytes of [`Activity::to_bytes`] (plain bytes: redb
/// formats a tuple type's name on every open of its table, which cost more than the write).
const GRANT_ACTIVITY: TableDefinition<&str, &[u8]> = TableDefinition::new("grant_activity");
/// Audit event → the same grant's event before it.
pub(super) const AUDIT_CHAIN: TableDefinition<u64, u64> = TableDefinition::new("audit_chain");
/// [`REPLAY_FROM`] → the first audit event that [`GRANT_ACTIVITY`] does not reflect yet.
const ACTIVITY_STATE: TableDefinition<&str, u64> = TableDefinition::new("grant_activity_state");
const REPLAY_FROM: &str = "replay_from";
/// The former per-grant index, `grant id SEP seq (20 digits)` → ().
const LEGACY_AUDIT_BY_GRANT: TableDefinition<&str, ()> = TableDefinition::new("audit_by_grant");

/// While the writer is busy, each changed entry is written about this long after.
const WRITE_BEHIND_EVERY: Duration = Duration::from_secs(1);

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

    /// This activity once audit event `seq` about its grant happened (`used_at`: the
    /// event counts a use, see [`used_at`]). The one rule, live and on replay.
    fn after(mut self, seq: u64, used_at: Option<Timestamp>) -> Self {
        if let Some(at) = used_at {
            self.uses = self.uses.saturating_add(1);
            self.last_used = Some(at.unix_timestamp_nanos());
        }
        self.last_event = Some(seq);
        self
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

/// When `event` counts a use of its grant: a successful redemption, at its own time.
pub(super) fn used_at(event: &AuditEvent) -> Option<Timestamp> {
    (event.action == "grant_redeemed" && event.outcome == Outcome::Success).then_some(event.at)
}

/// The entries of the grants used since the database was opened (see the module header).
#[derive(Default)]
pub(crate) struct Activities {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Durable (their audit events are committed): what readers see.
    committed: HashMap<String, Activity>,
    /// Changed by the batch being written, with the first of its events about each;
    /// kept or dropped with the batch.
    pending: HashMap<String, (Activity, Option<u64>)>,
    /// Committed entries newer than the table's, each with the first audit event the
    /// table lacks (where a replay must start for it), and the same ordered by event.
    dirty: BTreeMap<String, u64>,
    dirty_since: BTreeSet<(u64, String)>,
    /// Written in the batch's transaction: clean once it commits.
    written: HashSet<String>,
    /// Where the last share ended, and when.
    cursor: String,
    last_share: Option<Instant>,
}

impl State {
    fn latest(&self, id: &str) -> Option<Activity> {
        self.pending
            .get(id)
            .map(|(a, _)| *a)
            .or_else(|| self.committed.get(id).copied())
    }

    fn holds(&self, id: &str) -> bool {
        self.pending.contains_key(id) || self.committed.contains_key(id)
    }

    fn mark_clean(&mut self, id: &str) {
        if let Some(since) = self.dirty.remove(id) {
            self.dirty_since.remove(&(since, id.to_owned()));
        }
    }

    /// The next `n` changed entries in key order after the cursor (wrapping round).
    fn next_share(&self, n: usize) -> Vec<String> {
        let after = self
            .dirty
            .range::<str, _>((Bound::Excluded(self.cursor.as_str()), Bound::Unbounded));
        let from_start = self
            .dirty
            .range::<str, _>((Bound::Unbounded, Bound::Included(self.cursor.as_str())));
        after
            .chain(from_start)
            .take(n)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The first audit event that entries not written in this transaction still lack.
    fn replay_from(&self) -> Option<u64> {
        let dirty = self
            .dirty_since
            .iter()
            .find(|(_, id)| !self.written.contains(id))
            .map(|(since, _)| *since);
        let fresh = self
            .pending
            .iter()
            .filter(|(id, _)| !self.written.contains(*id) && !self.dirty.contains_key(*id))
            .filter_map(|(_, (_, first))| *first)
            .min();
        dirty.into_iter().chain(fresh).min()
    }
}

impl std::fmt::Debug for Activities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Activities(..)")
    }
}

impl Activities {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned map is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Grant `id`'s entry as the batch being written sees it, if it has one.
    pub(super) fn entry(&self, tx: &WriteTransaction, id: &str) -> Result<Option<Activity>, Fail> {
        if let Some(a) = self.lock().latest(id) {
            return Ok(Some(a));
        }
        tx.open_table(GRANT_ACTIVITY)?
            .get(id)?
            .map(|v| Activity::from_bytes(v.value()))
            .transpose()
    }

    /// Grant `id`'s activity as the batch being written sees it, or `None` when neither
    /// an entry nor the grant exists. Reads the grant's record only when it has no entry.
    fn current(&self, tx: &WriteTransaction, id: &str) -> Result<Option<Activity>, Fail> {
        match self.entry(tx, id)? {
            Some(a) => Ok(Some(a)),
            None => from_record(tx, id),
        }
    }

    /// Grant `id`'s new activity in this batch; `event`: the audit event that made it.
    fn stage(&self, id: &str, activity: Activity, event: Option<u64>) {
        let mut s = self.lock();
        let first = s.pending.get(id).and_then(|(_, first)| *first);
        s.pending.insert(id.to_owned(), (activity, first.or(event)));
    }

    /// Grant `grant`'s activity before an event about it is appended: the read half of
    /// [`Self::file_event`], done before anything is written (it may fail to decode).
    pub(super) fn before_event(
        &self,
        tx: &WriteTransaction,
        grant: &str,
    ) -> Result<Activity, Fail> {
        Ok(self.current(tx, grant)?.unwrap_or_default())
    }

    /// Links audit event `seq`, just appended, into grant `grant`'s trail (its activity
    /// read by [`Self::before_event`]) and counts a use if `used_at`. Only writes.
    ///
    /// Only uses are written behind (they are what is frequent); any other event is
    /// written through, and held in memory only if the grant already is (so memory grows
    /// with the grants used since opening, not with every grant ever created).
    pub(super) fn file_event(
        &self,
        tx: &WriteTransaction,
        grant: &str,
        before: Activity,
        seq: u64,
        used_at: Option<Timestamp>,
    ) -> Result<(), Fail> {
        if let Some(previous) = before.last_event {
            tx.open_table(AUDIT_CHAIN)?.insert(seq, previous)?;
        }
        let after = before.after(seq, used_at);
        if used_at.is_none() {
            save(tx, grant, after)?;
            if !self.lock().holds(grant) {
                return Ok(());
            }
        }
        self.stage(grant, after, Some(seq));
        Ok(())
    }

    /// Counts a use of grant `id` (if it exists) that no audit event records: written
    /// through to the table now, since no replay could find it. Reads before it writes.
    pub(super) fn count_use(
        &self,
        tx: &WriteTransaction,
        id: &str,
        at: Timestamp,
    ) -> Result<(), Fail> {
        if let Some(mut a) = self.current(tx, id)? {
            a.uses = a.uses.saturating_add(1);
            a.last_used = Some(at.unix_timestamp_nanos());
            save(tx, id, a)?;
            if self.lock().holds(id) {
                self.stage(id, a, None);
            }
        }
        Ok(())
    }

    /// Grant `id`'s activity as readers see it: `None` if unchanged since the database
    /// was opened (then the table has it).
    fn published(&self, id: &str) -> Option<Activity> {
        self.lock().committed.get(id).copied()
    }

    /// Writes every changed entry (this batch's too) in the batch's transaction, so that
    /// no audit event so far is needed for a replay: for the sweep. Only writes.
    pub(super) fn write_ahead(&self, tx: &WriteTransaction) -> Result<(), Fail> {
        self.write_share(tx, |s| {
            s.dirty.keys().chain(s.pending.keys()).cloned().collect()
        })
    }

    /// Writes the entries `pick` names as they are now (the lock is not held while
    /// writing: readers go on), and where a replay would start.
    fn write_share(
        &self,
        tx: &WriteTransaction,
        pick: impl FnOnce(&State) -> Vec<String>,
    ) -> Result<(), Fail> {
        let share: Vec<(String, Activity)> = {
            let s = self.lock();
            let ids = pick(&s);
            ids.into_iter()
                .filter_map(|id| s.latest(&id).map(|a| (id, a)))
                .collect()
        };
        for (id, a) in &share {
            save(tx, id, *a)?;
        }
        // Only the writer's thread changes entries, and it is here: `share` is current.
        let from = {
            let mut s = self.lock();
            if let Some((last, _)) = share.last() {
                s.cursor.clone_from(last);
            }
            s.written.extend(share.into_iter().map(|(id, _)| id));
            s.replay_from()
        };
        let from = match from {
            Some(from) => from,
            None => next_event(tx)?,
        };
        tx.open_table(ACTIVITY_STATE)?.insert(REPLAY_FROM, from)?;
        Ok(())
    }
}

impl Behind for Activities {
    /// A share of the changed entries, in key order from where the last one ended (so
    /// that entries written together share pages), sized to go round them all about once
    /// a [`WRITE_BEHIND_EVERY`].
    fn before_commit(&self, tx: &WriteTransaction) -> Result<(), Fail> {
        let mut s = self.lock();
        let now = Instant::now();
        let since = now.duration_since(*s.last_share.get_or_insert(now));
        let due = s.dirty.len() as f64 * since.as_secs_f64() / WRITE_BEHIND_EVERY.as_secs_f64();
        // Saturating: a long quiet spell makes every entry due.
        let due = due as usize;
        if due == 0 {
            return Ok(());
        }
        s.last_share = Some(now);
        drop(s);
        self.write_share(tx, |s| s.next_share(due))
    }

    fn settle(&self, committed: bool) {
        let mut s = self.lock();
        let pending = std::mem::take(&mut s.pending);
        let written = std::mem::take(&mut s.written);
        if !committed {
            return;
        }
        for (id, (a, first)) in pending {
            if let Some(first) = first
                && !s.dirty.contains_key(&id)
            {
                s.dirty.insert(id.clone(), first);
                s.dirty_since.insert((first, id.clone()));
            }
            s.committed.insert(id, a);
        }
        for id in &written {
            s.mark_clean(id);
        }
    }

    fn write_behind(&self, db: &Database) {
        if self.lock().dirty.is_empty() {
            return;
        }
        let written = (|| {
            let tx = db.begin_write()?;
            self.write_share(&tx, |s| s.dirty.keys().cloned().collect())?;
            tx.commit()?;
            Ok::<_, Fail>(())
        })();
        // On failure the entries stay changed and go next time; replay covers a crash.
        let committed = written.is_ok();
        if let Err(e) = written {
            tracing::warn!(error = %crate::store::StoreError::from(e), "grant activity not written behind; will retry");
        }
        self.settle(committed);
    }
}

/// The sequence number the next audit event gets.
fn next_event(tx: &WriteTransaction) -> Result<u64, Fail> {
    Ok(tx
        .open_table(AUDIT)?
        .last()?
        .map_or(0, |(k, _)| k.value() + 1))
}

/// Creates the tables, converts a database that still has the former per-grant index,
/// and replays the audit events the table does not reflect (after a crash).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), Fail> {
    tx.open_table(GRANT_ACTIVITY)?;
    tx.open_table(AUDIT_CHAIN)?;
    let known = tx
        .open_table(ACTIVITY_STATE)?
        .get(REPLAY_FROM)?
        .map(|v| v.value());
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
    let mut converted: HashMap<String, Activity> = HashMap::new();
    for (grant, seq) in legacy {
        let before = match converted.get(&grant) {
            Some(a) => *a,
            None => load(tx, &grant)?.unwrap_or_default(),
        };
        if let Some(previous) = before.last_event {
            tx.open_table(AUDIT_CHAIN)?.insert(seq, previous)?;
        }
        converted.insert(grant, before.after(seq, None));
    }
    for (grant, a) in converted {
        save(tx, &grant, a)?;
    }
    tx.delete_table(LEGACY_AUDIT_BY_GRANT)?;
    // Without a replay point the database is new, or its activity was written with its
    // events (before write-behind): the table is current.
    if let Some(from) = known {
        replay(tx, from)?;
    }
    let next = next_event(tx)?;
    tx.open_table(ACTIVITY_STATE)?.insert(REPLAY_FROM, next)?;
    Ok(())
}

/// Applies audit events from `from` on to the entries that do not reflect them yet.
fn replay(tx: &WriteTransaction, from: u64) -> Result<(), Fail> {
    let mut replayed: HashMap<String, Activity> = HashMap::new();
    let mut unreadable = 0usize;
    {
        let audit = tx.open_table(AUDIT)?;
        for entry in audit.range(from..)? {
            let (seq, value) = entry?;
            let seq = seq.value();
            let Ok(event) = decode::<AuditEvent>(value.value()) else {
                unreadable += 1;
                continue;
            };
            let Some(grant) = event.grant.as_ref().map(|g| g.as_str()) else {
                continue;
            };
            let before = match replayed.get(grant) {
                Some(a) => *a,
                // An unreadable entry is left as it is, for an operator to look at.
                None => match load(tx, grant) {
                    Ok(a) => a.unwrap_or_default(),
                    Err(Fail::Decode(_)) => {
                        unreadable += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            if before.last_event.is_some_and(|last| last >= seq) {
                continue;
            }
            replayed.insert(grant.to_owned(), before.after(seq, used_at(&event)));
        }
    }
    if unreadable > 0 {
        tracing::warn!(
            unreadable,
            "grant activity replay skipped unreadable records"
        );
    }
    if !replayed.is_empty() {
        tracing::info!(
            grants = replayed.len(),
            "grant activity replayed from the audit trail"
        );
    }
    for (grant, a) in replayed {
        save(tx, &grant, a)?;
    }
    Ok(())
}

/// Grant `id`'s entry in the table, else its record's counts, else `None`.
fn load(tx: &WriteTransaction, id: &str) -> Result<Option<Activity>, Fail> {
    match tx.open_table(GRANT_ACTIVITY)?.get(id)? {
        Some(v) => Activity::from_bytes(v.value()).map(Some),
        None => from_record(tx, id),
    }
}

/// The counts grant `id`'s record holds (a grant with no entry yet), if it exists.
fn from_record(tx: &WriteTransaction, id: &str) -> Result<Option<Activity>, Fail> {
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

/// Grants' activity for a reader: the entries changed since opening, else the table.
pub(super) struct View<'a> {
    table: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    activities: &'a Activities,
}

impl<'a> View<'a> {
    pub(super) fn open(
        tx: &redb::ReadTransaction,
        activities: &'a Activities,
    ) -> Result<Self, Fail> {
        Ok(Self {
            table: tx.open_table(GRANT_ACTIVITY)?,
            activities,
        })
    }

    fn of(&self, id: &str) -> Result<Option<Activity>, Fail> {
        if let Some(a) = self.activities.published(id) {
            return Ok(Some(a));
        }
        self.table
            .get(id)?
            .map(|v| Activity::from_bytes(v.value()))
            .transpose()
    }

    /// `grant` with its current use count and last use.
    pub(super) fn with_uses(&self, grant: Grant) -> Result<Grant, Fail> {
        Ok(match self.of(grant.id.as_str())? {
            Some(a) => a.apply(grant),
            None => grant,
        })
    }

    /// Grant `id` with its current use count and last use, if it exists.
    pub(super) fn read_grant(
        &self,
        grants: &impl ReadableTable<&'static str, &'static [u8]>,
        id: &str,
    ) -> Result<Option<Grant>, Fail> {
        match grants.get(id)? {
            Some(v) => Ok(Some(self.with_uses(decode(v.value())?)?)),
            None => Ok(None),
        }
    }
}

/// `grant` with the activity the batch being written sees (read with
/// [`Activities::entry`] before anything was written).
pub(super) fn shown(grant: Grant, activity: Option<Activity>) -> Grant {
    match activity {
        Some(a) => a.apply(grant),
        None => grant,
    }
}

/// The newest `limit` audit events about grant `id`, newest first. The trail ends where
/// the audit log's retention removed older events.
pub(super) fn trail(
    tx: &redb::ReadTransaction,
    activities: &Activities,
    id: &str,
    limit: usize,
) -> Result<Vec<AuditEvent>, Fail> {
    let view = View::open(tx, activities)?;
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

    /// Redemptions acknowledged but not yet written behind when the process died are
    /// counted again from the audit trail on open; an entry already up to date is not
    /// counted twice; an event that is not a successful redemption only moves the trail.
    #[tokio::test]
    async fn uses_not_yet_written_behind_are_replayed_from_the_audit_trail_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let (a, b) = (GrantId::generate(), GrantId::generate());
        let event = |action: &str, outcome: Outcome, grant: &GrantId| {
            let mut e = AuditEvent::new(Actor::System, action, outcome);
            e.grant = Some(grant.clone());
            e
        };
        let mut redeemed = Vec::new();
        {
            let store = EmbeddedStore::open(&path).unwrap();
            for _ in 0..3 {
                let e = event("grant_redeemed", Outcome::Success, &a);
                crate::store::RedemptionLog::record_redemption(&store, &a, e.at, &e)
                    .await
                    .unwrap();
                redeemed.push(e.at);
            }
            let refused = event("grant_redeemed", Outcome::Denied, &b);
            crate::store::AuditLog::append(&store, &refused)
                .await
                .unwrap();
        } // closing writes everything behind
        let entry = |db: &Database, id: &GrantId| {
            let tx = db.begin_read().unwrap();
            let t = tx.open_table(GRANT_ACTIVITY).unwrap();
            t.get(id.as_str())
                .unwrap()
                .map(|v| Activity::from_bytes(v.value()).ok().unwrap())
        };
        let set_back = |to: Option<(GrantId, Activity)>, replay_from: u64| {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(GRANT_ACTIVITY).unwrap();
                t.remove(b.as_str()).unwrap();
                if let Some((id, activity)) = &to {
                    t.insert(id.as_str(), activity.to_bytes().as_slice())
                        .unwrap();
                }
                tx.open_table(ACTIVITY_STATE)
                    .unwrap()
                    .insert(REPLAY_FROM, replay_from)
                    .unwrap();
            }
            tx.commit().unwrap();
        };
        let full = {
            let db = Database::create(&path).unwrap();
            let full = entry(&db, &a).unwrap();
            assert_eq!((full.uses, full.last_event), (3, Some(2)));
            assert_eq!(
                entry(&db, &b).map(|e| (e.uses, e.last_event)),
                Some((0, Some(3)))
            );
            full
        };

        // The state a crash leaves when only the first redemption was written behind.
        let first = Activity::default().after(0, Some(redeemed[0]));
        set_back(Some((a.clone(), first)), 1);
        let store = EmbeddedStore::open(&path).unwrap();
        let actions = store.audit_of_grant(&a, 10).await.unwrap();
        assert_eq!(actions.len(), 3, "the trail is whole: {actions:?}");
        drop(store);
        let db = Database::create(&path).unwrap();
        assert_eq!(
            entry(&db, &a),
            Some(full),
            "uses 2 and 3 counted again, at their times"
        );
        assert_eq!(
            entry(&db, &b).map(|e| (e.uses, e.last_event)),
            Some((0, Some(3))),
            "a refused redemption is the newest event, not a use"
        );
        drop(db);

        // Replaying from the start over entries that already reflect it changes nothing.
        set_back(None, 0);
        drop(EmbeddedStore::open(&path).unwrap());
        let db = Database::create(&path).unwrap();
        assert_eq!(entry(&db, &a), Some(full), "nothing counted twice");
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

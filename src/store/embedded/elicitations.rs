//! Elicitations on the embedded store ([`ElicitationStore`]): insert, read, settle (a
//! completed one stores its grant, its indexes and counts in the same transaction) and
//! the sweep, which also removes what has no TTL here: expired flows, sessions and seen ids, and
//! the audit events (with their trail links) past the store's cap.

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};
use tower_sessions::session::Record;

use super::activity;
use super::db::EmbeddedStore;
use super::indexes;
use super::tables::{
    AUDIT, ELICITATIONS, FLOWS, Fail, GRANTS, HANDLES, SEEN, SESSIONS, SUBJECT_GRANTS, decode,
    encode, subject_key,
};
use crate::domain::{Elicitation, ElicitationId, FlowRecord, Grant, Timestamp};
use crate::store::{ElicitationStore, Settled, Settlement, StoreResult};

#[async_trait]
impl ElicitationStore for EmbeddedStore {
    async fn insert_elicitation(&self, elicitation: &Elicitation) -> StoreResult<()> {
        let (key, value) = (elicitation.id.as_str().to_owned(), encode(elicitation)?);
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
            let current: Option<Elicitation> = tx
                .open_table(ELICITATIONS)?
                .get(id.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            let mut e = match current {
                None => return Ok(Settled::NotFound),
                Some(e) if !settlement.applies_to(&e, now) => return Ok(Settled::Already(e)),
                Some(e) => e,
            };
            let grant = settlement.apply(&mut e);
            // Both encoded before the first write (see the group commit's rule).
            let record = encode(&e)?;
            let stored = grant.map(|g| encode(g).map(|v| (g, v))).transpose()?;
            if let Some((grant, value)) = stored {
                store_grant(tx, grant, &value)?;
            }
            tx.open_table(ELICITATIONS)?
                .insert(id.as_str(), record.as_slice())?;
            Ok(Settled::Now(e))
        })
        .await
    }

    async fn sweep_elicitations(&self, cutoff: Timestamp) -> StoreResult<usize> {
        let audit_cap = self.audit_cap;
        self.write(move |tx| {
            let mut removed = 0;
            tx.open_table(ELICITATIONS)?.retain(|_, v| {
                // An unreadable record is kept for an operator to look at, never dropped.
                let expired = serde_json::from_slice::<Elicitation>(v)
                    .map(|e| e.expires_at < cutoff)
                    .unwrap_or(false);
                removed += usize::from(expired);
                !expired
            })?;
            // No TTLs here: expired flows, sessions and seen ids go in the same sweep.
            let now = time::OffsetDateTime::now_utc();
            tx.open_table(FLOWS)?.retain(|_, v| {
                serde_json::from_slice::<FlowRecord>(v).map_or(true, |f| f.expires_at > now)
            })?;
            tx.open_table(SESSIONS)?.retain(|_, v| {
                serde_json::from_slice::<Record>(v).map_or(true, |r| r.expiry_date > now)
            })?;
            let now_ms = super::seen::unix_ms(now);
            tx.open_table(SEEN)?.retain(|_, until| until > now_ms)?;
            trim_audit(tx, audit_cap)?;
            Ok(removed)
        })
        .await
    }
}

/// Stores a new grant (`value`: its encoding) with its handle, its subject's index entry
/// and the admin console's index entries and counts. Only writes.
fn store_grant(tx: &WriteTransaction, grant: &Grant, value: &[u8]) -> Result<(), Fail> {
    let gid = grant.id.as_str();
    tx.open_table(GRANTS)?.insert(gid, value)?;
    tx.open_table(HANDLES)?
        .insert(grant.handle_digest.to_hex().as_str(), gid)?;
    tx.open_table(SUBJECT_GRANTS)?
        .insert(subject_key(grant.subject.as_str(), gid).as_str(), ())?;
    indexes::index_new_grant(tx, grant)
}

/// Keeps the newest `cap` audit events and the trail links among them.
fn trim_audit(tx: &WriteTransaction, cap: u64) -> Result<(), Fail> {
    let mut audit = tx.open_table(AUDIT)?;
    let last = audit.last()?.map(|(k, _)| k.value());
    if let Some(last) = last {
        let keep_from = (last + 1).saturating_sub(cap);
        audit.retain_in(..keep_from, |_, _| false)?;
        drop(audit);
        activity::forget_before(tx, keep_from)?;
    }
    Ok(())
}

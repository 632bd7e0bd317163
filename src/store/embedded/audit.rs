//! The audit log on the embedded store ([`AuditLog`]) and redemptions
//! ([`RedemptionLog`]). Events are appended in sequence to the `audit` table; one about a
//! grant is linked into that grant's trail in the same transaction
//! ([`super::activity`]). A redemption's use (count and last use) and its audit event
//! are written in one group-committed transaction: both are durable before it returns.
//! Nothing here looks at what an event says beyond the grant it is about.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};

use super::activity::Hot;
use super::db::EmbeddedStore;
use super::tables::{AUDIT, Fail, decode, encode};
use crate::domain::{AuditEvent, GrantId, Timestamp};
use crate::store::{AuditLog, RedemptionLog, StoreResult};

#[async_trait]
impl AuditLog for EmbeddedStore {
    async fn append(&self, event: &AuditEvent) -> StoreResult<()> {
        let value = encode(event)?;
        let grant = event.grant.as_ref().map(|g| g.as_str().to_owned());
        self.write_hot(move |hot| append_audit(hot, &value, grant.as_deref(), None))
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

/// Appends one encoded audit event after the last one and files it in its grant's trail
/// (if it has a grant); `used_at` also counts a use of that grant (a redemption). Reads
/// the grant's activity before it writes anything (the group commit's rule).
fn append_audit(
    hot: &mut Hot<'_>,
    event: &[u8],
    grant: Option<&str>,
    used_at: Option<Timestamp>,
) -> Result<(), Fail> {
    let before = grant
        .map(|g| hot.before_event(g).map(|a| (g, a)))
        .transpose()?;
    hot.append(event, before, used_at)
}

#[async_trait]
impl RedemptionLog for EmbeddedStore {
    /// The use and the audit event in one transaction (so one commit, shared with
    /// whatever else is queued).
    async fn record_redemption(
        &self,
        grant: &GrantId,
        at: Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let (id, value) = (grant.as_str().to_owned(), encode(event)?);
        let filed_under = event.grant.as_ref().map(|g| g.as_str().to_owned());
        self.write_hot(move |hot| {
            // The event is the grant's own (always, from the broker): one entry written.
            if filed_under.as_deref() == Some(id.as_str()) {
                return append_audit(hot, &value, Some(&id), Some(at));
            }
            // Every read before the first write: the event's grant's activity decodes
            // now, so it decodes again in `append_audit`.
            if let Some(g) = filed_under.as_deref() {
                hot.before_event(g)?;
            }
            hot.count_use(&id, at)?;
            append_audit(hot, &value, filed_under.as_deref(), None)
        })
        .await
    }
}

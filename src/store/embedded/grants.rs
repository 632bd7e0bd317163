//! Grants on the embedded store ([`GrantStore`]): reads by id, handle and subject (each
//! grant shown with its use count and last use from [`super::activity`]), compare-and-set
//! changes (with the admin console's counts), uses, and grants per sealing key. Grants
//! are stored by [`super::elicitations`] when an elicitation completes.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};

use super::activity::{self, View};
use super::db::EmbeddedStore;
use super::indexes;
use super::tables::{GRANTS, HANDLES, SEP, SUBJECT_GRANTS, decode, encode};
use crate::domain::{Grant, GrantChange, GrantId, HandleDigest, Subject, Timestamp};
use crate::store::{GrantCounts, GrantStore, StoreResult, Updated};

#[async_trait]
impl GrantStore for EmbeddedStore {
    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>> {
        self.read_now(|db| {
            let tx = db.begin_read()?;
            View::open(&tx)?.read_grant(&tx.open_table(GRANTS)?, id.as_str())
        })
    }

    /// The grant's record alone: the redemption path, which shows no use count, skips
    /// the activity table's open and read (measured in docs/performance.md).
    async fn grant_by_handle(&self, digest: &HandleDigest) -> StoreResult<Option<Grant>> {
        let key = digest.to_hex();
        self.read_now(|db| {
            let tx = db.begin_read()?;
            let handles = tx.open_table(HANDLES)?;
            let Some(id) = handles.get(key.as_str())? else {
                return Ok(None);
            };
            tx.open_table(GRANTS)?
                .get(id.value())?
                .map(|v| decode(v.value()))
                .transpose()
        })
    }

    async fn grants_of_subject(&self, subject: &Subject) -> StoreResult<Vec<Grant>> {
        let prefix = format!("{}{SEP}", subject.as_str());
        self.run(move |db| {
            let tx = db.begin_read()?;
            let index = tx.open_table(SUBJECT_GRANTS)?;
            let (grants, uses) = (tx.open_table(GRANTS)?, View::open(&tx)?);
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
        self.write(move |tx| {
            // The record keeps whatever counts it had; the answer shows the current ones,
            // read (like the record) before anything is written.
            let uses = activity::entry(tx, &id)?;
            let mut t = tx.open_table(GRANTS)?;
            let current: Option<Grant> =
                t.get(id.as_str())?.map(|v| decode(v.value())).transpose()?;
            let Some(mut grant) = current else {
                return Ok(Updated::NotFound);
            };
            let before = grant.status;
            if !change.apply(&mut grant) {
                return Ok(Updated::Unchanged(activity::shown(grant, uses)));
            }
            t.insert(id.as_str(), encode(&grant)?.as_slice())?;
            drop(t);
            if grant.status != before {
                indexes::recount(tx, &grant, before)?;
            }
            Ok(Updated::Applied(activity::shown(grant, uses)))
        })
        .await
    }

    async fn record_use(&self, id: &GrantId, at: Timestamp) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.write_hot(move |hot| hot.count_use(&id, at)).await
    }

    async fn grants_per_key(&self) -> StoreResult<Option<GrantCounts>> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let mut counts = GrantCounts::new();
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

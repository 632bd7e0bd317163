//! One-time ids ([`SeenIds`]) on the embedded store: one table of key → expiry (Unix
//! milliseconds). The check and the insert are one write transaction, so of two sightings
//! of one id exactly one is first; expired entries are treated as absent and removed by
//! the sweep ([`super::elicitations`]).

use async_trait::async_trait;
use redb::ReadableTable;

use super::db::EmbeddedStore;
use super::tables::SEEN;
use crate::domain::Timestamp;
use crate::store::{SeenIds, SeenKey, StoreResult};

/// `t` in Unix milliseconds, saturating.
pub(super) fn unix_ms(t: Timestamp) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[async_trait]
impl SeenIds for EmbeddedStore {
    async fn first_sighting(&self, key: &SeenKey, until: Timestamp) -> StoreResult<bool> {
        let (key, until) = (key.as_str().to_owned(), unix_ms(until));
        let now = unix_ms(time::OffsetDateTime::now_utc());
        self.write(move |tx| {
            let mut seen = tx.open_table(SEEN)?;
            let live = seen.get(key.as_str())?.is_some_and(|v| v.value() > now);
            if live {
                return Ok(false);
            }
            seen.insert(key.as_str(), until)?;
            Ok(true)
        })
        .await
    }

    async fn forget(&self, key: &SeenKey) -> StoreResult<()> {
        let key = key.as_str().to_owned();
        self.write(move |tx| {
            tx.open_table(SEEN)?.remove(key.as_str())?;
            Ok(())
        })
        .await
    }
}

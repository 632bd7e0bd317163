//! Elicitations on Redis: insert with a TTL and an expiry-index entry, read, settle by
//! compare-and-set (with the grant, in one script), and sweep by the expiry index. See the
//! module header of `store::redis` for the invariants.

use async_trait::async_trait;

use super::keys::subject_member;
use super::{CAS_ATTEMPTS, RedisStore, decode, encode, ms};
use crate::domain::{Elicitation, ElicitationId, Grant, Timestamp};
use crate::store::{
    ELICITATION_RETENTION, ElicitationStore, Settled, Settlement, StoreError, StoreResult,
};

/// Elicitations removed per sweep round trip.
const SWEEP_BATCH: usize = 500;

#[async_trait]
impl ElicitationStore for RedisStore {
    async fn insert_elicitation(&self, elicitation: &Elicitation) -> StoreResult<()> {
        let id = elicitation.id.as_str();
        // Index first: an index entry without a record is harmless (the sweep skips it).
        self.query::<i64>(
            redis::cmd("ZADD")
                .arg(self.keys.expiry_index())
                .arg(ms(elicitation.expires_at))
                .arg(id),
        )
        .await?;
        self.query::<()>(
            redis::cmd("SET")
                .arg(self.keys.elicitation(id))
                .arg(encode(elicitation)?)
                .arg("PXAT")
                .arg(ms(elicitation.expires_at + ELICITATION_RETENTION)),
        )
        .await
    }

    async fn elicitation(&self, id: &ElicitationId) -> StoreResult<Option<Elicitation>> {
        let raw: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.keys.elicitation(id.as_str())))
            .await?;
        raw.map(|r| decode("elicitation", &r)).transpose()
    }

    async fn settle(
        &self,
        id: &ElicitationId,
        settlement: Settlement,
        now: Timestamp,
    ) -> StoreResult<Settled> {
        let mut progress = Progress::default();
        let result = self.settle_inner(id, &settlement, now, &mut progress).await;
        // Lookup keys written for a grant that was not stored come out again, unless the
        // script's outcome is unknown (it may have stored the grant).
        let carried = match &settlement {
            Settlement::Completed(grant) | Settlement::AwaitingApproval { grant, .. } => {
                Some(grant)
            }
            _ => None,
        };
        if let Some(grant) = carried
            && progress.pointers_written
            && !progress.outcome_unknown
            && !matches!(result, Ok(Settled::Now(_)))
        {
            self.remove_pointers(id, grant).await;
        }
        if let (Some(grant), Ok(Settled::Now(_))) = (carried, &result) {
            self.count_new_grant(grant).await;
        }
        result
    }

    async fn sweep_elicitations(&self, cutoff: Timestamp) -> StoreResult<usize> {
        let index = self.keys.expiry_index();
        let mut removed = 0;
        loop {
            let ids: Vec<String> = self
                .query(
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(&index)
                        .arg("-inf")
                        .arg(format!("({}", ms(cutoff)))
                        .arg("LIMIT")
                        .arg(0)
                        .arg(SWEEP_BATCH),
                )
                .await?;
            if ids.is_empty() {
                return Ok(removed);
            }
            for id in &ids {
                let n: usize = self
                    .query(redis::cmd("DEL").arg(self.keys.elicitation(id)))
                    .await?;
                removed += n;
            }
            self.query::<i64>(redis::cmd("ZREM").arg(&index).arg(&ids))
                .await?;
        }
    }
}

/// How far a settlement got, to know what to clean up after it.
#[derive(Default)]
struct Progress {
    pointers_written: bool,
    index_moved: bool,
    outcome_unknown: bool,
}

impl RedisStore {
    async fn settle_inner(
        &self,
        id: &ElicitationId,
        settlement: &Settlement,
        now: Timestamp,
        progress: &mut Progress,
    ) -> StoreResult<Settled> {
        let key = self.keys.elicitation(id.as_str());
        let grant_key = self.keys.grant(id.as_str());
        for _ in 0..CAS_ATTEMPTS {
            let raw: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&key)).await?;
            let Some(raw) = raw else {
                return Ok(Settled::NotFound);
            };
            let current: Elicitation = decode("elicitation", &raw)?;
            if !settlement.applies_to(&current, now) {
                return Ok(Settled::Already(current));
            }
            let mut next = current;
            let mut keys = vec![key.as_str()];
            let (mut grant_json, mut grant_id, mut uses) = (Vec::new(), "", String::new());
            if let Some(grant) = settlement.apply(&mut next) {
                if !progress.pointers_written {
                    progress.pointers_written = true;
                    self.write_pointers(id, grant).await?;
                }
                keys.push(grant_key.as_str());
                grant_json = encode(grant)?;
                grant_id = grant.id.as_str();
                uses = grant.use_count.to_string();
            }
            // Waiting for an administrator moves the expiry: the index first (an entry
            // later than its record is harmless), and the record's TTL with it.
            let keep_until = match settlement {
                Settlement::AwaitingApproval { until, .. } => {
                    if !progress.index_moved {
                        progress.index_moved = true;
                        self.query::<i64>(
                            redis::cmd("ZADD")
                                .arg(self.keys.expiry_index())
                                .arg(ms(*until))
                                .arg(id.as_str()),
                        )
                        .await?;
                    }
                    ms(*until + ELICITATION_RETENTION).to_string()
                }
                _ => String::new(),
            };
            let next_json = encode(&next)?;
            progress.outcome_unknown = true;
            let written: i64 = self
                .eval(
                    &self.scripts.settle,
                    &keys,
                    &[
                        &raw,
                        &next_json,
                        &grant_json,
                        grant_id.as_bytes(),
                        uses.as_bytes(),
                        keep_until.as_bytes(),
                    ],
                )
                .await?;
            progress.outcome_unknown = false;
            match written {
                1 => return Ok(Settled::Now(next)),
                0 => continue,
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "elicitation {} is pending but already has a grant",
                        id.as_str()
                    )));
                }
            }
        }
        Err(StoreError::Unavailable(
            "elicitation kept changing while settling".into(),
        ))
    }

    /// The lookup keys of a grant about to be stored: grant id, handle digest, subject.
    async fn write_pointers(&self, id: &ElicitationId, grant: &Grant) -> StoreResult<()> {
        self.query::<()>(
            redis::cmd("SET")
                .arg(self.keys.grant_pointer(&grant.id))
                .arg(id.as_str()),
        )
        .await?;
        self.query::<()>(
            redis::cmd("SET")
                .arg(self.keys.handle_pointer(&grant.handle_digest))
                .arg(id.as_str()),
        )
        .await?;
        self.query::<i64>(
            redis::cmd("ZADD")
                .arg(self.keys.subject_index(&grant.subject))
                .arg(ms(grant.created_at))
                .arg(subject_member(id, &grant.id)),
        )
        .await?;
        self.write_admin_index(id, grant).await
    }

    /// Best effort: a pointer left behind leads to nothing readers accept.
    async fn remove_pointers(&self, id: &ElicitationId, grant: &Grant) {
        let steps = [
            redis::cmd("DEL")
                .arg(self.keys.grant_pointer(&grant.id))
                .clone(),
            redis::cmd("DEL")
                .arg(self.keys.handle_pointer(&grant.handle_digest))
                .clone(),
            redis::cmd("ZREM")
                .arg(self.keys.subject_index(&grant.subject))
                .arg(subject_member(id, &grant.id))
                .clone(),
        ];
        for step in &steps {
            if let Err(e) = self.query::<i64>(step).await {
                tracing::warn!(error = %e, "could not remove the lookup keys of an unstored grant");
            }
        }
        self.remove_admin_index(id, grant).await;
    }
}

//! The admin queries on Redis. Keys (see the table in `store::redis`):
//!
//! - `Pgrants:all`, `Pgrants:subject:<sha256(subject)>`, `Pgrants:provider:<id>`,
//!   `Pgrants:service:<id>`: sorted sets, score = creation ms, member
//!   `<grant id>.<elicitation id>`. Written with the other lookup keys before the settle
//!   script runs and removed with them if it did not store the grant; like every pointer,
//!   an entry is only trusted when the grant it leads to confirms its id.
//! - `Pgrant-counts`: hash `status|provider|service` → count, moved after the settle script
//!   stores a grant and after a revocation's compare-and-set succeeds. These are separate
//!   commands, so a broker killed between the two leaves a count one off; the grant records
//!   stay authoritative.
//! - `Paudit-of:<grant id>`: list of that grant's events (JSON), newest first, trimmed to
//!   [`AUDIT_PER_GRANT`], pushed after the event is on the audit stream.
//!
//! A page is `ZRANGE … BYSCORE REV LIMIT` from the cursor's score: never a scan.

use std::collections::HashMap;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{RedisStore, decode, encode, ms};
use crate::domain::{AuditEvent, ElicitationId, Grant, GrantId, GrantStatus, Subject};
use crate::store::StoreResult;
use crate::store::admin::{
    AUDIT_PER_GRANT, AUDIT_SCAN_BUDGET, AdminQueries, AuditCursor, AuditFilter, AuditPage,
    GrantCount, GrantCursor, GrantFilter, GrantPage, IndexChoice, SCAN_BUDGET, count_key,
    parse_count_key,
};

/// Index entries read per round trip.
const BATCH: usize = 200;

type StreamEntry = (String, Vec<(String, Vec<u8>)>);

impl RedisStore {
    fn index_key(&self, choice: &IndexChoice<'_>) -> String {
        let p = self.keys.prefix();
        match choice {
            IndexChoice::All => format!("{p}grants:all"),
            IndexChoice::Subject(s) => format!("{p}grants:subject:{}", subject_digest(s)),
            IndexChoice::Provider(id) => format!("{p}grants:provider:{}", id.as_str()),
            IndexChoice::Service(id) => format!("{p}grants:service:{}", id.as_str()),
        }
    }

    fn index_keys(&self, g: &Grant) -> [String; 4] {
        [
            self.index_key(&IndexChoice::All),
            self.index_key(&IndexChoice::Subject(&g.subject)),
            self.index_key(&IndexChoice::Provider(&g.provider)),
            self.index_key(&IndexChoice::Service(&g.service)),
        ]
    }

    fn counts_key(&self) -> String {
        format!("{}grant-counts", self.keys.prefix())
    }

    fn grant_audit_key(&self, id: &str) -> String {
        format!("{}audit-of:{id}", self.keys.prefix())
    }

    /// The admin index entries of a grant about to be stored.
    pub(super) async fn write_admin_index(&self, e: &ElicitationId, g: &Grant) -> StoreResult<()> {
        let member = member(e, &g.id);
        for key in self.index_keys(g) {
            self.query::<i64>(
                redis::cmd("ZADD")
                    .arg(key)
                    .arg(ms(g.created_at))
                    .arg(&member),
            )
            .await?;
        }
        Ok(())
    }

    /// Best effort, like the other lookup keys: a stale entry leads to nothing accepted.
    pub(super) async fn remove_admin_index(&self, e: &ElicitationId, g: &Grant) {
        let member = member(e, &g.id);
        for key in self.index_keys(g) {
            if let Err(err) = self
                .query::<i64>(redis::cmd("ZREM").arg(key).arg(&member))
                .await
            {
                tracing::warn!(error = %err, "could not remove an admin index entry of an unstored grant");
            }
        }
    }

    /// Counts a grant the settle script has just stored. The grant is stored whatever
    /// happens here, so a failure is logged, not returned.
    pub(super) async fn count_new_grant(&self, g: &Grant) {
        self.add_count(&count_key(g.status, &g.provider, &g.service), 1)
            .await;
    }

    /// Moves a grant's count from `before` to its current status (logged on failure, as
    /// the status change itself has happened).
    pub(super) async fn recount(&self, g: &Grant, before: GrantStatus) {
        if before != g.status {
            self.add_count(&count_key(before, &g.provider, &g.service), -1)
                .await;
            self.add_count(&count_key(g.status, &g.provider, &g.service), 1)
                .await;
        }
    }

    async fn add_count(&self, field: &str, delta: i64) {
        let done = self
            .query::<i64>(
                redis::cmd("HINCRBY")
                    .arg(self.counts_key())
                    .arg(field)
                    .arg(delta),
            )
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not update a grant count");
        }
    }

    /// Files an event under its grant, if it has one.
    pub(super) async fn index_audit_event(&self, event: &AuditEvent) -> StoreResult<()> {
        if event.grant.is_none() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        self.push_grant_audit(&mut pipe, event, &encode(event)?);
        self.pipeline::<()>(&pipe).await
    }

    /// Adds to `pipe` the commands that file `event` (encoded) on its grant's list, if it
    /// has a grant: one key, so one slot.
    pub(super) fn push_grant_audit(
        &self,
        pipe: &mut redis::Pipeline,
        event: &AuditEvent,
        encoded: &[u8],
    ) {
        let Some(grant) = &event.grant else {
            return;
        };
        let key = self.grant_audit_key(grant.as_str());
        pipe.cmd("LPUSH").arg(&key).arg(encoded).ignore();
        pipe.cmd("LTRIM")
            .arg(&key)
            .arg(0)
            .arg(AUDIT_PER_GRANT - 1)
            .ignore();
    }
}

fn subject_digest(s: &Subject) -> String {
    hex::encode(Sha256::digest(s.as_str().as_bytes()))
}

fn member(e: &ElicitationId, g: &GrantId) -> String {
    format!("{}.{}", g.as_str(), e.as_str())
}

#[async_trait]
impl AdminQueries for RedisStore {
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        after: Option<&GrantCursor>,
        limit: usize,
    ) -> StoreResult<GrantPage> {
        let key = self.index_key(&filter.index());
        let max = after.map_or_else(|| "+inf".to_owned(), |c| c.created_ms.to_string());
        let (mut out, mut examined, mut last, mut more) = (Vec::new(), 0, None, false);
        let mut offset = 0;
        'pages: loop {
            let entries: Vec<(String, f64)> = self
                .query(
                    redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(&max)
                        .arg("-inf")
                        .arg("BYSCORE")
                        .arg("REV")
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(BATCH)
                        .arg("WITHSCORES"),
                )
                .await?;
            offset += entries.len();
            for (m, score) in &entries {
                // Scores are whole milliseconds, exact in an f64.
                #[allow(clippy::cast_possible_truncation)]
                let created_ms = *score as i64;
                let Some((gid, eid)) = m.split_once('.') else {
                    continue;
                };
                // Same millisecond as the cursor: members come in descending id order,
                // so those at or above the cursor's id were on earlier pages.
                if let Some(c) = after
                    && created_ms == c.created_ms
                    && gid >= c.id.as_str()
                {
                    continue;
                }
                if out.len() >= limit || examined >= SCAN_BUDGET {
                    more = true;
                    break 'pages;
                }
                examined += 1;
                let Ok(id) = GrantId::parse(gid) else {
                    continue;
                };
                if let Some(read) = self.read_grant(eid).await?
                    && read.grant.id == id
                    && filter.matches(&read.grant)
                {
                    out.push(read.grant);
                }
                last = Some(GrantCursor { created_ms, id });
            }
            if entries.len() < BATCH {
                break;
            }
        }
        Ok(GrantPage {
            grants: out,
            next: if more { last } else { None },
        })
    }

    async fn count_grants(&self) -> StoreResult<Vec<GrantCount>> {
        let all: HashMap<String, i64> = self
            .query(redis::cmd("HGETALL").arg(self.counts_key()))
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|(k, v)| parse_count_key(&k, u64::try_from(v).ok().filter(|n| *n > 0)?))
            .collect())
    }

    async fn audit_of_grant(&self, id: &GrantId, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let limit = limit.min(AUDIT_PER_GRANT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let raw: Vec<Vec<u8>> = self
            .query(
                redis::cmd("LRANGE")
                    .arg(self.grant_audit_key(id.as_str()))
                    .arg(0)
                    .arg(limit - 1),
            )
            .await?;
        raw.iter().map(|r| decode("audit event", r)).collect()
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<&AuditCursor>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        let mut start = before.map_or_else(|| "+".to_owned(), |c| format!("({}", c.0));
        let (mut out, mut examined, mut last, mut more) = (Vec::new(), 0, None, false);
        'pages: loop {
            let entries: Vec<StreamEntry> = self
                .query(
                    redis::cmd("XREVRANGE")
                        .arg(self.keys.audit())
                        .arg(&start)
                        .arg("-")
                        .arg("COUNT")
                        .arg(BATCH),
                )
                .await?;
            for (id, fields) in &entries {
                if out.len() >= limit || examined >= AUDIT_SCAN_BUDGET {
                    more = true;
                    break 'pages;
                }
                examined += 1;
                if let Some((_, value)) = fields.iter().find(|(name, _)| name == "e") {
                    let e: AuditEvent = decode("audit event", value)?;
                    if filter.matches(&e) {
                        out.push(e);
                    }
                }
                last = Some(id.clone());
            }
            match &last {
                Some(id) if entries.len() == BATCH => start = format!("({id}"),
                _ => break,
            }
        }
        Ok(AuditPage {
            events: out,
            next: if more { last.map(AuditCursor) } else { None },
        })
    }
}

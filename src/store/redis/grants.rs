//! Grants on Redis. A grant is a hash under its elicitation's tag: `record` (the grant
//! JSON), `id` (its grant id, for scripts to check), plus `uses` and `last_used`, which
//! redemptions update without touching `record` (so redemptions never contend with each
//! other or with a revocation).
//! Lookups go through pointer keys and are trusted only when the grant confirms them.

use std::collections::HashMap;

use async_trait::async_trait;
use time::format_description::well_known::Rfc3339;

use super::keys::parse_subject_member;
use super::{CAS_ATTEMPTS, RedisStore, decode, encode};
use crate::domain::AuditEvent;
use crate::domain::{Grant, GrantChange, GrantId, HandleDigest, Subject, Timestamp};
use crate::store::{GrantStore, RedemptionLog, StoreError, StoreResult, Updated};

/// A grant as read: the stored `record` bytes (for compare-and-set) and the grant with
/// its use counters applied.
pub(super) struct Read {
    record: Vec<u8>,
    pub(super) grant: Grant,
}

impl RedisStore {
    /// The elicitation id a pointer key names, if any (remembered once found: pointers
    /// never change, and readers confirm them against the record).
    async fn follow(&self, pointer: String) -> StoreResult<Option<String>> {
        if let Some(known) = self.pointers.get(&pointer) {
            return Ok(Some(known));
        }
        let found: Option<String> = self.query(redis::cmd("GET").arg(&pointer)).await?;
        if let Some(elicitation) = &found {
            self.pointers.remember(pointer, elicitation);
        }
        Ok(found)
    }

    pub(super) async fn read_grant(&self, elicitation: &str) -> StoreResult<Option<Read>> {
        let mut fields: HashMap<String, Vec<u8>> = self
            .query(redis::cmd("HGETALL").arg(self.keys.grant(elicitation)))
            .await?;
        let Some(record) = fields.remove("record") else {
            return Ok(None);
        };
        let mut grant: Grant = decode("grant", &record)?;
        if let Some(uses) = fields.get("uses") {
            grant.use_count = std::str::from_utf8(uses)
                .ok()
                .and_then(|u| u.parse().ok())
                .ok_or_else(|| StoreError::Corrupt("grant use count".into()))?;
        }
        if let Some(at) = fields.get("last_used") {
            let at = std::str::from_utf8(at).unwrap_or_default();
            grant.last_used_at = Some(
                Timestamp::parse(at, &Rfc3339)
                    .map_err(|_| StoreError::Corrupt("grant last use time".into()))?,
            );
        }
        Ok(Some(Read { record, grant }))
    }

    /// The grant with id `id`, found through its pointer and confirmed by its id.
    async fn read_grant_by_id(&self, id: &GrantId) -> StoreResult<Option<(String, Read)>> {
        let Some(elicitation) = self.follow(self.keys.grant_pointer(id)).await? else {
            return Ok(None);
        };
        let read = self.read_grant(&elicitation).await?;
        Ok(read.filter(|r| r.grant.id == *id).map(|r| (elicitation, r)))
    }
}

#[async_trait]
impl GrantStore for RedisStore {
    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>> {
        Ok(self.read_grant_by_id(id).await?.map(|(_, r)| r.grant))
    }

    async fn grant_by_handle(&self, digest: &HandleDigest) -> StoreResult<Option<Grant>> {
        let Some(elicitation) = self.follow(self.keys.handle_pointer(digest)).await? else {
            return Ok(None);
        };
        let read = self.read_grant(&elicitation).await?;
        Ok(read.map(|r| r.grant).filter(|g| g.handle_digest == *digest))
    }

    async fn grants_of_subject(&self, subject: &Subject) -> StoreResult<Vec<Grant>> {
        let members: Vec<String> = self
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.keys.subject_index(subject))
                    .arg(0)
                    .arg(-1)
                    .arg("REV"),
            )
            .await?;
        let mut out = Vec::with_capacity(members.len());
        for member in &members {
            let Some((elicitation, grant_id)) = parse_subject_member(member) else {
                continue;
            };
            if let Some(read) = self.read_grant(elicitation).await?
                && read.grant.id.as_str() == grant_id
                && read.grant.subject == *subject
            {
                out.push(read.grant);
            }
        }
        out.sort_by_key(|g| std::cmp::Reverse(g.created_at));
        Ok(out)
    }

    async fn update_grant(&self, id: &GrantId, change: GrantChange) -> StoreResult<Updated> {
        for _ in 0..CAS_ATTEMPTS {
            let Some((elicitation, read)) = self.read_grant_by_id(id).await? else {
                return Ok(Updated::NotFound);
            };
            let mut record: Grant = decode("grant", &read.record)?;
            let mut grant = read.grant;
            if !change.apply(&mut record) {
                return Ok(Updated::Unchanged(grant));
            }
            let written: i64 = self
                .eval(
                    &self.scripts.replace_grant,
                    &[&self.keys.grant(&elicitation)],
                    &[&read.record, &encode(&record)?],
                )
                .await?;
            if written == 1 {
                let before = grant.status;
                change.apply(&mut grant);
                self.recount(&grant, before).await;
                return Ok(Updated::Applied(grant));
            }
        }
        Err(StoreError::Unavailable(
            "grant kept changing while updating".into(),
        ))
    }

    async fn record_use(&self, id: &GrantId, at: Timestamp) -> StoreResult<()> {
        // Through the pointer memo (no round trip for a grant just read).
        let Some(elicitation) = self.follow(self.keys.grant_pointer(id)).await? else {
            return Ok(());
        };
        let at = at
            .format(&Rfc3339)
            .map_err(|_| StoreError::Corrupt("use time out of range".into()))?;
        self.eval::<i64>(
            &self.scripts.record_use,
            &[&self.keys.grant(&elicitation)],
            &[at.as_bytes(), id.as_str().as_bytes()],
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl RedemptionLog for RedisStore {
    /// The use count (grant hash), the audit `XADD` (stream) and the grant's audit list.
    /// On one server they are one `MULTI` transaction in one write; in a cluster they
    /// live in three slots, so they go out together, each to its node. Done when all are.
    async fn record_redemption(
        &self,
        grant: &GrantId,
        at: Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let elicitation = self.follow(self.keys.grant_pointer(grant)).await?;
        let at = at
            .format(&Rfc3339)
            .map_err(|_| StoreError::Corrupt("use time out of range".into()))?;
        let encoded = encode(event)?;
        // The grant was just read from this hash, and grant hashes are never deleted or
        // reused, so plain commands can count (no script, whose check `record_use` needs).
        let count = |pipe: &mut redis::Pipeline| {
            if let Some(e) = &elicitation {
                let key = self.keys.grant(e);
                pipe.cmd("HINCRBY").arg(&key).arg("uses").arg(1).ignore();
                pipe.cmd("HSET")
                    .arg(&key)
                    .arg("last_used")
                    .arg(&at)
                    .ignore();
            }
        };
        if self.conn.is_single() {
            // One server: everything in one transaction, one write, one answer.
            let mut pipe = redis::pipe();
            pipe.atomic();
            count(&mut pipe);
            pipe.add_command(self.audit_command(&encoded)).ignore();
            self.push_grant_audit(&mut pipe, event, &encoded);
            return self.pipeline::<()>(&pipe).await;
        }
        // A cluster: the grant hash, the audit stream and the grant's list live in other
        // slots; the three go out together, each to its node.
        let mut counting = redis::pipe();
        counting.atomic();
        count(&mut counting);
        let mut filing = redis::pipe();
        self.push_grant_audit(&mut filing, event, &encoded);
        let sent = |pipe: redis::Pipeline| async move {
            if pipe.is_empty() {
                return Ok(());
            }
            self.pipeline::<()>(&pipe).await
        };
        let audit = self.audit_command(&encoded);
        tokio::try_join!(sent(counting), self.query::<String>(&audit), sent(filing)).map(drop)
    }
}

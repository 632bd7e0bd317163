//! The small capabilities on Redis: the audit stream, the health probe, locks,
//! upstream flow state and one-time ids seen.
//!
//! Audit is one stream (`XADD … MAXLEN ~ cap`), read newest first with `XREVRANGE`; the
//! trim is approximate, so a little more than `cap` events may be kept. Locks are
//! `SET NX PX` with a random token; release deletes only if the token still matches.
//! Flow state is `SET PX` until it expires and is taken with `GETDEL`, so two takes of one
//! state can never both succeed. A one-time id is `SET NX PXAT` its expiry: only the
//! first sighting sets it, on whichever instance it arrives.

use std::time::Duration;

use async_trait::async_trait;

use super::{RedisStore, decode, encode};
use crate::domain::{AuditEvent, FlowRecord, Timestamp};
use crate::store::{AuditLog, FlowStore, Health, LockToken, Locks, SeenIds, SeenKey, StoreResult};

type StreamEntry = (String, Vec<(String, Vec<u8>)>);

impl RedisStore {
    /// `XADD` of one audit event (encoded), trimmed to about the configured length.
    pub(super) fn audit_command(&self, event: &[u8]) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.keys.audit())
            .arg("MAXLEN")
            .arg("~")
            .arg(self.audit_max_len)
            .arg("*")
            .arg("e")
            .arg(event);
        cmd
    }
}

#[async_trait]
impl AuditLog for RedisStore {
    async fn append(&self, event: &AuditEvent) -> StoreResult<()> {
        self.query::<String>(&self.audit_command(&encode(event)?))
            .await?;
        self.index_audit_event(event).await
    }

    async fn recent(&self, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let entries: Vec<StreamEntry> = self
            .query(
                redis::cmd("XREVRANGE")
                    .arg(self.keys.audit())
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        entries
            .iter()
            .filter_map(|(_, fields)| fields.iter().find(|(name, _)| name == "e"))
            .map(|(_, value)| decode("audit event", value))
            .collect()
    }
}

#[async_trait]
impl Health for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }
}

#[async_trait]
impl Locks for RedisStore {
    async fn try_lock(&self, name: &str, ttl: Duration) -> StoreResult<Option<LockToken>> {
        let token = LockToken::generate();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.keys.lock(name))
                    .arg(token.as_str())
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms),
            )
            .await?;
        Ok(set.map(|_| token))
    }

    async fn unlock(&self, name: &str, token: &LockToken) -> StoreResult<bool> {
        let released: i64 = self
            .eval(
                &self.scripts.unlock,
                &[&self.keys.lock(name)],
                &[token.as_str().as_bytes()],
            )
            .await?;
        Ok(released == 1)
    }
}

#[async_trait]
impl FlowStore for RedisStore {
    async fn put_flow(&self, key: &str, flow: &FlowRecord) -> StoreResult<()> {
        let ttl_ms = (flow.expires_at - time::OffsetDateTime::now_utc())
            .whole_milliseconds()
            .max(1);
        self.query::<String>(
            redis::cmd("SET")
                .arg(self.keys.flow(key))
                .arg(encode(flow)?)
                .arg("PX")
                .arg(u64::try_from(ttl_ms).unwrap_or(1)),
        )
        .await
        .map(drop)
    }

    async fn take_flow(&self, key: &str, now: Timestamp) -> StoreResult<Option<FlowRecord>> {
        let value: Option<Vec<u8>> = self
            .query(redis::cmd("GETDEL").arg(self.keys.flow(key)))
            .await?;
        let flow: Option<FlowRecord> = value.map(|v| decode("flow", &v)).transpose()?;
        Ok(flow.filter(|f| f.expires_at > now))
    }
}

#[async_trait]
impl SeenIds for RedisStore {
    async fn first_sighting(&self, key: &SeenKey, until: Timestamp) -> StoreResult<bool> {
        let set: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.keys.seen(key))
                    .arg("1")
                    .arg("NX")
                    .arg("PXAT")
                    .arg(super::ms(until).max(1)),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn forget(&self, key: &SeenKey) -> StoreResult<()> {
        self.query::<i64>(redis::cmd("DEL").arg(self.keys.seen(key)))
            .await
            .map(drop)
    }
}

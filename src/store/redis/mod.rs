//! The Redis backend, for production and for many broker instances sharing one Redis
//! (standalone, managed, or Redis Cluster). Every guarantee of the embedded store holds
//! here too; the contract suite runs against a single server and a 3-node cluster.
//!
//! Layout (`P` is `store.key_prefix`, `{e}` an elicitation id used as the hash tag):
//!
//! | key | type | what | lifetime |
//! |---|---|---|---|
//! | `P{e}:elicitation` | string | elicitation JSON | expiry + 1 day (`PXAT`) |
//! | `P{e}:grant` | hash | `record` (grant JSON), `id`, `uses`, `last_used` | kept |
//! | `Pgrant-id:<grant id>` | string | `e` | kept, never changed |
//! | `Phandle:<digest hex>` | string | `e` | kept, never changed |
//! | `Psubject:<sha256(subject)>` | zset | `e.g` members, score = created ms | kept |
//! | `Pelicitations-by-expiry` | zset | `e` members, score = expiry ms | trimmed by sweep |
//! | `Paudit` | stream | field `e` = event JSON | `MAXLEN ~ store.audit_max_len` |
//! | `Psession:<id>` | string | tower-sessions record JSON | until the session's expiry |
//! | `Plock:<name>` | string | holder's random token | the lock's ttl (`PX`) |
//! | `Pseen:<sha256>` | string | `1`: a one-time id (SET `jti`) seen | its expiry (`PXAT`) |
//! | `Pgrants:{all,subject:<sha256>,provider:<id>,service:<id>}` | zset | `g.e` members, score = created ms | kept |
//! | `Pgrant-counts` | hash | `status\|provider\|service` → count | kept |
//! | `Paudit-of:<grant id>` | list | that grant's event JSON, newest first | trimmed to 1000 |
//!
//! The admin console's keys are described in `admin.rs`.
//!
//! Invariants and how they are kept:
//! - **Settling is atomic with storing the grant.** An elicitation and its grant share the
//!   hash tag `{e}`, so one Lua script can touch both, even in a cluster. The script is a
//!   compare-and-set: it writes the settled elicitation (and creates the grant) only if the
//!   elicitation still holds exactly the bytes that were read and judged pending and
//!   unexpired. Of concurrent settlements exactly one matches.
//! - **A grant is findable from the moment it is stored.** The lookup keys (grant id,
//!   handle digest, subject index) live in other slots, so they are written *before* the
//!   script runs. When the script reports the elicitation was not pending, they are removed
//!   again. They may therefore point at nothing (briefly, or for good if the cleanup itself
//!   failed), so **a pointer is only trusted when the record it leads to confirms it**:
//!   readers check the grant's id, handle digest or subject and otherwise answer "none".
//!   When the script's outcome is unknown (a timeout), nothing is cleaned up.
//! - **Read-modify-write of a grant is atomic.** Revocation is a compare-and-set of the
//!   `record` field (retried on conflict); a redemption increments `uses` and sets
//!   `last_used` in one script, so concurrent redemptions never contend or lose a count.
//!   Readers overlay `uses`/`last_used` on the record.
//! - **Expiry**: elicitation keys carry a TTL of expiry + [`super::ELICITATION_RETENTION`],
//!   the retention `Broker::sweep` uses, so Redis drops them even if no sweep runs. The
//!   sweep removes the same records on time (an expiry index makes that a range query,
//!   never a key scan); both agree on what goes. Sessions expire with their record.
//! - **Audit order**: one stream; entry ids grow monotonically, `recent` reads backwards.
//! - **Failure**: every call is bounded by connect + response timeout; a Redis that is down
//!   or slow is `StoreError::Unavailable` (503 at the edge), never a hang or a panic. The
//!   connection reconnects on its own when Redis is back.
//! - **Redemptions** cost two round trips: the grant hash (its pointer is remembered in
//!   process, [`pointers`], once followed), then the use-count script and the audit
//!   `XADD` sent together on the multiplexed connection. The two keys are in different
//!   slots, so they are not one script (nor one pipeline in a cluster); the redemption
//!   answers only when both are done.
//! - No handle, credential or password reaches a key, a log line or an error.

use std::time::Duration;

use redis::Script;

use super::{StoreError, StoreResult};
use crate::config::settings::{RedisSettings, RedisTarget};

mod admin;
mod conn;
mod elicitations;
mod grants;
mod keys;
mod misc;
mod pointers;
mod scripts;
mod services;
mod sessions;

use conn::Conn;
use keys::Keys;

/// All capabilities on one Redis connection (a multiplexed, self-reconnecting connection,
/// or a cluster connection; the domain code never sees which).
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    keys: Keys,
    audit_max_len: u64,
    scripts: scripts::Scripts,
    pointers: std::sync::Arc<pointers::Pointers>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Sets up the connection. A single server is connected lazily (the broker starts, and
    /// `/readyz` says 503, while Redis is down); a cluster needs its topology up front.
    pub async fn connect(settings: &RedisSettings) -> StoreResult<Self> {
        let conn = match &settings.target {
            RedisTarget::Single(url) => Conn::single(url, settings)?,
            RedisTarget::Cluster(urls) => Conn::cluster(urls, settings).await?,
        };
        Ok(Self {
            conn,
            keys: Keys::new(&settings.key_prefix),
            audit_max_len: settings.audit_max_len,
            scripts: scripts::Scripts::new(),
            pointers: Default::default(),
        })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> StoreResult<T> {
        self.conn.query(cmd).await
    }

    async fn pipeline<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> StoreResult<T> {
        self.conn.pipeline(pipe).await
    }

    async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> StoreResult<T> {
        self.conn.eval(script, keys, args).await
    }
}

/// How many times a compare-and-set is retried when another writer got there first.
const CAS_ATTEMPTS: usize = 32;

fn unavailable(e: &redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn ms(t: crate::domain::Timestamp) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Bounded wait for one command: connecting plus answering, with a little slack.
fn deadline(settings: &RedisSettings) -> Duration {
    settings.connect_timeout + settings.response_timeout + Duration::from_millis(100)
}

/// A record as stored. Our plain structs always serialise; should one ever fail, the write
/// is refused rather than storing an empty record.
fn encode<T: serde::Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("encoding a record: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

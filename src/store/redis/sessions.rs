//! tower-sessions on Redis: one string per session, expiring with the record
//! (`PXAT expiry`), so any broker instance sees a session any other one created and Redis
//! drops it when it ends. Creation uses `SET NX` and draws a new id on a collision, so a
//! new session never overwrites another.

use async_trait::async_trait;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;

use super::{RedisStore, decode, encode};
use crate::store::StoreError;

/// Ids drawn before giving up; a 128-bit random id collides essentially never.
const CREATE_ATTEMPTS: usize = 8;

fn backend(e: StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn expiry_ms(record: &Record) -> i64 {
    i64::try_from(record.expiry_date.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        for _ in 0..CREATE_ATTEMPTS {
            let set: Option<String> = self
                .query(
                    redis::cmd("SET")
                        .arg(self.keys.session(&record.id.to_string()))
                        .arg(encode(record).map_err(backend)?)
                        .arg("NX")
                        .arg("PXAT")
                        .arg(expiry_ms(record)),
                )
                .await
                .map_err(backend)?;
            if set.is_some() {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(session_store::Error::Backend(
            "no free session id found".into(),
        ))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.query::<()>(
            redis::cmd("SET")
                .arg(self.keys.session(&record.id.to_string()))
                .arg(encode(record).map_err(backend)?)
                .arg("PXAT")
                .arg(expiry_ms(record)),
        )
        .await
        .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let raw: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.keys.session(&id.to_string())))
            .await
            .map_err(backend)?;
        let record: Option<Record> = raw
            .map(|r| decode("session", &r))
            .transpose()
            .map_err(backend)?;
        Ok(record.filter(|r| r.expiry_date > time::OffsetDateTime::now_utc()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.query::<i64>(redis::cmd("DEL").arg(self.keys.session(&id.to_string())))
            .await
            .map(drop)
            .map_err(backend)
    }
}

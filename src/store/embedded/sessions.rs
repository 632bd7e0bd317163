//! Sign-in sessions ([`SessionStore`]) and upstream authorization flows ([`FlowStore`])
//! on the embedded store: short-lived records, each read on its own; their expiry is in
//! the record, enforced on read and by the sweep ([`super::elicitations`]).

use async_trait::async_trait;
use redb::ReadableTable;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;

use super::db::EmbeddedStore;
use super::tables::{FLOWS, SESSIONS, decode, encode};
use crate::domain::{FlowRecord, Timestamp};
use crate::store::{FlowStore, StoreError, StoreResult};

#[async_trait]
impl FlowStore for EmbeddedStore {
    async fn put_flow(&self, key: &str, flow: &FlowRecord) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), encode(flow)?);
        self.write(move |tx| {
            tx.open_table(FLOWS)?
                .insert(key.as_str(), value.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn take_flow(&self, key: &str, now: Timestamp) -> StoreResult<Option<FlowRecord>> {
        let key = key.to_owned();
        self.write(move |tx| {
            let mut flows = tx.open_table(FLOWS)?;
            // Decode before removing: an unreadable flow stays for an operator to look at.
            let taken = flows
                .get(key.as_str())?
                .map(|v| decode::<FlowRecord>(v.value()))
                .transpose()?;
            if taken.is_some() {
                flows.remove(key.as_str())?;
            }
            Ok(taken.filter(|f| f.expires_at > now))
        })
        .await
    }
}

fn session_error(e: StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Draw ids until one is free, in the same transaction as the insert.
        let mut candidate = record.clone();
        let stored = self
            .write(move |tx| {
                let mut t = tx.open_table(SESSIONS)?;
                while t.get(candidate.id.to_string().as_str())?.is_some() {
                    candidate.id = Id::default();
                }
                let value = encode(&candidate)?;
                t.insert(candidate.id.to_string().as_str(), value.as_slice())?;
                drop(t);
                Ok(candidate)
            })
            .await
            .map_err(session_error)?;
        record.id = stored.id;
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (key, value) = (
            record.id.to_string(),
            encode(record).map_err(StoreError::from),
        );
        let value = value.map_err(session_error)?;
        self.write(move |tx| {
            tx.open_table(SESSIONS)?
                .insert(key.as_str(), value.as_slice())?;
            Ok(())
        })
        .await
        .map_err(session_error)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let record: Option<Record> = self.get(SESSIONS, &id.to_string()).map_err(session_error)?;
        Ok(record.filter(|r| r.expiry_date > time::OffsetDateTime::now_utc()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let key = id.to_string();
        self.write(move |tx| {
            tx.open_table(SESSIONS)?.remove(key.as_str())?;
            Ok(())
        })
        .await
        .map_err(session_error)
    }
}

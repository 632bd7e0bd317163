//! Registered services ([`ServiceRegistry`]) on the embedded store: a table of records by
//! id, an index of credential digests, and a table of initial access tokens. A change of a
//! service compares the stored bytes with the record the caller read and rewrites the
//! credential index in the same write transaction.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::db::EmbeddedStore;
use super::seen::unix_ms;
use super::tables::{Fail, INITIAL_TOKENS, SERVICE_CREDENTIALS, SERVICES, decode, encode};
use crate::domain::{InitialAccessToken, RegisteredService, ServiceId, Timestamp, TokenDigest};
use crate::store::{ServiceRegistry, StoreResult};

/// Whether the record stored under `service`'s id is still exactly `service`.
fn unchanged(tx: &WriteTransaction, service: &RegisteredService) -> Result<bool, Fail> {
    let expected = encode(service)?;
    let services = tx.open_table(SERVICES)?;
    let current = services.get(service.id.as_str())?;
    Ok(current.is_some_and(|v| v.value() == expected.as_slice()))
}

fn index(tx: &WriteTransaction, service: &RegisteredService, add: bool) -> Result<(), Fail> {
    let mut credentials = tx.open_table(SERVICE_CREDENTIALS)?;
    for digest in service.credential_digests() {
        if add {
            credentials.insert(digest.to_hex().as_str(), service.id.as_str())?;
        } else {
            credentials.remove(digest.to_hex().as_str())?;
        }
    }
    Ok(())
}

#[async_trait]
impl ServiceRegistry for EmbeddedStore {
    async fn registered_services(&self) -> StoreResult<Vec<RegisteredService>> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let services = tx.open_table(SERVICES)?;
            let mut out = Vec::new();
            for entry in services.iter()? {
                let (_, value) = entry?;
                out.push(decode(value.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn registered_service(&self, id: &ServiceId) -> StoreResult<Option<RegisteredService>> {
        self.get(SERVICES, id.as_str())
    }

    async fn service_by_credential(
        &self,
        digest: &TokenDigest,
    ) -> StoreResult<Option<RegisteredService>> {
        let key = digest.to_hex();
        self.read_now(|db| {
            let tx = db.begin_read()?;
            let credentials = tx.open_table(SERVICE_CREDENTIALS)?;
            let Some(id) = credentials.get(key.as_str())? else {
                return Ok(None);
            };
            let services = tx.open_table(SERVICES)?;
            let value = services.get(id.value())?;
            value.map(|v| decode(v.value())).transpose()
        })
    }

    async fn insert_service(&self, service: &RegisteredService) -> StoreResult<bool> {
        let service = service.clone();
        self.write(move |tx| {
            let value = encode(&service)?;
            {
                let mut services = tx.open_table(SERVICES)?;
                if services.get(service.id.as_str())?.is_some() {
                    return Ok(false);
                }
                services.insert(service.id.as_str(), value.as_slice())?;
            }
            index(tx, &service, true)?;
            Ok(true)
        })
        .await
    }

    async fn replace_service(
        &self,
        old: &RegisteredService,
        new: &RegisteredService,
    ) -> StoreResult<bool> {
        let (old, new) = (old.clone(), new.clone());
        self.write(move |tx| {
            if old.id != new.id || !unchanged(tx, &old)? {
                return Ok(false);
            }
            let value = encode(&new)?;
            index(tx, &old, false)?;
            tx.open_table(SERVICES)?
                .insert(new.id.as_str(), value.as_slice())?;
            index(tx, &new, true)?;
            Ok(true)
        })
        .await
    }

    async fn delete_service(&self, old: &RegisteredService) -> StoreResult<bool> {
        let old = old.clone();
        self.write(move |tx| {
            if !unchanged(tx, &old)? {
                return Ok(false);
            }
            index(tx, &old, false)?;
            tx.open_table(SERVICES)?.remove(old.id.as_str())?;
            Ok(true)
        })
        .await
    }

    async fn insert_initial_token(&self, token: &InitialAccessToken) -> StoreResult<()> {
        let token = token.clone();
        self.write(move |tx| {
            let value = encode(&token)?;
            tx.open_table(INITIAL_TOKENS)?
                .insert(token.sha256.to_hex().as_str(), value.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn use_initial_token(
        &self,
        digest: &TokenDigest,
        now: Timestamp,
    ) -> StoreResult<Option<InitialAccessToken>> {
        let (key, now) = (digest.to_hex(), unix_ms(now));
        self.write(move |tx| {
            let mut tokens = tx.open_table(INITIAL_TOKENS)?;
            let found: Option<InitialAccessToken> = tokens
                .get(key.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            let Some(mut token) = found else {
                return Ok(None);
            };
            if token.uses_left == 0 || unix_ms(token.expires_at) <= now {
                return Ok(None);
            }
            token.uses_left -= 1;
            let value = encode(&token)?;
            tokens.insert(key.as_str(), value.as_slice())?;
            Ok(Some(token))
        })
        .await
    }

    async fn initial_tokens(&self) -> StoreResult<Vec<InitialAccessToken>> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let tokens = tx.open_table(INITIAL_TOKENS)?;
            let mut out = Vec::new();
            for entry in tokens.iter()? {
                let (_, value) = entry?;
                out.push(decode(value.value())?);
            }
            Ok(out)
        })
        .await
    }
}

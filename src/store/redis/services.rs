//! Registered services ([`ServiceRegistry`]) on Redis: hashes under the one hash tag
//! `{registry}` (records by id, credential digest → id, initial access tokens with their
//! uses and expiries apart), so each change is one script on one node, in a cluster too.
//! A change of a service compares the stored bytes with the record the caller read.

use async_trait::async_trait;

use super::keys::RegistryPart;
use super::{RedisStore, decode, encode, ms};
use crate::domain::{InitialAccessToken, RegisteredService, ServiceId, Timestamp, TokenDigest};
use crate::store::{ServiceRegistry, StoreResult};

impl RedisStore {
    fn registry_keys(&self) -> [String; 2] {
        [
            self.keys.registry(RegistryPart::Services),
            self.keys.registry(RegistryPart::Credentials),
        ]
    }

    async fn hash_values<T: serde::de::DeserializeOwned>(
        &self,
        part: RegistryPart,
        what: &str,
    ) -> StoreResult<Vec<(String, T)>> {
        let all: Vec<(String, Vec<u8>)> = self
            .query(redis::cmd("HGETALL").arg(self.keys.registry(part)))
            .await?;
        all.into_iter()
            .map(|(k, v)| Ok((k, decode(what, &v)?)))
            .collect()
    }

    /// Replaces `old` by `new`, or deletes it when `new` is `None`.
    async fn swap_service(
        &self,
        old: &RegisteredService,
        new: Option<&RegisteredService>,
    ) -> StoreResult<bool> {
        let old_digests = old.credential_digests();
        let mut args: Vec<Vec<u8>> = vec![
            old.id.as_str().as_bytes().to_vec(),
            encode(old)?,
            new.map(encode).transpose()?.unwrap_or_default(),
            old_digests.len().to_string().into_bytes(),
        ];
        args.extend(old_digests.iter().map(|d| d.to_hex().into_bytes()));
        args.extend(
            new.iter()
                .flat_map(|n| n.credential_digests())
                .map(|d| d.to_hex().into_bytes()),
        );
        let [services, credentials] = self.registry_keys();
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let done: i64 = self
            .eval(
                &self.scripts.replace_service,
                &[&services, &credentials],
                &args,
            )
            .await?;
        Ok(done == 1)
    }
}

#[async_trait]
impl ServiceRegistry for RedisStore {
    async fn registered_services(&self) -> StoreResult<Vec<RegisteredService>> {
        let all = self
            .hash_values(RegistryPart::Services, "registered service")
            .await?;
        Ok(all.into_iter().map(|(_, s)| s).collect())
    }

    async fn registered_service(&self, id: &ServiceId) -> StoreResult<Option<RegisteredService>> {
        let value: Option<Vec<u8>> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.keys.registry(RegistryPart::Services))
                    .arg(id.as_str()),
            )
            .await?;
        value.map(|v| decode("registered service", &v)).transpose()
    }

    async fn service_by_credential(
        &self,
        digest: &TokenDigest,
    ) -> StoreResult<Option<RegisteredService>> {
        let id: Option<String> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.keys.registry(RegistryPart::Credentials))
                    .arg(digest.to_hex()),
            )
            .await?;
        let Some(id) = id.and_then(|id| ServiceId::parse(&id).ok()) else {
            return Ok(None);
        };
        // The index moves with the record in one script; still, trust it only when the
        // record confirms it.
        Ok(self
            .registered_service(&id)
            .await?
            .filter(|s| s.credential_digests().contains(digest)))
    }

    async fn insert_service(&self, service: &RegisteredService) -> StoreResult<bool> {
        let mut args: Vec<Vec<u8>> =
            vec![service.id.as_str().as_bytes().to_vec(), encode(service)?];
        args.extend(
            service
                .credential_digests()
                .iter()
                .map(|d| d.to_hex().into_bytes()),
        );
        let [services, credentials] = self.registry_keys();
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let done: i64 = self
            .eval(
                &self.scripts.insert_service,
                &[&services, &credentials],
                &args,
            )
            .await?;
        Ok(done == 1)
    }

    async fn replace_service(
        &self,
        old: &RegisteredService,
        new: &RegisteredService,
    ) -> StoreResult<bool> {
        if old.id != new.id {
            return Ok(false);
        }
        self.swap_service(old, Some(new)).await
    }

    async fn delete_service(&self, old: &RegisteredService) -> StoreResult<bool> {
        self.swap_service(old, None).await
    }

    async fn insert_initial_token(&self, token: &InitialAccessToken) -> StoreResult<()> {
        let digest = token.sha256.to_hex();
        let hset = |part, value: Vec<u8>| {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(self.keys.registry(part)).arg(&digest).arg(value);
            cmd
        };
        // Its uses are written last: until then the token cannot be used.
        for cmd in [
            hset(RegistryPart::InitialTokens, encode(token)?),
            hset(
                RegistryPart::InitialExpiry,
                ms(token.expires_at).to_string().into_bytes(),
            ),
            hset(
                RegistryPart::InitialUses,
                token.uses_left.to_string().into_bytes(),
            ),
        ] {
            self.query::<i64>(&cmd).await?;
        }
        Ok(())
    }

    async fn use_initial_token(
        &self,
        digest: &TokenDigest,
        now: Timestamp,
    ) -> StoreResult<Option<InitialAccessToken>> {
        let (uses, expiry) = (
            self.keys.registry(RegistryPart::InitialUses),
            self.keys.registry(RegistryPart::InitialExpiry),
        );
        let hex = digest.to_hex();
        let now = ms(now).to_string();
        let left: i64 = self
            .eval(
                &self.scripts.use_initial_token,
                &[&uses, &expiry],
                &[hex.as_bytes(), now.as_bytes()],
            )
            .await?;
        let Ok(left) = u32::try_from(left) else {
            return Ok(None);
        };
        let value: Option<Vec<u8>> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.keys.registry(RegistryPart::InitialTokens))
                    .arg(&hex),
            )
            .await?;
        let token: Option<InitialAccessToken> = value
            .map(|v| decode("initial access token", &v))
            .transpose()?;
        Ok(token.map(|t| InitialAccessToken {
            uses_left: left,
            ..t
        }))
    }

    async fn initial_tokens(&self) -> StoreResult<Vec<InitialAccessToken>> {
        let minted: Vec<(String, InitialAccessToken)> = self
            .hash_values(RegistryPart::InitialTokens, "initial access token")
            .await?;
        let uses: std::collections::HashMap<String, u32> = self
            .query(redis::cmd("HGETALL").arg(self.keys.registry(RegistryPart::InitialUses)))
            .await?;
        Ok(minted
            .into_iter()
            .map(|(digest, t)| InitialAccessToken {
                uses_left: uses.get(&digest).copied().unwrap_or(0),
                ..t
            })
            .collect())
    }
}

//! The one connection type the Redis store talks through: a single server behind a
//! `ConnectionManager` (multiplexed, reconnects by itself) or a Redis Cluster connection
//! (routes each command by its keys' slot, follows MOVED/ASK, reconnects by itself).
//! Every command is bounded by an overall deadline, so a dead or stalled Redis turns into
//! `StoreError::Unavailable` quickly instead of a hung request.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Script, Value};

use super::{deadline, unavailable};
use crate::config::settings::{RedisSettings, RedisUrl};
use crate::store::{StoreError, StoreResult};

#[derive(Clone)]
pub(super) struct Conn {
    link: Link,
    deadline: Duration,
}

#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// A lazily connected single server: nothing is dialled until the first command.
    pub(super) fn single(url: &RedisUrl, settings: &RedisSettings) -> StoreResult<Self> {
        let client = redis::Client::open(url.expose()).map_err(|e| config_error(&e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            // Few, short reconnect attempts per outage: callers get an answer (503) fast,
            // and the next command starts a new attempt, so recovery needs no restart.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| config_error(&e))?;
        Ok(Self {
            link: Link::Single(manager),
            deadline: deadline(settings),
        })
    }

    /// A cluster connection; reads the slot map from the seed nodes now.
    pub(super) async fn cluster(urls: &[RedisUrl], settings: &RedisSettings) -> StoreResult<Self> {
        let client = ClusterClient::builder(urls.iter().map(RedisUrl::expose))
            .connection_timeout(settings.connect_timeout)
            .response_timeout(settings.response_timeout)
            .retries(3)
            .build()
            .map_err(|e| config_error(&e))?;
        let connection =
            tokio::time::timeout(deadline(settings) * 2, client.get_async_connection())
                .await
                .map_err(|_| StoreError::Unavailable("redis cluster: connecting timed out".into()))?
                .map_err(|e| unavailable(&e))?;
        Ok(Self {
            link: Link::Cluster(connection),
            deadline: deadline(settings),
        })
    }

    pub(super) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
        let mut link = self.link.clone();
        self.bounded(cmd.query_async(&mut link)).await
    }

    /// True for a single server (one connection), where any keys may share a pipeline.
    pub(super) fn is_single(&self) -> bool {
        matches!(self.link, Link::Single(_))
    }

    /// Sends `pipe` in one write. In a cluster its commands must all name keys of one
    /// hash slot; a single server takes any keys.
    pub(super) async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> StoreResult<T> {
        let mut link = self.link.clone();
        self.bounded(pipe.query_async(&mut link)).await
    }

    pub(super) async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> StoreResult<T> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut link = self.link.clone();
        self.bounded(invocation.invoke_async(&mut link)).await
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(unavailable(&e)),
            Err(_) => Err(StoreError::Unavailable("redis: no answer in time".into())),
        }
    }
}

/// Errors found while setting up a client are about the URL; they never echo it (it may
/// hold a password), only what the driver says is wrong.
fn config_error(e: &redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis client setup: {:?}", e.kind()))
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(c) => c.req_packed_commands(cmd, offset, count),
            Link::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

//! The Redis store (production). All state lives in Redis; keys carry hash tags so that
//! Redis Cluster works (`keys.rs`): everything of an account's leads and catalog shares
//! the account's slot, so each multi-key step is one Lua script (`scripts.rs`,
//! `lead_scripts.rs`); a browser's keys share its own slot; page views are
//! group-committed (`writer.rs`, with `sightings.rs`).
//!
//! Generic over the connection: a `ConnectionManager` (one server, reconnects by itself)
//! or a cluster connection — both implement `ConnectionLike`. Every round trip goes
//! through `guarded`: the breaker refuses at once while Redis is down, and the request's
//! round trips are counted (`store::round_trips`).

mod breaker;
mod catalog;
mod codec;
mod keys;
mod lead_scripts;
mod leads;
mod live;
mod schedule;
mod scripts;
mod sightings;
mod slots;
mod visitors;
mod writer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::{FromRedisValue, RedisError, RedisResult, ScriptInvocation};
use async_trait::async_trait;

pub use keys::Keys;

use self::breaker::Breaker;
use self::slots::Batch;
use self::writer::{Connect, PageViewWriter};
use super::{Store, StoreError, StoreResult, round_trips};

/// How the Redis store is laid out and how long it keeps finished events.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub key_prefix: String,
    /// Shards of the delivery schedule: each is one key (one slot of a cluster).
    pub schedule_shards: u32,
    /// Delivered, dead and cancelled events are kept this long.
    pub event_retention_secs: u64,
    /// A command that gets no answer in this time fails (the request answers 503).
    pub response_timeout: Duration,
}

pub struct RedisStore<C> {
    con: C,
    keys: Keys,
    options: RedisOptions,
    description: String,
    page_views: PageViewWriter<C>,
    /// A node to subscribe to live updates on (in a cluster, PUBLISH reaches every node).
    pubsub_url: String,
    /// A cluster: commands of different slots go in separate pipelines.
    by_slot: bool,
    breaker: Arc<Breaker>,
}

pub(crate) fn unavailable(message: &str) -> StoreError {
    StoreError::Unavailable(message.to_owned())
}

fn redis_error(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A URL without its password, for logs.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "redis (unparsable URL)".to_owned(),
    }
}

impl RedisStore<ConnectionManager> {
    /// Connects to one Redis server; the connection reconnects by itself afterwards.
    pub async fn connect(url: &str, options: RedisOptions) -> StoreResult<Self> {
        let client = ::redis::Client::open(url).map_err(redis_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let con = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(redis_error)?;
        let connect: Connect<ConnectionManager> = Arc::new(move || {
            let (client, config) = (client.clone(), config.clone());
            Box::pin(async move { ConnectionManager::new_with_config(client, config).await })
        });
        Ok(Self::with_connection(
            con,
            connect,
            redact(url),
            url,
            false,
            options,
        ))
    }
}

impl RedisStore<::redis::cluster_async::ClusterConnection> {
    /// Connects to a Redis Cluster through any of its nodes.
    pub async fn connect_cluster(urls: &[String], options: RedisOptions) -> StoreResult<Self> {
        let client = ::redis::cluster::ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(options.response_timeout)
            .retries(2)
            .build()
            .map_err(redis_error)?;
        let con = client.get_async_connection().await.map_err(redis_error)?;
        let connect: Connect<::redis::cluster_async::ClusterConnection> = Arc::new(move || {
            let client = client.clone();
            Box::pin(async move { client.get_async_connection().await })
        });
        let description = format!(
            "redis cluster ({})",
            urls.iter()
                .map(|u| redact(u))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let pubsub_url = urls.first().cloned().unwrap_or_default();
        Ok(Self::with_connection(
            con,
            connect,
            description,
            &pubsub_url,
            true,
            options,
        ))
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn with_connection(
        con: C,
        connect: Connect<C>,
        description: String,
        pubsub_url: &str,
        by_slot: bool,
        options: RedisOptions,
    ) -> Self {
        let keys = Keys::new(&options.key_prefix, options.schedule_shards);
        let breaker = Arc::new(Breaker::default());
        let page_views = PageViewWriter::new(connect, keys.clone(), by_slot, breaker.clone());
        Self {
            con,
            keys,
            options,
            description,
            page_views,
            pubsub_url: pubsub_url.to_owned(),
            by_slot,
            breaker,
        }
    }

    /// Every round trip goes through here: refused at once while Redis is down, counted
    /// for the request that makes it.
    async fn guarded<T>(&self, command: impl Future<Output = RedisResult<T>>) -> StoreResult<T> {
        self.breaker.admit()?;
        round_trips::note();
        let result = command.await;
        self.breaker.record(&result);
        result.map_err(redis_error)
    }

    async fn invoke<T: FromRedisValue>(&self, script: &ScriptInvocation<'_>) -> StoreResult<T> {
        self.guarded(script.invoke_async(&mut self.con.clone()))
            .await
    }

    async fn run(&self, batch: Batch) -> StoreResult<Vec<::redis::Value>> {
        self.guarded(batch.run(&self.con)).await
    }

    fn batch(&self) -> Batch {
        Batch::new(self.by_slot)
    }

    async fn query<T: FromRedisValue>(&self, cmd: &::redis::Cmd) -> StoreResult<T> {
        self.guarded(cmd.query_async(&mut self.con.clone())).await
    }
}

#[async_trait]
impl<C> Store for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn describe(&self) -> String {
        self.description.clone()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.query::<String>(&::redis::cmd("PING")).await.map(drop)
    }
}

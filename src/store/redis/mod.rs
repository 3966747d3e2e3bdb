//! The Redis store (production). All state lives in Redis; keys carry hash tags so that
//! Redis Cluster works (`keys.rs`): everything of an account's leads and catalog shares
//! the account's slot, so each multi-key step is one Lua script (`scripts.rs`,
//! `lead_scripts.rs`); a browser's keys share its own slot; page views are
//! group-committed (`writer/`, with `sightings.rs`).
//!
//! Generic over the connection: a `ConnectionManager` (one server, reconnects by itself),
//! a cluster connection (follows `MOVED`/`ASK` and the new slot map after a failover), or
//! a connection to the primary Redis Sentinel names (`sentinel.rs`, follows a failover) —
//! all implement `ConnectionLike`. Each thread makes its round trips on a connection of
//! its own (`per_thread.rs`), and every round trip goes through `guarded`: the breaker
//! refuses at once while Redis is down, and the request's round trips are counted
//! (`store::round_trips`).
//!
//! **Durable writes.** Redis replicates asynchronously: a write a primary acknowledged and
//! died before sending on is gone after the failover. With durable writes on, the writes
//! a user would notice — a form submission, a move, an accept, a decline, fired events and
//! each delivery's record — end their pipeline with `WAIT 1` (in the same round trip, on
//! a connection of their own: `durable.rs`) and answer `Unavailable` (503, the client
//! retries) when no replica confirms them in time. Page views never wait: one lost in a
//! failover is acceptable.

mod breaker;
mod catalog;
mod codec;
mod contact_writes;
mod durable;
mod keys;
mod lead_scripts;
mod lead_writes;
mod leads;
mod live;
mod origins;
mod page_view_codec;
mod per_thread;
mod privacy;
mod quotas;
mod schedule;
mod scripts;
mod sentinel;
mod sightings;
mod slots;
mod stats;
mod visitors;
mod watches;
mod writer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::{
    AsyncConnectionConfig, FromRedisValue, RedisError, RedisResult, ScriptInvocation, Value,
};
use async_trait::async_trait;

pub use keys::Keys;
pub use sentinel::SentinelConnection;

use self::breaker::Breaker;
use self::durable::{Pool, has_replicas, wait_ms};
use self::per_thread::PerThread;
use self::scripts::Call;
use self::sentinel::Locator;
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
    /// Whether durable writes wait for a replica; `None`: when Redis reports one at start.
    pub durable_writes: Option<bool>,
}

/// Where live updates are subscribed to.
enum PubSub {
    /// The first of these nodes that answers (one server, or any node of a cluster, where
    /// PUBLISH reaches every node).
    Nodes(Vec<String>),
    /// The primary Sentinel names now.
    Sentinel(Arc<Locator>),
}

pub struct RedisStore<C> {
    /// The connection of a thread whose own is not open yet, or that has none (not a
    /// single-threaded runtime's; the store's start): `per_thread.rs`.
    con: C,
    /// Each thread's own connection.
    threads: PerThread<C>,
    keys: Keys,
    options: RedisOptions,
    description: String,
    page_views: PageViewWriter<C>,
    /// Site origins, which page views are stored relative to.
    origins: Arc<origins::SiteOrigins>,
    pubsub: PubSub,
    /// The connections of durable writes (`None`: writes do not wait for a replica).
    durable: Option<Pool<C>>,
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
        Self::with_connection(
            con,
            connect,
            redact(url),
            PubSub::Nodes(vec![url.to_owned()]),
            false,
            options,
        )
        .await
    }
}

impl RedisStore<SentinelConnection> {
    /// Connects to the primary that `sentinels` name `master`, and follows it; logs in to
    /// it as `login` says (`store.redis_url`: its user, password, database and TLS;
    /// empty: none).
    pub async fn connect_sentinel(
        sentinels: &[String],
        master: &str,
        login: &str,
        options: RedisOptions,
    ) -> StoreResult<Self> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(options.response_timeout));
        let locator = Locator::start(sentinels, master, login, config)
            .await
            .map_err(redis_error)?;
        let con = locator.connect().await.map_err(redis_error)?;
        let connect: Connect<SentinelConnection> = {
            let locator = locator.clone();
            Arc::new(move || {
                let locator = locator.clone();
                Box::pin(async move { locator.connect().await })
            })
        };
        Self::with_connection(
            con,
            connect,
            locator.describe(),
            PubSub::Sentinel(locator),
            false,
            options,
        )
        .await
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
        Self::with_connection(
            con,
            connect,
            description,
            PubSub::Nodes(urls.to_vec()),
            true,
            options,
        )
        .await
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn with_connection(
        con: C,
        connect: Connect<C>,
        description: String,
        pubsub: PubSub,
        by_slot: bool,
        options: RedisOptions,
    ) -> StoreResult<Self> {
        let keys = Keys::new(&options.key_prefix, options.schedule_shards);
        let breaker = Arc::new(Breaker::default());
        let origins = Arc::new(origins::SiteOrigins::default());
        let page_views = PageViewWriter::new(
            connect.clone(),
            keys.clone(),
            by_slot,
            breaker.clone(),
            origins.clone(),
        )
        .within(options.response_timeout);
        let durable = match options.durable_writes {
            Some(on) => on,
            None => has_replicas(&con).await?,
        };
        let wait_ms = durable.then(|| wait_ms(options.response_timeout));
        tracing::info!(
            durable_writes = durable,
            wait_ms = wait_ms.unwrap_or(0),
            "forms, moves and events {}",
            if durable {
                "wait for one replica before footfall answers"
            } else {
                "do not wait for a replica"
            }
        );
        Ok(Self {
            threads: PerThread::new(connect.clone(), con.clone()),
            con,
            keys,
            options,
            description,
            page_views,
            origins,
            pubsub,
            durable: wait_ms.map(|ms| Pool::new(connect.clone(), ms)),
            by_slot,
            breaker,
        })
    }

    /// The connection of this thread's round trips: its own once open (`per_thread.rs`).
    fn con(&self) -> C {
        self.threads.get().unwrap_or_else(|| self.con.clone())
    }

    /// Every round trip goes through here: refused at once while Redis is down, counted
    /// for the request that makes it, and given only what is left of the request's time
    /// budget (`store::budget`): running out of it counts as Redis not answering, unless
    /// the request had spent more than half of it elsewhere (then the cut-off says more
    /// about that request than about Redis, and the breaker stays as it was).
    async fn guarded<T>(&self, command: impl Future<Output = RedisResult<T>>) -> StoreResult<T> {
        self.breaker.admit()?;
        round_trips::note();
        let total = self.options.response_timeout;
        let starved = super::budget::left(total).is_some_and(|left| left < total / 2);
        let mut cut_off = false;
        let result = super::budget::bounded(total, command, || {
            cut_off = true;
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request's time budget for Redis ran out",
            ))
        })
        .await;
        if !(starved && cut_off) {
            self.breaker.record(&result);
        }
        result.map_err(redis_error)
    }

    async fn invoke<T: FromRedisValue>(&self, script: &ScriptInvocation<'_>) -> StoreResult<T> {
        self.guarded(script.invoke_async(&mut self.con())).await
    }

    async fn run(&self, batch: Batch) -> StoreResult<Vec<::redis::Value>> {
        self.guarded(batch.run(&self.con())).await
    }

    /// A batch of a write the user would notice: with durable writes, each of its
    /// pipelines waits for a replica. One no replica confirms fails outside a request,
    /// and inside one stands, the request answering 503 at its end (`store::durability`;
    /// its later writes do not wait again).
    async fn run_durable(&self, batch: Batch) -> StoreResult<Vec<::redis::Value>> {
        let Some(pool) = self
            .durable
            .as_ref()
            .filter(|_| !super::durability::noted())
        else {
            return self.run(batch).await;
        };
        let (values, confirmed) = self
            .guarded(async {
                let (pooled, _permit) = pool.take().await?;
                let result = batch.run_waiting(&pooled.con, Some(pool.wait_ms)).await;
                pool.put(pooled);
                result
            })
            .await?;
        if !confirmed {
            let error = self.unconfirmed(pool.wait_ms);
            if !super::durability::note() {
                return Err(error);
            }
        }
        Ok(values)
    }

    /// A script of a write the user would notice: a batch of one call
    /// ([`Self::run_durable`]).
    async fn invoke_durable<T: FromRedisValue>(&self, call: &Call<'static>) -> StoreResult<T> {
        let mut batch = self.batch();
        batch.call(call);
        let reply = self.run_durable(batch).await?.pop().unwrap_or(Value::Nil);
        T::from_redis_value(reply).map_err(super::corrupt)
    }

    fn unconfirmed(&self, ms: u64) -> StoreError {
        tracing::warn!(
            wait_ms = ms,
            "no Redis replica confirmed a write in time; answering 503 so that the client retries"
        );
        StoreError::Unavailable(format!("no replica confirmed the write within {ms} ms"))
    }

    fn batch(&self) -> Batch {
        Batch::new(self.by_slot)
    }

    async fn query<T: FromRedisValue>(&self, cmd: &::redis::Cmd) -> StoreResult<T> {
        self.guarded(cmd.query_async(&mut self.con())).await
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

//! A connection to the primary that Redis Sentinel names, which follows a failover by
//! itself.
//!
//! The [`Locator`] (one per store) asks the Sentinels for the primary (redis-rs's
//! `SentinelClient`, which also checks that the address it gets answers `ROLE` as a
//! primary), and asks a Sentinel every `WATCH_MS` which address the primary has: when the
//! Sentinels name another primary, it locates it and its epoch moves. Each
//! [`SentinelConnection`] (the store's shared one, each thread's, each page-view writer's)
//! holds a multiplexed connection to the primary of one epoch; it drops it when
//! the epoch moves on, or when a command finds the server gone or demoted (`READONLY`),
//! and the next command connects to the primary the Sentinels name then. The command
//! that met the failure fails (the request answers 503; the client retries), so a write
//! is never sent twice by this layer.
//!
//! A restarted old primary that Sentinel has not demoted yet is never written to: footfall
//! only connects to the address the Sentinels name, and moves off a connection whose
//! server the Sentinels stopped naming.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, MultiplexedConnection};
use ::redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use ::redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError,
    RedisFuture, RedisResult, TlsMode,
};
use ::redis::{ServerErrorKind, Value};
use futures_util::FutureExt;
use parking_lot::Mutex;

/// How often the Sentinels are asked who the primary is (besides after a failure).
const WATCH_MS: u64 = 500;

/// Finds the primary through the Sentinels and notices when they name another one.
pub struct Locator {
    sentinels: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    /// The primary's client and its epoch (which moves whenever the address changes).
    primary: Mutex<Option<(String, Client)>>,
    epoch: AtomicU64,
    /// A command failed: ask the Sentinels again before the next connection.
    suspect: AtomicBool,
    /// The name the Sentinels monitor the primary by.
    master: String,
    description: String,
}

fn address(client: &Client) -> String {
    client.get_connection_info().addr().to_string()
}

/// How to log in to the primary the Sentinels name: the user, password and database of
/// `store.redis_url` when it is set, over TLS when it is a `rediss://` URL (its host and
/// port are not used: the Sentinels give the address). `None`: no password, database 0.
fn primary_login(url: &str) -> RedisResult<Option<SentinelNodeConnectionInfo>> {
    if url.is_empty() {
        return Ok(None);
    }
    let info = url.into_connection_info()?;
    let mut login = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(info.redis_settings().clone());
    if let ConnectionAddr::TcpTls { insecure, .. } = info.addr() {
        login = login.set_tls_mode(if *insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        });
    }
    Ok(Some(login))
}

impl Locator {
    /// Checks that the Sentinels name a primary, and starts watching them. `login` is how
    /// to log in to the primary they name (see [`primary_login`]).
    pub async fn start(
        sentinels: &[String],
        master: &str,
        login: &str,
        config: AsyncConnectionConfig,
    ) -> RedisResult<Arc<Self>> {
        let urls: Vec<String> = sentinels
            .iter()
            .map(|s| {
                if s.contains("://") {
                    s.clone()
                } else {
                    format!("redis://{s}")
                }
            })
            .collect();
        let client = SentinelClient::build(
            urls.clone(),
            master,
            primary_login(login)?,
            SentinelServerType::Master,
        )?;
        let locator = Arc::new(Self {
            sentinels: tokio::sync::Mutex::new(client),
            config,
            primary: Mutex::new(None),
            epoch: AtomicU64::new(0),
            suspect: AtomicBool::new(true),
            master: master.to_owned(),
            description: format!(
                "redis sentinel ({}, primary \"{master}\")",
                urls.iter()
                    .map(|u| super::redact(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        locator.locate().await?;
        tokio::spawn(watch(Arc::downgrade(&locator)));
        Ok(locator)
    }

    pub fn describe(&self) -> String {
        self.description.clone()
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Asks the Sentinels for the primary; moves the epoch on when it is another one.
    async fn locate(&self) -> RedisResult<(u64, Client)> {
        let mut sentinels = self.sentinels.lock().await;
        // Another caller may have located it while this one waited.
        if !self.suspect.load(Ordering::Acquire)
            && let Some((_, client)) = self.primary.lock().clone()
        {
            return Ok((self.epoch(), client));
        }
        let client = sentinels.async_get_client().await?;
        drop(sentinels);
        self.suspect.store(false, Ordering::Release);
        let now = address(&client);
        let mut primary = self.primary.lock();
        let moved = primary.as_ref().is_some_and(|(was, _)| *was != now);
        if moved {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(primary = %now, "Redis Sentinel names a new primary; following it");
        }
        *primary = Some((now, client.clone()));
        Ok((self.epoch(), client))
    }

    /// The primary to connect to now.
    pub async fn primary(&self) -> RedisResult<(u64, Client)> {
        if !self.suspect.load(Ordering::Acquire)
            && let Some((_, client)) = self.primary.lock().clone()
        {
            return Ok((self.epoch(), client));
        }
        self.locate().await
    }

    /// A command failed in a way that says the primary may have changed.
    fn suspect(&self) {
        self.suspect.store(true, Ordering::Release);
    }

    /// A new connection to the current primary.
    pub async fn connect(self: &Arc<Self>) -> RedisResult<SentinelConnection> {
        let connection = SentinelConnection {
            locator: self.clone(),
            current: Arc::new(Mutex::new(None)),
            connecting: Arc::new(tokio::sync::Mutex::new(())),
        };
        connection.connection().await?;
        Ok(connection)
    }
}

/// Asks a Sentinel every `WATCH_MS`, while the store lives, which address the primary has
/// (one cheap command on a kept connection); when it is not the one in use, or the
/// Sentinel cannot tell, locates the primary again (which also checks its role).
async fn watch(locator: std::sync::Weak<Locator>) {
    let mut tick = tokio::time::interval(Duration::from_millis(WATCH_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sentinel: Option<MultiplexedConnection> = None;
    loop {
        tick.tick().await;
        let Some(locator) = locator.upgrade() else {
            return;
        };
        let named = locator.named_primary(&mut sentinel).await;
        let current = locator.primary.lock().as_ref().map(|(a, _)| a.clone());
        if named.is_some() && named == current {
            continue;
        }
        locator.suspect();
        if let Err(e) = locator.locate().await {
            tracing::debug!(error = %e, "no primary from Redis Sentinel yet");
        }
    }
}

impl Locator {
    /// The primary's address as a Sentinel names it (`host:port`), on the kept connection
    /// to a Sentinel (made again after an error); `None` when no Sentinel answers.
    async fn named_primary(&self, sentinel: &mut Option<MultiplexedConnection>) -> Option<String> {
        if sentinel.is_none() {
            let client = self
                .sentinels
                .lock()
                .await
                .async_get_sentinel_client()
                .await
                .ok()?;
            *sentinel = client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await
                .ok();
        }
        let con = sentinel.as_mut()?;
        let answer: RedisResult<Option<(String, u16)>> = ::redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(self.master.as_str())
            .query_async(con)
            .await;
        match answer {
            Ok(named) => named.map(|(host, port)| format!("{host}:{port}")),
            Err(_) => {
                *sentinel = None;
                None
            }
        }
    }
}

/// Whether an error says the connection's server is gone or no longer the primary.
fn primary_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly))
}

/// Whether a pipeline's answers hold a `READONLY` error (the server was demoted).
fn demoted(values: &[Value]) -> bool {
    values
        .iter()
        .any(|v| matches!(v, Value::ServerError(e) if e.code() == "READONLY"))
}

struct Current {
    epoch: u64,
    con: MultiplexedConnection,
}

/// A connection to the primary the Sentinels name (see the module's doc).
#[derive(Clone)]
pub struct SentinelConnection {
    locator: Arc<Locator>,
    current: Arc<Mutex<Option<Current>>>,
    /// One connection attempt at a time.
    connecting: Arc<tokio::sync::Mutex<()>>,
}

impl SentinelConnection {
    fn usable(&self) -> Option<(u64, MultiplexedConnection)> {
        let epoch = self.locator.epoch();
        self.current
            .lock()
            .as_ref()
            .filter(|c| c.epoch == epoch)
            .map(|c| (c.epoch, c.con.clone()))
    }

    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(usable) = self.usable() {
            return Ok(usable);
        }
        let _one = self.connecting.lock().await;
        if let Some(usable) = self.usable() {
            return Ok(usable);
        }
        let (epoch, client) = self.locator.primary().await?;
        let con = client
            .get_multiplexed_async_connection_with_config(&self.locator.config)
            .await
            .inspect_err(|_| self.locator.suspect())?;
        *self.current.lock() = Some(Current {
            epoch,
            con: con.clone(),
        });
        Ok((epoch, con))
    }

    /// Drops the connection of `epoch` (a failure on it) and has the Sentinels asked again.
    fn lost(&self, epoch: u64) {
        self.locator.suspect();
        let mut current = self.current.lock();
        if current.as_ref().is_some_and(|c| c.epoch == epoch) {
            *current = None;
        }
    }

    /// Notes how a command went on the connection of `epoch`.
    fn note<T>(&self, epoch: u64, result: &RedisResult<T>, demoted: impl Fn(&T) -> bool) {
        match result {
            Err(e) if primary_lost(e) => self.lost(epoch),
            Ok(v) if demoted(v) => self.lost(epoch),
            _ => {}
        }
    }
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        async move {
            let (epoch, mut con) = self.connection().await?;
            let result = con.req_packed_command(cmd).await;
            self.note(epoch, &result, |v| demoted(std::slice::from_ref(v)));
            result
        }
        .boxed()
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        async move {
            let (epoch, mut con) = self.connection().await?;
            let result = con.req_packed_commands(pipeline, offset, count).await;
            self.note(epoch, &result, |v| demoted(v));
            result
        }
        .boxed()
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readonly_answer_or_a_lost_server_means_the_primary_may_have_moved() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(primary_lost(&refused));
        let wrong: RedisError = (ErrorKind::Client, "wrong type").into();
        assert!(!primary_lost(&wrong));
        assert!(!demoted(&[Value::Int(1), Value::Nil]));
    }
}

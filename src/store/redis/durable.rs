//! The connections of durable writes. `WAIT` blocks the connection it is sent on until a
//! replica answers, and every command queued behind it on that connection waits too: on
//! a thread's (multiplexed) connection, one lagging replica would hold up every request
//! of the thread. So each durable write takes a connection of its own from this pool
//! for its one pipeline (the write, then `WAIT 1`), and gives it back after. Here too:
//! whether durable writes are on when the config leaves it to Redis (a connected
//! replica), and how long they wait.
//!
//! A pooled connection is tried with a `PING` each second for as long as it is kept
//! (`per_thread::keep_tried`, as the page-view writers' are): one left idle across a Redis
//! restart would otherwise fail the next durable write with a 503.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::ConnectionLike;
use ::redis::{RedisResult, Value};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::per_thread::keep_tried;
use super::redis_error;
use super::writer::Connect;
use crate::store::StoreResult;

/// Durable writes in flight at once per store; more wait for a connection.
pub const DURABLE_CONNECTIONS: usize = 16;

/// How often a pooled connection is tried: as a page-view writer's.
const CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct Pool<C> {
    connect: Connect<C>,
    idle: Mutex<Vec<Pooled<C>>>,
    permits: Semaphore,
    /// How long a durable write waits for a replica.
    pub wait_ms: u64,
}

/// A connection of the pool, tried for as long as it is kept: in the pool or by the write
/// that took it. Dropped (a write cancelled midway, or the pool with it), its tries end,
/// and with them the last clone of the connection.
pub struct Pooled<C> {
    pub con: C,
    _tried: Arc<()>,
}

impl<C> Pool<C>
where
    C: ConnectionLike + Clone + Send + 'static,
{
    pub fn new(connect: Connect<C>, wait_ms: u64) -> Self {
        Self {
            connect,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(DURABLE_CONNECTIONS),
            wait_ms,
        }
    }

    /// A connection no other durable write uses meanwhile (made on first need), and the
    /// permit that counts it; give it back with [`Pool::put`] (a write cancelled midway
    /// just drops it).
    pub async fn take(&self) -> RedisResult<(Pooled<C>, SemaphorePermit<'_>)> {
        let permit = self.permits.acquire().await.map_err(|_| {
            ::redis::RedisError::from((::redis::ErrorKind::Client, "durable pool closed"))
        })?;
        let idle = self.idle.lock().pop();
        let pooled = match idle {
            Some(pooled) => pooled,
            None => {
                let con = (self.connect)().await?;
                let tried = Arc::new(());
                tokio::spawn(keep_tried(con.clone(), Arc::downgrade(&tried), CHECK_EVERY));
                Pooled { con, _tried: tried }
            }
        };
        Ok((pooled, permit))
    }

    pub fn put(&self, pooled: Pooled<C>) {
        self.idle.lock().push(pooled);
    }
}

/// The longest a durable write waits for a replica: half the response timeout, so that
/// the answer "no replica in time" arrives before the command itself times out (which
/// would count as Redis being down).
pub(super) fn wait_ms(response_timeout: Duration) -> u64 {
    (response_timeout.as_millis() as u64 / 2).max(1)
}

/// Whether the primary has a connected replica: on one server (or the primary Sentinel
/// names) its `INFO replication` answer is searched; on a cluster the command goes to every
/// primary (redis-rs routes it so) and any of their answers counts.
pub(super) async fn has_replicas<C>(con: &C) -> StoreResult<bool>
where
    C: ConnectionLike + Clone + Send + Sync,
{
    let answers: Value = ::redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut con.clone())
        .await
        .map_err(redis_error)?;
    let mut texts = Vec::new();
    collect_texts(answers, &mut texts);
    Ok(texts.iter().any(|info| connected_replicas(info) > 0))
}

/// The text answers inside a (per-node) answer.
fn collect_texts(value: Value, out: &mut Vec<String>) {
    match value {
        Value::BulkString(bytes) => out.push(String::from_utf8_lossy(&bytes).into_owned()),
        Value::SimpleString(s) => out.push(s),
        Value::VerbatimString { text, .. } => out.push(text),
        Value::Array(items) | Value::Set(items) => {
            items.into_iter().for_each(|v| collect_texts(v, out))
        }
        Value::Map(pairs) => pairs.into_iter().for_each(|(k, v)| {
            collect_texts(k, out);
            collect_texts(v, out);
        }),
        _ => {}
    }
}

/// `connected_slaves` of an `INFO replication` answer.
fn connected_replicas(info: &str) -> u64 {
    info.lines()
        .find_map(|l| l.trim().strip_prefix("connected_slaves:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_counted_from_info_replication() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1\r\n";
        assert_eq!(connected_replicas(info), 2);
        assert_eq!(
            connected_replicas("role:master\r\nconnected_slaves:0\r\n"),
            0
        );
    }

    /// On the tests' Redis: 127.0.0.1:6379 (`scripts/test.sh` starts one), or
    /// `FOOTFALL_TEST_REDIS_URL`.
    #[tokio::test]
    async fn a_connection_that_a_cancelled_write_drops_is_closed() {
        let url = std::env::var("FOOTFALL_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = ::redis::Client::open(url).unwrap();
        let opener = client.clone();
        let connect: Connect<::redis::aio::MultiplexedConnection> = Arc::new(move || {
            let opener = opener.clone();
            Box::pin(async move { opener.get_multiplexed_async_connection().await })
        });
        let pool = Pool::new(connect, 500);
        let (pooled, permit) = pool.take().await.unwrap();
        let id: i64 = ::redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut pooled.con.clone())
            .await
            .unwrap();
        // What a write cancelled midway (its request's budget ran out) leaves: neither
        // given back nor closed by hand.
        drop((pooled, permit));
        let mut probe = client.get_multiplexed_async_connection().await.unwrap();
        for _ in 0..50 {
            let listed: String = ::redis::cmd("CLIENT")
                .arg("LIST")
                .arg("ID")
                .arg(id)
                .query_async(&mut probe)
                .await
                .unwrap();
            if listed.trim().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the dropped connection {id} is still open after 5 s");
    }

    #[test]
    fn a_durable_write_waits_less_than_a_command_may_take() {
        assert_eq!(wait_ms(Duration::from_millis(1000)), 500);
        assert_eq!(wait_ms(Duration::from_millis(1)), 1);
    }
}

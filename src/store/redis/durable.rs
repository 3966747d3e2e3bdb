//! The connections of durable writes. `WAIT` blocks the connection it is sent on until a
//! replica answers, and every command queued behind it on that connection waits too: on
//! a thread's (multiplexed) connection, one lagging replica would hold up every request
//! of the thread. So each durable write takes a connection of its own from this pool
//! for its one pipeline (the write, then `WAIT 1`), and gives it back after.

use ::redis::RedisResult;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::writer::Connect;

/// Durable writes in flight at once per store; more wait for a connection.
pub const DURABLE_CONNECTIONS: usize = 16;

pub struct Pool<C> {
    connect: Connect<C>,
    idle: Mutex<Vec<C>>,
    permits: Semaphore,
    /// How long a durable write waits for a replica.
    pub wait_ms: u64,
}

impl<C> Pool<C> {
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
    pub async fn take(&self) -> RedisResult<(C, SemaphorePermit<'_>)> {
        let permit = self.permits.acquire().await.map_err(|_| {
            ::redis::RedisError::from((::redis::ErrorKind::Client, "durable pool closed"))
        })?;
        let idle = self.idle.lock().pop();
        let con = match idle {
            Some(con) => con,
            None => (self.connect)().await?,
        };
        Ok((con, permit))
    }

    pub fn put(&self, con: C) {
        self.idle.lock().push(con);
    }
}

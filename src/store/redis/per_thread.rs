//! Each thread's own Redis connection for the round trips of the work it runs (a worker's
//! requests, the scheduler on the main thread), made on the thread's first round trip.
//!
//! A connection's reader runs as a task on the runtime that opened it. Over the store's one
//! shared connection, opened on the main thread, every answer to a worker's request was read
//! on the main thread and handed back to the worker: two threads to be scheduled per round
//! trip, which on a busy machine cost milliseconds each (BENCHMARKS.md, "A Redis connection
//! per thread"). A thread's own connection is read where its requests wait. Only
//! single-threaded runtimes (actix's workers and main thread) get one: on a multi-threaded
//! runtime the reader could run on any of its threads.
//!
//! The shared connection serves a thread's round trips while its own is being opened, for
//! a second after opening it failed, and once the runtime that opened it has stopped (the
//! next round trip then opens another). A thread's connection lasts as long as the store
//! and the thread's runtime, and is tried with a `PING` every 100 ms (`CHECK_EVERY`).

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::RedisResult;
use ::redis::aio::ConnectionLike;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::writer::Connect;

thread_local! {
    /// This thread's connections, by store (tests run several stores in one process).
    static CONNECTIONS: RefCell<HashMap<u64, Entry>> = RefCell::new(HashMap::new());
}

static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

/// How long a thread uses the shared connection after opening its own failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often a thread's connection is tried with a `PING`. Over RESP2 a connection learns
/// that Redis dropped it (a restart, a failover) only from a command that fails, and it
/// reconnects after that; the `PING` is that command, so that it is not a request's (whose
/// failure would answer 503 and open the store's breaker for every thread).
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// A thread's connection to one store: being opened, then open, until the task that holds
/// it ends (`gone`).
struct Entry {
    gone: Arc<AtomicBool>,
    /// An `Arc<OnceLock<C>>` of the store's kind of connection.
    open: Box<dyn Any>,
}

/// Marks its entry gone when the task that holds it ends or is dropped with its runtime.
struct Holder(Arc<AtomicBool>);

impl Drop for Holder {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One store's connections, one per thread.
pub struct PerThread<C> {
    store: u64,
    connect: Connect<C>,
    /// Dropped with the store, which ends its threads' connections.
    alive: Arc<()>,
}

impl<C> PerThread<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub fn new(connect: Connect<C>) -> Self {
        Self {
            store: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            connect,
            alive: Arc::new(()),
        }
    }

    /// This thread's connection; `None` while it is being opened, and on a thread that is
    /// not a single-threaded runtime's.
    pub fn get(&self) -> Option<C> {
        let runtime = Handle::try_current().ok()?;
        if runtime.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return None;
        }
        CONNECTIONS.with(|all| {
            let mut all = all.borrow_mut();
            if let Some(entry) = all.get(&self.store)
                && !entry.gone.load(Ordering::Relaxed)
            {
                let open = entry.open.downcast_ref::<Arc<OnceLock<C>>>()?;
                return open.get().cloned();
            }
            // Connections whose task ended (this one's, or a dropped store's) are let go.
            all.retain(|_, entry| !entry.gone.load(Ordering::Relaxed));
            let (open, gone) = (Arc::new(OnceLock::new()), Arc::new(AtomicBool::new(false)));
            all.insert(
                self.store,
                Entry {
                    gone: gone.clone(),
                    open: Box::new(open.clone()),
                },
            );
            runtime.spawn(hold(
                self.connect.clone(),
                open,
                Holder(gone),
                Arc::downgrade(&self.alive),
            ));
            None
        })
    }
}

/// Opens a thread's connection and keeps it tried while the store lasts; after a failed
/// open, waits `RETRY_AFTER` before letting the next round trip try again.
async fn hold<C>(
    connect: Connect<C>,
    open: Arc<OnceLock<C>>,
    holder: Holder,
    store: std::sync::Weak<()>,
) where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    match connect().await {
        Ok(mut con) => {
            let _ = open.set(con.clone());
            drop(open);
            while store.strong_count() > 0 {
                tokio::time::sleep(CHECK_EVERY).await;
                let _: RedisResult<()> = ::redis::cmd("PING").query_async(&mut con).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not open a thread's Redis connection; the shared one serves the thread meanwhile");
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
    drop(holder);
}

//! Each thread's own Redis connection for the round trips of the work it runs (a worker's
//! requests, the scheduler on the main thread), made on the thread's first round trip.
//!
//! A redis-rs connection's reader runs as a task on the runtime that opened (or last
//! reopened) it. Over one connection shared by every thread, an answer to a worker's
//! request would be read on another thread and handed back: two threads to be scheduled
//! per round trip, which on a busy machine costs milliseconds (BENCHMARKS.md, "A Redis
//! connection per thread"). A thread's own connection is read where its requests wait.
//! Only single-threaded runtimes (actix's workers and main thread) get one: on a
//! multi-threaded runtime the reader could run on any of its threads.
//!
//! The store's shared connection serves a thread's round trips while its own is being
//! opened, for a second after opening it failed, and once the runtime that opened it has
//! stopped (the next round trip then opens another). Every connection here, the shared one
//! included, is tried with a `PING` every 100 ms, and after a failed one again once the
//! reconnecting it set off is over (`keep_tried`, which the page-view writers' connections
//! use too, each second), for as long as the store lasts; a thread's own also ends with its
//! runtime.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use ::redis::RedisResult;
use ::redis::aio::ConnectionLike;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::time::Instant;

use super::writer::Connect;

thread_local! {
    /// This thread's connections, by store (tests run several stores in one process).
    static CONNECTIONS: RefCell<HashMap<u64, Entry>> = RefCell::new(HashMap::new());
}

static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

/// How long a thread uses the shared connection after an attempt to open its own failed
/// (an attempt: the connection's own timeout and retries).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often a connection is tried with a `PING`. Over RESP2 a connection learns that
/// Redis dropped it (a restart, a failover) only from a command that fails, and it
/// reconnects after that; the `PING` is that command, so that it is not a request's (whose
/// failure would answer 503 and open the store's breaker for every thread).
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The least time between two `PING`s of a connection that failed: a reconnecting
/// connection manager takes longer (its retries wait 100 ms and more), but a connection
/// that fails at once (a Sentinel connection connects again on each command after a
/// failure; a cluster with a primary down; Redis loading its data) would be tried without
/// a pause.
const RETRY_GAP: Duration = Duration::from_millis(100);

/// A thread's connection to one store: being opened, then open, until the task that holds
/// it ends (`gone`, and the connection dropped with the task).
struct Entry {
    gone: Arc<AtomicBool>,
    /// An `Arc<OnceLock<Weak<C>>>` of the store's kind of connection.
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
    /// Dropped with the store, which ends the tasks that hold its connections.
    alive: Arc<()>,
}

impl<C> PerThread<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Also keeps `shared`, the store's connection for threads without their own, tried.
    pub fn new(connect: Connect<C>, shared: C) -> Self {
        let alive = Arc::new(());
        tokio::spawn(keep_tried(shared, Arc::downgrade(&alive), CHECK_EVERY));
        Self {
            store: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            connect,
            alive,
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
                let open = entry.open.downcast_ref::<Arc<OnceLock<Weak<C>>>>();
                debug_assert!(open.is_some(), "a store's connections are of one kind");
                return open?.get()?.upgrade().map(|con| (*con).clone());
            }
            // Entries whose task ended (this store's, or a dropped store's) are let go.
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

/// Opens a thread's connection and holds it, tried, while the store lasts; after a failed
/// open, waits `RETRY_AFTER` before the next round trip may try again.
async fn hold<C>(connect: Connect<C>, open: Arc<OnceLock<Weak<C>>>, holder: Holder, store: Weak<()>)
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    match connect().await {
        Ok(con) => {
            let con = Arc::new(con);
            let _ = open.set(Arc::downgrade(&con));
            drop(open);
            keep_tried((*con).clone(), store, CHECK_EVERY).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not open a thread's Redis connection");
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
    drop(holder);
}

/// Sends `con` a `PING` every `every` while its owner (a store, a page-view writer) lasts,
/// and after a failed one the next at once, though not sooner than `RETRY_GAP` after it.
/// A redis-rs connection manager whose reconnecting failed (Redis still away) keeps that
/// failure for the next command, and starts reconnecting again only then; the next `PING`
/// is that command and waits for the reconnecting, so that no failure is left for a
/// request (or a writer's batch) to meet once Redis is back, which would answer 503 and
/// open the breaker again.
pub(super) async fn keep_tried<C>(mut con: C, owner: Weak<()>, every: Duration)
where
    C: ConnectionLike + Clone,
{
    while owner.strong_count() > 0 {
        let sent = Instant::now();
        let answer: RedisResult<()> = ::redis::cmd("PING").query_async(&mut con).await;
        let pause = match answer {
            Ok(()) => every,
            Err(_) => RETRY_GAP.saturating_sub(sent.elapsed()),
        };
        tokio::time::sleep(pause).await;
    }
}

//! Group commit of page views: every beacon waiting at a moment goes to Redis in one
//! pipeline (one per slot on a cluster). Under load this turns N round trips into one,
//! which is what lets the beacon keep up with a bare one-command handler.
//!
//! Each thread that records page views (each HTTP worker) gets a writer per account, each
//! with its own Redis connection, made on first use: a page view never leaves its worker's
//! thread, so no beacon pays for waking another thread and being woken back; and one
//! account's batch, however large (an attacked site's admitted junk: pipelines of ~100 KB),
//! holds up neither another account's batch in the writer nor its commands on the
//! connection (Redis serves its connections in turn). A thread has at most [`MAX_LANES`]
//! writers: the 17th account to write on it shares the first's, the 18th the second's…
//! (BENCHMARKS.md, "A writer per account").
//!
//! A page view is two commands — refresh the visitor's last sighting on the site (and
//! read the one before), append to the history — or only the append when the writer's
//! sightings (`sightings.rs`, with the crash contract) know the visit is running. Page
//! views charged against quotas are charged first, a batch at a time in a pipeline of its
//! own (`quotas.rs`); only the admitted ones are written.
//!
//! Here: the writers' handle and each thread's lanes; the loop of one writer is `task.rs`.

mod task;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::RedisResult;
use ::redis::aio::ConnectionLike;
use tokio::sync::{mpsc, oneshot};

use super::breaker::Breaker;
use super::keys::Keys;
use super::origins::SiteOrigins;
use super::stats::StatsBuffer;
use crate::domain::ids::AccountId;
use crate::store::{
    Charge, Charged, PageViewOutcome, PageViewWrite, StoreError, StoreResult, corrupt, round_trips,
};

type Reply = oneshot::Sender<StoreResult<Charged<PageViewOutcome>>>;

/// The most beacons sent in one pipeline.
const MAX_BATCH: usize = 256;

/// Opens a Redis connection of the store's kind (for a writer, a thread's round trips, a
/// durable write).
pub type Connect<C> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = RedisResult<C>> + Send>> + Send + Sync>;

/// The most writers (each a Redis connection) a thread keeps for one store: accounts take
/// them in the order they first record a page view on the thread, each its own up to this
/// many, and the next ones share them in turn.
const MAX_LANES: usize = 16;

thread_local! {
    /// This thread's writers, by store (tests run several stores in one process).
    static WRITERS: RefCell<HashMap<u64, Lanes>> = RefCell::new(HashMap::new());
}

/// One store's writers on one thread, and which account writes through which.
#[derive(Default)]
struct Lanes {
    of_account: HashMap<AccountId, usize>,
    writers: HashMap<usize, Writer>,
}

impl Lanes {
    fn of(&mut self, account: AccountId) -> usize {
        let next = self.of_account.len() % MAX_LANES;
        *self.of_account.entry(account).or_insert(next)
    }
}

/// This thread's lanes of `store`.
fn lanes<T>(store: u64, f: impl FnOnce(&mut Lanes) -> T) -> T {
    WRITERS.with(|w| f(w.borrow_mut().entry(store).or_default()))
}

static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

/// The page-view writers of one store: on each thread that records page views, one per
/// account (up to [`MAX_LANES`]).
pub struct PageViewWriter<C> {
    store: u64,
    shared: task::Shared<C>,
    /// A request's time budget (`store::budget`): its page view answers 503 when the
    /// writer has not written it by then, and is not written afterwards.
    budget: Duration,
}

/// The sending side of a writer.
#[derive(Clone)]
struct Writer {
    tx: mpsc::Sender<(PageViewWrite, Option<Charge>, Reply)>,
}

impl<C> PageViewWriter<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub fn new(
        connect: Connect<C>,
        keys: Keys,
        by_slot: bool,
        breaker: Arc<Breaker>,
        origins: Arc<SiteOrigins>,
    ) -> Self {
        Self {
            store: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            shared: task::Shared {
                connect,
                keys,
                by_slot,
                breaker,
                stats: Arc::default(),
                origins,
            },
            budget: Duration::from_secs(1),
        }
    }

    pub fn stats(&self) -> &StatsBuffer {
        &self.shared.stats
    }

    /// Sets the budget of a request's page view (the store's response timeout).
    pub fn within(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    pub async fn record(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome> {
        match self.send(write, None).await? {
            Ok(outcome) => Ok(outcome),
            Err(_) => Err(corrupt("an uncharged page view was refused")),
        }
    }

    /// A page view charged against quotas in the same command (`quotas.rs`).
    pub async fn record_charged(
        &self,
        write: PageViewWrite,
        charge: Charge,
    ) -> StoreResult<Charged<PageViewOutcome>> {
        self.send(write, Some(charge)).await
    }

    async fn send(
        &self,
        write: PageViewWrite,
        charge: Option<Charge>,
    ) -> StoreResult<Charged<PageViewOutcome>> {
        crate::store::budget::bounded(self.budget, self.queue(write, charge), || {
            StoreError::Unavailable("no answer from Redis within the request's budget".into())
        })
        .await
    }

    async fn queue(
        &self,
        write: PageViewWrite,
        charge: Option<Charge>,
    ) -> StoreResult<Charged<PageViewOutcome>> {
        self.shared.breaker.check()?;
        round_trips::note();
        // Made at once, so that the page views of a burst find it rather than each opening
        // a connection of its own.
        let (lane, writer) = lanes(self.store, |l| {
            let lane = l.of(write.account);
            let writer = l.writers.entry(lane).or_insert_with(|| self.start_writer());
            if writer.tx.is_closed() {
                // It could not connect: this page view tries a new one.
                *writer = self.start_writer();
            }
            (lane, writer.clone())
        });
        let (reply, answer) = oneshot::channel();
        let sent = writer.tx.send((write, charge, reply)).await;
        if sent.is_err() {
            // The writer stopped (it could not connect, or its runtime is gone): the next
            // page view makes a new one (unless another has already).
            lanes(self.store, |l| {
                if l.writers
                    .get(&lane)
                    .is_some_and(|w| w.tx.same_channel(&writer.tx))
                {
                    l.writers.remove(&lane);
                }
            });
            return Err(StoreError::Unavailable("page-view writer stopped".into()));
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("page-view writer stopped".into()))?
    }

    /// A writer on this thread's runtime: a task that connects, then writes what it is sent.
    fn start_writer(&self) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(task::run(self.shared.clone(), rx));
        Writer { tx }
    }
}

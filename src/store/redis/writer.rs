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

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::ConnectionLike;
use ::redis::{FromRedisValue, RedisResult, Value};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::breaker::Breaker;
use super::keys::Keys;
use super::origins::SiteOrigins;
use super::page_view_codec;
use super::quotas;
use super::scripts;
use super::sightings::{SIGHTING_MARGIN_MS, Sighting, Sightings};
use super::slots::Batch;
use super::stats::{StatsBuffer, StatsWriter};
use super::unavailable;
use crate::domain::ids::{AccountId, SiteId};
use crate::domain::time::{Millis, now_ms};
use crate::domain::visitor::VisitorId;
use crate::store::{
    Charge, Charged, PageViewOutcome, PageViewWrite, StoreError, StoreResult, corrupt, round_trips,
};

type Reply = oneshot::Sender<StoreResult<Charged<PageViewOutcome>>>;

/// The most beacons sent in one pipeline.
const MAX_BATCH: usize = 256;

/// Opens a Redis connection of the store's kind (for a thread's writer).
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
    connect: Connect<C>,
    keys: Keys,
    by_slot: bool,
    breaker: Arc<Breaker>,
    /// Statistics counters waiting for the next pipeline (`stats.rs`).
    stats: Arc<StatsBuffer>,
    origins: Arc<SiteOrigins>,
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
            origins,
            store: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            connect,
            keys,
            by_slot,
            breaker,
            stats: Arc::default(),
            budget: Duration::from_secs(1),
        }
    }

    pub fn stats(&self) -> &StatsBuffer {
        &self.stats
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
        self.breaker.check()?;
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
        tokio::spawn(run(
            self.connect.clone(),
            self.keys.clone(),
            self.by_slot,
            self.breaker.clone(),
            self.stats.clone(),
            self.origins.clone(),
            rx,
        ));
        Writer { tx }
    }
}

async fn run<C>(
    connect: Connect<C>,
    keys: Keys,
    by_slot: bool,
    breaker: Arc<Breaker>,
    stats: Arc<StatsBuffer>,
    origins: Arc<SiteOrigins>,
    mut rx: mpsc::Receiver<(PageViewWrite, Option<Charge>, Reply)>,
) where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let con = match connect().await {
        Ok(con) => con,
        Err(e) => {
            // The page views sent meanwhile get the reason; the next one makes a new writer.
            let message = e.to_string();
            rx.close();
            while let Some((_, _, reply)) = rx.recv().await {
                let _ = reply.send(Err(unavailable(&message)));
            }
            return;
        }
    };
    stats.writer_started();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Per page view of the batch: the latest sighting this writer knows, when it refreshed
    // the one in Redis lately.
    let mut known = Vec::with_capacity(MAX_BATCH);
    let mut sightings = Sightings::default();
    let mut stats_writer = StatsWriter::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        // A quiet writer still turns its generations, to write back what it skipped.
        let received = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, MAX_BATCH) => Some(n),
            _ = tick.tick() => None,
        };
        if received == Some(0) {
            break; // Every sender is gone.
        }
        if received.is_some() {
            // Two turns of the worker's queue first: its other ready requests add their
            // page views, and the batch goes fuller for a few microseconds' wait (one turn
            // gave 8-9 % more beacons/s than none, a second 4 % more; measured with
            // scripts/bench.sh).
            for _ in 0..2 {
                if batch.len() == MAX_BATCH {
                    break;
                }
                tokio::task::yield_now().await;
                let room = MAX_BATCH - batch.len();
                rx.recv_many(&mut batch, room).now_or_never();
            }
        }
        // A page view whose request gave up (its budget ran out while it queued) is not
        // written after its 503.
        batch.retain(|(_, _, reply)| !reply.is_closed());
        // The quotas first: a refused page view is answered at once and not written.
        if batch.iter().any(|(_, charge, _)| charge.is_some()) {
            match charge(&con, &keys, by_slot, &breaker, &batch).await {
                Ok(verdicts) => {
                    batch = batch
                        .drain(..)
                        .zip(verdicts)
                        .filter_map(|(item, verdict)| match verdict {
                            Ok(()) => Some(item),
                            Err(refused) => {
                                let _ = item.2.send(Ok(Err(refused)));
                                None
                            }
                        })
                        .collect();
                }
                Err(e) => {
                    let message = e.to_string();
                    for (_, _, reply) in batch.drain(..) {
                        let _ = reply.send(Err(unavailable(&message)));
                    }
                    continue;
                }
            }
        }
        let mut commands = Batch::new(by_slot);
        // Ahead of the page views in the one pipeline, a few at a time so that no batch
        // waits on thousands (a page view of a browser not yet written back finds its
        // latest sighting in the writer's memory).
        sightings.rotate(now_ms());
        let most = if batch.is_empty() { 1024 } else { 64 };
        let stale = sightings.take_due_back(most);
        let written_back = write_back(&mut commands, &keys, &stale);
        for (w, _, _) in &batch {
            let pv = &w.page_view;
            let key = (w.visitor, pv.site_id);
            let recent = sightings.skip(key, pv.at, w.visit_idle_ms);
            known.push(recent);
            if recent.is_none() {
                let seen = keys.visitor_seen(w.visitor, pv.site_id);
                let mut set = ::redis::cmd("SET");
                set.arg(&seen)
                    .arg(pv.at)
                    .arg("GET")
                    .arg("PX")
                    .arg(w.visit_idle_ms + SIGHTING_MARGIN_MS);
                commands.add(&seen, set);
            }
            let history = keys.visitor_history(w.account, w.visitor);
            let origin = origins.for_write(&con, &keys, w.account, pv.site_id);
            let mut push = ::redis::cmd("RPUSH");
            push.arg(&history)
                .arg(page_view_codec::encode(pv, origin.as_deref()));
            commands.add(&history, push);
            if w.watch {
                let (key, read) = super::watches::read_command(&keys, w);
                commands.add(&key, read);
            }
        }
        // Last in the pipeline, so that the page views' answers come first.
        let counted = stats_writer.add(
            &mut commands,
            &keys,
            batch.iter().map(|(w, _, _)| w),
            &stats,
            false,
        );
        if commands.is_empty() {
            counted.settle(true, &stats);
            continue;
        }
        let result = send(&con, &breaker, commands).await;
        counted.settle(result.is_ok(), &stats);
        match result {
            Ok(values) => {
                let mut values = values.into_iter().skip(written_back);
                for ((w, _, reply), recent) in batch.drain(..).zip(known.drain(..)) {
                    let pv = &w.page_view;
                    let key = (w.visitor, pv.site_id);
                    let outcome = match recent {
                        Some(at) => parse(Ok(Some(at)), values.next()),
                        None => {
                            let stored = values
                                .next()
                                .ok_or_else(|| corrupt("short pipeline reply"))
                                .and_then(|v| Option::<i64>::from_redis_value(v).map_err(corrupt));
                            let last_seen =
                                stored.map(|stored| sightings.latest_before(key, pv.at, stored));
                            if last_seen.is_ok() {
                                sightings.refreshed(key, pv.at, w.visit_idle_ms);
                            }
                            parse(last_seen, values.next())
                        }
                    };
                    let outcome = match w.watch {
                        true => super::watches::with_watch(outcome, values.next()),
                        false => outcome,
                    };
                    let _ = reply.send(outcome.map(Ok));
                }
            }
            Err(e) => {
                let message = e.to_string();
                // Nothing was recorded: the page views skipped do not count, the sightings
                // due back are tried again.
                for ((w, _, _), recent) in batch.iter().zip(&known).rev() {
                    if let Some(before) = recent {
                        sightings.unsee((w.visitor, w.page_view.site_id), *before);
                    }
                }
                sightings.restore(stale);
                known.clear();
                for (_, _, reply) in batch.drain(..) {
                    let _ = reply.send(Err(unavailable(&message)));
                }
            }
        }
    }
}

/// Runs a pipeline, unless the breaker knows Redis is down: then a batch queued behind
/// one that timed out is refused at once rather than waiting out a timeout of its own
/// (only the breaker's probe goes through).
async fn send<C>(con: &C, breaker: &Breaker, commands: Batch) -> RedisResult<Vec<Value>>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    match breaker.admit() {
        Ok(()) => {
            let result = commands.run(con).await;
            breaker.record(&result);
            result
        }
        Err(refused) => Err(::redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            refused.to_string(),
        ))),
    }
}

/// The verdict on each page view of a batch (one without a charge is admitted): one
/// script per account (`quotas::ChargeBatch`), all in one pipeline.
async fn charge<C>(
    con: &C,
    keys: &Keys,
    by_slot: bool,
    breaker: &Breaker,
    batch: &[(PageViewWrite, Option<Charge>, Reply)],
) -> StoreResult<Vec<Charged<()>>>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let mut accounts: Vec<quotas::ChargeBatch> = Vec::new();
    for (place, (w, charge, _)) in batch.iter().enumerate() {
        let Some(charge) = charge else { continue };
        let at = match accounts.iter().position(|c| c.account() == w.account) {
            Some(at) => at,
            None => {
                accounts.push(quotas::ChargeBatch::new(w.account));
                accounts.len() - 1
            }
        };
        accounts[at].add(keys, charge, place);
    }
    let commands = || {
        let mut commands = Batch::new(by_slot);
        for charges in &accounts {
            let (key, cmd) = charges.command();
            commands.add(key, cmd);
        }
        commands
    };
    let values = match send(con, breaker, commands()).await {
        // A server without the script (restarted, or a promoted replica) gets it, once.
        Err(e) if e.code() == Some("NOSCRIPT") => {
            match quotas::CHARGE_BATCH.load_async(&mut con.clone()).await {
                Ok(_) => send(con, breaker, commands()).await,
                Err(e) => Err(e),
            }
        }
        other => other,
    }
    .map_err(|e| unavailable(&e.to_string()))?;
    let mut verdicts: Vec<Charged<()>> = vec![Ok(()); batch.len()];
    for (charges, value) in accounts.iter().zip(values) {
        for (place, verdict) in charges.verdicts(value)? {
            if let (Err((index, wait_us)), Some(charge)) = (verdict, &batch[place].1) {
                verdicts[place] = Err(charge.refused(index, wait_us));
            }
        }
    }
    Ok(verdicts)
}

/// Adds a command per sighting that Redis holds older than the writer, to set it unless
/// another writer has set a later one meanwhile, for as long as its visit can run; returns
/// how many it added.
fn write_back(
    commands: &mut Batch,
    keys: &Keys,
    stale: &[((VisitorId, SiteId), Sighting)],
) -> usize {
    let now = now_ms();
    let mut added = 0;
    for ((visitor, site), sighting) in stale {
        let (visitor, site) = (*visitor, *site);
        let ttl = sighting.latest + sighting.idle_ms + SIGHTING_MARGIN_MS - now;
        if ttl > 0 {
            let seen = keys.visitor_seen(visitor, site);
            let mut eval = ::redis::cmd("EVAL");
            eval.arg(scripts::SET_SIGHTING_IF_LATER)
                .arg(1)
                .arg(&seen)
                .arg(sighting.latest)
                .arg(ttl);
            commands.add(&seen, eval);
            added += 1;
        }
    }
    added
}

fn parse(
    last_seen: StoreResult<Option<Millis>>,
    len: Option<Value>,
) -> StoreResult<PageViewOutcome> {
    let len = len.ok_or_else(|| corrupt("short pipeline reply"))?;
    let history_len = u64::from_redis_value(len).map_err(corrupt)?;
    Ok(PageViewOutcome {
        last_seen: last_seen?,
        history_len,
        watch: None,
    })
}

//! Group commit of page views: every beacon waiting at a moment goes to Redis in one
//! pipeline (one per slot on a cluster). Under load this turns N round trips into one,
//! which is what lets the beacon keep up with a bare one-command handler.
//!
//! Each thread that records page views (each HTTP worker) gets a writer of its own, with
//! its own Redis connection, made on first use: a page view never leaves its worker's
//! thread, so no beacon pays for waking another thread and being woken back.
//!
//! A page view is two commands — refresh the visitor's last sighting on the site (and
//! read the one before), append to the history — but a writer that refreshed a sighting
//! moments ago (within `1/30` of the idle gap, a minute at most) knows the visit is
//! running without asking: it then sends only the append, and remembers the page view.
//! It counts what it remembers when it next reads the sighting, and writes it back when
//! it forgets the browser a minute or two later (a quarter of the gap at most), so the
//! visit rule sees every page view; only a stop or crash in between loses the skipped
//! ones (a visit may then end that much early).

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
use super::scripts;
use super::slots::Batch;
use super::unavailable;
use crate::domain::ids::SiteId;
use crate::domain::time::{Millis, now_ms};
use crate::domain::visitor::VisitorId;
use crate::store::{PageViewOutcome, PageViewWrite, StoreError, StoreResult, corrupt};

type Reply = oneshot::Sender<StoreResult<PageViewOutcome>>;

/// The most beacons sent in one pipeline.
const MAX_BATCH: usize = 256;

/// Opens a Redis connection of the store's kind (for a thread's writer).
pub type Connect<C> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = RedisResult<C>> + Send>> + Send + Sync>;

thread_local! {
    /// This thread's writers, by store (tests run several stores in one process).
    static WRITERS: RefCell<HashMap<u64, Writer>> = RefCell::new(HashMap::new());
}

static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

/// The page-view writers of one store: one per thread that records page views.
pub struct PageViewBatcher<C> {
    store: u64,
    connect: Connect<C>,
    keys: Keys,
    by_slot: bool,
    breaker: Arc<Breaker>,
}

/// The sending side of one thread's writer.
#[derive(Clone)]
struct Writer {
    tx: mpsc::Sender<(PageViewWrite, Reply)>,
}

impl<C> PageViewBatcher<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub fn new(connect: Connect<C>, keys: Keys, by_slot: bool, breaker: Arc<Breaker>) -> Self {
        Self {
            store: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            connect,
            keys,
            by_slot,
            breaker,
        }
    }

    pub async fn record(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome> {
        self.breaker.admit()?;
        let writer = match WRITERS.with(|w| w.borrow().get(&self.store).cloned()) {
            Some(writer) => writer,
            None => self.start_writer().await?,
        };
        let (reply, answer) = oneshot::channel();
        let sent = writer.tx.send((write, reply)).await;
        if sent.is_err() {
            // The writer stopped (its runtime is gone): the next page view makes a new one.
            WRITERS.with(|w| w.borrow_mut().remove(&self.store));
            return Err(StoreError::Unavailable("page-view writer stopped".into()));
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("page-view writer stopped".into()))?
    }

    /// This thread's writer: a connection and a task on this thread's runtime.
    async fn start_writer(&self) -> StoreResult<Writer> {
        let con = (self.connect)()
            .await
            .map_err(|e| unavailable(&e.to_string()))?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(
            con,
            self.keys.clone(),
            self.by_slot,
            self.breaker.clone(),
            rx,
        ));
        let writer = Writer { tx };
        WRITERS.with(|w| w.borrow_mut().insert(self.store, writer.clone()));
        Ok(writer)
    }
}

async fn run<C>(
    con: C,
    keys: Keys,
    by_slot: bool,
    breaker: Arc<Breaker>,
    mut rx: mpsc::Receiver<(PageViewWrite, Reply)>,
) where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Per page view of the batch: the latest sighting this writer knows, when it refreshed
    // the one in Redis lately.
    let mut known = Vec::with_capacity(MAX_BATCH);
    let mut sightings = Sightings::default();
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
        let mut commands = Batch::new(by_slot);
        // Ahead of the page views in the one pipeline, a few at a time so that no batch
        // waits on thousands (a page view of a browser not yet written back finds its
        // latest sighting in the writer's memory).
        sightings.rotate(now_ms());
        let most = if batch.is_empty() { 1024 } else { 64 };
        let stale = sightings.take_due_back(most);
        let written_back = write_back(&mut commands, &keys, &stale, sightings.idle_ms);
        for (w, _) in &batch {
            let pv = &w.page_view;
            let key = (w.visitor, pv.site_id);
            let recent = sightings.skip(key, pv.at, w.visit_idle_ms);
            if recent.is_none() {
                let seen = keys.visitor_seen(w.visitor, pv.site_id);
                let mut set = ::redis::cmd("SET");
                // A second of margin: the visit rule itself compares the times.
                set.arg(&seen)
                    .arg(pv.at)
                    .arg("GET")
                    .arg("PX")
                    .arg(w.visit_idle_ms + 1000);
                commands.add(&seen, set);
            }
            known.push(recent);
            let history = keys.visitor_history(w.account, w.visitor);
            let mut push = ::redis::cmd("RPUSH");
            push.arg(&history).arg(pv.encode());
            commands.add(&history, push);
        }
        if commands.is_empty() {
            continue;
        }
        let result = commands.run(&con).await;
        breaker.record(&result);
        match result {
            Ok(values) => {
                let mut values = values.into_iter().skip(written_back);
                for ((w, reply), recent) in batch.drain(..).zip(known.drain(..)) {
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
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                let message = e.to_string();
                // Nothing was recorded: the page views skipped do not count, the sightings
                // due back are tried again.
                for ((w, _), recent) in batch.iter().zip(&known).rev() {
                    if let Some(before) = recent {
                        sightings.unsee((w.visitor, w.page_view.site_id), *before);
                    }
                }
                sightings.restore(stale);
                known.clear();
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(unavailable(&message)));
                }
            }
        }
    }
}

/// Adds a command per sighting that Redis holds older than the writer, to set it unless
/// another writer has set a later one meanwhile, for as long as its visit can run; returns
/// how many it added.
fn write_back(
    commands: &mut Batch,
    keys: &Keys,
    stale: &[((VisitorId, SiteId), Sighting)],
    idle_ms: i64,
) -> usize {
    let now = now_ms();
    let mut added = 0;
    for ((visitor, site), sighting) in stale {
        let (visitor, site) = (*visitor, *site);
        let ttl = sighting.latest + idle_ms + 1000 - now;
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
    })
}

/// What a writer knows of one browser's sighting on one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sighting {
    /// When the writer last set the sighting in Redis.
    refreshed: Millis,
    /// The latest page view the writer recorded (later than `refreshed` when it skipped
    /// the refresh).
    latest: Millis,
}

/// The sightings a writer set or skipped lately, in two generations: the older one is
/// dropped as a whole when the newer one is a quarter of the idle gap (a minute at most)
/// old, so the map holds only the browsers of the last two generations. A dropped sighting
/// whose latest page view is newer than the one Redis holds is kept until it is written
/// back, well before its visit could end.
struct Sightings {
    current: foldhash::HashMap<(VisitorId, SiteId), Sighting>,
    previous: foldhash::HashMap<(VisitorId, SiteId), Sighting>,
    due_back: foldhash::HashMap<(VisitorId, SiteId), Sighting>,
    current_since: Millis,
    /// The visit gap of the page views (a setting: the same for all).
    idle_ms: i64,
}

impl Default for Sightings {
    fn default() -> Self {
        Self {
            current: Default::default(),
            previous: Default::default(),
            due_back: Default::default(),
            current_since: 0,
            idle_ms: 30 * 60_000,
        }
    }
}

impl Sightings {
    /// When the writer refreshed the sighting in Redis less than `1/30` of the idle gap (a
    /// minute at most) before `at`, the page view needs no refresh: then it is noted, and
    /// the latest page view before it returned.
    fn skip(&mut self, key: (VisitorId, SiteId), at: Millis, idle_ms: i64) -> Option<Millis> {
        let fresh_for = (idle_ms / 30).min(60_000);
        let fresh = |s: &Sighting| at >= s.refreshed && at - s.refreshed < fresh_for;
        if let Some(s) = self.current.get_mut(&key) {
            let before = s.latest;
            fresh(s).then(|| s.latest = before.max(at))?;
            return Some(before);
        }
        let s = self.previous.get(&key).filter(|s| fresh(s))?;
        let before = s.latest;
        let noted = Sighting {
            latest: before.max(at),
            ..*s
        };
        self.put(key, noted, idle_ms);
        Some(before)
    }

    /// The sighting before a page view at `at`: the later of Redis's and the latest page
    /// view this writer recorded without refreshing Redis.
    fn latest_before(
        &self,
        key: (VisitorId, SiteId),
        at: Millis,
        stored: Option<Millis>,
    ) -> Option<Millis> {
        let mine = self
            .get(key)
            .map(|s| s.latest)
            .filter(|latest| *latest <= at);
        stored.max(mine)
    }

    /// A page view that set the sighting in Redis.
    fn refreshed(&mut self, key: (VisitorId, SiteId), at: Millis, idle_ms: i64) {
        let latest = self.get(key).map_or(at, |s| s.latest.max(at));
        self.put(
            key,
            Sighting {
                refreshed: at,
                latest,
            },
            idle_ms,
        );
    }

    /// Starts a new generation when the current one is old (or the clock went back); the
    /// dropped sightings that Redis holds older become due back.
    fn rotate(&mut self, now: Millis) {
        let age = now - self.current_since;
        if (0..(self.idle_ms / 4).clamp(1, 60_000)).contains(&age) {
            return;
        }
        self.current_since = now;
        let dropped = std::mem::replace(&mut self.previous, std::mem::take(&mut self.current));
        self.due_back
            .extend(dropped.into_iter().filter(|(_, s)| s.latest > s.refreshed));
    }

    /// Up to `most` sightings due back, taken to be written.
    fn take_due_back(&mut self, most: usize) -> Vec<((VisitorId, SiteId), Sighting)> {
        let keys: Vec<_> = self.due_back.keys().take(most).copied().collect();
        keys.into_iter()
            .filter_map(|k| self.due_back.remove(&k).map(|s| (k, s)))
            .collect()
    }

    /// Sightings that could not be written back, due again (unless refreshed since).
    fn restore(&mut self, stale: Vec<((VisitorId, SiteId), Sighting)>) {
        for (key, sighting) in stale {
            if self.get(key).is_none() {
                self.due_back.insert(key, sighting);
            }
        }
    }

    /// A skipped page view that was not recorded after all: the latest is what it was.
    fn unsee(&mut self, key: (VisitorId, SiteId), before: Millis) {
        if let Some(s) = self.current.get_mut(&key) {
            s.latest = before;
        }
    }

    fn get(&self, key: (VisitorId, SiteId)) -> Option<Sighting> {
        self.current
            .get(&key)
            .or_else(|| self.previous.get(&key))
            .or_else(|| self.due_back.get(&key))
            .copied()
    }

    fn put(&mut self, key: (VisitorId, SiteId), sighting: Sighting, idle_ms: i64) {
        self.idle_ms = idle_ms;
        self.previous.remove(&key);
        self.due_back.remove(&key);
        self.current.insert(key, sighting);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fresh for 8 s, a generation of a minute.
    const IDLE: i64 = 240_000;

    #[test]
    fn a_sighting_is_recent_for_a_while_then_asked_again() {
        let key = (VisitorId::mint(), SiteId(1));
        let mut sightings = Sightings::default();
        assert_eq!(sightings.skip(key, 1_000, IDLE), None);
        sightings.refreshed(key, 1_000, IDLE);
        assert_eq!(sightings.skip(key, 8_000, IDLE), Some(1_000));
        assert_eq!(sightings.skip(key, 8_500, IDLE), Some(8_000));
        // Fresh for 8 s after the refresh, not after the latest page view.
        assert_eq!(sightings.skip(key, 9_000, IDLE), None);
        assert_eq!(sightings.skip((key.0, SiteId(2)), 8_000, IDLE), None);
        // A page view stamped before the refresh cannot lean on it.
        assert_eq!(sightings.skip(key, 900, IDLE), None);
    }

    #[test]
    fn the_sighting_before_a_page_view_is_the_later_of_redis_and_the_writer() {
        let key = (VisitorId::mint(), SiteId(1));
        let mut sightings = Sightings::default();
        sightings.refreshed(key, 1_000, IDLE);
        sightings.skip(key, 1_300, IDLE);
        // Redis still holds the refresh (or nothing, if it expired): the skipped page
        // view is the later sighting.
        assert_eq!(
            sightings.latest_before(key, 16_000, Some(1_000)),
            Some(1_300)
        );
        assert_eq!(sightings.latest_before(key, 16_000, None), Some(1_300));
        // Another writer set a later one.
        assert_eq!(
            sightings.latest_before(key, 16_000, Some(2_000)),
            Some(2_000)
        );
        // The writer's own page view after this one is not before it.
        assert_eq!(
            sightings.latest_before(key, 1_200, Some(1_000)),
            Some(1_000)
        );
    }

    #[test]
    fn old_sightings_are_dropped_a_generation_at_a_time_and_stale_ones_come_due_back() {
        let (old, skipped, new) = (
            (VisitorId::mint(), SiteId(1)),
            (VisitorId::mint(), SiteId(1)),
            (VisitorId::mint(), SiteId(1)),
        );
        let mut sightings = Sightings::default();
        sightings.rotate(60_000);
        sightings.refreshed(old, 60_000, IDLE);
        sightings.refreshed(skipped, 60_000, IDLE);
        sightings.skip(skipped, 60_200, IDLE);
        sightings.rotate(119_000);
        sightings.refreshed(new, 119_000, IDLE);
        sightings.rotate(120_000);
        assert!(sightings.take_due_back(10).is_empty());
        // Still known from the older generation (and brought into the newer one).
        assert_eq!(sightings.skip(old, 60_010, IDLE), Some(60_000));
        sightings.refreshed(new, 120_000, IDLE);
        sightings.rotate(180_000);
        assert_eq!(sightings.current.len() + sightings.previous.len(), 2);
        assert_eq!(sightings.skip(old, 120_010, IDLE), None);
        // The skipped page view is remembered until it is written back.
        let due = [(
            skipped,
            Sighting {
                refreshed: 60_000,
                latest: 60_200,
            },
        )];
        assert_eq!(
            sightings.latest_before(skipped, 240_000, Some(60_000)),
            Some(60_200)
        );
        let stale = sightings.take_due_back(10);
        assert_eq!(stale, due);
        assert!(sightings.take_due_back(10).is_empty());
        // A write-back that failed is due again; one refreshed since is not.
        sightings.restore(stale);
        assert_eq!(sightings.take_due_back(10), due);
        sightings.restore(due.to_vec());
        sightings.refreshed(skipped, 240_000, IDLE);
        assert!(sightings.take_due_back(10).is_empty());
    }

    #[test]
    fn a_skipped_page_view_that_was_not_recorded_does_not_count() {
        let key = (VisitorId::mint(), SiteId(1));
        let mut sightings = Sightings::default();
        sightings.refreshed(key, 1_000, IDLE);
        let before = sightings.skip(key, 1_500, IDLE).unwrap();
        sightings.unsee(key, before);
        assert_eq!(
            sightings.latest_before(key, 100_000, Some(1_000)),
            Some(1_000)
        );
    }

    #[test]
    fn a_clock_that_goes_back_still_turns_the_generations() {
        let key = (VisitorId::mint(), SiteId(1));
        let mut sightings = Sightings::default();
        sightings.rotate(1_000_000);
        sightings.refreshed(key, 1_000_000, IDLE);
        sightings.rotate(500_000);
        sightings.rotate(500_001);
        sightings.rotate(560_002);
        assert_eq!(sightings.current.len() + sightings.previous.len(), 0);
    }
}

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
//! moments ago knows the visit is running without asking: it then sends only the append.
//! The sighting in Redis is thus at most `1/30` of the idle gap (a minute at most) old,
//! which makes a visit end up to that much early; one command per page view inside a
//! running visit is worth it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ::redis::aio::ConnectionLike;
use ::redis::{FromRedisValue, RedisResult, Value};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::breaker::Breaker;
use super::keys::Keys;
use super::slots::Batch;
use super::unavailable;
use crate::domain::ids::SiteId;
use crate::domain::time::Millis;
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
    // Per page view of the batch: the sighting this writer refreshed lately, if any.
    let mut known = Vec::with_capacity(MAX_BATCH);
    let mut sightings = Sightings::default();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // One turn of the worker's queue first: its other ready requests add their page
        // views, and the batch goes fuller for a few microseconds' wait.
        if batch.len() < MAX_BATCH {
            tokio::task::yield_now().await;
            let room = MAX_BATCH - batch.len();
            rx.recv_many(&mut batch, room).now_or_never();
        }
        let mut commands = Batch::new(by_slot);
        for (w, _) in &batch {
            let pv = &w.page_view;
            let fresh_for = (w.visit_idle_ms / 30).min(60_000);
            let recent = sightings.recent(w.visitor, pv.site_id, pv.at, fresh_for);
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
            let mut push = ::redis::cmd("LPUSH");
            push.arg(&history).arg(pv.encode());
            commands.add(&history, push);
        }
        let result = commands.run(&con).await;
        breaker.record(&result);
        match result {
            Ok(values) => {
                let mut values = values.into_iter();
                for ((w, reply), recent) in batch.drain(..).zip(known.drain(..)) {
                    let outcome = match recent {
                        Some(at) => parse(Ok(Some(at)), values.next()),
                        None => {
                            let last_seen = values
                                .next()
                                .ok_or_else(|| corrupt("short pipeline reply"))
                                .and_then(|v| Option::<i64>::from_redis_value(v).map_err(corrupt));
                            if last_seen.is_ok() {
                                sightings.refreshed(w.visitor, w.page_view.site_id, w.page_view.at);
                            }
                            parse(last_seen, values.next())
                        }
                    };
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                let message = e.to_string();
                known.clear();
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(unavailable(&message)));
                }
            }
        }
    }
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

/// The sightings a writer refreshed in Redis lately, in two generations: the older one is
/// dropped as a whole when the newer one is a minute old, so the map holds only the
/// visitors of the last two minutes.
#[derive(Default)]
struct Sightings {
    current: foldhash::HashMap<(VisitorId, SiteId), Millis>,
    previous: foldhash::HashMap<(VisitorId, SiteId), Millis>,
    current_since: Millis,
}

impl Sightings {
    const GENERATION_MS: Millis = 60_000;

    /// When this writer refreshed the sighting, if less than `fresh_for` before `at`.
    fn recent(
        &self,
        visitor: VisitorId,
        site: SiteId,
        at: Millis,
        fresh_for: Millis,
    ) -> Option<Millis> {
        let key = (visitor, site);
        let refreshed = self.current.get(&key).or_else(|| self.previous.get(&key))?;
        (at >= *refreshed && at - refreshed < fresh_for).then_some(*refreshed)
    }

    fn refreshed(&mut self, visitor: VisitorId, site: SiteId, at: Millis) {
        if at - self.current_since >= Self::GENERATION_MS {
            self.previous = std::mem::take(&mut self.current);
            self.current_since = at;
        }
        self.current.insert((visitor, site), at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sighting_is_recent_for_a_while_then_asked_again() {
        let (v, site) = (VisitorId::mint(), SiteId(1));
        let mut sightings = Sightings::default();
        assert_eq!(sightings.recent(v, site, 1_000, 500), None);
        sightings.refreshed(v, site, 1_000);
        assert_eq!(sightings.recent(v, site, 1_400, 500), Some(1_000));
        assert_eq!(sightings.recent(v, site, 1_500, 500), None);
        assert_eq!(sightings.recent(v, SiteId(2), 1_400, 500), None);
        // A page view stamped before the refresh cannot lean on it.
        assert_eq!(sightings.recent(v, site, 900, 500), None);
    }

    #[test]
    fn old_sightings_are_dropped_a_generation_at_a_time() {
        let (old, new) = (VisitorId::mint(), VisitorId::mint());
        let mut sightings = Sightings::default();
        sightings.refreshed(old, SiteId(1), 60_000);
        sightings.refreshed(new, SiteId(1), 119_000);
        assert_eq!(
            sightings.recent(old, SiteId(1), 60_010, 60_000),
            Some(60_000)
        );
        sightings.refreshed(new, SiteId(1), 120_000);
        sightings.refreshed(new, SiteId(1), 180_000);
        assert_eq!(sightings.current.len() + sightings.previous.len(), 2);
        assert_eq!(sightings.recent(old, SiteId(1), 60_010, 60_000), None);
    }
}

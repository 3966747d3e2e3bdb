//! Group commit of page views: every beacon waiting at a moment goes to Redis in one
//! pipeline (one per slot on a cluster). Under load this turns N round trips into one,
//! which is what lets the beacon keep up with a bare one-command handler.
//!
//! Each thread that records page views (each HTTP worker) gets a writer of its own, with
//! its own Redis connection, made on first use: a page view never leaves its worker's
//! thread, so no beacon pays for waking another thread and being woken back.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ::redis::aio::ConnectionLike;
use ::redis::{FromRedisValue, RedisResult, Value};
use tokio::sync::{mpsc, oneshot};

use super::breaker::Breaker;
use super::keys::Keys;
use super::slots::Batch;
use super::unavailable;
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
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut commands = Batch::new(by_slot);
        for (w, _) in &batch {
            let pv = &w.page_view;
            let seen = keys.visitor_seen(w.visitor, pv.site_id);
            let mut set = ::redis::cmd("SET");
            // A second of margin: the visit rule itself compares the times.
            set.arg(&seen)
                .arg(pv.at)
                .arg("GET")
                .arg("PX")
                .arg(w.visit_idle_ms + 1000);
            let history = keys.visitor_history(w.account, w.visitor);
            let mut push = ::redis::cmd("LPUSH");
            push.arg(&history).arg(pv.encode());
            commands.add(&seen, set).add(&history, push);
        }
        let result = commands.run(&con).await;
        breaker.record(&result);
        match result {
            Ok(values) => {
                let mut values = values.into_iter();
                for (_, reply) in batch.drain(..) {
                    let outcome = match (values.next(), values.next()) {
                        (Some(seen), Some(len)) => parse(seen, len),
                        _ => Err(corrupt("short pipeline reply")),
                    };
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(unavailable(&message)));
                }
            }
        }
    }
}

fn parse(seen: Value, len: Value) -> StoreResult<PageViewOutcome> {
    let last_seen = Option::<i64>::from_redis_value(seen).map_err(corrupt)?;
    let history_len = u64::from_redis_value(len).map_err(corrupt)?;
    Ok(PageViewOutcome {
        last_seen,
        history_len,
    })
}

//! Group commit of page views: every beacon waiting at a moment goes to Redis in one
//! pipeline (one per slot on a cluster). Under load this turns N round trips into one,
//! which is what lets the beacon keep up with a bare one-command handler.

use ::redis::aio::ConnectionLike;
use ::redis::{FromRedisValue, Value};
use tokio::sync::{mpsc, oneshot};

use super::keys::Keys;
use super::slots::Batch;
use super::unavailable;
use crate::store::{PageViewOutcome, PageViewWrite, StoreError, StoreResult, corrupt};

type Reply = oneshot::Sender<StoreResult<PageViewOutcome>>;

/// The most beacons sent in one pipeline.
const MAX_BATCH: usize = 256;

/// The sending side: cheap to clone, one per store.
#[derive(Clone)]
pub struct PageViewBatcher {
    tx: mpsc::Sender<(PageViewWrite, Reply)>,
}

impl PageViewBatcher {
    /// Starts the task that writes batches through `con`.
    pub fn spawn<C>(con: C, keys: Keys, by_slot: bool) -> Self
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(con, keys, by_slot, rx));
        Self { tx }
    }

    pub async fn record(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((write, reply))
            .await
            .map_err(|_| StoreError::Unavailable("page-view writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("page-view writer stopped".into()))?
    }
}

async fn run<C>(con: C, keys: Keys, by_slot: bool, mut rx: mpsc::Receiver<(PageViewWrite, Reply)>)
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut commands = Batch::new();
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
            let history = keys.visitor_history(w.visitor);
            let mut push = ::redis::cmd("LPUSH");
            push.arg(&history).arg(pv.encode());
            commands.add(&seen, set).add(&history, push);
        }
        match commands.run(&con, by_slot).await {
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

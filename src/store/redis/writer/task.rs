//! One writer's task: it connects, then gathers the page views waiting at each moment
//! into a batch, charges the batch's quotas (one pipeline), writes what was admitted with
//! the sightings due back and the statistics (a second pipeline), and answers each page
//! view. Its sightings and statistics clock are its own; nothing here is shared with the
//! thread's other writers but the store's buffers.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::ConnectionLike;
use ::redis::{FromRedisValue, RedisResult, Value};
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::{Connect, MAX_BATCH, Reply};
use crate::domain::ids::SiteId;
use crate::domain::time::{Millis, now_ms};
use crate::domain::visitor::VisitorId;
use crate::store::redis::breaker::Breaker;
use crate::store::redis::keys::Keys;
use crate::store::redis::origins::SiteOrigins;
use crate::store::redis::page_view_codec;
use crate::store::redis::per_thread::keep_tried;
use crate::store::redis::quotas;
use crate::store::redis::scripts;
use crate::store::redis::sightings::{SIGHTING_MARGIN_MS, Sighting, Sightings};
use crate::store::redis::slots::Batch;
use crate::store::redis::stats::{StatsBuffer, add_stats};
use crate::store::redis::unavailable;
use crate::store::{
    Charge, Charged, PageViewOutcome, PageViewWrite, StoreResult, corrupt, provisional_ttl_secs,
};

/// What every writer of a store shares.
#[derive(Clone)]
pub(super) struct Shared<C> {
    pub connect: Connect<C>,
    pub keys: Keys,
    pub by_slot: bool,
    pub breaker: Arc<Breaker>,
    /// Statistics counters waiting for the next pipeline (`stats.rs`).
    pub stats: Arc<StatsBuffer>,
    pub origins: Arc<SiteOrigins>,
}

/// How often a writer's connection is tried (`per_thread::keep_tried`): less often than a
/// thread's, as a thread has up to 16 writers, and a busy writer's connection is tried by
/// its batches anyway; a restart shorter than this may cost an idle writer's next batch.
const CHECK_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run<C>(
    shared: Shared<C>,
    mut rx: mpsc::Receiver<(PageViewWrite, Option<Charge>, Reply)>,
) where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let Shared {
        connect,
        keys,
        by_slot,
        breaker,
        stats,
        origins,
    } = shared;
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
    // Tried while the writer lasts, as each thread's connection is: a writer idle across a
    // Redis restart would otherwise find its connection dead, or still failed, with its
    // next batch, and open the breaker for everyone.
    let alive = Arc::new(());
    tokio::spawn(keep_tried(con.clone(), Arc::downgrade(&alive), CHECK_EVERY));
    stats.writer_started();
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
            if recent.is_none() {
                // A history this push made has no expiry until its visit's start gives
                // it one; should the start never come (a failure between the two), it
                // goes an hour after the visit gap rather than never.
                commands.add(&history, provisional_expiry(&history, w.visit_idle_ms));
            }
            if w.watch {
                crate::store::redis::watches::add_read(&mut commands, &keys, w);
            }
        }
        // Last in the pipeline, so that the page views' answers come first.
        let counted = add_stats(
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
                let mut made_anew = Vec::new();
                for ((w, _, reply), recent) in batch.drain(..).zip(known.drain(..)) {
                    let pv = &w.page_view;
                    let key = (w.visitor, pv.site_id);
                    let outcome = match recent {
                        Some(at) => {
                            let outcome = parse(Ok(Some(at)), values.next());
                            // A history this push made anew although the browser is in a
                            // visit (it was erased meanwhile): it gets the provisional
                            // expiry a first page view's history gets.
                            if outcome.as_ref().is_ok_and(|o| o.history_len == 1) {
                                made_anew.push((
                                    keys.visitor_history(w.account, w.visitor),
                                    w.visit_idle_ms,
                                ));
                            }
                            outcome
                        }
                        None => {
                            let stored = values
                                .next()
                                .ok_or_else(|| corrupt("short pipeline reply"))
                                .and_then(|v| Option::<i64>::from_redis_value(v).map_err(corrupt));
                            // A sighting written back in this pipeline counts whichever of
                            // the two ran first (a write-back resent after NOSCRIPT runs
                            // after the page views: `slots.rs`).
                            let back = stale
                                .iter()
                                .find(|(k, _)| *k == key)
                                .map(|(_, s)| s.latest)
                                .filter(|latest| *latest <= pv.at);
                            let last_seen = stored.map(|stored| {
                                sightings.latest_before(key, pv.at, stored.max(back))
                            });
                            if last_seen.is_ok() {
                                sightings.refreshed(key, pv.at, w.visit_idle_ms);
                            }
                            let outcome = parse(last_seen, values.next());
                            values.next(); // the provisional expiry's
                            outcome
                        }
                    };
                    let outcome = match w.watch {
                        true => crate::store::redis::watches::with_watch(outcome, values.next()),
                        false => outcome,
                    };
                    let _ = reply.send(outcome.map(Ok));
                }
                if !made_anew.is_empty() {
                    give_provisional_expiry(&con, by_slot, made_anew);
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

/// The provisional expiry of a history no visit's start has given one yet (`NX`: an
/// expiry it has stays).
fn provisional_expiry(history: &str, idle_ms: i64) -> ::redis::Cmd {
    let mut expire = ::redis::cmd("EXPIRE");
    expire
        .arg(history)
        .arg(provisional_ttl_secs(idle_ms))
        .arg("NX");
    expire
}

/// Gives histories (with their visit gaps) the provisional expiry, unless they have an
/// expiry: off the writer's loop, a rare case's round trip.
fn give_provisional_expiry<C>(con: &C, by_slot: bool, histories: Vec<(String, i64)>)
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let mut commands = Batch::new(by_slot);
    for (history, idle_ms) in &histories {
        commands.add(history, provisional_expiry(history, *idle_ms));
    }
    let con = con.clone();
    tokio::spawn(async move {
        if let Err(e) = commands.run(&con).await {
            tracing::warn!(error = %e, "a history made anew got no expiry");
        }
    });
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
    let mut commands = Batch::new(by_slot);
    for charges in &accounts {
        charges.add_to(&mut commands);
    }
    let values = send(con, breaker, commands)
        .await
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
            commands
                .script(&seen, &scripts::SET_SIGHTING_IF_LATER, 1)
                .arg(&seen)
                .arg(sighting.latest)
                .arg(ttl);
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

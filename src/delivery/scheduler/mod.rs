//! The scheduler: claims due events from the store's schedule and delivers them.
//!
//! It sleeps until the earliest due time (or a wake-up from this instance's triggers, or
//! the poll interval for events other instances scheduled) — no scan of the schedule.
//! Each claim leases its events; an instance that dies leaves them to be claimed again
//! when the lease ends. On shutdown it stops claiming and lets deliveries in flight end.
//!
//! The shares of the delivery slots (a quarter per handler, `delivery.account_share` per
//! account) are kept by [`Lanes`]: an event over a share waits there, in order, without
//! a slot. A waiting event whose lease would end before its delivery could goes back to
//! the schedule, due at once (the scheduler looks for those at every turn of its loop, so
//! a handler that never answers cannot keep one past its lease); so does, on shutdown,
//! every waiting event (for another instance). Only a queue of [`MAX_WAITING`](super::lanes::MAX_WAITING) events
//! sends the next one back to the schedule for a second or two.
//!
//! A delivered webhook is recorded through a short Redis outage or failover: while the
//! store is unavailable the record is tried again for as long as the event's lease leaves
//! room (each try cut at the lease's margin), so that the event is not claimed and sent a
//! second time. A longer outage, or a failover that loses the claim itself, may still
//! send it again; a sent webhook that could not be recorded is logged as such.

mod attempt;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::lanes::{Lanes, Place, Turn, Waiting};
use super::retry::RetryPolicy;
use super::sender::Sender;
use crate::domain::event_record::EventRecord;
use crate::domain::time::now_ms;
use crate::service::Services;
use crate::store::StoreResult;

/// The most events claimed at once.
const CLAIM_BATCH: usize = 128;

/// How long an event waits (plus up to as much again) when its handler's queue is full.
const BUSY_RETRY_MS: i64 = 1000;

/// What a lease keeps in hand after a delivery's last step: a clock or a pause of this
/// instance's must not let another claim send the event while this one still records it.
const LEASE_MARGIN_MS: i64 = 1000;

/// Whether a save started at `now`, which may take the store's response timeout, ends
/// (with the margin) before a lease that ends at `lease_until`.
fn saved_within_lease(lease_until: i64, now: i64, store_timeout_ms: i64) -> bool {
    now + store_timeout_ms + LEASE_MARGIN_MS < lease_until
}

pub struct Scheduler {
    services: Arc<Services>,
    sender: Sender,
    policy: RetryPolicy,
    lease_ms: i64,
    /// The store's response timeout: the room a try of a record needs.
    store_timeout_ms: i64,
    poll: Duration,
    slots: Arc<Semaphore>,
    concurrency: usize,
    lanes: Lanes<EventRecord>,
    /// Set once the scheduler stops claiming: waiting events go back to the schedule.
    stopping: AtomicBool,
}

impl Scheduler {
    pub fn new(services: Arc<Services>) -> Result<Arc<Self>, reqwest::Error> {
        let d = &services.settings.delivery;
        let trusted = services.demo.as_ref().map(|demo| demo.inbox_url.clone());
        let sender = Sender::new(
            Duration::from_millis(d.timeout_ms),
            d.allow_private_targets,
            trusted,
        )?;
        let policy = RetryPolicy {
            schedule: d
                .retry_schedule_seconds
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter_ratio: d.jitter_ratio,
        };
        Ok(Arc::new(Self {
            lease_ms: d.lease_seconds as i64 * 1000,
            store_timeout_ms: services.settings.store.response_timeout_ms as i64,
            poll: Duration::from_millis(d.poll_interval_ms),
            slots: Arc::new(Semaphore::new(d.concurrency)),
            concurrency: d.concurrency,
            lanes: Lanes::new(d.concurrency, d.account_share),
            stopping: AtomicBool::new(false),
            sender,
            policy,
            services,
        }))
    }

    /// Runs until `shutdown`, then waits (at most the delivery timeout and a second) for
    /// deliveries in flight.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let wake = self.services.scheduler_wake.clone();
        while !shutdown.is_cancelled() {
            self.put_back_stale();
            let free = self.slots.available_permits();
            if free == 0 {
                tokio::select! {
                    permit = self.slots.clone().acquire_owned() => drop(permit),
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let want = free.min(CLAIM_BATCH);
            let now = now_ms();
            let lease_until = now + self.lease_ms;
            let claimed = match self.services.store.claim_due(now, lease_until, want).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim due events; retrying in 1 s");
                    metrics::counter!("footfall_scheduler_errors_total").increment(1);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            let full = claimed.len() == want;
            for event in claimed {
                let Ok(permit) = self.slots.clone().acquire_owned().await else {
                    break;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    let id = event.id.clone();
                    if let Err(e) = this.process(event, lease_until).await {
                        tracing::warn!(event = %id, error = %e, "an event could not be delivered; the lease will bring it back");
                    }
                    drop(permit);
                });
            }
            if full {
                continue;
            }
            let wait = match self.services.store.next_due().await {
                Ok(Some(at)) => Duration::from_millis((at - now_ms()).max(1) as u64).min(self.poll),
                Ok(None) => self.poll,
                Err(_) => Duration::from_secs(1),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {},
                _ = wake.notified() => {},
                _ = shutdown.cancelled() => break,
            }
        }
        self.stopping.store(true, Ordering::Relaxed);
        let grace = Duration::from_millis(self.services.settings.delivery.timeout_ms + 1000);
        let all = self.concurrency as u32;
        if tokio::time::timeout(grace, self.slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                "deliveries still in flight at shutdown; their leases will expire and another instance will send them"
            );
        }
    }

    /// Delivers a claimed event now, queues it behind its handler's deliveries in flight,
    /// or puts it back for later; a delivery that ends takes the handler's next waiting
    /// event.
    async fn process(&self, event: EventRecord, mut lease_until: i64) -> StoreResult<()> {
        let store = &*self.services.store;
        if !event.state.is_pending() {
            return store.update_event(&event).await;
        }
        match self.place(event, lease_until) {
            Place::Queued => Ok(()),
            Place::Full(event) if self.stopping.load(Ordering::Relaxed) => {
                self.put_back(event, now_ms()).await
            }
            Place::Full(event) => {
                metrics::counter!("footfall_scheduler_deferred_total").increment(1);
                let wait = rand::rng().random_range(BUSY_RETRY_MS..2 * BUSY_RETRY_MS);
                self.put_back(event, now_ms() + wait).await
            }
            Place::Turn(mut event, mut turn) => loop {
                let id = event.id.clone();
                if let Err(e) = self.deliver(event, lease_until).await {
                    tracing::warn!(event = %id, error = %e, "an event could not be delivered; the lease will bring it back");
                }
                match self.next_in_turn(turn).await {
                    Some((next, same)) => {
                        lease_until = next.deliver_by + self.attempt_room();
                        (event, turn) = (next.event, same);
                    }
                    None => return Ok(()),
                }
            },
        }
    }

    /// The handler's next waiting event to deliver in this turn. One whose lease could
    /// end first, or any once the scheduler stops, goes back to the schedule, due now,
    /// for whichever instance claims it next.
    async fn next_in_turn<'a>(
        &self,
        mut turn: Turn<'a, EventRecord>,
    ) -> Option<(Waiting<EventRecord>, Turn<'a, EventRecord>)> {
        loop {
            let (waiting, same) = turn.next()?;
            turn = same;
            let now = now_ms();
            if !self.stopping.load(Ordering::Relaxed) && now <= waiting.deliver_by {
                return Some((waiting, turn));
            }
            // Past its lease it may be another claim's already: left to the lease.
            if !self.worth_putting_back(waiting.deliver_by, now) {
                continue;
            }
            let id = waiting.event.id.clone();
            if let Err(e) = self.put_back(waiting.event, now).await {
                tracing::warn!(event = %id, error = %e, "could not put an event back; the lease will bring it back");
            }
        }
    }

    /// Sends the waiting events whose leases could end before their deliveries back to
    /// the schedule, due at once. The saves run in a task of their own: a handler that never answers has
    /// hundreds of them a second, and the claims of every other handler must not wait.
    fn put_back_stale(self: &Arc<Self>) {
        let now = now_ms();
        let stale = self.lanes.take_stale(now);
        if stale.is_empty() {
            return;
        }
        metrics::counter!("footfall_scheduler_expired_total").increment(stale.len() as u64);
        let this = self.clone();
        tokio::spawn(async move {
            for (event, deliver_by) in stale {
                // Saved one at a time, a long list outlives the later events' leases:
                // such an event is due again, maybe claimed again already, and a save of
                // this claim's copy would overwrite the new claim's. Its lease brings it
                // back; it is left alone.
                if !this.worth_putting_back(deliver_by, now_ms()) {
                    continue;
                }
                let id = event.id.clone();
                if let Err(e) = this.put_back(event, now).await {
                    tracing::warn!(event = %id, error = %e, "could not put an event back; the lease will bring it back");
                }
            }
        });
    }

    /// Whether a waiting event (to be delivered by `deliver_by`) put back at `now` is
    /// saved before its claim's lease ends, so that it cannot overwrite a later claim.
    fn worth_putting_back(&self, deliver_by: i64, now: i64) -> bool {
        saved_within_lease(deliver_by + self.attempt_room(), now, self.store_timeout_ms)
    }

    /// Saves a claimed event undelivered, due again at `at` (which ends this claim's lease).
    async fn put_back(&self, mut event: EventRecord, at: i64) -> StoreResult<()> {
        event.next_attempt_at = Some(at);
        self.services.store.update_event(&event).await
    }

    /// What a lease keeps for an attempt that starts at the latest: the delivery timeout
    /// and the margin. An event is delivered by its lease's end less this.
    fn attempt_room(&self) -> i64 {
        self.services.settings.delivery.timeout_ms as i64 + LEASE_MARGIN_MS
    }

    /// A turn now, unless the event's handler or account has its share in flight: then a
    /// place in its handler's queue (the event moves there), unless that is full.
    fn place(&self, event: EventRecord, lease_until: i64) -> Place<'_, EventRecord> {
        // An account's webhooks (handler 0 on their events) share one lane.
        let handler = (event.account_id, event.handler_id);
        let deliver_by = lease_until - self.attempt_room();
        let queue = !self.stopping.load(Ordering::Relaxed);
        self.lanes.place(handler, event, deliver_by, queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_put_back_only_while_its_lease_outlasts_the_save() {
        assert!(saved_within_lease(10_000, 7_000, 1_000));
        assert!(
            !saved_within_lease(10_000, 8_500, 1_000),
            "within the save's time"
        );
        assert!(
            !saved_within_lease(10_000, 12_000, 1_000),
            "the lease has ended"
        );
    }
}

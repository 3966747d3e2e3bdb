//! Shares of the delivery slots: per handler and per account.
//!
//! One handler has at most a quarter of the slots in flight, one account at most
//! `delivery.account_share` of them (half by default), so that a slow or unreachable
//! handler — or one account's four of them — delays its own events, not every other
//! handler's or account's. An event over a share waits here in its handler's queue, in
//! the order of its claim, without a slot: each delivery of the account that ends takes
//! the account's earliest waiting event whose handler is under its share (its own
//! handler's next, usually). Nothing over a share goes back to the schedule while the
//! handler's queue has room.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

use crate::domain::ids::{AccountId, HandlerId};

/// The most claimed events one handler's queue holds in this instance: a bound on the
/// memory a handler that never answers can take (its events go back to the schedule when
/// their leases near their end and are claimed again, so its queue only grows). A handler
/// that keeps up never comes near it: at 2 000 events a second, a queue this long is five
/// seconds of them.
pub const MAX_WAITING: usize = 10_000;

pub type HandlerKey = (AccountId, HandlerId);

/// A claimed event waiting for its turn.
pub struct Waiting<T> {
    pub event: T,
    /// After this its lease could end before a delivery does: then it goes back to the
    /// schedule instead, so that no other claim sends it a second time.
    pub deliver_by: i64,
    /// The order of claims, across the account's handlers.
    seq: u64,
}

/// Where a claimed event goes.
pub enum Place<'a, T> {
    /// Delivered now, in this turn.
    Turn(T, Turn<'a, T>),
    /// Waits in its handler's queue.
    Queued,
    /// Back to the schedule: the handler's queue is full, or the scheduler is stopping.
    Full(T),
}

/// The handlers and accounts with deliveries in flight, and the events waiting for them.
pub struct Lanes<T> {
    inner: Mutex<Inner<T>>,
    handler_share: usize,
    account_share: usize,
}

struct Inner<T> {
    handlers: HashMap<HandlerKey, Lane<T>>,
    /// Deliveries in flight per account.
    accounts: HashMap<AccountId, usize>,
    next_seq: u64,
}

/// One handler's deliveries in flight, and its claimed events waiting for a turn.
struct Lane<T> {
    in_flight: usize,
    waiting: VecDeque<Waiting<T>>,
}

impl<T> Default for Inner<T> {
    fn default() -> Self {
        Self {
            handlers: HashMap::new(),
            accounts: HashMap::new(),
            next_seq: 0,
        }
    }
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Self {
            in_flight: 0,
            waiting: VecDeque::new(),
        }
    }
}

impl<T> Lanes<T> {
    /// Shares of `concurrency` slots: a quarter per handler, `account_share` (a fraction
    /// in (0, 1]) per account; each at least one slot.
    pub fn new(concurrency: usize, account_share: f64) -> Self {
        let account = (concurrency as f64 * account_share).ceil() as usize;
        Self {
            inner: Mutex::default(),
            handler_share: concurrency.div_ceil(4).max(1),
            account_share: account.clamp(1, concurrency.max(1)),
        }
    }

    /// A turn now if the event's handler and account are under their shares; else a
    /// place at the end of its handler's queue (`deliver_by` is when it must leave it),
    /// unless that is full or `queue` is false.
    pub fn place(
        &self,
        handler: HandlerKey,
        event: T,
        deliver_by: i64,
        queue: bool,
    ) -> Place<'_, T> {
        let mut inner = self.inner.lock();
        let account_busy = inner.accounts.get(&handler.0).copied().unwrap_or(0);
        let inner = &mut *inner;
        let lane = inner.handlers.entry(handler).or_default();
        if lane.in_flight < self.handler_share && account_busy < self.account_share {
            lane.in_flight += 1;
            *inner.accounts.entry(handler.0).or_default() += 1;
            return Place::Turn(event, self.turn(handler));
        }
        if queue && lane.waiting.len() < MAX_WAITING {
            inner.next_seq += 1;
            lane.waiting.push_back(Waiting {
                event,
                deliver_by,
                seq: inner.next_seq,
            });
            return Place::Queued;
        }
        if lane.in_flight == 0 && lane.waiting.is_empty() {
            inner.handlers.remove(&handler);
        }
        Place::Full(event)
    }

    /// The waiting events whose `deliver_by` has passed, each with it. Each queue is in
    /// the order of its claims, so they are at its front.
    pub fn take_stale(&self, now: i64) -> Vec<(T, i64)> {
        let mut inner = self.inner.lock();
        let mut stale = Vec::new();
        inner.handlers.retain(|_, lane| {
            while lane.waiting.front().is_some_and(|w| w.deliver_by < now) {
                stale.extend(lane.waiting.pop_front().map(|w| (w.event, w.deliver_by)));
            }
            lane.in_flight > 0 || !lane.waiting.is_empty()
        });
        stale
    }

    fn turn(&self, handler: HandlerKey) -> Turn<'_, T> {
        Turn {
            lanes: self,
            handler,
            given_back: false,
        }
    }

    /// One delivery of `handler` ended: the account's earliest waiting event whose
    /// handler is under its share takes its slot (and its turn), or the slot is freed.
    fn hand_over(&self, handler: HandlerKey, pass: bool) -> Option<(Waiting<T>, HandlerKey)> {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        if let Some(lane) = inner.handlers.get_mut(&handler) {
            lane.in_flight -= 1;
        }
        let next = pass
            .then(|| {
                inner
                    .handlers
                    .iter()
                    .filter(|(key, lane)| key.0 == handler.0 && lane.in_flight < self.handler_share)
                    .filter_map(|(key, lane)| lane.waiting.front().map(|w| (w.seq, *key)))
                    .min()
            })
            .flatten()
            .map(|(_, key)| key);
        let taken = next.and_then(|key| {
            let lane = inner.handlers.get_mut(&key)?;
            lane.in_flight += 1;
            lane.waiting.pop_front().map(|w| (w, key))
        });
        if inner
            .handlers
            .get(&handler)
            .is_some_and(|lane| lane.in_flight == 0 && lane.waiting.is_empty())
        {
            inner.handlers.remove(&handler);
        }
        if taken.is_none()
            && let Some(busy) = inner.accounts.get_mut(&handler.0)
        {
            *busy -= 1;
            if *busy == 0 {
                inner.accounts.remove(&handler.0);
            }
        }
        taken
    }

    /// Deliveries in flight for the account and for the handler (for the tests).
    #[cfg(test)]
    fn in_flight(&self, handler: HandlerKey) -> (usize, usize) {
        let inner = self.inner.lock();
        (
            inner.accounts.get(&handler.0).copied().unwrap_or(0),
            inner.handlers.get(&handler).map_or(0, |l| l.in_flight),
        )
    }
}

/// A delivery slot held by one account: it passes from one of the account's events to
/// the next until none waits.
pub struct Turn<'a, T> {
    lanes: &'a Lanes<T>,
    handler: HandlerKey,
    given_back: bool,
}

impl<T> Turn<'_, T> {
    /// The account's next waiting event, in this turn; none gives the slot back.
    pub fn next(mut self) -> Option<(Waiting<T>, Self)> {
        let taken = self.lanes.hand_over(self.handler, true);
        match taken {
            Some((waiting, handler)) => {
                self.handler = handler;
                Some((waiting, self))
            }
            None => {
                self.given_back = true;
                None
            }
        }
    }
}

impl<T> Drop for Turn<'_, T> {
    /// A turn left without asking for the next event (a panic) frees its slot; the
    /// account's waiting events go back with their leases if no other turn takes them.
    fn drop(&mut self) {
        if !self.given_back {
            self.lanes.hand_over(self.handler, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(account: u64, handler: u64) -> HandlerKey {
        (AccountId(account), HandlerId(handler))
    }

    #[test]
    fn an_account_over_its_share_waits_while_another_account_gets_a_slot() {
        // Eight slots: two per handler, four per account.
        let lanes = Lanes::<u64>::new(8, 0.5);
        let mut turns = Vec::new();
        for h in 1..=4 {
            for n in 0..2 {
                match lanes.place(key(1, h), h * 10 + n, i64::MAX, true) {
                    Place::Turn(_, turn) => turns.push(turn),
                    _ if h <= 2 => panic!("handler {h} is under both shares"),
                    _ => {}
                }
            }
        }
        assert_eq!(turns.len(), 4, "account 1 holds half the slots");
        assert_eq!(lanes.in_flight((AccountId(1), HandlerId(1))), (4, 2));
        assert!(matches!(
            lanes.place(key(2, 9), 90, i64::MAX, true),
            Place::Turn(..)
        ));
    }

    #[test]
    fn a_slot_that_ends_goes_to_the_accounts_earliest_waiting_event() {
        // Four slots: one per handler, two per account.
        let lanes = Lanes::<u64>::new(4, 0.5);
        let Place::Turn(_, a) = lanes.place(key(1, 1), 1, i64::MAX, true) else {
            panic!()
        };
        let Place::Turn(_, _b) = lanes.place(key(1, 2), 2, i64::MAX, true) else {
            panic!()
        };
        // Handler 3 waits for the account; handler 1's second event for its handler.
        assert!(matches!(
            lanes.place(key(1, 3), 3, i64::MAX, true),
            Place::Queued
        ));
        assert!(matches!(
            lanes.place(key(1, 1), 4, i64::MAX, true),
            Place::Queued
        ));
        let (next, a) = a.next().expect("the account's next event");
        assert_eq!(next.event, 3, "claimed first");
        let (next, _a) = a.next().expect("then handler 1's");
        assert_eq!(next.event, 4);
    }

    #[test]
    fn the_last_turn_frees_the_accounts_slots() {
        let lanes = Lanes::<u64>::new(4, 0.5);
        let Place::Turn(_, a) = lanes.place(key(1, 1), 1, i64::MAX, true) else {
            panic!()
        };
        assert!(a.next().is_none());
        assert_eq!(lanes.in_flight((AccountId(1), HandlerId(1))), (0, 0));
        assert!(lanes.inner.lock().handlers.is_empty());
        assert!(lanes.inner.lock().accounts.is_empty());
    }

    #[test]
    fn waiting_events_past_their_time_are_taken_from_every_queue() {
        // Four slots: one per handler, two per account.
        let lanes = Lanes::<u64>::new(4, 0.5);
        let Place::Turn(_, a) = lanes.place(key(1, 1), 1, 100, true) else {
            panic!()
        };
        let Place::Turn(_, _b) = lanes.place(key(1, 2), 2, 100, true) else {
            panic!()
        };
        // Handler 3 waits for its account only, handler 1's for its handler.
        assert!(matches!(lanes.place(key(1, 3), 3, 10, true), Place::Queued));
        assert!(matches!(lanes.place(key(1, 1), 4, 20, true), Place::Queued));
        assert!(matches!(lanes.place(key(1, 1), 5, 30, true), Place::Queued));
        let mut stale = lanes.take_stale(25);
        stale.sort_unstable();
        assert_eq!(stale, [(3, 10), (4, 20)]);
        assert!(
            !lanes.inner.lock().handlers.contains_key(&key(1, 3)),
            "a lane with nothing in flight or waiting goes"
        );
        let (next, _a) = a.next().expect("the one left");
        assert_eq!(next.event, 5);
    }
}

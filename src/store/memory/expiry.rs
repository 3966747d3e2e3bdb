//! Expiry in memory: what Redis drops by itself (finished events after the retention,
//! browsers' histories and links, last sightings, submission fingerprints) is dropped
//! here too — not only hidden from reads — so that the embedded store does not keep a
//! person's data, nor grow, past the retention. The scheduler's polling calls it; it
//! walks the state at most every [`FORGET_EVERY`].

use std::time::{Duration, Instant};

use super::State;
use crate::domain::time::{Millis, now_ms};

/// How often expired entries are dropped: often enough that nothing outlives its expiry
/// by much, rarely enough that walking an embedded deployment's state costs nothing.
pub const FORGET_EVERY: Duration = Duration::from_secs(2);

impl State {
    /// Drops whatever has expired, unless that was done less than [`FORGET_EVERY`] ago.
    pub(super) fn forget_expired(&mut self, event_retention: Duration) {
        let now = Instant::now();
        if self
            .forgotten_at
            .is_some_and(|at| now.duration_since(at) < FORGET_EVERY)
        {
            return;
        }
        self.forgotten_at = Some(now);
        let horizon = now_ms() - event_retention.as_millis() as Millis;
        self.events
            .retain(|_, (_, expires)| expires.is_none_or(|e| e > now));
        let events = &self.events;
        for ids in self.account_events.values_mut() {
            ids.retain(|id| events.get(id).is_some_and(|(e, _)| e.created_at > horizon));
        }
        self.visitors.retain(|_, v| !v.expired(now));
        self.sightings.retain(|_, (_, until)| *until > now);
        self.browsers.retain(|_, (_, until)| *until > now);
        self.submissions.retain(|_, (_, _, until)| *until > now);
        // Drained quota counters say nothing a missing one would not.
        let now_us = super::quotas::now_us();
        self.quotas.retain(|_, tat| *tat > now_us);
    }
}

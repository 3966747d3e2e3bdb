//! What a page-view writer knows of the browsers it saw lately, so that a page view inside
//! a running visit can skip refreshing the browser's last sighting in Redis.
//!
//! A writer that refreshed a sighting less than [`fresh_for`] ago (1/30 of the visit gap,
//! a minute at most) knows the visit is running without asking Redis. It remembers the
//! page views it skipped, counts them when it next reads the sighting, and writes the
//! latest back when it forgets the browser: sightings are kept in two generations, each
//! [`generation`] long (a quarter of the gap, a minute at most).
//!
//! **Crash contract**: the page views themselves are always written; what an instance
//! crash loses is the skipped refreshes not yet written back (at most two generations'
//! worth), so a visit may then end up to that much early — never late, and never with a
//! page view missing from the history.

use crate::domain::ids::SiteId;
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;

pub use crate::store::SIGHTING_MARGIN_MS;

/// The longest a writer skips refreshes or keeps a generation, whatever the gap.
const MAX_WINDOW_MS: i64 = 60_000;

/// How long after refreshing a sighting a writer skips refreshing it again.
pub fn fresh_for(idle_ms: i64) -> i64 {
    (idle_ms / 30).min(MAX_WINDOW_MS)
}

/// How long a generation of sightings lasts.
pub fn generation(idle_ms: i64) -> i64 {
    (idle_ms / 4).clamp(1, MAX_WINDOW_MS)
}

/// What a writer knows of one browser's sighting on one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    /// When the writer last set the sighting in Redis.
    pub refreshed: Millis,
    /// The latest page view the writer recorded (later than `refreshed` when it skipped
    /// the refresh).
    pub latest: Millis,
    /// The visit gap of the sighting's site (sites may have gaps of their own).
    pub idle_ms: i64,
}

/// The sightings a writer set or skipped lately, in two generations: the older one is
/// dropped as a whole when the newer one is a quarter of the shortest visit gap among them
/// (a minute at most) old, so the map holds only the browsers of the last two generations.
/// A dropped sighting whose latest page view is newer than the one Redis holds is kept
/// until it is written back, well before its visit could end.
pub struct Sightings {
    current: foldhash::HashMap<(VisitorId, SiteId), Sighting>,
    previous: foldhash::HashMap<(VisitorId, SiteId), Sighting>,
    due_back: foldhash::HashMap<(VisitorId, SiteId), Sighting>,
    current_since: Millis,
    /// The shortest visit gap among the sightings put in the current and the previous
    /// generation (`i64::MAX` for none).
    current_shortest: i64,
    previous_shortest: i64,
}

impl Default for Sightings {
    fn default() -> Self {
        Self {
            current: Default::default(),
            previous: Default::default(),
            due_back: Default::default(),
            current_since: 0,
            current_shortest: i64::MAX,
            previous_shortest: i64::MAX,
        }
    }
}

impl Sightings {
    /// When the writer refreshed the sighting in Redis less than `1/30` of the idle gap (a
    /// minute at most) before `at`, the page view needs no refresh: then it is noted, and
    /// the latest page view before it returned.
    pub fn skip(&mut self, key: (VisitorId, SiteId), at: Millis, idle_ms: i64) -> Option<Millis> {
        let fresh_for = fresh_for(idle_ms);
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
            idle_ms,
            ..*s
        };
        self.put(key, noted);
        Some(before)
    }

    /// The sighting before a page view at `at`: the later of Redis's and the latest page
    /// view this writer recorded without refreshing Redis.
    pub fn latest_before(
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
    pub fn refreshed(&mut self, key: (VisitorId, SiteId), at: Millis, idle_ms: i64) {
        let latest = self.get(key).map_or(at, |s| s.latest.max(at));
        self.put(
            key,
            Sighting {
                refreshed: at,
                latest,
                idle_ms,
            },
        );
    }

    /// Starts a new generation when the current one is old (or the clock went back); the
    /// dropped sightings that Redis holds older become due back.
    pub fn rotate(&mut self, now: Millis) {
        let age = now - self.current_since;
        // Until a page view says its gap, the longest generation.
        let shortest = self.current_shortest.min(self.previous_shortest);
        if (0..generation(shortest.min(4 * MAX_WINDOW_MS))).contains(&age) {
            return;
        }
        self.current_since = now;
        self.previous_shortest = std::mem::replace(&mut self.current_shortest, i64::MAX);
        let dropped = std::mem::replace(&mut self.previous, std::mem::take(&mut self.current));
        self.due_back
            .extend(dropped.into_iter().filter(|(_, s)| s.latest > s.refreshed));
    }

    /// Up to `most` sightings due back, taken to be written.
    pub fn take_due_back(&mut self, most: usize) -> Vec<((VisitorId, SiteId), Sighting)> {
        let keys: Vec<_> = self.due_back.keys().take(most).copied().collect();
        keys.into_iter()
            .filter_map(|k| self.due_back.remove(&k).map(|s| (k, s)))
            .collect()
    }

    /// Sightings that could not be written back, due again (unless refreshed since).
    pub fn restore(&mut self, stale: Vec<((VisitorId, SiteId), Sighting)>) {
        for (key, sighting) in stale {
            if self.get(key).is_none() {
                self.due_back.insert(key, sighting);
            }
        }
    }

    /// A skipped page view that was not recorded after all: the latest is what it was.
    pub fn unsee(&mut self, key: (VisitorId, SiteId), before: Millis) {
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

    pub fn put(&mut self, key: (VisitorId, SiteId), sighting: Sighting) {
        self.current_shortest = self.current_shortest.min(sighting.idle_ms);
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
                idle_ms: IDLE,
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

    #[test]
    fn a_short_gap_shortens_the_generations_while_its_sightings_are_kept() {
        const SHORT: i64 = 16_000;
        let mut sightings = Sightings::default();
        let (long, short) = (
            (VisitorId::mint(), SiteId(1)),
            (VisitorId::mint(), SiteId(2)),
        );
        sightings.refreshed(long, 0, IDLE);
        sightings.skip(long, 10, IDLE);
        sightings.refreshed(short, 0, SHORT);
        sightings.skip(short, 10, SHORT);
        // A generation of a quarter of the short gap: both are due back after two.
        sightings.rotate(4_000);
        sightings.rotate(8_000);
        let mut due = sightings.take_due_back(10);
        due.sort_by_key(|(_, s)| s.idle_ms);
        // Each is written back for its own site's gap.
        assert_eq!(
            due.iter().map(|(k, s)| (*k, s.idle_ms)).collect::<Vec<_>>(),
            [(short, SHORT), (long, IDLE)]
        );
        // With no short-gap sightings left, generations grow back to the long gap's.
        sightings.refreshed(long, 9_000, IDLE);
        sightings.rotate(13_000);
        sightings.rotate(17_000);
        assert!(sightings.take_due_back(10).is_empty());
        sightings.rotate(17_000 + generation(IDLE) - 1);
        assert_eq!(sightings.current.len() + sightings.previous.len(), 1);
    }
}

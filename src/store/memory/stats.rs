//! Statistics in memory, as Redis's `stats.rs` keeps them — but unique browsers are exact
//! sets of 64-bit hashes rather than HyperLogLogs (as an HLL, they hold no visitor id in
//! the clear: nothing for an erasure to find). Days older than `MAX_DAYS` + 1 are dropped
//! as new ones come.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use async_trait::async_trait;

use super::{MemoryStore, State};
use crate::domain::ids::SiteId;
use crate::domain::stats::{Counts, MAX_DAYS, MAX_TOP_ENTRIES, StatsDelta, oldest_kept};
use crate::domain::time::now_ms;
use crate::domain::visitor::VisitorId;
use crate::store::stats::{Stats, StoredStats};

/// One site's day.
#[derive(Debug, Default)]
pub(super) struct Day {
    counts: Counts,
    /// Hashes of the browsers seen ([`browser_hash`]).
    browsers: HashSet<u64>,
    pages: HashMap<String, u64>,
    sources: HashMap<String, u64>,
}

/// Adds a delta to the state (under the store's one lock).
pub(super) fn add(state: &mut State, delta: StatsDelta) {
    let oldest = oldest_kept(now_ms());
    if state.stats.keys().any(|(_, d)| *d < oldest) {
        state.stats.retain(|(_, d), _| *d >= oldest);
    }
    for (key, d) in delta.days.into_iter().filter(|((_, d), _)| *d >= oldest) {
        let day = state.stats.entry(key).or_default();
        day.counts.add(&d.counts);
        day.browsers.extend(d.browsers.iter().map(browser_hash));
        for (into, from) in [(&mut day.pages, d.pages), (&mut day.sources, d.sources)] {
            for (name, n) in from {
                *into.entry(name).or_default() += n;
            }
            keep_top(into);
        }
    }
}

/// A browser as a day's unique-browser set keeps it: a 64-bit hash (collisions among a
/// site's daily browsers are negligible, and rarer than an HLL's error).
fn browser_hash(visitor: &VisitorId) -> u64 {
    let mut h = DefaultHasher::new();
    visitor.hash(&mut h);
    h.finish()
}

/// As Redis's ZREMRANGEBYRANK: past the limit, the least frequent (then the first by
/// name) go.
fn keep_top(entries: &mut HashMap<String, u64>) {
    if entries.len() <= MAX_TOP_ENTRIES {
        return;
    }
    let mut all: Vec<(String, u64)> = entries.drain().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    all.truncate(MAX_TOP_ENTRIES);
    entries.extend(all);
}

#[async_trait]
impl Stats for MemoryStore {
    async fn add_stats(&self, delta: StatsDelta) -> crate::store::StoreResult<()> {
        add(&mut self.state.lock(), delta);
        Ok(())
    }

    /// Nothing is held back: every delta is added at once.
    async fn flush_stats(&self) -> crate::store::StoreResult<()> {
        Ok(())
    }

    async fn remove_tops(&self, delta: StatsDelta) -> crate::store::StoreResult<()> {
        let mut state = self.state.lock();
        for (key, d) in delta.days {
            let Some(day) = state.stats.get_mut(&key) else {
                continue;
            };
            for (from, less) in [(&mut day.pages, d.pages), (&mut day.sources, d.sources)] {
                for (name, n) in less {
                    if let Some(count) = from.get_mut(&name) {
                        *count = count.saturating_sub(n);
                        if *count == 0 {
                            from.remove(&name);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn site_stats(
        &self,
        site: SiteId,
        from: u32,
        to: u32,
    ) -> crate::store::StoreResult<StoredStats> {
        let state = self.state.lock();
        let mut out = StoredStats::default();
        let mut browsers = HashSet::new();
        let oldest = oldest_kept(now_ms());
        for day in (from.max(oldest)..=to).take(MAX_DAYS as usize) {
            let Some(d) = state.stats.get(&(site, day)) else {
                continue;
            };
            out.days.push((day, d.counts, d.browsers.len() as u64));
            browsers.extend(d.browsers.iter().copied());
            for (into, from) in [(&mut out.pages, &d.pages), (&mut out.sources, &d.sources)] {
                for (name, n) in from {
                    *into.entry(name.clone()).or_default() += n;
                }
            }
        }
        out.unique_browsers = browsers.len() as u64;
        Ok(out)
    }
}

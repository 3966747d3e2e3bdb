//! Per-site, per-day statistics (`domain::stats`): counters added as deltas, read back as
//! a period's days, its unique browsers and its top pages and sources.
//!
//! On Redis a page view's counters ride in the page-view writer's own pipeline (summed
//! over the batch: one command per counter and site, not per page view), and the
//! counters of visits, submissions and firings are buffered and sent with the next
//! pipeline (or the writer's tick, within a second): no round trip of their own. What an
//! instance crash can lose: the counters buffered in that last second (a graceful stop
//! writes them, [`Stats::flush_stats`]). Unique browsers are HyperLogLogs on Redis
//! (±0.81 %), exact sets in memory.

use std::collections::HashMap;

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::ids::SiteId;
use crate::domain::stats::{Counts, StatsDelta};

/// A site's stored figures over days `from..=to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredStats {
    /// Each day of the period that has figures: (day, counters, unique browsers).
    pub days: Vec<(u32, Counts, u64)>,
    /// Unique browsers over the whole period.
    pub unique_browsers: u64,
    pub pages: HashMap<String, u64>,
    pub sources: HashMap<String, u64>,
}

#[async_trait]
pub trait Stats: Send + Sync {
    /// Adds counters (see the module's note on when Redis writes them).
    async fn add_stats(&self, delta: StatsDelta) -> StoreResult<()>;
    /// Takes an erased browser's share out of the top pages and sources
    /// ([`StatsDelta::tops_of`]): each count goes down by what it added, and an entry that
    /// reaches 0 goes. On Redis the buffered counters are sent first, in the same round
    /// trip, so that no later flush adds an erased name back.
    async fn remove_tops(&self, delta: StatsDelta) -> StoreResult<()>;
    /// A site's figures over days `from..=to` (at most `domain::stats::MAX_DAYS`).
    async fn site_stats(&self, site: SiteId, from: u32, to: u32) -> StoreResult<StoredStats>;
    /// Writes the counters this instance holds back (on Redis, the buffered ones): a
    /// graceful stop calls it once its requests are done, so that only a crash loses them.
    async fn flush_stats(&self) -> StoreResult<()>;
}

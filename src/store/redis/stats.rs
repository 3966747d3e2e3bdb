//! Statistics on Redis, in each site's own slot (`{s<site>}`), per UTC day: a hash of
//! counters, a HyperLogLog of browsers, sorted sets of pages and of sources (each kept to
//! its `MAX_TOP_ENTRIES` most frequent). Every key expires `MAX_DAYS` + 1 days after its
//! day. Written by the page-view writer ([`add_stats`]), inside its pipelines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use ::redis::aio::ConnectionLike;
use ::redis::{FromRedisValue, Value};
use async_trait::async_trait;
use parking_lot::Mutex;

use super::RedisStore;
use super::keys::Keys;
use super::slots::Batch;
use crate::domain::ids::SiteId;
use crate::domain::stats::{Counts, MAX_DAYS, MAX_TOP_ENTRIES, StatsDelta, oldest_kept};
use crate::domain::time::now_ms;
use crate::store::stats::{Stats, StoredStats};
use crate::store::{PageViewWrite, StoreResult, corrupt};

/// Counters waiting for the next page-view pipeline.
#[derive(Default)]
pub struct StatsBuffer {
    pending: Mutex<StatsDelta>,
    /// A page-view writer runs (and will send the buffer within its tick).
    writing: AtomicBool,
    /// When a writer last sent the buffer (ms): one flush per [`FLUSH_EVERY`] for the
    /// store, however many writers (one per worker and account) hold page views.
    flushed_ms: AtomicI64,
}

/// The most entries (distinct browsers, pages and sources of a day) a buffer holds
/// before it is sent, sooner than its second: so that no flush is large enough to hold up
/// its worker's requests (or Redis) for long. Repeats do not count: they add nothing to a
/// flush, and counting them sent a busy site's counters many times a second.
const FLUSH_AT: usize = 2048;

impl StatsBuffer {
    pub fn push(&self, delta: StatsDelta) {
        self.pending.lock().merge(delta);
    }

    pub fn take(&self) -> StatsDelta {
        std::mem::take(&mut *self.pending.lock())
    }

    fn full(&self) -> bool {
        self.pending.lock().entries() >= FLUSH_AT
    }

    /// Whether a flush is due, and if so, marks it made.
    fn flush_due(&self) -> bool {
        let now = now_ms();
        let last = self.flushed_ms.load(Ordering::Relaxed);
        now - last >= FLUSH_EVERY.as_millis() as i64
            && self
                .flushed_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    pub fn writer_started(&self) {
        self.writing.store(true, Ordering::Relaxed);
    }
}

/// The kinds of a day's keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Counts,
    Browsers,
    Pages,
    Sources,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Self::Counts => "c",
            Self::Browsers => "u",
            Self::Pages => "p",
            Self::Sources => "s",
        }
    }
}

fn key(keys: &Keys, site: SiteId, day: u32, kind: Kind) -> String {
    keys.site_stats(site, day, kind.suffix())
}

/// When a day's keys expire (Unix seconds): the end of the last day that still keeps it
/// (`stats::oldest_kept`).
fn expires_at(day: u32) -> u64 {
    (day as u64 + MAX_DAYS as u64 + 1) * 86_400
}

/// How often a busy page-view writer sends the counters it holds (or sooner, at
/// [`FLUSH_AT`] entries). Between two flushes the
/// counters of every batch add up in the store's [`StatsBuffer`], so a page seen a thousand
/// times in a second costs one `ZINCRBY`, not a thousand, and a browser one `PFADD`
/// element: what keeps the statistics nearly free for the beacon (BENCHMARKS.md). A crash
/// loses at most this much of them; a read of the statistics sends them first.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The counters of one pipeline, settled once it has run ([`StatsPending::settle`]).
#[must_use]
pub struct StatsPending {
    /// Taken from the buffer and sent in the pipeline.
    sent: StatsDelta,
    /// The batch's own page views, not sent yet.
    held: StatsDelta,
}

impl StatsPending {
    /// Puts back into the buffer what the pipeline did not write: the batch's own counters
    /// when it was written (they wait for the next flush), the counters it carried when it
    /// failed (its page views were not recorded, so their counters are dropped).
    pub fn settle(self, written: bool, buffer: &StatsBuffer) {
        if written {
            if !self.held.is_empty() {
                buffer.push(self.held);
            }
        } else if !self.sent.is_empty() {
            buffer.push(self.sent);
        }
    }
}

/// The statistics a pipeline sends: a batch's page views' counters, added to `commands`
/// with the buffer's when a flush is due (the store's every [`FLUSH_EVERY`], or `now` is
/// true), else held until the pipeline has run.
pub fn add_stats<'a>(
    commands: &mut Batch,
    keys: &Keys,
    page_views: impl Iterator<Item = &'a PageViewWrite>,
    buffer: &StatsBuffer,
    now: bool,
) -> StatsPending {
    let mut batch = StatsDelta::default();
    for w in page_views {
        let pv = &w.page_view;
        batch.page_view(pv.site_id, pv.at, w.visitor, &pv.url);
    }
    if !now && !buffer.full() && !buffer.flush_due() {
        return StatsPending {
            sent: StatsDelta::default(),
            held: batch,
        };
    }
    let carried = buffer.take();
    let mut delta = batch;
    delta.merge(carried.clone());
    write_stats(commands, keys, delta);
    StatsPending {
        sent: carried,
        held: StatsDelta::default(),
    }
}

/// The commands of a flush of `delta`.
fn write_stats(commands: &mut Batch, keys: &Keys, delta: StatsDelta) {
    let oldest = oldest_kept(now_ms());
    for ((site, day), d) in delta.days.into_iter().filter(|((_, d), _)| *d >= oldest) {
        let mut touched = Vec::new();
        let counts = key(keys, site, day, Kind::Counts);
        for (field, n) in d.counts.fields() {
            if n > 0 {
                let mut incr = ::redis::cmd("HINCRBY");
                incr.arg(&counts).arg(field).arg(n);
                commands.add(&counts, incr);
                touched.push(Kind::Counts);
            }
        }
        if !d.browsers.is_empty() {
            let browsers = key(keys, site, day, Kind::Browsers);
            let mut add = ::redis::cmd("PFADD");
            add.arg(&browsers);
            for v in &d.browsers {
                add.arg(v.to_string());
            }
            commands.add(&browsers, add);
            touched.push(Kind::Browsers);
        }
        for (kind, entries) in [(Kind::Pages, d.pages), (Kind::Sources, d.sources)] {
            if entries.is_empty() {
                continue;
            }
            let set = key(keys, site, day, kind);
            for (name, n) in entries {
                let mut incr = ::redis::cmd("ZINCRBY");
                incr.arg(&set).arg(n).arg(name);
                commands.add(&set, incr);
            }
            let mut trim = ::redis::cmd("ZREMRANGEBYRANK");
            trim.arg(&set).arg(0).arg(-(MAX_TOP_ENTRIES as i64) - 1);
            commands.add(&set, trim);
            touched.push(kind);
        }
        // Each key a flush touches gets its day's expiry unless it has one: a key
        // a failed flush or an erasure's pruning emptied (and so deleted) and a later
        // one made again is not kept for ever.
        let mut given = Vec::with_capacity(4);
        for kind in touched {
            if !given.contains(&kind) {
                given.push(kind);
                let k = key(keys, site, day, kind);
                let mut expire = ::redis::cmd("EXPIREAT");
                expire.arg(&k).arg(expires_at(day)).arg("NX");
                commands.add(&k, expire);
            }
        }
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Sends this instance's buffered counters, then the commands `more` adds, in one
    /// pipeline; returns the answers of `more`'s commands.
    async fn after_stats_flush(&self, more: impl FnOnce(&mut Batch)) -> StoreResult<Vec<Value>> {
        let buffer = self.page_views.stats();
        let mut batch = self.batch();
        let pending = add_stats(&mut batch, &self.keys, std::iter::empty(), buffer, true);
        let flushed = batch.len();
        more(&mut batch);
        if batch.is_empty() {
            pending.settle(true, buffer);
            return Ok(Vec::new());
        }
        let result = self.run(batch).await;
        pending.settle(result.is_ok(), buffer);
        Ok(result?.into_iter().skip(flushed).collect())
    }
}

#[async_trait]
impl<C> Stats for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn add_stats(&self, delta: StatsDelta) -> StoreResult<()> {
        let buffer = self.page_views.stats();
        buffer.push(delta);
        if buffer.writing.load(Ordering::Relaxed) {
            return Ok(());
        }
        // No page-view writer yet on this instance: send the counters now.
        self.flush_stats().await
    }

    async fn remove_tops(&self, delta: StatsDelta) -> StoreResult<()> {
        // The buffered counters go first: a later flush must not add an erased name back.
        let keys = &self.keys;
        self.after_stats_flush(|batch| {
            for ((site, day), d) in delta.days {
                for (kind, entries) in [(Kind::Pages, d.pages), (Kind::Sources, d.sources)] {
                    if entries.is_empty() {
                        continue;
                    }
                    let set = key(keys, site, day, kind);
                    for (name, n) in entries {
                        let mut decr = ::redis::cmd("ZINCRBY");
                        decr.arg(&set).arg(-(n as i64)).arg(name);
                        batch.add(&set, decr);
                    }
                    let mut prune = ::redis::cmd("ZREMRANGEBYSCORE");
                    prune.arg(&set).arg("-inf").arg(0);
                    batch.add(&set, prune);
                }
            }
        })
        .await
        .map(|_| ())
    }

    async fn flush_stats(&self) -> StoreResult<()> {
        self.after_stats_flush(|_| ()).await.map(|_| ())
    }

    async fn site_stats(&self, site: SiteId, from: u32, to: u32) -> StoreResult<StoredStats> {
        let days: Vec<u32> = (from..=to).take(MAX_DAYS as usize).collect();
        let keys = &self.keys;
        // What this instance holds goes first, so that a read sees its own page views.
        let replies = self
            .after_stats_flush(|batch| {
                let all_browsers: Vec<String> = days
                    .iter()
                    .map(|d| key(keys, site, *d, Kind::Browsers))
                    .collect();
                for day in &days {
                    let counts = key(keys, site, *day, Kind::Counts);
                    let mut get = ::redis::cmd("HGETALL");
                    get.arg(&counts);
                    batch.add(&counts, get);
                    let browsers = key(keys, site, *day, Kind::Browsers);
                    let mut count = ::redis::cmd("PFCOUNT");
                    count.arg(&browsers);
                    batch.add(&browsers, count);
                }
                let mut period = ::redis::cmd("PFCOUNT");
                period.arg(&all_browsers);
                batch.add(&all_browsers[0], period);
                for kind in [Kind::Pages, Kind::Sources] {
                    let sets: Vec<String> =
                        days.iter().map(|d| key(keys, site, *d, kind)).collect();
                    let mut union = ::redis::cmd("ZUNION");
                    union.arg(sets.len()).arg(&sets).arg("WITHSCORES");
                    batch.add(&sets[0], union);
                }
            })
            .await?;
        let mut replies = replies.into_iter();
        let mut next = || replies.next().ok_or_else(|| corrupt("short stats reply"));
        let mut out = StoredStats::default();
        for day in &days {
            let fields = HashMap::<String, u64>::from_redis_value(next()?).map_err(corrupt)?;
            let unique = u64::from_redis_value(next()?).map_err(corrupt)?;
            if fields.is_empty() && unique == 0 {
                continue;
            }
            let mut counts = Counts::default();
            for (field, n) in fields {
                counts.set(&field, n);
            }
            out.days.push((*day, counts, unique));
        }
        out.unique_browsers = u64::from_redis_value(next()?).map_err(corrupt)?;
        out.pages = scored(next()?)?;
        out.sources = scored(next()?)?;
        Ok(out)
    }
}

/// A `WITHSCORES` answer as name → count.
fn scored(value: Value) -> StoreResult<HashMap<String, u64>> {
    let pairs = Vec::<(String, f64)>::from_redis_value(value).map_err(corrupt)?;
    Ok(pairs
        .into_iter()
        .map(|(name, score)| (name, score.max(0.0) as u64))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::visitor::VisitorId;

    const NOON: i64 = 1_764_676_800_000;

    #[test]
    fn repeats_do_not_fill_the_buffer_distinct_entries_do() {
        let buffer = StatsBuffer::default();
        let few = [VisitorId::mint(), VisitorId::mint(), VisitorId::mint()];
        let mut delta = StatsDelta::default();
        for i in 0..10 * FLUSH_AT {
            delta.page_view(SiteId(1), NOON, few[i % 3], "https://shop.example/a");
        }
        buffer.push(delta);
        assert!(!buffer.full(), "10 × {FLUSH_AT} page views of 3 browsers");

        let mut delta = StatsDelta::default();
        for i in 0..FLUSH_AT / 2 {
            let page = format!("https://shop.example/{i}");
            delta.page_view(SiteId(1), NOON, VisitorId::mint(), &page);
        }
        buffer.push(delta);
        assert!(buffer.full(), "{} browsers on as many pages", FLUSH_AT / 2);
    }
}

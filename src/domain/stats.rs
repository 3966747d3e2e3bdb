//! What visitors do, per site and per day (UTC): page views, visits, unique browsers, new
//! and linked browsers, form submissions, site-visit events — and the top pages and
//! sources of a period. Counters are gathered as [`StatsDelta`]s (one per page-view batch,
//! visit, submission or firing) and added up by the store.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::ids::SiteId;
use super::time::Millis;
use super::tracking::{PageView, Visit};
use super::visitor::VisitorId;

/// Days of statistics kept, and the longest period a request may ask for.
pub const MAX_DAYS: u32 = 400;
/// Pages and sources kept per site and day: the most frequent ones (the rest is dropped
/// once there are more, so one site's endless distinct URLs cannot grow the store).
pub const MAX_TOP_ENTRIES: usize = 1000;
/// Longest page path or source name counted, in characters.
pub const MAX_KEY: usize = 200;

/// The oldest day still kept at `now`: days before it have expired.
pub fn oldest_kept(now: Millis) -> u32 {
    day_of(now).saturating_sub(MAX_DAYS)
}

/// A UTC day, as days since 1970-01-01.
pub fn day_of(at: Millis) -> u32 {
    (at.max(0) / 86_400_000) as u32
}

/// `2026-12-02` of a day number.
pub fn date_of(day: u32) -> String {
    let (y, m, d) = civil_from_days(day as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A day number of `2026-12-02`, or `None`.
pub fn parse_date(text: &str) -> Option<u32> {
    let mut parts = text.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 || d > days_in(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) as u32)
}

fn days_in(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// The counters of one site and day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub page_views: u64,
    pub visits: u64,
    /// Visits of browsers seen for the first time.
    pub new_browsers: u64,
    /// Visits of browsers linked to a lead.
    pub linked_browsers: u64,
    pub form_submissions: u64,
    pub site_visit_events: u64,
}

impl Counts {
    /// The counters as (field name, value), as stored.
    pub fn fields(&self) -> [(&'static str, u64); 6] {
        [
            ("pv", self.page_views),
            ("v", self.visits),
            ("nb", self.new_browsers),
            ("lb", self.linked_browsers),
            ("fs", self.form_submissions),
            ("ev", self.site_visit_events),
        ]
    }

    pub fn set(&mut self, field: &str, value: u64) {
        match field {
            "pv" => self.page_views = value,
            "v" => self.visits = value,
            "nb" => self.new_browsers = value,
            "lb" => self.linked_browsers = value,
            "fs" => self.form_submissions = value,
            "ev" => self.site_visit_events = value,
            _ => {}
        }
    }

    pub fn add(&mut self, other: &Counts) {
        self.page_views += other.page_views;
        self.visits += other.visits;
        self.new_browsers += other.new_browsers;
        self.linked_browsers += other.linked_browsers;
        self.form_submissions += other.form_submissions;
        self.site_visit_events += other.site_visit_events;
    }
}

/// What to add to one site and day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayDelta {
    pub counts: Counts,
    /// Browsers seen, each once (unique browsers are counted from these).
    pub browsers: HashSet<VisitorId>,
    pub pages: HashMap<String, u64>,
    pub sources: HashMap<String, u64>,
}

/// Counters to add, by site and day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsDelta {
    pub days: HashMap<(SiteId, u32), DayDelta>,
}

impl StatsDelta {
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// How many entries a write of it sends: its distinct browsers, pages and sources
    /// (a page seen a thousand times is one entry).
    pub fn entries(&self) -> usize {
        self.days
            .values()
            .map(|d| d.browsers.len() + d.pages.len() + d.sources.len())
            .sum()
    }

    fn day(&mut self, site: SiteId, at: Millis) -> &mut DayDelta {
        self.days.entry((site, day_of(at))).or_default()
    }

    pub fn page_view(&mut self, site: SiteId, at: Millis, visitor: VisitorId, url: &str) {
        let day = self.day(site, at);
        day.counts.page_views += 1;
        day.browsers.insert(visitor);
        *day.pages.entry(page_key(url)).or_default() += 1;
    }

    pub fn visit(&mut self, visit: &Visit, linked: bool) {
        let day = self.day(visit.site_id, visit.started_at);
        day.counts.visits += 1;
        day.counts.new_browsers += u64::from(visit.number == 1);
        day.counts.linked_browsers += u64::from(linked);
        *day.sources.entry(source_key(visit)).or_default() += 1;
    }

    pub fn form_submission(&mut self, site: SiteId, at: Millis) {
        self.day(site, at).counts.form_submissions += 1;
    }

    pub fn site_visit_events(&mut self, site: SiteId, at: Millis, n: u64) {
        if n > 0 {
            self.day(site, at).counts.site_visit_events += n;
        }
    }

    /// What a browser's page views and visits added to the top pages and sources (its
    /// counters and unique browsers aside: those hold nothing of it), for an erasure to
    /// take out again.
    pub fn tops_of(page_views: &[PageView], visits: &[Visit]) -> Self {
        let mut delta = Self::default();
        for pv in page_views {
            *delta
                .day(pv.site_id, pv.at)
                .pages
                .entry(page_key(&pv.url))
                .or_default() += 1;
        }
        for visit in visits {
            *delta
                .day(visit.site_id, visit.started_at)
                .sources
                .entry(source_key(visit))
                .or_default() += 1;
        }
        delta
    }

    /// Adds another delta to this one.
    pub fn merge(&mut self, other: StatsDelta) {
        for (key, d) in other.days {
            let day = self.days.entry(key).or_default();
            day.counts.add(&d.counts);
            day.browsers.extend(d.browsers);
            for (k, n) in d.pages {
                *day.pages.entry(k).or_default() += n;
            }
            for (k, n) in d.sources {
                *day.sources.entry(k).or_default() += n;
            }
        }
    }
}

/// A page as counted: its path, without query or fragment.
pub fn page_key(url: &str) -> String {
    let path = super::conditions::path_and_query(url);
    let path = path
        .split('?')
        .next()
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    path.chars().take(MAX_KEY).collect()
}

/// A visit's source as counted: its `utm_source`, else its referrer's host, else
/// `(direct)`.
pub fn source_key(visit: &Visit) -> String {
    let utm = super::source::Utm::of_url(&visit.url);
    let key = utm
        .utm_source
        .or_else(|| super::tracking::host_of(&visit.referrer).map(str::to_owned))
        .unwrap_or_else(|| "(direct)".to_owned());
    key.chars().take(MAX_KEY).collect()
}

/// A page or source with its count over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Top {
    pub name: String,
    pub count: u64,
}

/// One day's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayStats {
    /// `2026-12-02` (UTC).
    pub date: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub unique_browsers: u64,
}

/// A site's figures over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SiteStats {
    pub site_id: u64,
    pub from: String,
    pub to: String,
    pub interval: String,
    pub days: Vec<DayStats>,
    /// The period's sums; `unique_browsers` of the whole period (not a sum of days).
    pub total: DayTotal,
    pub top_pages: Vec<Top>,
    pub top_sources: Vec<Top>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayTotal {
    #[serde(flatten)]
    pub counts: Counts,
    pub unique_browsers: u64,
}

/// Keeps the `n` largest of counted names, largest first (ties by name).
pub fn top(counts: HashMap<String, u64>, n: usize) -> Vec<Top> {
    let mut all: Vec<Top> = counts
        .into_iter()
        .map(|(name, count)| Top { name, count })
        .collect();
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_ones_are_refused() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(
            parse_date("2024-02-29").map(date_of).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            parse_date("2026-12-02").map(date_of).as_deref(),
            Some("2026-12-02")
        );
        assert_eq!(parse_date("2025-02-29"), None);
        assert_eq!(parse_date("2025-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(day_of(86_400_000 * 3 + 5), 3);
    }

    #[test]
    fn pages_are_paths_sources_campaigns_or_referrer_hosts() {
        assert_eq!(page_key("https://s.example/a/b?utm_source=x#f"), "/a/b");
        assert_eq!(page_key("https://s.example"), "/");
        let visit = |url: &str, referrer: &str| Visit {
            number: 1,
            site_id: SiteId(1),
            started_at: 0,
            url: url.into(),
            title: String::new(),
            referrer: referrer.into(),
        };
        assert_eq!(
            source_key(&visit(
                "https://s.example/?utm_source=news",
                "https://g.example/"
            )),
            "news"
        );
        assert_eq!(
            source_key(&visit("https://s.example/", "https://g.example/q")),
            "g.example"
        );
        assert_eq!(source_key(&visit("https://s.example/", "")), "(direct)");
    }
}

//! What visitors do, per site: counted on the way (page views by the store with the page
//! view itself, visits, submissions and site-visit events here) and read back per day for
//! a period (`GET /api/v4/sites/{id}/stats`).

use super::{Error, Result, Services};
use crate::domain::ids::{AccountId, SiteId};
use crate::domain::site::Site;
use crate::domain::stats::{
    DayStats, DayTotal, MAX_DAYS, SiteStats, StatsDelta, date_of, day_of, parse_date, top,
};
use crate::domain::time::{Millis, now_ms};
use crate::domain::tracking::Visit;

/// Pages and sources listed for a period.
pub const TOP_ENTRIES: usize = 10;

/// A period asked for: `from` and `to` dates (UTC), inclusive.
pub struct Period<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub interval: Option<&'a str>,
}

impl Services {
    /// Adds counters; a failure is logged, never the caller's error (statistics must not
    /// fail a page view or a form).
    pub(super) async fn count(&self, delta: StatsDelta) {
        if delta.is_empty() {
            return;
        }
        if let Err(e) = self.store.add_stats(delta).await {
            tracing::warn!(error = %e, "could not count statistics");
        }
    }

    pub(super) async fn count_visit(&self, visit: &Visit, linked: bool) {
        let mut delta = StatsDelta::default();
        delta.visit(visit, linked);
        self.count(delta).await;
    }

    pub(super) async fn count_submission(&self, site: SiteId, at: Millis) {
        let mut delta = StatsDelta::default();
        delta.form_submission(site, at);
        self.count(delta).await;
    }

    pub(super) async fn count_fired(&self, site: SiteId, n: usize) {
        let mut delta = StatsDelta::default();
        delta.site_visit_events(site, now_ms(), n as u64);
        self.count(delta).await;
    }

    /// A site's figures per day over a period (by default the last 30 days).
    pub async fn site_stats(
        &self,
        account: AccountId,
        site: SiteId,
        period: Period<'_>,
    ) -> Result<SiteStats> {
        let _: Site = self
            .record(account, site)
            .await?
            .ok_or_else(|| Error::NotFound(format!("site {site} does not exist")))?;
        let interval = period.interval.unwrap_or("day");
        if interval != "day" {
            return Err(Error::invalid("interval", "must be `day`"));
        }
        let date = |field: &str, text: Option<&str>, default: u32| match text {
            None => Ok(default),
            Some(t) => parse_date(t)
                .ok_or_else(|| Error::invalid(field, "must be a date such as 2026-12-02")),
        };
        let today = day_of(now_ms());
        let to = date("to", period.to, today)?;
        let from = date("from", period.from, to.saturating_sub(29))?;
        if from > to {
            return Err(Error::invalid("from", "must not be after `to`"));
        }
        if to - from >= MAX_DAYS {
            return Err(Error::invalid(
                "from",
                format!("the period is at most {MAX_DAYS} days"),
            ));
        }
        let stored = self.store.site_stats(site, from, to).await?;
        let mut days = Vec::with_capacity((to - from + 1) as usize);
        let mut total = DayTotal {
            counts: Default::default(),
            unique_browsers: stored.unique_browsers,
        };
        let mut found = stored.days.into_iter().peekable();
        for day in from..=to {
            let (counts, unique) = match found.next_if(|(d, _, _)| *d == day) {
                Some((_, counts, unique)) => (counts, unique),
                None => (Default::default(), 0),
            };
            total.counts.add(&counts);
            days.push(DayStats {
                date: date_of(day),
                counts,
                unique_browsers: unique,
            });
        }
        Ok(SiteStats {
            site_id: site.0,
            from: date_of(from),
            to: date_of(to),
            interval: interval.to_owned(),
            days,
            total,
            top_pages: top(stored.pages, TOP_ENTRIES),
            top_sources: top(stored.sources, TOP_ENTRIES),
        })
    }
}

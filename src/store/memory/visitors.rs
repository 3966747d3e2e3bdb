//! Browsers in memory: page views, sightings kept as long as a visit can run (as Redis's
//! `PX`), histories expiring with the retention set when a visit is counted (until then,
//! provisionally, as Redis's writer sets it).

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::ids::AccountId;
use crate::domain::lead::Lead;
use crate::domain::tracking::PageView;
use crate::domain::visitor::VisitorId;
use crate::store::{
    PageViewOutcome, PageViewWrite, SIGHTING_MARGIN_MS, StoreResult, VisitStart, VisitorState,
    Visitors, provisional_ttl_secs,
};

#[async_trait]
impl Visitors for MemoryStore {
    async fn record_page_view(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome> {
        let now = Instant::now();
        let keep = Duration::from_millis((write.visit_idle_ms + SIGHTING_MARGIN_MS).max(0) as u64);
        let mut state = self.state.lock();
        let last_seen = state
            .sightings
            .insert(
                (write.visitor, write.page_view.site_id),
                (write.page_view.at, now + keep),
            )
            .filter(|(_, until)| *until > now)
            .map(|(at, _)| at);
        let visitor = state.visitor_mut(write.account, write.visitor);
        // As Redis's writer: a history this page view makes is kept the visit gap and an
        // hour, not for ever, until its visit's start gives it an expiry (should the start
        // never come, a failure between the two).
        if visitor.expires.is_none() {
            let secs = provisional_ttl_secs(write.visit_idle_ms).max(0) as u64;
            visitor.expires = Some(now + Duration::from_secs(secs));
        }
        let (site, keep_watch) = (write.page_view.site_id, keep_watch(&write));
        let mut counted = crate::domain::stats::StatsDelta::default();
        let pv = &write.page_view;
        counted.page_view(site, pv.at, write.visitor, &pv.url);
        visitor.page_views.push(write.page_view);
        let history_len = visitor.page_views.len() as u64;
        super::stats::add(&mut state, counted);
        let watch = match write.watch {
            true => super::watches::count_page_view(&mut state, write.visitor, site, keep_watch),
            false => None,
        };
        Ok(PageViewOutcome {
            last_seen,
            history_len,
            watch,
        })
    }

    async fn start_visit(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
        anonymous_secs: u64,
        max_page_views: u64,
    ) -> StoreResult<VisitStart> {
        let mut state = self.state.lock();
        let v = state.visitor_mut(account, visitor);
        v.visits += 1;
        let now = Instant::now();
        // As Redis's START_VISIT: a first visit never shortens a longer expiry a link gave
        // the history; the provisional one of a history its page views alone made goes.
        v.expires = Some(if v.visits > 1 {
            now + Duration::from_secs(retention_secs)
        } else {
            let short = now + Duration::from_secs(anonymous_secs.max(1));
            match v.expires.filter(|_| v.meta) {
                Some(e) => e.max(short),
                None => short,
            }
        });
        v.meta = true;
        let excess = v
            .page_views
            .len()
            .saturating_sub(max_page_views.max(1) as usize);
        v.page_views.drain(..excess);
        let number = v.visits;
        let lead = state.kept_browser_lead(account, visitor, retention_secs);
        let catalog_version = state.catalog_versions.get(&account).copied().unwrap_or(0);
        Ok(VisitStart {
            number,
            lead,
            catalog_version,
        })
    }

    async fn browser_lead(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
    ) -> StoreResult<Option<Lead>> {
        Ok(self
            .state
            .lock()
            .kept_browser_lead(account, visitor, retention_secs))
    }

    async fn visitor(&self, account: AccountId, visitor: VisitorId) -> StoreResult<VisitorState> {
        let state = self.state.lock();
        Ok(VisitorState {
            visits: state.visitor(account, visitor).map_or(0, |v| v.visits),
            lead: state.browser_lead(account, visitor),
        })
    }

    async fn page_views(
        &self,
        account: AccountId,
        visitor: VisitorId,
    ) -> StoreResult<Vec<PageView>> {
        let state = self.state.lock();
        Ok(state
            .visitor(account, visitor)
            .map(|v| v.page_views.clone())
            .unwrap_or_default())
    }

    async fn trim_page_views(
        &self,
        account: AccountId,
        visitor: VisitorId,
        keep: u64,
    ) -> StoreResult<()> {
        let mut state = self.state.lock();
        // As Redis's TRIM_HISTORY: a history that is not there (erased, expired) is not
        // made again — an empty one would be kept for ever.
        let now = Instant::now();
        let Some(v) = state
            .visitors
            .get_mut(&(account, visitor))
            .filter(|v| !v.expired(now))
        else {
            return Ok(());
        };
        let excess = v.page_views.len().saturating_sub(keep.max(1) as usize);
        v.page_views.drain(..excess);
        Ok(())
    }
}

/// A watch is kept the visit gap after the visit's latest page view.
fn keep_watch(write: &PageViewWrite) -> Duration {
    Duration::from_millis(write.visit_idle_ms.max(1) as u64)
}

//! Watched visits in memory, as Redis's `watches.rs`: kept the visit gap after the
//! visit's latest page view, each page view counted.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, State};
use crate::domain::conditions::VisitWatch;
use crate::domain::ids::{ActionId, SiteId};
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;
use crate::store::{StoreResult, Watches};

/// Counts a page view in the visit's watch (kept `keep` longer) and returns it.
pub(super) fn count_page_view(
    state: &mut State,
    visitor: VisitorId,
    site: SiteId,
    keep: Duration,
) -> Option<VisitWatch> {
    let now = Instant::now();
    let (watch, until) = state
        .watches
        .get_mut(&(visitor, site))
        .filter(|(_, until)| *until > now)?;
    watch.pages += 1;
    *until = now + keep;
    let mut watch = watch.clone();
    watch.fired.sort();
    Some(watch)
}

#[async_trait]
impl Watches for MemoryStore {
    async fn watch_visit(
        &self,
        visitor: VisitorId,
        site: SiteId,
        watch: &VisitWatch,
        ttl_ms: i64,
    ) -> StoreResult<()> {
        let mut state = self.state.lock();
        let now = Instant::now();
        state.watches.retain(|_, (_, until)| *until > now);
        let until = now + Duration::from_millis(ttl_ms.max(1) as u64);
        state
            .watches
            .insert((visitor, site), (watch.clone(), until));
        Ok(())
    }

    async fn claim_in_visit(
        &self,
        visitor: VisitorId,
        site: SiteId,
        started_at: Millis,
        action: ActionId,
    ) -> StoreResult<bool> {
        let mut state = self.state.lock();
        let now = Instant::now();
        let Some((watch, _)) = state
            .watches
            .get_mut(&(visitor, site))
            .filter(|(w, until)| *until > now && w.started_at == started_at)
        else {
            return Ok(false);
        };
        if watch.fired.contains(&action) {
            return Ok(false);
        }
        watch.fired.push(action);
        Ok(true)
    }
}

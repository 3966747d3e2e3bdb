//! Quotas in memory: the same GCRA counters as Redis's (`domain::quota`), charged under
//! the store's lock before the work they guard, all-or-nothing. One instance only, as the
//! embedded store itself.

use async_trait::async_trait;

use super::{MemoryStore, State};
use std::time::Duration;

use crate::domain::ids::{AccountId, LeadId};
use crate::domain::quota::{OverQuota, Quota, charge_all};
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;
use crate::store::quotas::{Charge, Charged, LinkOutcome, Quotas};
use crate::store::{Leads, PageViewOutcome, PageViewWrite, Reserved, StoreResult, Visitors};

/// Counters beyond this many make the store forget the drained ones.
const PRUNE_ABOVE: usize = 100_000;

pub(super) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl State {
    fn charge(&mut self, charge: &Charge) -> Charged<()> {
        let now = now_us();
        let keys: Vec<_> = charge
            .quotas
            .iter()
            .map(|q| (charge.account, q.key_suffix()))
            .collect();
        let tats: Vec<i64> = keys
            .iter()
            .map(|k| self.quotas.get(k).copied().unwrap_or(0))
            .collect();
        let new = charge_all(&tats, now, &charge.quotas)
            .map_err(|(i, wait_us)| charge.refused(i, wait_us))?;
        if self.quotas.len() > PRUNE_ABOVE {
            self.quotas.retain(|_, tat| *tat > now);
        }
        self.quotas.extend(keys.into_iter().zip(new));
        Ok(())
    }
}

#[async_trait]
impl Quotas for MemoryStore {
    async fn record_page_view_charged(
        &self,
        write: PageViewWrite,
        charge: Charge,
    ) -> StoreResult<Charged<PageViewOutcome>> {
        if let Err(refused) = self.state.lock().charge(&charge) {
            return Ok(Err(refused));
        }
        self.record_page_view(write).await.map(Ok)
    }

    async fn reserve_submission_charged(
        &self,
        account: AccountId,
        browser: Option<VisitorId>,
        retention_secs: u64,
        charge: Charge,
        max_unsorted: u64,
    ) -> StoreResult<Charged<Reserved>> {
        {
            let mut state = self.state.lock();
            let entries = state.unsorted.get(&account).map_or(0, Vec::len) as u64;
            if max_unsorted > 0 && entries >= max_unsorted {
                return Ok(Err(OverQuota::UNSORTED_FULL));
            }
            if let Err(refused) = state.charge(&charge) {
                return Ok(Err(refused));
            }
        }
        self.reserve_submission(account, browser, retention_secs)
            .await
            .map(Ok)
    }

    async fn link_visitor_bounded(
        &self,
        account: AccountId,
        lead: LeadId,
        visitor: VisitorId,
        at: Millis,
        retention_secs: u64,
        most: u64,
    ) -> StoreResult<LinkOutcome> {
        let mut state = self.state.lock();
        if state.lead(account, lead).is_none() {
            return Ok(LinkOutcome::NotFound);
        }
        let current = state.lead_visitors.get(&lead).map_or(0, |links| {
            links.iter().filter(|l| l.until.is_none()).count()
        }) as u64;
        if most > 0 && state.browser_lead(account, visitor) != Some(lead) && current >= most {
            return Ok(LinkOutcome::Full);
        }
        let keep = Duration::from_secs(retention_secs.max(1));
        let previous = state.link_browser(account, visitor, lead, at, keep);
        Ok(LinkOutcome::Linked { previous })
    }

    async fn quota_levels(
        &self,
        account: AccountId,
        quotas: &[Quota],
    ) -> StoreResult<(Vec<i64>, i64)> {
        let state = self.state.lock();
        let tats = quotas
            .iter()
            .map(|q| {
                state
                    .quotas
                    .get(&(account, q.key_suffix()))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        Ok((tats, now_us()))
    }
}

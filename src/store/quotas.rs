//! The [`Quotas`] aggregate: counters shared by every instance (`domain::quota`), charged
//! with the work they guard, all-or-nothing — a refused request changes nothing (no page
//! view, no history, no counter moved). Growth bounds live here too: Unsorted entries per
//! account, browsers per lead.

use async_trait::async_trait;

use super::{PageViewOutcome, PageViewWrite, Reserved, StoreResult};
use crate::domain::ids::{AccountId, LeadId};
use crate::domain::quota::{OverQuota, Quota};
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;

/// The quotas one request is charged against, all inside one account.
#[derive(Debug, Clone)]
pub struct Charge {
    pub account: AccountId,
    pub quotas: Vec<Quota>,
}

impl Charge {
    /// The refusal of the quota at `index`, waiting `wait_us`.
    pub fn refused(&self, index: usize, wait_us: u64) -> OverQuota {
        OverQuota {
            quota: self.quotas.get(index).or(self.quotas.first()).copied(),
            wait_us: wait_us.max(1),
        }
    }
}

/// What became of a bounded link of a browser to a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    NotFound,
    /// The lead holds its most browsers already: nothing was written.
    Full,
    /// Linked; the lead the browser left.
    Linked {
        previous: Option<LeadId>,
    },
}

/// Admitted (the work's answer) or refused by a quota.
pub type Charged<T> = Result<T, OverQuota>;

#[async_trait]
pub trait Quotas: Send + Sync {
    /// `Visitors::record_page_view` if every quota of `charge` admits it (on Redis the
    /// page-view writer charges its batch, then writes what was admitted).
    async fn record_page_view_charged(
        &self,
        write: PageViewWrite,
        charge: Charge,
    ) -> StoreResult<Charged<PageViewOutcome>>;

    /// `Leads::reserve_submission` if every quota of `charge` admits it (and the
    /// account's Unsorted holds fewer than `max_unsorted` entries, 0: no bound): one round
    /// trip. A refused submission keeps nothing of its browser.
    async fn reserve_submission_charged(
        &self,
        account: AccountId,
        browser: Option<VisitorId>,
        retention_secs: u64,
        charge: Charge,
        max_unsorted: u64,
    ) -> StoreResult<Charged<Reserved>>;

    /// `Leads::link_visitor`, unless the lead holds `most` browsers already besides this
    /// one (0: no bound): one atomic step.
    #[allow(clippy::too_many_arguments)]
    async fn link_visitor_bounded(
        &self,
        account: AccountId,
        lead: LeadId,
        visitor: VisitorId,
        at: Millis,
        retention_secs: u64,
        most: u64,
    ) -> StoreResult<LinkOutcome>;

    /// The TAT of each quota (microseconds, 0 for an empty bucket) and the store's clock
    /// (microseconds): the account's use, for the console.
    async fn quota_levels(
        &self,
        account: AccountId,
        quotas: &[Quota],
    ) -> StoreResult<(Vec<i64>, i64)>;
}

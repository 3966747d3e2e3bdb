//! `[quotas]`: the budgets of the public endpoints, kept in the store so that every
//! instance shares them (see `domain::quota`). 0 turns one off.

use serde::Deserialize;

use crate::domain::quota::{Limit, Quota, QuotaKind, Scope};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaSettings {
    /// Page views per second per client address, site and account.
    pub page_views_per_second_per_address: u64,
    pub page_views_per_second_per_site: u64,
    pub page_views_per_second_per_account: u64,
    /// Page views may come this many seconds' worth at once (a page with frames, a tab
    /// restore, a proxy releasing a queue).
    pub page_view_burst_seconds: u64,
    /// Beacons of browsers seen for the first time, per hour; an hour's worth may come at
    /// once.
    pub new_visitors_per_hour_per_address: u64,
    pub new_visitors_per_hour_per_site: u64,
    pub new_visitors_per_hour_per_account: u64,
    /// Form submissions per hour; an hour's worth may come at once.
    pub form_posts_per_hour_per_address: u64,
    pub form_posts_per_hour_per_site: u64,
    pub form_posts_per_hour_per_account: u64,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        Self {
            page_views_per_second_per_address: 20,
            page_views_per_second_per_site: 2_000,
            page_views_per_second_per_account: 5_000,
            page_view_burst_seconds: 4,
            new_visitors_per_hour_per_address: 600,
            new_visitors_per_hour_per_site: 200_000,
            new_visitors_per_hour_per_account: 500_000,
            form_posts_per_hour_per_address: 30,
            form_posts_per_hour_per_site: 5_000,
            form_posts_per_hour_per_account: 10_000,
        }
    }
}

impl QuotaSettings {
    /// The limit of a kind of quota in a scope; `None` when it is off.
    pub fn limit(&self, kind: QuotaKind, scope: &Scope) -> Option<Limit> {
        let (address, site, account, period, burst) = match kind {
            QuotaKind::PageViews => (
                self.page_views_per_second_per_address,
                self.page_views_per_second_per_site,
                self.page_views_per_second_per_account,
                1,
                self.page_view_burst_seconds,
            ),
            QuotaKind::NewVisitors => (
                self.new_visitors_per_hour_per_address,
                self.new_visitors_per_hour_per_site,
                self.new_visitors_per_hour_per_account,
                3600,
                1,
            ),
            QuotaKind::FormPosts => (
                self.form_posts_per_hour_per_address,
                self.form_posts_per_hour_per_site,
                self.form_posts_per_hour_per_account,
                3600,
                1,
            ),
        };
        let count = match scope {
            Scope::Address(_) => address,
            Scope::Site(_) => site,
            Scope::Account => account,
        };
        // Per second: `burst` seconds' worth at once; per hour: the hour's count.
        let burst = if period == 1 {
            count.saturating_mul(burst.max(1))
        } else {
            count
        };
        Limit::new(count, period, burst)
    }

    /// The quotas of a kind for a request from `scopes` (those that are on).
    pub fn quotas(&self, kind: QuotaKind, scopes: &[Scope]) -> Vec<Quota> {
        scopes
            .iter()
            .filter_map(|scope| {
                self.limit(kind, scope).map(|limit| Quota {
                    kind,
                    scope: *scope,
                    limit,
                })
            })
            .collect()
    }

    /// Every quota off (tests of other behaviour).
    pub fn off() -> Self {
        Self {
            page_views_per_second_per_address: 0,
            page_views_per_second_per_site: 0,
            page_views_per_second_per_account: 0,
            page_view_burst_seconds: 4,
            new_visitors_per_hour_per_address: 0,
            new_visitors_per_hour_per_site: 0,
            new_visitors_per_hour_per_account: 0,
            form_posts_per_hour_per_address: 0,
            form_posts_per_hour_per_site: 0,
            form_posts_per_hour_per_account: 0,
        }
    }
}

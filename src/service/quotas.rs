//! Quotas of the public endpoints (`domain::quota`, `[quotas]`): which counters a page
//! view or a form post is charged against, the refusals counted in `/metrics`
//! (`footfall_quota_refused_total{quota,scope}`), and an account's use for the console.
//!
//! The counters live in the store, so every instance shares them (burst included); the
//! charge rides the store round trip of the work it guards (`store::quotas`). The
//! per-instance limits of `[limits]` (`http::limits`) are another thing: an in-memory
//! flood guard in front of everything, so that a flood from one address costs the store
//! nothing.

use std::net::IpAddr;

use serde::Serialize;
use utoipa::ToSchema;

use super::{Error, Result, Services};
use crate::domain::ids::{AccountId, SiteId};
use crate::domain::quota::{OverQuota, Quota, QuotaKind, Scope};
use crate::store::{Charge, Charged};

/// One quota's use now.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaUse {
    /// `page_views`, `new_visitors` or `form_posts`.
    pub quota: &'static str,
    /// `account` or `site`.
    pub scope: &'static str,
    /// The site, for a site's quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<u64>,
    /// Requests the bucket holds now: the burst, then refilled at the rate.
    pub used: u64,
    pub burst: u64,
    /// Requests admitted per `period_seconds` in the long run.
    pub rate: u64,
    pub period_seconds: u64,
}

impl Services {
    /// The quotas of a request of `kind` from `client` (its limit key) to `site`.
    pub(super) fn charge(
        &self,
        kind: QuotaKind,
        account: AccountId,
        site: SiteId,
        client: IpAddr,
    ) -> Charge {
        let scopes = [Scope::Address(client), Scope::Site(site), Scope::Account];
        Charge {
            account,
            quotas: self.settings.quotas.quotas(kind, &scopes),
        }
    }

    /// A page view's charge: page views, and new visitors for a browser seen first.
    pub(super) fn page_view_charge(
        &self,
        account: AccountId,
        site: SiteId,
        client: IpAddr,
        minted: bool,
    ) -> Charge {
        let mut charge = self.charge(QuotaKind::PageViews, account, site, client);
        if minted {
            let scopes = [Scope::Address(client), Scope::Site(site), Scope::Account];
            let more = self.settings.quotas.quotas(QuotaKind::NewVisitors, &scopes);
            charge.quotas.extend(more);
        }
        charge
    }

    /// The answer of a charged step: refused requests are counted and answered 429.
    pub(super) fn admitted<T>(charged: Charged<T>) -> Result<T> {
        charged.map_err(|refused| {
            metrics::counter!("footfall_quota_refused_total",
                "quota" => refused.kind.code(), "scope" => refused.scope)
            .increment(1);
            Error::OverQuota(refused)
        })
    }

    /// An account's use of its quotas (the account's and each of its sites').
    pub async fn quota_use(&self, account: AccountId) -> Result<Vec<QuotaUse>> {
        let snapshot = self.snapshots.get(&*self.store, account, None).await?;
        let mut scopes = vec![Scope::Account];
        scopes.extend(snapshot.sites.iter().map(|s| Scope::Site(s.id)));
        let quotas: Vec<Quota> = QuotaKind::ALL
            .iter()
            .flat_map(|kind| self.settings.quotas.quotas(*kind, &scopes))
            .collect();
        let (tats, now) = self.store.quota_levels(account, &quotas).await?;
        Ok(quotas
            .iter()
            .zip(tats)
            .map(|(q, tat)| {
                let period_seconds: u64 = if q.kind == QuotaKind::PageViews {
                    1
                } else {
                    3600
                };
                QuotaUse {
                    quota: q.kind.code(),
                    scope: q.scope.code(),
                    site_id: match q.scope {
                        Scope::Site(id) => Some(id.0),
                        _ => None,
                    },
                    used: q.limit.used(tat, now),
                    burst: q.limit.burst(),
                    rate: period_seconds * 1_000_000 / q.limit.interval_us,
                    period_seconds,
                }
            })
            .collect())
    }
}

/// Seconds a refused client waits (`Retry-After`).
pub fn retry_after_secs(refused: &OverQuota) -> u64 {
    refused.retry_after_ms.div_ceil(1000).max(1)
}

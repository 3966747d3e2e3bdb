//! Quotas of the public endpoints (`domain::quota`, `[quotas]`): which counters a page
//! view or a form post is charged against, the refusals counted in `/metrics`
//! (`footfall_quota_refused_total{quota,scope}`; of them, those the instance made
//! without asking the store: `footfall_quota_refused_here_total`), and an account's use
//! for the console.
//!
//! The counters live in the store, so every instance shares them (burst included); the
//! charge rides the store round trip of the work it guards (`store::quotas`). What the
//! store refused teaches the instance too: a site's or an account's bucket that the store
//! found full is this instance's [`QuotaGate`] until it refills (for a second at most),
//! and requests the store would refuse are refused here, before a page view is built or
//! the store asked — an attack from rotating addresses over a site's quota costs the
//! store about one request per slot of the quota's rate on each instance, not one per
//! junk request. The per-instance limits of `[limits]` (`http::limits`) are another
//! thing: an in-memory flood guard in front of everything, so that a flood from one
//! address costs the store nothing.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Error, Result, Services};
use crate::domain::ids::{AccountId, SiteId};
use crate::domain::quota::{FullBucket, OverQuota, Quota, QuotaKind, Scope, Slot};
use crate::store::{Charge, Charged, StoreResult};

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
        Charge {
            account,
            quotas: self
                .settings
                .quotas
                .quotas(kind, &self.scopes(site, client)),
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
        let scopes = self.scopes(site, client);
        let mut quotas = self.settings.quotas.quotas(QuotaKind::PageViews, &scopes);
        if minted {
            quotas.extend(self.settings.quotas.quotas(QuotaKind::NewVisitors, &scopes));
        }
        Charge { account, quotas }
    }

    /// Who a request from `client` to `site` is counted against.
    fn scopes(&self, site: SiteId, client: IpAddr) -> [Scope; 3] {
        let client = Scope::Address(self.address_tags.of(client));
        [client, Scope::Site(site), Scope::Account]
    }

    /// `work` (a store step charged with `charge`) unless this instance already knows a
    /// shared quota of the charge to be full; a refused request is counted and answered
    /// 429 either way.
    pub(super) async fn charged<T, F>(
        &self,
        charge: Charge,
        work: impl FnOnce(Charge) -> F,
    ) -> Result<T>
    where
        F: Future<Output = StoreResult<Charged<T>>>,
    {
        let passed = self.quota_gate.pass(&charge).map_err(|refused| {
            metrics::counter!("footfall_quota_refused_here_total").increment(1);
            Self::refused(refused)
        })?;
        let answer = work(charge).await;
        // Dropped unsettled (no answer, or this request cancelled), it gives its slots
        // back, erring towards asking the store.
        match &answer {
            Ok(Ok(_)) => passed.admitted(),
            Ok(Err(refused)) => passed.refused(refused),
            Err(_) => drop(passed),
        }
        answer?.map_err(Self::refused)
    }

    /// A refusal, counted.
    pub(super) fn refused(refused: OverQuota) -> Error {
        metrics::counter!("footfall_quota_refused_total",
            "quota" => refused.kind().code(), "scope" => refused.scope())
        .increment(1);
        Error::OverQuota(refused)
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
    refused.wait_us.div_ceil(1_000_000).max(1)
}

/// This instance's full buckets of shared quotas (`domain::quota::FullBucket`): a site's
/// and an account's, which an attack from many addresses fills. An address's quota is
/// left to the store: rotating addresses would leave a bucket here per address, and a
/// flood from one address meets the instance's flood guard first. Buckets no longer
/// known full are swept as requests come, so the map holds only those of the last second.
#[derive(Debug, Default)]
pub struct QuotaGate {
    full: Mutex<HashMap<BucketKey, FullBucket>>,
}

/// A shared quota of one account.
type BucketKey = (AccountId, QuotaKind, Scope);

fn bucket_key(account: AccountId, quota: &Quota) -> BucketKey {
    (account, quota.kind, quota.scope)
}

/// A request the gate passed on: when it was sent, and the full buckets whose slots it
/// took. Unless the store admitted it, the slots are given back (when it is dropped).
#[derive(Debug)]
pub struct Passed<'a> {
    gate: &'a QuotaGate,
    account: AccountId,
    sent_us: i64,
    took: Vec<Quota>,
}

/// Microseconds on this instance's monotonic clock.
fn clock_us() -> i64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_micros() as i64
}

fn shared(quota: &Quota) -> bool {
    matches!(quota.scope, Scope::Site(_) | Scope::Account)
}

impl QuotaGate {
    /// Passes a request whose shared quotas hold a free slot (taking it), or refuses it
    /// with the longest wait among its full buckets.
    pub fn pass(&self, charge: &Charge) -> Result<Passed<'_>, OverQuota> {
        self.pass_at(charge, clock_us())
    }

    fn pass_at(&self, charge: &Charge, sent_us: i64) -> Result<Passed<'_>, OverQuota> {
        let mut passed = Passed {
            gate: self,
            account: charge.account,
            sent_us,
            took: Vec::new(),
        };
        let mut full = self.full.lock();
        if full.is_empty() {
            return Ok(passed);
        }
        full.retain(|_, bucket| bucket.slot(sent_us) != Slot::Unknown);
        let mut worst: Option<OverQuota> = None;
        for quota in charge.quotas.iter().filter(|q| shared(q)) {
            let Some(bucket) = full.get(&bucket_key(charge.account, quota)) else {
                continue;
            };
            match bucket.slot(sent_us) {
                Slot::Free => passed.took.push(*quota),
                Slot::Taken { wait_us } if worst.is_none_or(|w| wait_us > w.wait_us) => {
                    worst = Some(OverQuota {
                        quota: Some(*quota),
                        wait_us,
                    });
                }
                Slot::Taken { .. } | Slot::Unknown => {}
            }
        }
        if let Some(refused) = worst {
            passed.took.clear();
            return Err(refused);
        }
        for quota in &passed.took {
            if let Some(bucket) = full.get_mut(&bucket_key(charge.account, quota)) {
                bucket.take();
            }
        }
        Ok(passed)
    }
}

impl Passed<'_> {
    /// The store admitted the request: its slots are used.
    pub fn admitted(mut self) {
        self.took.clear();
    }

    /// The store refused the request: its slots are given back, and the quota that
    /// refused it, if shared, is known full.
    pub fn refused(mut self, refused: &OverQuota) {
        let refusing = refused.quota.filter(shared);
        if self.took.is_empty() && refusing.is_none() {
            return;
        }
        let mut full = self.gate.full.lock();
        self.give_back(&mut full);
        if let Some(quota) = refusing {
            full.entry(bucket_key(self.account, &quota))
                .and_modify(|b| b.refused_again(self.sent_us, refused.wait_us))
                .or_insert_with(|| FullBucket::refused(self.sent_us, refused.wait_us, quota.limit));
        }
    }

    fn give_back(&mut self, full: &mut HashMap<BucketKey, FullBucket>) {
        for quota in self.took.drain(..) {
            if let Some(bucket) = full.get_mut(&bucket_key(self.account, &quota)) {
                bucket.give_back();
            }
        }
    }
}

impl Drop for Passed<'_> {
    fn drop(&mut self) {
        if !self.took.is_empty() {
            let gate = self.gate;
            self.give_back(&mut gate.full.lock());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::quota::{AddressTag, Limit};

    fn quota(scope: Scope, per_second: u64) -> Quota {
        Quota {
            kind: QuotaKind::PageViews,
            scope,
            limit: Limit::new(per_second, 1, per_second).unwrap(),
        }
    }

    #[test]
    fn a_full_site_passes_a_request_per_slot_and_takes_back_slots_the_store_did_not_use() {
        let site = quota(Scope::Site(SiteId(7)), 1000); // a slot per millisecond
        let address = quota(Scope::Address(AddressTag(1)), 20);
        let charge = Charge {
            account: AccountId(1),
            quotas: vec![address, site],
        };
        let gate = QuotaGate::default();
        // Nothing known: everything is passed on.
        let first = gate.pass_at(&charge, 0).unwrap();
        assert!(first.took.is_empty());
        // The store refused it for the site, its next slot 400 µs on.
        first.refused(&OverQuota {
            quota: Some(site),
            wait_us: 400,
        });
        let refused = gate.pass_at(&charge, 100).unwrap_err();
        assert_eq!(
            refused,
            OverQuota {
                quota: Some(site),
                wait_us: 300
            }
        );
        // The slot from 400 µs: one request takes it, the next waits for the one after.
        let passed = gate.pass_at(&charge, 500).unwrap();
        assert_eq!(passed.took, [site]);
        assert_eq!(gate.pass_at(&charge, 600).unwrap_err().wait_us, 800);
        // Unanswered, or cancelled on the way: the slot is free again.
        drop(passed);
        let passed = gate.pass_at(&charge, 600).unwrap();
        // Refused by the address's quota: the site's slot was not used either, and an
        // address's bucket is not kept here.
        passed.refused(&OverQuota {
            quota: Some(address),
            wait_us: 50_000,
        });
        let passed = gate.pass_at(&charge, 700).unwrap();
        // Admitted: the slot is used.
        passed.admitted();
        assert!(gate.pass_at(&charge, 800).is_err());
        // A whole slot unused: the site is refilling, and forgotten.
        assert!(gate.pass_at(&charge, 3_000).unwrap().took.is_empty());
        assert!(gate.full.lock().is_empty());
    }

    #[test]
    fn a_free_slot_is_not_taken_when_another_bucket_refuses() {
        let site = quota(Scope::Site(SiteId(7)), 1000);
        let account = quota(Scope::Account, 100); // a slot per 10 ms
        let charge = Charge {
            account: AccountId(1),
            quotas: vec![site, account],
        };
        let gate = QuotaGate::default();
        let wait = |quota, wait_us| OverQuota {
            quota: Some(quota),
            wait_us,
        };
        gate.pass_at(&charge, 0).unwrap().refused(&wait(site, 0));
        gate.pass_at(&charge, 0)
            .unwrap()
            .refused(&wait(account, 5_000));
        // The site's slot is free, the account's not: refused, and the site's slot stays.
        assert_eq!(
            gate.pass_at(&charge, 100).unwrap_err(),
            wait(account, 4_900)
        );
        let full = gate.full.lock();
        let bucket = full[&(AccountId(1), QuotaKind::PageViews, Scope::Site(SiteId(7)))];
        assert_eq!(bucket.slot(100), Slot::Free);
    }
}

//! Rate limits of the public endpoints, per client address and per site (GCRA, from
//! `governor`), answered with 429 and `Retry-After`. Idle keys are forgotten every minute.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::problem::Problem;
use crate::config::LimitSettings;
use crate::domain::ids::SiteId;

pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_site: Option<DefaultKeyedRateLimiter<SiteId>>,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(4)).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl RateLimits {
    /// A limit of 0 turns that limit off.
    pub fn new(settings: &LimitSettings) -> Arc<Self> {
        let limits = Arc::new(Self {
            per_ip: limiter(settings.per_ip_per_second),
            per_site: limiter(settings.per_site_per_second),
            clock: DefaultClock::default(),
        });
        let weak = Arc::downgrade(&limits);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(limits) = weak.upgrade() else { break };
                if let Some(l) = &limits.per_ip {
                    l.retain_recent();
                }
                if let Some(l) = &limits.per_site {
                    l.retain_recent();
                }
            }
        });
        limits
    }

    /// Counts per address, and per /64 for IPv6 (`client::limit_key`).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Problem> {
        let key = super::client::limit_key(ip);
        self.check(self.per_ip.as_ref(), &key, "flood guard: per address")
    }

    pub fn check_site(&self, site: SiteId) -> Result<(), Problem> {
        self.check(self.per_site.as_ref(), &site, "flood guard: per site")
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<K>>,
        key: &K,
        limit: &str,
    ) -> Result<(), Problem> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            metrics::counter!("footfall_rate_limited_total").increment(1);
            let wait = not_until.wait_time_from(self.clock.now());
            Problem::too_many_requests(wait.as_secs_f64().ceil() as u64, limit)
        })
    }
}

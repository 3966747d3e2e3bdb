//! Page views: the tracker's beacon.
//!
//! A page view inside a running visit costs one store round trip (`record_page_view`).
//! Only the first page view of a visit does more: one round trip numbers the visit and
//! reads the browser's lead with the catalog's version, and when the browser belongs to a
//! lead, one more stores the site-visit events it fires — three in all, whatever the
//! number of actions.

use std::sync::Arc;

use super::conditions::VisitPage;
use super::live::LiveKind;
use super::{Error, Result, Services};
use crate::domain::ids::AccountId;
use crate::domain::site::Site;
use crate::domain::time::{DAY_SECS, now_ms};
use crate::domain::tracking::{PageUrl, PageView, Visit, host_of, starts_new_visit};
use crate::domain::visitor::VisitorId;
use crate::store::PageViewWrite;

/// A page view as the tracker reports it, with what the request tells about the client.
pub struct Beacon<'a> {
    /// The signed visitor id the tracker holds, if any.
    pub vid: Option<&'a str>,
    /// The signed visitor id of the server-set cookie, if any.
    pub cookie_vid: Option<&'a str>,
    pub url: &'a str,
    pub referrer: &'a str,
    pub title: &'a str,
    pub origin: Option<&'a str>,
    /// The browser asks not to be tracked (DNT or GPC).
    pub do_not_track: bool,
    /// The client's address as quotas count it (`http::client::limit_key`).
    pub client: std::net::IpAddr,
}

pub enum CollectOutcome {
    /// Recorded; `minted` tells the visitor was seen for the first time.
    Recorded { visitor: VisitorId, minted: bool },
    /// Not recorded: the site honours Do-Not-Track and the browser asked for it.
    NotTracked,
}

impl Services {
    pub(super) fn retention_secs(&self) -> u64 {
        self.settings.tracking.retention_days * DAY_SECS
    }

    /// The visitor of a request to one of `account`'s sites: the tracker's id, else the
    /// cookie's, else a new one. Ids signed for another account do not count.
    pub(super) fn visitor_of(
        &self,
        account: AccountId,
        vid: Option<&str>,
        cookie_vid: Option<&str>,
    ) -> (VisitorId, bool) {
        vid.and_then(|v| self.signer.verify(account, v))
            .or_else(|| cookie_vid.and_then(|v| self.signer.verify(account, v)))
            .map_or_else(|| (VisitorId::mint(), true), |v| (v, false))
    }

    /// Refuses a request whose `Origin` is not one of the site's hosts.
    pub fn check_origin(site: &Site, origin: Option<&str>) -> Result<()> {
        let Some(origin) = origin else { return Ok(()) };
        match host_of(origin) {
            Some(h) if site.allows_host(h) => Ok(()),
            _ => Err(Error::Forbidden(format!(
                "origin {origin} is not among the hosts of this site"
            ))),
        }
    }

    pub async fn site_for_beacon(&self, key: &str) -> Result<Arc<Site>> {
        self.sites
            .by_key(&*self.store, key)
            .await?
            .ok_or_else(|| Error::NotFound("no site has this key".into()))
    }

    pub async fn collect(&self, beacon: Beacon<'_>, site: &Site) -> Result<CollectOutcome> {
        let page = PageUrl::parse(beacon.url)
            .ok_or_else(|| Error::invalid("url", "must be an absolute http(s) URL"))?;
        if !site.allows_host(page.host) {
            return Err(Error::Forbidden(format!(
                "host {} is not among the hosts of this site",
                page.host
            )));
        }
        Self::check_origin(site, beacon.origin)?;
        if beacon.do_not_track && site.respect_opt_out {
            metrics::counter!("footfall_beacons_total", "outcome" => "not_tracked").increment(1);
            return Ok(CollectOutcome::NotTracked);
        }
        let (visitor, minted) = self.visitor_of(site.account_id, beacon.vid, beacon.cookie_vid);
        let now = now_ms();
        let charge = self.page_view_charge(site.account_id, site.id, beacon.client, minted);
        // Built once the instance's quota gate has passed the request: a refusal costs
        // no page view.
        let outcome = self
            .charged(charge, |charge| {
                let write = PageViewWrite {
                    account: site.account_id,
                    visitor,
                    page_view: PageView::new(now, site.id, page, beacon.title, beacon.referrer),
                    visit_idle_ms: site.visit_idle_ms(self.settings.tracking.visit_idle_seconds),
                    watch: self.may_watch(site.account_id),
                };
                self.store.record_page_view_charged(write, charge)
            })
            .await?;
        // A history may pass its cap by a tenth: then the one page view whose push made
        // it exactly that long (each push answers a new length) trims it back. Trimming on
        // every page view past the cap would queue a trim per beacon under load.
        let cap = self.settings.tracking.max_page_views_per_visitor;
        let step = (cap / 10).max(1);
        if outcome.history_len > cap && (outcome.history_len - cap).is_multiple_of(step) {
            self.trim_history_later(site.account_id, visitor, cap);
        }
        let idle_ms = site.visit_idle_ms(self.settings.tracking.visit_idle_seconds);
        let new_visit = starts_new_visit(outcome.last_seen, now, idle_ms);
        if let Some(watch) = outcome.watch.as_ref().filter(|_| !new_visit) {
            let page = VisitPage {
                url: page.url,
                title: beacon.title,
            };
            self.check_watch(site, visitor, watch, page).await?;
        }
        if new_visit {
            // The visit as its page view was stored: the timeline, the webhook and the
            // statistics see the same one.
            let first = PageView::new(now, site.id, page, beacon.title, beacon.referrer);
            self.start_visit(site, visitor, Visit::started_by(first))
                .await?;
        }
        // Kept once: every page view counts here, and a labelled lookup per beacon shows.
        static RECORDED: std::sync::LazyLock<metrics::Counter> = std::sync::LazyLock::new(
            || metrics::counter!("footfall_beacons_total", "outcome" => "recorded"),
        );
        RECORDED.increment(1);
        Ok(CollectOutcome::Recorded { visitor, minted })
    }

    /// Trims a visitor's history off the request path.
    fn trim_history_later(&self, account: AccountId, visitor: VisitorId, keep: u64) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.trim_page_views(account, visitor, keep).await {
                tracing::warn!(error = %e, "could not trim a visitor's page views");
            }
        });
    }

    async fn start_visit(&self, site: &Site, visitor: VisitorId, visit: Visit) -> Result<()> {
        let start = self
            .store
            .start_visit(
                site.account_id,
                visitor,
                self.retention_secs(),
                (self.settings.tracking.anonymous_retention_hours * 3600.0).ceil() as u64,
                self.settings.tracking.max_page_views_per_visitor,
            )
            .await?;
        metrics::counter!("footfall_visits_total").increment(1);
        let visit = Visit {
            number: start.number,
            ..visit
        };
        self.count_visit(&visit, start.lead.is_some()).await;
        if let Some(lead) = start.lead {
            self.live.publish(site.account_id, lead.id, LiveKind::Visit);
            let snapshot = self
                .snapshots
                .get(&*self.store, site.account_id, Some(start.catalog_version))
                .await?;
            self.fire_site_visit(&lead, &visit, &snapshot).await?;
            self.start_watch(site, visitor, &lead, &visit, &snapshot)
                .await?;
        }
        Ok(())
    }
}

//! Site-visit actions with conditions (`domain::conditions`): they fire at the first page
//! view of a visit at which all their conditions hold, at most once per visit.
//!
//! At the start of a linked browser's visit the conditional actions on the lead's stage
//! are checked against the first page; those that do not fire yet put the visit under
//! watch (`store::Watches`). Every later page view of an account with conditional actions
//! reads its visit's watch inside its own round trip; only when a waiting action's page
//! conditions hold does it read the lead (and its timeline, for time in stage and
//! cooldown), claim the action for the visit and store the event. Accounts without
//! conditional actions pay nothing: their page views do not ask for a watch.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::catalog_cache::Snapshot;
use super::triggers::{Firing, handler_of};
use super::{Result, Services};
use crate::domain::action::Action;
use crate::domain::conditions::{LeadHistory, VisitWatch, path_and_query};
use crate::domain::event::EventType;
use crate::domain::event_record::VisitMeta;
use crate::domain::ids::AccountId;
use crate::domain::lead::Lead;
use crate::domain::site::{Site, parse_web_url};
use crate::domain::source::Source;
use crate::domain::time::{Millis, now_ms, to_secs};
use crate::domain::tracking::{Visit, clean_title};
use crate::domain::visitor::VisitorId;

/// How often a page view may have this instance check that its copy of an account's
/// catalog is current (in the background), so that a conditional action made on another
/// instance is watched for here within seconds.
const CATALOG_CHECK: Duration = Duration::from_secs(5);

/// When this instance last started a check of each account's catalog.
static CHECKED: LazyLock<Mutex<HashMap<AccountId, Instant>>> = LazyLock::new(Default::default);

/// A page of a visit, as the conditions see it.
pub(super) struct VisitPage<'a> {
    pub url: &'a str,
    pub title: &'a str,
}

fn conditional(a: &Action) -> bool {
    a.enabled && a.event == EventType::SiteVisit && a.conditions.is_some()
}

impl Services {
    /// Whether a page view of the account should read its visit's watch: the account has
    /// enabled conditional site-visit actions in this instance's snapshot. The snapshot is
    /// checked against the store's catalog version in the background every
    /// [`CATALOG_CHECK`] (and loaded when there is none), off the page view's path.
    pub(super) fn may_watch(&self, account: AccountId) -> bool {
        let now = Instant::now();
        let due = {
            let mut checked = CHECKED.lock();
            let due = checked
                .get(&account)
                .is_none_or(|at| now.duration_since(*at) >= CATALOG_CHECK);
            if due {
                checked.insert(account, now);
            }
            due
        };
        if due {
            let store = self.store.clone();
            let snapshots = self.snapshots.clone();
            tokio::spawn(async move {
                if let Err(e) = snapshots.get(&*store, account, None).await {
                    tracing::warn!(error = %e, "could not check an account's catalog");
                }
            });
        }
        self.snapshots
            .cached(account)
            .is_some_and(|s| s.actions.iter().any(conditional))
    }

    /// The first page view of a linked browser's visit: fires the conditional actions
    /// that hold already and watches the visit for the others.
    pub(super) async fn start_watch(
        &self,
        site: &Site,
        visitor: VisitorId,
        lead: &Lead,
        visit: &Visit,
        snapshot: &Snapshot,
    ) -> Result<()> {
        let Some(url) = parse_web_url(&visit.url) else {
            return Ok(());
        };
        let waiting: Vec<&Action> = snapshot
            .actions
            .iter()
            .filter(|a| {
                conditional(a)
                    && a.covers(lead.stage())
                    && a.site_url.as_ref().is_some_and(|u| u.matches(&url))
            })
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let mut watch = VisitWatch {
            lead: lead.id,
            number: visit.number,
            started_at: visit.started_at,
            referrer: visit.referrer.clone(),
            landing: visit.url.clone(),
            pages: 1,
            fired: Vec::new(),
        };
        let page = VisitPage {
            url: &visit.url,
            title: &visit.title,
        };
        let firing = self
            .holding(lead, &watch, &page, &waiting, visit.started_at)
            .await?;
        watch.fired = firing.iter().map(|a| a.id).collect();
        if watch.fired.len() < waiting.len() {
            let idle_ms = site.visit_idle_ms(self.settings.tracking.visit_idle_seconds);
            self.store
                .watch_visit(visitor, site.id, &watch, idle_ms)
                .await?;
        }
        self.fire_conditional(site, lead, &watch, &page, firing, snapshot)
            .await
    }

    /// A later page view of a watched visit: fires the waiting actions whose conditions
    /// hold now, each claimed for the visit first.
    pub(super) async fn check_watch(
        &self,
        site: &Site,
        visitor: VisitorId,
        watch: &VisitWatch,
        page: VisitPage<'_>,
    ) -> Result<()> {
        let Some(cached) = self.snapshots.cached(site.account_id) else {
            return Ok(());
        };
        let Some(url) = parse_web_url(page.url) else {
            return Ok(());
        };
        let path = path_and_query(page.url);
        let waits = |a: &Action| {
            conditional(a)
                && !watch.fired.contains(&a.id)
                && a.site_url.as_ref().is_some_and(|u| u.matches(&url))
                && a.conditions
                    .as_ref()
                    .is_some_and(|c| c.page_holds(path, watch.number, watch.pages))
        };
        if !cached.actions.iter().any(waits) {
            return Ok(());
        }
        // Something may fire: the browser's lead as it stands now, and the catalog as it
        // is now. A browser that left the watched lead since the visit began (a form sent
        // for someone else) fires nothing for it.
        let Some(lead) = self
            .store
            .browser_lead(site.account_id, visitor, self.retention_secs())
            .await?
            .filter(|l| l.id == watch.lead)
        else {
            return Ok(());
        };
        let snapshot = self
            .snapshots
            .get(&*self.store, site.account_id, None)
            .await?;
        let waiting: Vec<&Action> = snapshot
            .actions
            .iter()
            .filter(|a| waits(a) && a.covers(lead.stage()))
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let mut firing = Vec::new();
        for action in self
            .holding(&lead, watch, &page, &waiting, now_ms())
            .await?
        {
            if self
                .store
                .claim_in_visit(visitor, site.id, watch.started_at, action.id)
                .await?
            {
                firing.push(action);
            }
        }
        self.fire_conditional(site, &lead, watch, &page, firing, &snapshot)
            .await
    }

    /// The actions among `waiting` whose conditions all hold at this page view.
    async fn holding<'a>(
        &self,
        lead: &Lead,
        watch: &VisitWatch,
        page: &VisitPage<'_>,
        waiting: &[&'a Action],
        now: Millis,
    ) -> Result<Vec<&'a Action>> {
        let path = path_and_query(page.url);
        let on_page: Vec<&Action> = waiting
            .iter()
            .copied()
            .filter(|a| {
                a.conditions
                    .as_ref()
                    .is_some_and(|c| c.page_holds(path, watch.number, watch.pages))
            })
            .collect();
        let needs_timeline = on_page
            .iter()
            .any(|a| a.conditions.as_ref().is_some_and(|c| c.needs_timeline()));
        let history = match needs_timeline {
            true => {
                let timeline = self.store.timeline(lead.account_id, lead.id).await?;
                LeadHistory::of(lead.created_at, &timeline)
            }
            false => LeadHistory::default(),
        };
        Ok(on_page
            .into_iter()
            .filter(|a| {
                a.conditions
                    .as_ref()
                    .is_some_and(|c| c.lead_holds(&history, a.id, now))
            })
            .collect())
    }

    async fn fire_conditional(
        &self,
        site: &Site,
        lead: &Lead,
        watch: &VisitWatch,
        page: &VisitPage<'_>,
        actions: Vec<&Action>,
        snapshot: &Snapshot,
    ) -> Result<()> {
        let now = now_ms();
        let firings = actions
            .into_iter()
            .filter_map(|action| {
                Some(Firing {
                    action,
                    handler: handler_of(snapshot, action)?,
                    event_type: EventType::SiteVisit,
                    direction: None,
                    visit: Some(VisitMeta {
                        url: page.url.to_owned(),
                        referrer: watch.referrer.clone(),
                        title: clean_title(page.title),
                        number: watch.number,
                        started_at: to_secs(watch.started_at),
                        source: Some(Source::of_landing(
                            &watch.landing,
                            &watch.referrer,
                            watch.started_at,
                        )),
                    }),
                    delayed_by: action.delay_seconds,
                    due_at: now.max(watch.started_at) + action.delay_seconds as Millis * 1000,
                })
            })
            .collect::<Vec<_>>();
        self.count_fired(site.id, firings.len()).await;
        self.create_events(lead, firings).await
    }
}

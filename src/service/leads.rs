//! Leads in the pipeline: finding them, accepting and declining Unsorted entries, moving
//! and renaming leads (each move recorded and run past the triggers), and what the console
//! shows of a lead: its browsers' visits and its timeline — its own entries merged with
//! the page views and visits of its browsers (within each link's window) and the delivery
//! attempts of its events.

use super::{Error, Result, Services};
use crate::domain::account_webhook::Change;
use crate::domain::action::MoveKind;
use crate::domain::ids::{AccountId, LeadId, PipelineId, SiteId, StatusId, UnsortedUid};
use crate::domain::lead::{Lead, LeadFilter, LeadOrder, Unsorted, UnsortedFilter, VisitorLink};
use crate::domain::pipeline::{LOST, Pipeline, Stage, StatusType};
use crate::domain::site::Site;
use crate::domain::time::now_ms;
use crate::domain::timeline::{
    DerivedItem, ItemKind, MoveOrigin, TimelineEntry, TimelineItem, in_order,
};
use crate::domain::tracking::{PageView, Visit, group_visits};
use crate::domain::visitor::VisitorId;
use crate::service::live::LiveKind;
use crate::store::{LeadMove, MoveOutcome, catalog};

/// The most leads read from the store in one round trip while searching.
const SEARCH_CHUNK: usize = 250;

impl Services {
    /// A lead of the account, or NotFound (also for another account's lead).
    pub async fn lead(&self, account: AccountId, id: LeadId) -> Result<Lead> {
        self.store
            .get_leads(account, &[id])
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("lead {id} does not exist")))
    }

    /// A lead with the browsers linked to it.
    pub async fn lead_with_browsers(
        &self,
        account: AccountId,
        id: LeadId,
    ) -> Result<(Lead, Vec<VisitorLink>)> {
        let lead = self.lead(account, id).await?;
        let links = self.store.lead_visitors(account, id).await?;
        Ok((lead, links))
    }

    /// The account's leads that match, newest first (or in `order`): at least `wanted`
    /// of them when there are that many.
    pub async fn search_leads(
        &self,
        account: AccountId,
        filter: &LeadFilter,
        wanted: usize,
        order: Option<LeadOrder>,
    ) -> Result<Vec<Lead>> {
        // Another order than the store's needs every match before the page is cut.
        let wanted = if order.is_some() { usize::MAX } else { wanted };
        let ids = self.store.lead_ids(account).await?;
        let mut matched = Vec::new();
        for chunk in ids.chunks(SEARCH_CHUNK) {
            let leads = self.store.get_leads(account, chunk).await?;
            matched.extend(leads.into_iter().filter(|l| filter.matches(l)));
            if matched.len() >= wanted {
                break;
            }
        }
        if let Some(order) = order {
            order.sort(&mut matched);
        }
        Ok(matched)
    }

    /// The account's Unsorted entries that match, oldest first.
    pub async fn unsorted(
        &self,
        account: AccountId,
        filter: &UnsortedFilter,
    ) -> Result<Vec<Unsorted>> {
        let mut entries = self.store.list_unsorted(account).await?;
        entries.retain(|u| filter.matches(u));
        Ok(entries)
    }

    /// One Unsorted entry of the account.
    pub async fn unsorted_entry(&self, account: AccountId, uid: &UnsortedUid) -> Result<Unsorted> {
        self.store
            .get_unsorted(account, uid)
            .await?
            .ok_or_else(|| Error::NotFound(format!("unsorted entry {uid} does not exist")))
    }

    pub async fn pipeline(&self, account: AccountId, id: PipelineId) -> Result<Pipeline> {
        catalog::get(&*self.store, account, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("pipeline {id} does not exist")))
    }

    /// The stage a lead is moved to, checked: a status of the pipeline, and not Unsorted
    /// (but for a lead being created there).
    pub(super) async fn target_stage(
        &self,
        account: AccountId,
        pipeline_id: PipelineId,
        status_id: StatusId,
        kind: MoveKind,
    ) -> Result<Stage> {
        let pipeline = self.pipeline(account, pipeline_id).await?;
        Self::stage_in(&pipeline, status_id, kind)
    }

    /// `target_stage` in a pipeline already read.
    pub(super) fn stage_in(
        pipeline: &Pipeline,
        status_id: StatusId,
        kind: MoveKind,
    ) -> Result<Stage> {
        let status = pipeline.status(status_id).ok_or_else(|| {
            Error::invalid(
                "status_id",
                format!("pipeline {} has no status {status_id}", pipeline.id),
            )
        })?;
        if status.status_type == StatusType::Unsorted && kind != MoveKind::Created {
            return Err(Error::invalid(
                "status_id",
                "a lead cannot be moved into Unsorted",
            ));
        }
        Ok(Stage {
            pipeline_id: pipeline.id,
            status_id,
        })
    }

    /// Moves a lead to a stage and fires what the move triggers. With `unsorted` the move
    /// is an accept: conditional on the lead standing in Unsorted, settling the entry.
    pub async fn move_lead(
        &self,
        account: AccountId,
        id: LeadId,
        pipeline_id: Option<PipelineId>,
        status_id: StatusId,
        kind: MoveKind,
        unsorted: Option<(UnsortedUid, Stage)>,
    ) -> Result<Lead> {
        let mut lead = self.lead(account, id).await?;
        let pipeline_id = pipeline_id.unwrap_or(lead.pipeline_id);
        let to = self
            .target_stage(account, pipeline_id, status_id, kind)
            .await?;
        let now = now_ms();
        let by = match kind {
            MoveKind::Accepted => MoveOrigin::Accept,
            _ => MoveOrigin::Api,
        };
        let (expect, uid) = unsorted.map_or((None, None), |(uid, at)| (Some(at), Some(uid)));
        let moved = LeadMove {
            account,
            lead: id,
            to,
            at: now,
            expect,
            by,
            unsorted: uid,
        };
        let from = match self.store.move_lead(&moved).await? {
            MoveOutcome::Moved { from } => from,
            MoveOutcome::NotFound => {
                return Err(Error::NotFound(match &moved.unsorted {
                    Some(uid) => format!("unsorted entry {uid} does not exist"),
                    None => format!("lead {id} does not exist"),
                }));
            }
            MoveOutcome::Conflict { current } => {
                return Err(Error::Conflict(format!(
                    "lead {id} is no longer where it was (now in status {} of pipeline {})",
                    current.status_id, current.pipeline_id
                )));
            }
        };
        lead.pipeline_id = to.pipeline_id;
        lead.status_id = to.status_id;
        lead.updated_at = now;
        if from != to {
            self.live.publish(account, id, LiveKind::Moved);
            self.fire_on_move(&lead, kind, Some(from), None).await?;
            let moved = Change::LeadStatusChanged {
                lead: lead.clone(),
                from,
            };
            self.notify_account(account, moved).await?;
        }
        Ok(lead)
    }

    /// Accepts an Unsorted entry into a stage of its pipeline (the first working stage
    /// when none is given).
    pub async fn accept(
        &self,
        account: AccountId,
        uid: &UnsortedUid,
        status_id: Option<StatusId>,
    ) -> Result<Lead> {
        let entry = self.unsorted_entry(account, uid).await?;
        let pipeline = self.pipeline(account, entry.pipeline_id).await?;
        let status_id = match status_id {
            Some(s) => s,
            None => pipeline.first_working_stage().ok_or_else(|| {
                Error::Conflict("the pipeline has no stage to accept into".into())
            })?,
        };
        let to = Stage {
            pipeline_id: entry.pipeline_id,
            status_id,
        };
        let expect = Self::unsorted_stage(&pipeline)?;
        self.accept_entry(account, &entry, expect, to).await
    }

    /// A pipeline's Unsorted stage, where an entry's lead stands until it is settled.
    pub(super) fn unsorted_stage(pipeline: &Pipeline) -> Result<Stage> {
        let unsorted = pipeline
            .unsorted()
            .ok_or_else(|| Error::Conflict("the pipeline has no Unsorted stage".into()))?;
        Ok(Stage {
            pipeline_id: pipeline.id,
            status_id: unsorted.id,
        })
    }

    /// Moves an Unsorted entry's lead out of its Unsorted stage (`expect`) into `to`, if
    /// it still stands there, and settles the entry.
    pub(super) async fn accept_entry(
        &self,
        account: AccountId,
        entry: &Unsorted,
        expect: Stage,
        to: Stage,
    ) -> Result<Lead> {
        let lead = self
            .move_lead(
                account,
                entry.lead_id,
                Some(to.pipeline_id),
                to.status_id,
                MoveKind::Accepted,
                Some((entry.uid.clone(), expect)),
            )
            .await?;
        self.notify_account(account, Change::unsorted_settled(entry, "accept"))
            .await?;
        Ok(lead)
    }

    /// Declines an Unsorted entry: the entry goes, its lead is closed as lost.
    pub async fn decline(&self, account: AccountId, uid: &UnsortedUid) -> Result<Lead> {
        let entry = self.unsorted_entry(account, uid).await?;
        self.decline_entry(account, &entry).await
    }

    pub(super) async fn decline_entry(&self, account: AccountId, entry: &Unsorted) -> Result<Lead> {
        let uid = &entry.uid;
        let lost = Stage {
            pipeline_id: entry.pipeline_id,
            status_id: LOST,
        };
        let from = match self.store.decline(entry, lost, now_ms()).await? {
            MoveOutcome::Moved { from } => from,
            _ => {
                return Err(Error::NotFound(format!(
                    "unsorted entry {uid} does not exist"
                )));
            }
        };
        self.live.publish(account, entry.lead_id, LiveKind::Moved);
        let lead = self.lead(account, entry.lead_id).await?;
        // Lost's actions fire for a declined lead as for one moved there.
        self.fire_on_move(&lead, MoveKind::Moved, Some(from), None)
            .await?;
        self.notify_account(account, Change::unsorted_settled(entry, "decline"))
            .await?;
        let moved = Change::LeadStatusChanged {
            lead: lead.clone(),
            from,
        };
        self.notify_account(account, moved).await?;
        Ok(lead)
    }

    /// A browser's page views in an account (oldest first) and the visits they make,
    /// numbered.
    pub async fn browsing(
        &self,
        account: AccountId,
        visitor: VisitorId,
    ) -> Result<(Vec<PageView>, Vec<Visit>)> {
        let page_views = self.store.page_views(account, visitor).await?;
        let state = self.store.visitor(account, visitor).await?;
        // Each site may have its own visit gap.
        let default_idle = self.settings.tracking.visit_idle_seconds;
        let sites: Vec<Site> = self.records(account).await?;
        let idle_ms = |id: SiteId| {
            sites
                .iter()
                .find(|s| s.id == id)
                .map_or(default_idle as i64 * 1000, |s| {
                    s.visit_idle_ms(default_idle)
                })
        };
        let visits = group_visits(&page_views, idle_ms, state.visits);
        Ok((page_views, visits))
    }

    /// Each browser linked to the lead with all its page views and visits; what belongs
    /// to the lead is what the link covers.
    async fn lead_browsing(
        &self,
        lead: &Lead,
    ) -> Result<Vec<(VisitorLink, Vec<PageView>, Vec<Visit>)>> {
        let mut out = Vec::new();
        for link in self.store.lead_visitors(lead.account_id, lead.id).await? {
            let (page_views, visits) = self.browsing(lead.account_id, link.visitor).await?;
            out.push((link, page_views, visits));
        }
        Ok(out)
    }

    /// The visits of the lead's browsers, oldest first.
    pub async fn lead_visits(
        &self,
        account: AccountId,
        id: LeadId,
    ) -> Result<Vec<(VisitorId, Visit)>> {
        let lead = self.lead(account, id).await?;
        let mut visits: Vec<(VisitorId, Visit)> = self
            .lead_browsing(&lead)
            .await?
            .into_iter()
            .flat_map(|(link, _, visits)| {
                let visitor = link.visitor;
                visits
                    .into_iter()
                    .filter(move |v| link.covers(v.started_at))
                    .map(move |v| (visitor, v))
            })
            .collect();
        visits.sort_by_key(|(_, v)| v.started_at);
        Ok(visits)
    }

    /// The lead's timeline, oldest first: its entries, the page views and visits of its
    /// browsers, and every delivery attempt of its events.
    pub async fn timeline(&self, account: AccountId, id: LeadId) -> Result<Vec<TimelineItem>> {
        let lead = self.lead(account, id).await?;
        let entries = self.store.timeline(account, lead.id).await?;
        let fired: Vec<_> = entries
            .iter()
            .filter_map(|e| match e {
                TimelineEntry::EventFired { event_id, .. } => Some(event_id.clone()),
                _ => None,
            })
            .collect();
        let events = self.store.get_events(&fired).await?;
        let mut items = Vec::new();
        for entry in entries {
            let event = match &entry {
                TimelineEntry::EventFired { event_id, .. } => {
                    events.iter().find(|e| &e.id == event_id)
                }
                _ => None,
            };
            let Some(event) = event else {
                items.push(ItemKind::Entry(entry));
                continue;
            };
            for (n, attempt) in event.attempts.iter().enumerate() {
                items.push(ItemKind::Derived(DerivedItem::Delivery {
                    at: attempt.at,
                    event_id: event.id.clone(),
                    attempt: n + 1,
                    status: attempt.status,
                    latency_ms: attempt.latency_ms,
                    error: attempt.error.clone(),
                }));
            }
            items.push(ItemKind::Fired {
                entry,
                state: event.state,
                delayed_by: event.delayed_by,
                handler_id: event.handler_id,
            });
        }
        for (link, page_views, visits) in self.lead_browsing(&lead).await? {
            let visitor = link.visitor;
            for pv in page_views.iter().filter(|pv| link.covers(pv.at)) {
                let number = visits
                    .iter()
                    .rev()
                    .find(|v| v.site_id == pv.site_id && v.started_at <= pv.at)
                    .map(|v| v.number);
                items.push(ItemKind::Derived(DerivedItem::PageView {
                    at: pv.at,
                    visitor,
                    visit: number,
                    site_id: pv.site_id,
                    url: pv.url.clone(),
                    title: pv.title.clone(),
                    referrer: pv.referrer.clone(),
                }));
            }
            for visit in visits.into_iter().filter(|v| link.covers(v.started_at)) {
                items.push(ItemKind::Derived(DerivedItem::Visit {
                    at: visit.started_at,
                    visitor,
                    number: visit.number,
                    site_id: visit.site_id,
                    url: visit.url,
                    title: visit.title,
                    referrer: visit.referrer,
                }));
            }
        }
        Ok(in_order(items))
    }
}

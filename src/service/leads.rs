//! Leads in the pipeline: accepting and declining Unsorted entries, moving leads between
//! stages (each move recorded and run past the triggers), and the lead's timeline as the
//! console shows it: its own entries merged with the page views and visits of the
//! browsers linked to it, and the delivery attempts of its events.

use serde_json::{Value, json};

use super::{Error, Result, Services};
use crate::domain::action::MoveKind;
use crate::domain::ids::{AccountId, LeadId, PipelineId, SiteId, StatusId, UnsortedUid};
use crate::domain::lead::Lead;
use crate::domain::pipeline::{LOST, Pipeline, STATUS_TYPE_UNSORTED, Stage};
use crate::domain::site::Site;
use crate::domain::time::{Millis, now_ms, to_secs};
use crate::domain::timeline::TimelineEntry;
use crate::domain::tracking::{PageView, Visit, group_visits};
use crate::domain::visitor::VisitorId;
use crate::store::{MoveOutcome, catalog};

impl Services {
    /// A lead of the account, or NotFound (also for another account's lead).
    pub async fn lead(&self, account: AccountId, id: LeadId) -> Result<Lead> {
        self.store
            .get_leads(&[id])
            .await?
            .pop()
            .filter(|l| l.account_id == account)
            .ok_or_else(|| Error::NotFound(format!("lead {id} does not exist")))
    }

    pub async fn pipeline(&self, account: AccountId, id: PipelineId) -> Result<Pipeline> {
        catalog::get(&*self.store, account, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("pipeline {id} does not exist")))
    }

    /// Moves a lead to a stage and fires what the move triggers. `expect` makes the move
    /// conditional (accepting from Unsorted races with other accepts).
    pub async fn move_lead(
        &self,
        account: AccountId,
        id: LeadId,
        pipeline_id: Option<PipelineId>,
        status_id: StatusId,
        kind: MoveKind,
        expect: Option<Stage>,
    ) -> Result<Lead> {
        let mut lead = self.lead(account, id).await?;
        let pipeline = self
            .pipeline(account, pipeline_id.unwrap_or(lead.pipeline_id))
            .await?;
        let status = pipeline.status(status_id).ok_or_else(|| {
            Error::invalid(
                "status_id",
                format!("pipeline {} has no status {status_id}", pipeline.id),
            )
        })?;
        if status.status_type == STATUS_TYPE_UNSORTED && kind != MoveKind::Created {
            return Err(Error::invalid(
                "status_id",
                "a lead cannot be moved into Unsorted",
            ));
        }
        let to = Stage {
            pipeline_id: pipeline.id,
            status_id,
        };
        let now = now_ms();
        let from = match self.store.move_lead(id, to, now, expect).await? {
            MoveOutcome::Moved { from } => from,
            MoveOutcome::NotFound => {
                return Err(Error::NotFound(format!("lead {id} does not exist")));
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
            let by = match kind {
                MoveKind::Accepted => "accept",
                _ => "api",
            };
            self.store
                .append_timeline(
                    id,
                    &TimelineEntry::Moved {
                        at: now,
                        from: Some(from),
                        to,
                        by: by.into(),
                    },
                )
                .await?;
            self.live.publish(account, id, "moved");
            self.fire_on_move(&lead, kind, Some(from)).await?;
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
        let entry = self
            .store
            .get_unsorted(account, uid)
            .await?
            .ok_or_else(|| Error::NotFound(format!("unsorted entry {uid} does not exist")))?;
        let pipeline = self.pipeline(account, entry.pipeline_id).await?;
        let unsorted = pipeline
            .unsorted()
            .ok_or_else(|| Error::Conflict("the pipeline has no Unsorted stage".into()))?;
        let status_id = match status_id {
            Some(s) => s,
            None => pipeline
                .statuses
                .iter()
                .find(|s| s.status_type != STATUS_TYPE_UNSORTED)
                .map(|s| s.id)
                .ok_or_else(|| {
                    Error::Conflict("the pipeline has no stage to accept into".into())
                })?,
        };
        let expect = Stage {
            pipeline_id: pipeline.id,
            status_id: unsorted.id,
        };
        let lead = self
            .move_lead(
                account,
                entry.lead_id,
                Some(pipeline.id),
                status_id,
                MoveKind::Accepted,
                Some(expect),
            )
            .await?;
        self.store.remove_unsorted(account, uid).await?;
        Ok(lead)
    }

    /// Declines an Unsorted entry: the entry goes, its lead is closed as lost.
    pub async fn decline(&self, account: AccountId, uid: &UnsortedUid) -> Result<Lead> {
        let entry = self
            .store
            .get_unsorted(account, uid)
            .await?
            .ok_or_else(|| Error::NotFound(format!("unsorted entry {uid} does not exist")))?;
        if !self.store.remove_unsorted(account, uid).await? {
            return Err(Error::NotFound(format!(
                "unsorted entry {uid} does not exist"
            )));
        }
        let now = now_ms();
        self.store
            .append_timeline(entry.lead_id, &TimelineEntry::Declined { at: now })
            .await?;
        let lost = Stage {
            pipeline_id: entry.pipeline_id,
            status_id: LOST,
        };
        let mut lead = self.lead(account, entry.lead_id).await?;
        if let MoveOutcome::Moved { from } = self.store.move_lead(lead.id, lost, now, None).await? {
            lead.pipeline_id = lost.pipeline_id;
            lead.status_id = lost.status_id;
            lead.updated_at = now;
            self.store
                .append_timeline(
                    lead.id,
                    &TimelineEntry::Moved {
                        at: now,
                        from: Some(from),
                        to: lost,
                        by: "decline".into(),
                    },
                )
                .await?;
        }
        self.live.publish(account, lead.id, "moved");
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
        let sites: Vec<Site> = catalog::list(&*self.store, account).await?;
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

    /// The lead's timeline, oldest first: its entries, the page views and visits of its
    /// browsers (within each link's window), and every delivery attempt of its events.
    pub async fn timeline(&self, account: AccountId, id: LeadId) -> Result<Vec<Value>> {
        let lead = self.lead(account, id).await?;
        let mut items: Vec<(Millis, Value)> = Vec::new();
        for entry in self.store.timeline(lead.id).await? {
            let at = entry.at();
            if let TimelineEntry::EventFired { event_id, .. } = &entry
                && let Some(event) = self.store.get_event(event_id).await?
            {
                for (n, attempt) in event.attempts.iter().enumerate() {
                    items.push((
                        attempt.at,
                        json!({"type": "delivery", "event_id": event.id, "attempt": n + 1,
                               "status": attempt.status, "latency_ms": attempt.latency_ms,
                               "error": attempt.error}),
                    ));
                }
                let mut value = serde_json::to_value(&entry).unwrap_or_default();
                value["state"] = json!(event.state);
                value["delayed_by"] = json!(event.delayed_by);
                value["handler_id"] = json!(event.handler_id);
                items.push((at, value));
                continue;
            }
            items.push((at, serde_json::to_value(&entry).unwrap_or_default()));
        }
        for link in self.store.lead_visitors(lead.id).await? {
            let (page_views, visits) = self.browsing(lead.account_id, link.visitor).await?;
            for visit in visits.iter().filter(|v| link.covers(v.started_at)) {
                items.push((
                    visit.started_at,
                    json!({"type": "visit", "visitor": link.visitor, "number": visit.number,
                           "site_id": visit.site_id, "url": visit.url, "title": visit.title,
                           "referrer": visit.referrer}),
                ));
            }
            for pv in page_views.iter().filter(|pv| link.covers(pv.at)) {
                let number = visits
                    .iter()
                    .rev()
                    .find(|v| v.site_id == pv.site_id && v.started_at <= pv.at)
                    .map(|v| v.number);
                items.push((
                    pv.at,
                    json!({"type": "page_view", "visitor": link.visitor, "visit": number,
                           "site_id": pv.site_id, "url": pv.url, "title": pv.title,
                           "referrer": pv.referrer}),
                ));
            }
        }
        // At one millisecond, a visit and its page view come before what they caused and
        // a delivery after its event; otherwise the order of writing holds (the sort is
        // stable).
        let rank = |v: &Value| match v["type"].as_str() {
            Some("visit") => 0,
            Some("page_view") => 1,
            Some("delivery") => 3,
            _ => 2,
        };
        items.sort_by_key(|(at, v)| (*at, rank(v)));
        Ok(items
            .into_iter()
            .map(|(at, mut v)| {
                v["at"] = json!(at);
                v["created_at"] = json!(to_secs(at));
                v
            })
            .collect())
    }
}

//! Triggers: which actions an occurrence fires, and the events they create.
//!
//! An event is stored, scheduled at its due time and put on the lead's timeline before the
//! request that caused it is answered; the scheduler (`delivery::scheduler`) sends it.
//! Immediate events are due at once and wake this instance's scheduler.

use super::{Result, Services};
use crate::domain::action::{Action, MoveKind};
use crate::domain::event::{Direction, EventType};
use crate::domain::event_record::{DeliveryState, EventRecord, VisitMeta};
use crate::domain::handler::Handler;
use crate::domain::ids::{EventId, LeadId};
use crate::domain::lead::Lead;
use crate::domain::pipeline::Stage;
use crate::domain::site::{Site, parse_web_url};
use crate::domain::time::{Millis, now_ms, to_secs};
use crate::domain::timeline::TimelineEntry;
use crate::domain::tracking::Visit;
use crate::store::catalog;

/// What fired, before it becomes an `EventRecord`.
struct Firing {
    event_type: EventType,
    direction: Option<Direction>,
    stage: Stage,
    visit: Option<VisitMeta>,
    delayed_by: u32,
    due_at: Millis,
}

impl Services {
    /// The first page view of a visit of a linked visitor: every enabled site-visit action
    /// on the lead's stage whose site URL covers the page fires once.
    pub(super) async fn fire_site_visit(
        &self,
        site: &Site,
        lead_id: LeadId,
        visit: &Visit,
    ) -> Result<()> {
        // The page is parsed fully only here, on the first page view of a linked visit.
        let Some(url) = parse_web_url(&visit.url) else {
            return Ok(());
        };
        let Some(lead) = self.store.get_leads(&[lead_id]).await?.pop() else {
            return Ok(());
        };
        if lead.account_id != site.account_id {
            return Ok(());
        }
        let actions: Vec<Action> = catalog::list(&*self.store, lead.account_id).await?;
        for action in actions.iter().filter(|a| {
            a.enabled
                && a.event == EventType::SiteVisit
                && a.covers(lead.stage())
                && a.site_url.as_ref().is_some_and(|u| u.matches(&url))
        }) {
            let Some(handler) = self.handler_of(action).await? else {
                continue;
            };
            let firing = Firing {
                event_type: EventType::SiteVisit,
                direction: None,
                stage: lead.stage(),
                visit: Some(VisitMeta {
                    url: visit.url.clone(),
                    referrer: visit.referrer.clone(),
                    title: visit.title.clone(),
                    number: visit.number,
                    started_at: to_secs(visit.started_at),
                }),
                delayed_by: action.delay_seconds,
                due_at: visit.started_at + action.delay_seconds as Millis * 1000,
            };
            self.create_event(&lead, action, &handler, firing).await?;
        }
        Ok(())
    }

    /// A lead arrived at its current stage (created, accepted or moved from `from`):
    /// fires the `lead_added` and `lead_status_changed` actions the seed's rules name.
    pub async fn fire_on_move(
        &self,
        lead: &Lead,
        kind: MoveKind,
        from: Option<Stage>,
    ) -> Result<()> {
        let actions: Vec<Action> = catalog::list(&*self.store, lead.account_id).await?;
        let now = now_ms();
        for action in &actions {
            if !matches!(
                action.event,
                EventType::LeadAdded | EventType::LeadStatusChanged
            ) {
                continue;
            }
            let touches = action.covers(lead.stage()) || from.is_some_and(|f| action.covers(f));
            if !touches {
                continue;
            }
            let Some(handler) = self.handler_of(action).await? else {
                continue;
            };
            let Some((event_type, direction)) =
                action.on_move(kind, from, lead.stage(), handler.action_multiple)
            else {
                continue;
            };
            let firing = Firing {
                event_type,
                direction: Some(direction),
                stage: lead.stage(),
                visit: None,
                delayed_by: 0,
                due_at: now,
            };
            self.create_event(lead, action, &handler, firing).await?;
        }
        Ok(())
    }

    async fn handler_of(&self, action: &Action) -> Result<Option<Handler>> {
        let handler = catalog::get(&*self.store, action.account_id, action.handler_id).await?;
        if handler.is_none() {
            tracing::warn!(action = %action.id, handler = %action.handler_id, "action names a handler that no longer exists");
        }
        Ok(handler)
    }

    async fn create_event(
        &self,
        lead: &Lead,
        action: &Action,
        handler: &Handler,
        f: Firing,
    ) -> Result<()> {
        let now = now_ms();
        let event = EventRecord {
            id: EventId::generate(),
            account_id: lead.account_id,
            lead_id: lead.id,
            action_id: action.id,
            handler_id: handler.id,
            event_type: f.event_type,
            direction: f.direction,
            stage: f.stage,
            visit: f.visit,
            delayed_by: f.delayed_by,
            created_at: now,
            due_at: f.due_at,
            state: DeliveryState::Scheduled,
            body: None,
            attempts: Vec::new(),
            failures: 0,
            next_attempt_at: None,
            reason: None,
        };
        self.store.save_event(&event).await?;
        self.store
            .append_timeline(
                lead.id,
                &TimelineEntry::EventFired {
                    at: now,
                    event_id: event.id.clone(),
                    event_type: event.event_type,
                    action_id: action.id,
                    due_at: event.due_at,
                },
            )
            .await?;
        metrics::counter!("footfall_events_total", "type" => event.event_type.code()).increment(1);
        tracing::info!(event = %event.id, lead = %lead.id, action = %action.id, r#type = event.event_type.code(), due_in_ms = event.due_at - now, "event fired");
        self.scheduler_wake.notify_one();
        self.live.publish(lead.account_id, lead.id, "event");
        Ok(())
    }
}

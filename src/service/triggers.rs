//! Triggers: which actions an occurrence fires, and the events they create.
//!
//! The actions and handlers come from this instance's snapshot of the catalog; the events
//! of one occurrence are stored, scheduled and put on the lead's timeline in one store
//! round trip (`Schedule::add_events`) before the request that caused them is answered;
//! the scheduler (`delivery::scheduler`) sends them. Immediate events are due at once and
//! wake this instance's scheduler.

use super::catalog_cache::Snapshot;
use super::live::LiveKind;
use super::{Result, Services};
use crate::domain::action::{Action, MoveKind};
use crate::domain::event::{Direction, EventType};
use crate::domain::event_record::{DeliveryState, EventRecord, VisitMeta};
use crate::domain::handler::Handler;
use crate::domain::ids::EventId;
use crate::domain::lead::Lead;
use crate::domain::pipeline::Stage;
use crate::domain::site::parse_web_url;
use crate::domain::source::Source;
use crate::domain::time::{Millis, now_ms, to_secs};
use crate::domain::tracking::Visit;

/// What fired, before it becomes an `EventRecord`.
pub(super) struct Firing<'a> {
    pub action: &'a Action,
    pub handler: &'a Handler,
    pub event_type: EventType,
    pub direction: Option<Direction>,
    pub visit: Option<VisitMeta>,
    pub delayed_by: u32,
    pub due_at: Millis,
}

impl Services {
    /// The first page view of a visit of a linked browser: every enabled site-visit action
    /// without conditions on the lead's stage whose site URL covers the page fires once
    /// (actions with conditions: `conditions.rs`).
    pub(super) async fn fire_site_visit(
        &self,
        lead: &Lead,
        visit: &Visit,
        snapshot: &Snapshot,
    ) -> Result<()> {
        // The page is parsed fully only here, on the first page view of a linked visit.
        let Some(url) = parse_web_url(&visit.url) else {
            return Ok(());
        };
        let firings = snapshot
            .actions
            .iter()
            .filter(|a| {
                a.enabled
                    && a.event == EventType::SiteVisit
                    && a.conditions.is_none()
                    && a.covers(lead.stage())
                    && a.site_url.as_ref().is_some_and(|u| u.matches(&url))
            })
            .filter_map(|action| {
                Some(Firing {
                    action,
                    handler: handler_of(snapshot, action)?,
                    event_type: EventType::SiteVisit,
                    direction: None,
                    visit: Some(VisitMeta {
                        url: visit.url.clone(),
                        referrer: visit.referrer.clone(),
                        title: visit.title.clone(),
                        number: visit.number,
                        started_at: to_secs(visit.started_at),
                        source: Some(Source::of_visit(visit)),
                    }),
                    delayed_by: action.delay_seconds,
                    due_at: visit.started_at + action.delay_seconds as Millis * 1000,
                })
            });
        let firings: Vec<Firing> = firings.collect();
        self.count_fired(visit.site_id, firings.len()).await;
        self.create_events(lead, firings).await
    }

    /// A lead arrived at its current stage (created, accepted or moved from `from`):
    /// fires the `lead_added` and `lead_status_changed` actions the seed's rules name.
    pub async fn fire_on_move(
        &self,
        lead: &Lead,
        kind: MoveKind,
        from: Option<Stage>,
        snapshot: Option<&Snapshot>,
    ) -> Result<()> {
        let read;
        let snapshot = match snapshot {
            Some(s) => s,
            None => {
                read = self
                    .snapshots
                    .get(&*self.store, lead.account_id, None)
                    .await?;
                &read
            }
        };
        let now = now_ms();
        let firings = snapshot
            .actions
            .iter()
            .filter(|a| {
                matches!(a.event, EventType::LeadAdded | EventType::LeadStatusChanged)
                    && (a.covers(lead.stage()) || from.is_some_and(|f| a.covers(f)))
            })
            .filter_map(|action| {
                let handler = handler_of(snapshot, action)?;
                let (event_type, direction) =
                    action.on_move(kind, from, lead.stage(), handler.action_multiple)?;
                Some(Firing {
                    action,
                    handler,
                    event_type,
                    direction: Some(direction),
                    visit: None,
                    delayed_by: 0,
                    due_at: now,
                })
            });
        self.create_events(lead, firings.collect()).await
    }

    pub(super) async fn create_events(&self, lead: &Lead, firings: Vec<Firing<'_>>) -> Result<()> {
        if firings.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let events: Vec<EventRecord> = firings
            .into_iter()
            .map(|f| EventRecord {
                id: EventId::generate(),
                account_id: lead.account_id,
                lead_id: lead.id,
                action_id: f.action.id,
                handler_id: f.handler.id,
                event_type: f.event_type,
                direction: f.direction,
                stage: lead.stage(),
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
                notice: None,
            })
            .collect();
        self.store.add_events(&events).await?;
        for event in &events {
            metrics::counter!("footfall_events_total", "type" => event.event_type.code())
                .increment(1);
            tracing::info!(event = %event.id, lead = %lead.id, action = %event.action_id, r#type = event.event_type.code(), due_in_ms = event.due_at - now, "event fired");
            self.live.publish(lead.account_id, lead.id, LiveKind::Event);
        }
        self.scheduler_wake.notify_one();
        Ok(())
    }
}

/// The action's handler, when it still exists.
pub(super) fn handler_of<'a>(snapshot: &'a Snapshot, action: &Action) -> Option<&'a Handler> {
    let handler = snapshot.handler(action.handler_id);
    if handler.is_none() {
        tracing::warn!(action = %action.id, handler = %action.handler_id, "action names a handler that no longer exists");
    }
    handler
}

//! A fired event and its delivery: created when a trigger fires (or is scheduled, for a
//! delayed action), its webhook body fixed at the first attempt and sent again unchanged
//! on every retry, every attempt recorded.

use serde::{Deserialize, Serialize};

use super::event::{Direction, EventType};
use super::ids::{AccountId, ActionId, EventId, HandlerId, LeadId};
use super::pipeline::Stage;
use super::time::Millis;
use super::timeline::TimelineEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its time (a delayed action) or for its first attempt.
    Scheduled,
    /// An attempt failed; another is scheduled.
    Retrying,
    Delivered,
    /// Every attempt of the schedule failed; can be replayed.
    Dead,
    /// A delayed action whose lead left the stage, or whose action went away, before it
    /// was due.
    Cancelled,
}

impl DeliveryState {
    /// Whether the event still waits in the schedule.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Scheduled | Self::Retrying)
    }
}

/// One try to deliver the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Millis,
    /// The receiver's status code, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed, in words (timeout, refused, status 500 …).
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// The visit a `site_visit` event reports (`meta.visit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitMeta {
    pub url: String,
    pub referrer: String,
    pub title: String,
    pub number: u32,
    /// Unix seconds.
    pub started_at: i64,
    /// Where the visit came from: its landing page, referrer and campaign parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<super::source::Source>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: EventId,
    pub account_id: AccountId,
    pub lead_id: LeadId,
    pub action_id: ActionId,
    pub handler_id: HandlerId,
    pub event_type: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The lead's stage when the event fired (the new stage of a move).
    pub stage: Stage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<VisitMeta>,
    pub delayed_by: u32,
    pub created_at: Millis,
    /// When it is to be (or was first) sent.
    pub due_at: Millis,
    pub state: DeliveryState,
    /// The exact body sent, fixed at the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Failed attempts since the event was created or last replayed: picks the next
    /// delay of the retry schedule.
    #[serde(default)]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Millis>,
    /// Why it was cancelled or dead-lettered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set when the event is a notice to an account webhook (its body fixed at creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<super::account_webhook::Notice>,
}

impl EventRecord {
    /// The lead's timeline entry for this event having fired.
    pub fn fired_entry(&self) -> TimelineEntry {
        TimelineEntry::EventFired {
            at: self.created_at,
            event_id: self.id.clone(),
            event_type: self.event_type,
            action_id: self.action_id,
            due_at: self.due_at,
        }
    }
}

/// What an event search asks for; every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub lead_id: Option<LeadId>,
    pub handler_id: Option<HandlerId>,
    pub state: Option<DeliveryState>,
    /// A type code (`site_visit`) or number (`18`).
    pub event_type: Option<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &EventRecord) -> bool {
        self.lead_id.is_none_or(|l| e.lead_id == l)
            && self.handler_id.is_none_or(|h| e.handler_id == h)
            && self.state.is_none_or(|s| e.state == s)
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| e.event_type.code() == t || e.event_type.number().to_string() == t)
    }
}

//! What happens to a lead, in order: creation, moves, visitors linked and moved away,
//! fired events (their deliveries are read from the event), notes. Page views and visits
//! are not copied here; they are read from the linked visitors when the timeline is shown.

use serde::{Deserialize, Serialize};

use super::event::EventType;
use super::ids::{ActionId, EventId, FormId, LeadId, UnsortedUid};
use super::pipeline::Stage;
use super::time::Millis;
use super::visitor::VisitorId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimelineEntry {
    LeadCreated {
        at: Millis,
        form_id: FormId,
        unsorted_uid: UnsortedUid,
    },
    Moved {
        at: Millis,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Stage>,
        to: Stage,
        /// `accept`, `api` or `console`.
        by: String,
    },
    Declined {
        at: Millis,
    },
    /// The contact sent a form again (from `visitor`) while this lead was open.
    FormSubmitted {
        at: Millis,
        form_id: FormId,
        visitor: VisitorId,
    },
    VisitorLinked {
        at: Millis,
        visitor: VisitorId,
        /// The lead this browser belonged to before, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_lead: Option<LeadId>,
    },
    /// The browser submitted a form again and now belongs to `to_lead`.
    VisitorMoved {
        at: Millis,
        visitor: VisitorId,
        to_lead: LeadId,
    },
    EventFired {
        at: Millis,
        event_id: EventId,
        event_type: EventType,
        action_id: ActionId,
        due_at: Millis,
    },
    /// A delayed action that did not fire: its lead left the stage, or the action went away.
    EventCancelled {
        at: Millis,
        event_id: EventId,
        reason: String,
    },
    Note {
        at: Millis,
        id: u64,
        note_type: u8,
        params: serde_json::Value,
    },
}

impl TimelineEntry {
    pub fn at(&self) -> Millis {
        match self {
            Self::LeadCreated { at, .. }
            | Self::Moved { at, .. }
            | Self::Declined { at }
            | Self::FormSubmitted { at, .. }
            | Self::VisitorLinked { at, .. }
            | Self::VisitorMoved { at, .. }
            | Self::EventFired { at, .. }
            | Self::EventCancelled { at, .. }
            | Self::Note { at, .. } => *at,
        }
    }
}

//! What happens to a lead, in order: creation, moves, visitors linked and moved away,
//! fired events (their deliveries are read from the event), notes. Page views and visits
//! are not copied here; they are read from the linked visitors when the timeline is shown.

use serde::{Deserialize, Serialize};

use super::event::EventType;
use super::event_record::DeliveryState;
use super::ids::{ActionId, EventId, FormId, HandlerId, LeadId, SiteId, UnsortedUid};
use super::pipeline::Stage;
use super::time::Millis;
use super::visitor::VisitorId;

/// Who moved a lead: an accept from Unsorted, the API (and the console, which uses it), or
/// a decline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveOrigin {
    Accept,
    Api,
    Console,
    Decline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimelineEntry {
    LeadCreated {
        at: Millis,
        form_id: FormId,
        unsorted_uid: UnsortedUid,
    },
    /// A lead created through the API (`POST /leads`, `/leads/complex`) straight into a
    /// stage.
    LeadAdded {
        at: Millis,
        to: Stage,
    },
    Moved {
        at: Millis,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Stage>,
        to: Stage,
        by: MoveOrigin,
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
            | Self::LeadAdded { at, .. }
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

/// One item of a lead's timeline as the API shows it: an entry of its own, or what is read
/// from elsewhere — the visits and page views of its browsers, the deliveries of its
/// events. Serialises to `{"type": …, "at": …, …, "created_at": …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineItem {
    #[serde(flatten)]
    pub kind: ItemKind,
    /// Unix seconds of `at`.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ItemKind {
    /// A fired event, with where its delivery stands.
    Fired {
        #[serde(flatten)]
        entry: TimelineEntry,
        state: DeliveryState,
        delayed_by: u32,
        handler_id: HandlerId,
    },
    Entry(TimelineEntry),
    Derived(DerivedItem),
}

/// Timeline items read from the lead's browsers and events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DerivedItem {
    Visit {
        at: Millis,
        visitor: VisitorId,
        number: u32,
        site_id: SiteId,
        url: String,
        title: String,
        referrer: String,
    },
    PageView {
        at: Millis,
        visitor: VisitorId,
        /// The number of the visit it belongs to.
        visit: Option<u32>,
        site_id: SiteId,
        url: String,
        title: String,
        referrer: String,
    },
    Delivery {
        at: Millis,
        event_id: EventId,
        attempt: usize,
        status: Option<u16>,
        latency_ms: u64,
        error: Option<String>,
    },
}

impl ItemKind {
    pub fn at(&self) -> Millis {
        match self {
            Self::Fired { entry, .. } | Self::Entry(entry) => entry.at(),
            Self::Derived(
                DerivedItem::Visit { at, .. }
                | DerivedItem::PageView { at, .. }
                | DerivedItem::Delivery { at, .. },
            ) => *at,
        }
    }

    /// At one millisecond, a visit and its page view come before what they caused, and a
    /// delivery after its event.
    pub fn rank(&self) -> u8 {
        match self {
            Self::Derived(DerivedItem::Visit { .. }) => 0,
            Self::Derived(DerivedItem::PageView { .. }) => 1,
            Self::Derived(DerivedItem::Delivery { .. }) => 3,
            _ => 2,
        }
    }
}

/// Sorts items by time (stable: the order of writing holds within a rank) and dates them.
pub fn in_order(mut items: Vec<ItemKind>) -> Vec<TimelineItem> {
    items.sort_by_key(|k| (k.at(), k.rank()));
    items
        .into_iter()
        .map(|kind| TimelineItem {
            created_at: super::time::to_secs(kind.at()),
            kind,
        })
        .collect()
}

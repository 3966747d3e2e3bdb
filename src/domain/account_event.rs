//! The account's event log, as amoCRM's `GET /api/v4/events` lists it: what happened to
//! the account's leads (added, moved between stages, noted), read from their timelines.
//! An event's id is its lead and its place on the lead's timeline, which only grows.

use super::ids::LeadId;
use super::pipeline::Stage;
use super::time::Millis;
use super::timeline::TimelineEntry;

/// amoCRM's event types footfall records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEventKind {
    LeadAdded,
    LeadStatusChanged,
    CommonNoteAdded,
    ServiceMessageNoteAdded,
}

impl AccountEventKind {
    pub const ALL: [Self; 4] = [
        Self::LeadAdded,
        Self::LeadStatusChanged,
        Self::CommonNoteAdded,
        Self::ServiceMessageNoteAdded,
    ];

    /// amoCRM's `type`.
    pub fn code(self) -> &'static str {
        match self {
            Self::LeadAdded => "lead_added",
            Self::LeadStatusChanged => "lead_status_changed",
            Self::CommonNoteAdded => "common_note_added",
            Self::ServiceMessageNoteAdded => "service_message_note_added",
        }
    }
}

/// What changed, before and after.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountEventValue {
    None,
    Stage(Stage),
    Note(u64),
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountEvent {
    pub id: String,
    pub kind: AccountEventKind,
    pub lead: LeadId,
    pub at: Millis,
    pub before: AccountEventValue,
    pub after: AccountEventValue,
}

impl AccountEvent {
    /// The event a timeline entry (the `index`th of lead `lead`) is, if any.
    pub fn of(lead: LeadId, index: usize, entry: &TimelineEntry) -> Option<Self> {
        let (kind, at, before, after) = match entry {
            TimelineEntry::LeadCreated { at, .. } | TimelineEntry::LeadAdded { at, .. } => (
                AccountEventKind::LeadAdded,
                *at,
                AccountEventValue::None,
                AccountEventValue::None,
            ),
            TimelineEntry::Moved {
                at,
                from: Some(from),
                to,
                ..
            } => (
                AccountEventKind::LeadStatusChanged,
                *at,
                AccountEventValue::Stage(*from),
                AccountEventValue::Stage(*to),
            ),
            TimelineEntry::Note {
                at, id, note_type, ..
            } => (
                if *note_type == 4 {
                    AccountEventKind::CommonNoteAdded
                } else {
                    AccountEventKind::ServiceMessageNoteAdded
                },
                *at,
                AccountEventValue::None,
                AccountEventValue::Note(*id),
            ),
            _ => return None,
        };
        Some(Self {
            id: format!("{}-{index}", lead.0),
            kind,
            lead,
            at,
            before,
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{PipelineId, StatusId};
    use crate::domain::timeline::MoveOrigin;

    #[test]
    fn a_move_between_stages_is_a_status_change_with_both_stages() {
        let stage = |s| Stage {
            pipeline_id: PipelineId(1),
            status_id: StatusId(s),
        };
        let moved = TimelineEntry::Moved {
            at: 5,
            from: Some(stage(1001)),
            to: stage(142),
            by: MoveOrigin::Api,
        };
        let event = AccountEvent::of(LeadId(7), 3, &moved).unwrap();
        assert_eq!(event.id, "7-3");
        assert_eq!(event.kind.code(), "lead_status_changed");
        assert_eq!(event.before, AccountEventValue::Stage(stage(1001)));
        // The first placement of a new lead has no `from`: it is not a change.
        let placed = TimelineEntry::Moved {
            at: 5,
            from: None,
            to: stage(1001),
            by: MoveOrigin::Api,
        };
        assert!(AccountEvent::of(LeadId(7), 0, &placed).is_none());
    }
}

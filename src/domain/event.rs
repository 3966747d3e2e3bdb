//! The event table of amoCRM's digital pipeline (the seed's `type` / `type_code` list) and
//! the direction of a lead's movement relative to a trigger.
//!
//! All codes live in one table (`EventType::kind`) so that a new event source only has to
//! switch its row on.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    LeadAdded,
    LeadStatusChanged,
    LeadAppearedInStatus,
    MailIn,
    CallIn,
    SiteVisit,
    Chat,
    CustomerAdded,
    CustomerPeriodChanged,
    CustomerAppearedInPeriod,
    /// Not the seed's: a notice to an account webhook (`account_webhook.rs`), delivered
    /// as events are.
    AccountWebhook,
}

/// One row of the seed's event table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    /// The webhook body's `type`.
    pub number: u8,
    /// The webhook body's `type_code`.
    pub code: &'static str,
    /// footfall has a source that produces it.
    pub emitted: bool,
    /// A marketer can place an action on it (15 arrives through a stretched
    /// `lead_status_changed` action, never on its own).
    pub actionable: bool,
}

impl EventType {
    /// Every event type, in the seed's order.
    pub const ALL: [EventType; 10] = [
        Self::LeadAdded,
        Self::LeadStatusChanged,
        Self::LeadAppearedInStatus,
        Self::MailIn,
        Self::CallIn,
        Self::SiteVisit,
        Self::Chat,
        Self::CustomerAdded,
        Self::CustomerPeriodChanged,
        Self::CustomerAppearedInPeriod,
    ];

    /// The type's row of the seed's table. A new source switches its row's `emitted` on.
    pub const fn kind(self) -> EventKind {
        match self {
            Self::AccountWebhook => EventKind {
                number: 0,
                code: "account_webhook",
                emitted: false,
                actionable: false,
            },
            Self::LeadAdded => EventKind {
                number: 1,
                code: "lead_added",
                emitted: true,
                actionable: true,
            },
            Self::LeadStatusChanged => EventKind {
                number: 14,
                code: "lead_status_changed",
                emitted: true,
                actionable: true,
            },
            Self::LeadAppearedInStatus => EventKind {
                number: 15,
                code: "lead_appeared_in_status",
                emitted: true,
                actionable: false,
            },
            Self::MailIn => EventKind {
                number: 16,
                code: "mail_in",
                emitted: false,
                actionable: false,
            },
            Self::CallIn => EventKind {
                number: 17,
                code: "call_in",
                emitted: false,
                actionable: false,
            },
            Self::SiteVisit => EventKind {
                number: 18,
                code: "site_visit",
                emitted: true,
                actionable: true,
            },
            Self::Chat => EventKind {
                number: 19,
                code: "chat",
                emitted: false,
                actionable: false,
            },
            Self::CustomerAdded => EventKind {
                number: 20,
                code: "customer_added",
                emitted: false,
                actionable: false,
            },
            Self::CustomerPeriodChanged => EventKind {
                number: 21,
                code: "customer_period_changed",
                emitted: false,
                actionable: false,
            },
            Self::CustomerAppearedInPeriod => EventKind {
                number: 22,
                code: "customer_appeared_in_period",
                emitted: false,
                actionable: false,
            },
        }
    }

    /// The `type` number of the webhook body.
    pub fn number(self) -> u8 {
        self.kind().number
    }

    /// The `type_code` of the webhook body.
    pub fn code(self) -> &'static str {
        self.kind().code
    }

    /// Whether footfall has a source that produces this event.
    pub fn is_emitted(self) -> bool {
        self.kind().emitted
    }

    /// Whether a marketer can place an action on this event.
    pub fn is_actionable(self) -> bool {
        self.kind().actionable
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Self::AccountWebhook])
            .find(|t| t.code() == code)
    }

    pub fn from_number(n: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.number() == n)
    }

    /// Codes a marketer may use in an action's `event`.
    pub fn actionable_codes() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|t| t.is_actionable())
            .map(EventType::code)
            .collect()
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        EventType::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event `{code}`")))
    }
}

/// `direction_of_movement`: how a lead moved relative to the stages of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From a stage without the trigger into a stage with it.
    WentToTrigger,
    /// Between two stages of one stretched trigger (`action_multiple` only).
    WentInTrigger,
    /// From a stage with the trigger out to one without (`action_multiple` only).
    WentFromTrigger,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_its_seed_number_and_code() {
        let all = EventType::ALL;
        let numbers: Vec<u8> = all.iter().map(|t| t.number()).collect();
        assert_eq!(numbers, [1, 14, 15, 16, 17, 18, 19, 20, 21, 22]);
        for t in all {
            assert_eq!(EventType::from_code(t.code()), Some(t));
            assert_eq!(EventType::from_number(t.number()), Some(t));
        }
        assert_eq!(EventType::SiteVisit.code(), "site_visit");
        assert_eq!(
            EventType::actionable_codes(),
            ["lead_added", "lead_status_changed", "site_visit"]
        );
    }

    #[test]
    fn directions_serialize_as_the_seed_spells_them() {
        assert_eq!(
            serde_json::to_string(&Direction::WentFromTrigger).unwrap(),
            "\"went_from_trigger\""
        );
    }
}

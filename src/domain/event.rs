//! The event table of amoCRM's digital pipeline (the seed's `type` / `type_code` list) and
//! the direction of a lead's movement relative to a trigger.
//!
//! All codes live in one table so that a new event source only has to switch its row on.

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
}

/// (type, number, code, emitted by footfall, an action can be placed on it)
const TABLE: [(EventType, u8, &str, bool, bool); 10] = [
    (EventType::LeadAdded, 1, "lead_added", true, true),
    (
        EventType::LeadStatusChanged,
        14,
        "lead_status_changed",
        true,
        true,
    ),
    (
        EventType::LeadAppearedInStatus,
        15,
        "lead_appeared_in_status",
        true,
        false,
    ),
    (EventType::MailIn, 16, "mail_in", false, false),
    (EventType::CallIn, 17, "call_in", false, false),
    (EventType::SiteVisit, 18, "site_visit", true, true),
    (EventType::Chat, 19, "chat", false, false),
    (EventType::CustomerAdded, 20, "customer_added", false, false),
    (
        EventType::CustomerPeriodChanged,
        21,
        "customer_period_changed",
        false,
        false,
    ),
    (
        EventType::CustomerAppearedInPeriod,
        22,
        "customer_appeared_in_period",
        false,
        false,
    ),
];

impl EventType {
    fn row(self) -> &'static (EventType, u8, &'static str, bool, bool) {
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0]) // ok: every variant has a row (tested)
    }

    /// The `type` number of the webhook body.
    pub fn number(self) -> u8 {
        self.row().1
    }

    /// The `type_code` of the webhook body.
    pub fn code(self) -> &'static str {
        self.row().2
    }

    /// Whether footfall has a source that produces this event.
    pub fn is_emitted(self) -> bool {
        self.row().3
    }

    /// Whether a marketer can place an action on this event (15 arrives through a stretched
    /// `lead_status_changed` action, never on its own).
    pub fn is_actionable(self) -> bool {
        self.row().4
    }

    pub fn from_code(code: &str) -> Option<Self> {
        TABLE.iter().find(|row| row.2 == code).map(|row| row.0)
    }

    pub fn from_number(n: u8) -> Option<Self> {
        TABLE.iter().find(|row| row.1 == n).map(|row| row.0)
    }

    /// Codes a marketer may use in an action's `event`.
    pub fn actionable_codes() -> Vec<&'static str> {
        TABLE.iter().filter(|r| r.4).map(|r| r.2).collect()
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
        let all = [
            EventType::LeadAdded,
            EventType::LeadStatusChanged,
            EventType::LeadAppearedInStatus,
            EventType::MailIn,
            EventType::CallIn,
            EventType::SiteVisit,
            EventType::Chat,
            EventType::CustomerAdded,
            EventType::CustomerPeriodChanged,
            EventType::CustomerAppearedInPeriod,
        ];
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

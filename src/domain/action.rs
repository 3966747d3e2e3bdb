//! Actions (triggers): what a marketer places on a stage — or on a stretch of adjacent
//! stages when the handler allows `action_multiple` — and the seed's rules for which
//! event a lead's move fires on them.

use serde::{Deserialize, Serialize};

use super::conditions::Conditions;
use super::event::{Direction, EventType};
use super::ids::{AccountId, ActionId, HandlerId, PipelineId, StatusId};
use super::pipeline::Stage;
use super::site::SiteUrl;
use super::time::Millis;

/// The longest delay of a delayed site-visit action: 30 days.
pub const MAX_DELAY_SECONDS: u32 = 30 * 24 * 3600;

/// How a lead came to its new stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    /// A new lead (from a form) appeared in its first stage.
    Created,
    /// Accepted from Unsorted into a stage.
    Accepted,
    /// Moved between stages (drag in the console, `PATCH /leads/{id}`).
    Moved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: ActionId,
    pub account_id: AccountId,
    pub pipeline_id: PipelineId,
    /// One stage, or a contiguous range for `action_multiple` handlers.
    pub status_ids: Vec<StatusId>,
    pub event: EventType,
    pub handler_id: HandlerId,
    /// The handler's code, as given on creation (`"handler": "notify"`).
    pub handler: String,
    /// For `site_visit`: which pages fire it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_url: Option<SiteUrl>,
    #[serde(default)]
    pub delay_seconds: u32,
    /// For `site_visit`: conditions that must all hold at a page view of the visit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// Handler settings, validated against the handler's schema; may hold macros.
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub enabled: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Action {
    /// Whether a lead standing at `stage` is within this action's stages.
    pub fn covers(&self, stage: Stage) -> bool {
        stage.pipeline_id == self.pipeline_id && self.status_ids.contains(&stage.status_id)
    }

    /// The stretched action spans several stages (possible only with `action_multiple`).
    pub fn is_stretched(&self) -> bool {
        self.status_ids.len() > 1
    }

    /// The event (and direction) a lead's arrival at `to` fires on this action, by the
    /// seed's rules; `None` when it does not concern the action.
    ///
    /// - a `lead_added` action: 1 when the lead is created in, or accepted from Unsorted
    ///   into, its stages;
    /// - into the action's stages from outside: 14 `went_to_trigger`;
    /// - between two stages of a stretched action: 15 `went_in_trigger`;
    /// - out of the action's stages: 14 `went_from_trigger`, only for `action_multiple`
    ///   handlers.
    pub fn on_move(
        &self,
        kind: MoveKind,
        from: Option<Stage>,
        to: Stage,
        action_multiple: bool,
    ) -> Option<(EventType, Direction)> {
        if !self.enabled {
            return None;
        }
        let was_in = from.is_some_and(|f| self.covers(f));
        let is_in = self.covers(to);
        match self.event {
            EventType::LeadAdded => (is_in && !was_in && kind != MoveKind::Moved)
                .then_some((EventType::LeadAdded, Direction::WentToTrigger)),
            EventType::LeadStatusChanged if kind == MoveKind::Created => None,
            EventType::LeadStatusChanged => match (was_in, is_in) {
                (false, true) => Some((EventType::LeadStatusChanged, Direction::WentToTrigger)),
                (true, true) if action_multiple && from != Some(to) => {
                    Some((EventType::LeadAppearedInStatus, Direction::WentInTrigger))
                }
                (true, false) if action_multiple => {
                    Some((EventType::LeadStatusChanged, Direction::WentFromTrigger))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PipelineId = PipelineId(1);
    fn at(s: u64) -> Stage {
        Stage {
            pipeline_id: P,
            status_id: StatusId(s),
        }
    }

    fn action(event: EventType, stages: &[u64]) -> Action {
        Action {
            id: ActionId(1),
            account_id: AccountId(1),
            pipeline_id: P,
            status_ids: stages.iter().map(|s| StatusId(*s)).collect(),
            event,
            handler_id: HandlerId(1),
            handler: "h".into(),
            site_url: None,
            delay_seconds: 0,
            conditions: None,
            settings: Default::default(),
            enabled: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// Pipeline A–B–C–D (ids 1–4) with one action stretched over B–C: each row names the
    /// seed's rule it checks.
    #[test]
    fn direction_of_movement_follows_the_seed_table() {
        use Direction::*;
        use EventType::*;
        let stretched = action(LeadStatusChanged, &[2, 3]);
        type Row = (&'static str, u64, u64, Option<(EventType, Direction)>);
        let rows: [Row; 6] = [
            (
                "A→B: entered the trigger from a stage without it → 14 went_to_trigger",
                1,
                2,
                Some((LeadStatusChanged, WentToTrigger)),
            ),
            (
                "B→C: moved inside a stretched trigger → 15 went_in_trigger",
                2,
                3,
                Some((LeadAppearedInStatus, WentInTrigger)),
            ),
            (
                "C→D: left the trigger for a stage without it → 14 went_from_trigger",
                3,
                4,
                Some((LeadStatusChanged, WentFromTrigger)),
            ),
            (
                "D→B: entered the trigger again → 14 went_to_trigger",
                4,
                2,
                Some((LeadStatusChanged, WentToTrigger)),
            ),
            (
                "A→D: never touched the trigger's stages → nothing",
                1,
                4,
                None,
            ),
            ("B→B: no move → nothing", 2, 2, None),
        ];
        for (rule, from, to, expected) in rows {
            assert_eq!(
                stretched.on_move(MoveKind::Moved, Some(at(from)), at(to), true),
                expected,
                "{rule}"
            );
        }
    }

    #[test]
    fn single_stage_action_of_a_plain_handler_never_reports_leaving_or_moving_within() {
        let single = action(EventType::LeadStatusChanged, &[2]);
        assert_eq!(
            single.on_move(MoveKind::Moved, Some(at(2)), at(3), false),
            None
        );
        assert_eq!(
            single.on_move(MoveKind::Moved, Some(at(1)), at(2), false),
            Some((EventType::LeadStatusChanged, Direction::WentToTrigger))
        );
    }

    #[test]
    fn lead_added_fires_when_a_lead_is_created_in_or_accepted_into_the_stage() {
        let added = action(EventType::LeadAdded, &[2]);
        let fired = Some((EventType::LeadAdded, Direction::WentToTrigger));
        assert_eq!(added.on_move(MoveKind::Created, None, at(2), false), fired);
        assert_eq!(
            added.on_move(MoveKind::Accepted, Some(at(1)), at(2), false),
            fired
        );
        assert_eq!(
            added.on_move(MoveKind::Moved, Some(at(1)), at(2), false),
            None
        );
        assert_eq!(
            added.on_move(MoveKind::Accepted, Some(at(2)), at(3), false),
            None
        );
    }

    #[test]
    fn creation_is_not_a_status_change() {
        let changed = action(EventType::LeadStatusChanged, &[2]);
        assert_eq!(changed.on_move(MoveKind::Created, None, at(2), false), None);
        assert_eq!(
            changed.on_move(MoveKind::Accepted, Some(at(1)), at(2), false),
            Some((EventType::LeadStatusChanged, Direction::WentToTrigger))
        );
    }

    #[test]
    fn disabled_actions_fire_nothing() {
        let mut a = action(EventType::LeadStatusChanged, &[2]);
        a.enabled = false;
        assert_eq!(a.on_move(MoveKind::Moved, Some(at(1)), at(2), false), None);
    }

    #[test]
    fn site_visit_actions_ignore_moves() {
        let a = action(EventType::SiteVisit, &[2]);
        assert_eq!(a.on_move(MoveKind::Moved, Some(at(1)), at(2), false), None);
    }
}

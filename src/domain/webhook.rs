//! The webhook body, in the exact shape of amoCRM's digital pipeline, plus footfall's
//! `meta` key (a separate key, so amoCRM-shaped handlers ignore it).

use serde::Serialize;
use serde_json::{Map, Value};

use super::event::{Direction, EventType};
use super::event_record::{EventRecord, VisitMeta};
use super::ids::{AccountId, EventId, LeadId, PipelineId, StatusId};
use super::time::to_secs;

/// amoCRM's `element_type` of a lead.
pub const ELEMENT_TYPE_LEAD: u8 = 2;

#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    pub event: EventPart,
    pub action: ActionPart,
    pub subdomain: &'a str,
    pub account_id: AccountId,
    pub meta: Meta<'a>,
}

#[derive(Debug, Serialize)]
pub struct EventPart {
    #[serde(rename = "type")]
    pub event_type: u8,
    pub type_code: &'static str,
    pub data: EventData,
    pub time: i64,
}

#[derive(Debug, Serialize)]
pub struct EventData {
    pub id: LeadId,
    pub element_type: u8,
    pub status_id: StatusId,
    pub pipeline_id: PipelineId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction_of_movement: Option<Direction>,
}

#[derive(Debug, Serialize)]
pub struct ActionPart {
    pub settings: WidgetPart,
}

#[derive(Debug, Serialize)]
pub struct WidgetPart {
    pub widget: SettingsPart,
}

#[derive(Debug, Serialize)]
pub struct SettingsPart {
    pub settings: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct Meta<'a> {
    pub event_id: &'a EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit: Option<&'a VisitMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delayed_by: Option<u32>,
}

/// The body of `event`, with the action's settings already macro-substituted.
pub fn body(
    event: &EventRecord,
    subdomain: &str,
    settings: Map<String, Value>,
) -> serde_json::Result<String> {
    let is_site_visit = event.event_type == EventType::SiteVisit;
    let body = WebhookBody {
        event: EventPart {
            event_type: event.event_type.number(),
            type_code: event.event_type.code(),
            data: EventData {
                id: event.lead_id,
                element_type: ELEMENT_TYPE_LEAD,
                status_id: event.stage.status_id,
                pipeline_id: event.stage.pipeline_id,
                direction_of_movement: event.direction,
            },
            time: to_secs(event.due_at),
        },
        action: ActionPart {
            settings: WidgetPart {
                widget: SettingsPart { settings },
            },
        },
        subdomain,
        account_id: event.account_id,
        meta: Meta {
            event_id: &event.id,
            visit: event.visit.as_ref(),
            delayed_by: is_site_visit.then_some(event.delayed_by),
        },
    };
    serde_json::to_string(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event_record::DeliveryState;
    use crate::domain::ids::*;
    use crate::domain::pipeline::Stage;

    fn record(event_type: EventType) -> EventRecord {
        EventRecord {
            id: EventId("evt_2Yb5mK0c9w8PzQ1rT4uV6x".into()),
            account_id: AccountId(30441694),
            lead_id: LeadId(123124),
            action_id: ActionId(1),
            handler_id: HandlerId(1),
            event_type,
            direction: None,
            stage: Stage {
                pipeline_id: PipelineId(654320),
                status_id: StatusId(654324),
            },
            visit: None,
            delayed_by: 0,
            created_at: 1491300016000,
            due_at: 1491300016000,
            state: DeliveryState::Scheduled,
            body: None,
            attempts: vec![],
            failures: 0,
            next_attempt_at: None,
            reason: None,
            notice: None,
        }
    }

    fn example(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn settings(message: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("message".into(), Value::String(message.into()));
        m
    }

    #[test]
    fn site_visit_body_equals_the_published_example() {
        let mut event = record(EventType::SiteVisit);
        event.visit = Some(VisitMeta {
            url: "https://shop.example/pricing".into(),
            referrer: "https://www.google.com/".into(),
            title: "Pricing".into(),
            number: 3,
            started_at: 1491300010,
            source: None,
        });
        let sent: Value = serde_json::from_str(
            &body(&event, "ivanov", settings("Hi Anna, welcome back!")).unwrap(),
        )
        .unwrap();
        assert_eq!(sent, example("site_visit.json"));
    }

    #[test]
    fn status_change_body_equals_the_published_example() {
        let mut event = record(EventType::LeadStatusChanged);
        event.id = EventId("evt_7Qd1nX3aB5cE8fG0hJ2kL4".into());
        event.direction = Some(Direction::WentToTrigger);
        let sent: Value = serde_json::from_str(
            &body(&event, "ivanov", settings("Anna moved to Negotiation")).unwrap(),
        )
        .unwrap();
        assert_eq!(sent, example("lead_status_changed.json"));
    }
}

//! `/api/v4/webhook_events`: fired events with their delivery attempts, and replay — of one event,
//! or of every dead-lettered event of a handler (`/handlers/{id}/replay`).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, Paging, Refused, listing, page_of};
use crate::domain::event_record::{DeliveryState, EventFilter, EventRecord};
use crate::domain::ids::{HandlerId, LeadId};
use crate::domain::time::to_secs;
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_events)
        .service(get_event)
        .service(replay_event)
        .service(replay_handler_dead_events);
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    at: i64,
    at_ms: i64,
    /// The receiver's status code, when it answered.
    status: Option<u16>,
    latency_ms: u64,
    /// Why it failed, in words.
    error: Option<String>,
}

/// A fired event and its delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Also the `webhook-id` of every attempt.
    id: String,
    #[serde(rename = "type")]
    #[schema(rename = "type", example = 18)]
    event_type: u8,
    #[schema(example = "site_visit")]
    type_code: String,
    lead_id: u64,
    action_id: u64,
    handler_id: u64,
    /// The account webhook an `account_webhook` notice goes to (`/api/v4/webhooks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_id: Option<u64>,
    status_id: u64,
    pipeline_id: u64,
    #[schema(value_type = Option<String>, example = "went_to_trigger")]
    direction_of_movement: Option<Value>,
    /// `scheduled`, `retrying`, `delivered`, `dead` or `cancelled`.
    #[schema(value_type = String, example = "delivered")]
    state: Value,
    /// Why it was cancelled or dead-lettered.
    reason: Option<String>,
    delayed_by: u32,
    created_at: i64,
    due_at: i64,
    due_at_ms: i64,
    next_attempt_at: Option<i64>,
    attempts: Vec<AttemptView>,
    /// The webhook body as sent (in the answer for one event).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    body: Option<Value>,
}

listing!(EventList, EventItems, events, EventView; batch EventBatch);

impl EventView {
    pub(super) fn of(e: &EventRecord, with_body: bool) -> Self {
        Self {
            id: e.id.to_string(),
            event_type: e.event_type.number(),
            type_code: e.event_type.code().to_owned(),
            lead_id: e.lead_id.0,
            action_id: e.action_id.0,
            handler_id: e.handler_id.0,
            webhook_id: e.notice.map(|n| n.webhook_id),
            status_id: e.stage.status_id.0,
            pipeline_id: e.stage.pipeline_id.0,
            direction_of_movement: e.direction.and_then(|d| serde_json::to_value(d).ok()),
            state: serde_json::to_value(e.state).unwrap_or(Value::Null),
            reason: e.reason.clone(),
            delayed_by: e.delayed_by,
            created_at: to_secs(e.created_at),
            due_at: to_secs(e.due_at),
            due_at_ms: e.due_at,
            next_attempt_at: e.next_attempt_at.map(to_secs),
            attempts: e
                .attempts
                .iter()
                .map(|a| AttemptView {
                    at: to_secs(a.at),
                    at_ms: a.at,
                    status: a.status,
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                })
                .collect(),
            body: with_body
                .then(|| {
                    // A handler's body is JSON; an account webhook's is a form, shown as text.
                    e.body.as_deref().map(|b| {
                        serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.to_owned()))
                    })
                })
                .flatten(),
        }
    }
}

/// Filters of the event list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    page: Option<usize>,
    limit: Option<usize>,
    lead_id: Option<u64>,
    handler_id: Option<u64>,
    /// `scheduled`, `retrying`, `delivered`, `dead` or `cancelled`.
    #[param(value_type = Option<String>)]
    state: Option<DeliveryState>,
    /// A type code (`site_visit`) or number (`18`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
}

impl EventQuery {
    fn filter(&self) -> EventFilter {
        EventFilter {
            lead_id: self.lead_id.map(LeadId),
            handler_id: self.handler_id.map(HandlerId),
            state: self.state,
            event_type: self.event_type.clone(),
        }
    }
}

/// The account's events, newest first, filtered.
#[utoipa::path(tag = "events", params(EventQuery),
    responses((status = 200, description = "OK", body = EventList),
        (status = 204, description = "No event matches"), Refused))]
#[get("/webhook_events")]
async fn list_events(
    auth: Auth,
    req: HttpRequest,
    query: web::Query<EventQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let q = query.into_inner();
    let paging = Paging::new(q.page, q.limit)?;
    let wanted = paging.wanted();
    let matched = services
        .search_events(auth.0.id, &q.filter(), wanted)
        .await?
        .iter()
        .map(|e| EventView::of(e, false))
        .collect();
    Ok(page_of::<EventList>(&req, paging, matched))
}

/// One event with its attempts and the body it sends.
#[utoipa::path(tag = "events", params(("id" = String, Path, description = "Event id (evt_…)")),
    responses((status = 200, description = "OK", body = EventView), Refused))]
#[get("/webhook_events/{id}")]
async fn get_event(
    auth: Auth,
    id: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let event = services.event(auth.0.id, &id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(EventView::of(&event, true)))
}

/// Sends a dead-lettered (or delivered) event again, with the same id.
#[utoipa::path(tag = "events", params(("id" = String, Path, description = "Event id (evt_…)")),
    responses((status = 200, description = "OK", body = EventView), Refused))]
#[post("/webhook_events/{id}/replay")]
async fn replay_event(
    auth: Auth,
    id: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let event = services.replay_event(auth.0.id, &id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(EventView::of(&event, false)))
}

/// Sends every dead-lettered event of a handler again.
#[utoipa::path(tag = "handlers", params(("id" = u64, Path, description = "Handler id")),
    responses((status = 200, description = "OK", body = EventBatch), Refused))]
#[post("/handlers/{id}/replay")]
async fn replay_handler_dead_events(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let handler = super::handlers::find(&services, &auth, HandlerId(id.into_inner())).await?;
    let replayed = services
        .replay_dead(auth.0.id, handler.id)
        .await?
        .iter()
        .map(|e| EventView::of(e, false))
        .collect();
    Ok(HttpResponse::Ok().json(EventBatch::of(replayed)))
}

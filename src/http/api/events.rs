//! `/api/v4/events`: fired events with their delivery attempts, and replay — of one event,
//! or of every dead-lettered event of a handler (`/handlers/{id}/replay`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Auth, MAX_LIMIT, Paging, embedded, page_of};
use crate::domain::event_record::{DeliveryState, EventRecord};
use crate::domain::ids::{EventId, HandlerId, LeadId, is_token_like};
use crate::domain::time::to_secs;
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(list))
        .route("/events/{id}", web::get().to(get))
        .route("/events/{id}/replay", web::post().to(replay))
        .route("/handlers/{id}/replay", web::post().to(replay_handler));
}

fn view(e: &EventRecord, with_body: bool) -> Value {
    let attempts: Vec<Value> = e
        .attempts
        .iter()
        .map(|a| {
            json!({"at": to_secs(a.at), "at_ms": a.at, "status": a.status,
                        "latency_ms": a.latency_ms, "error": a.error})
        })
        .collect();
    let mut v = json!({
        "id": e.id, "type": e.event_type.number(), "type_code": e.event_type.code(),
        "lead_id": e.lead_id, "action_id": e.action_id, "handler_id": e.handler_id,
        "status_id": e.stage.status_id, "pipeline_id": e.stage.pipeline_id,
        "direction_of_movement": e.direction, "state": e.state, "reason": e.reason,
        "delayed_by": e.delayed_by, "created_at": to_secs(e.created_at),
        "due_at": to_secs(e.due_at), "due_at_ms": e.due_at,
        "next_attempt_at": e.next_attempt_at.map(to_secs), "attempts": attempts,
    });
    if with_body {
        v["body"] = e
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
    }
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    page: Option<usize>,
    limit: Option<usize>,
    lead_id: Option<u64>,
    handler_id: Option<u64>,
    state: Option<DeliveryState>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

impl EventQuery {
    fn matches(&self, e: &EventRecord) -> bool {
        self.lead_id.is_none_or(|l| e.lead_id == LeadId(l))
            && self.handler_id.is_none_or(|h| e.handler_id == HandlerId(h))
            && self.state.is_none_or(|s| e.state == s)
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| e.event_type.code() == t || e.event_type.number().to_string() == t)
    }
}

async fn load(services: &Services, ids: &[EventId]) -> Result<Vec<EventRecord>, Problem> {
    let mut events = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(e) = services.store.get_event(id).await? {
            events.push(e);
        }
    }
    Ok(events)
}

async fn list(
    auth: Auth,
    req: HttpRequest,
    query: web::Query<EventQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let q = query.into_inner();
    let paging = Paging {
        page: q.page.unwrap_or(1),
        limit: q.limit.unwrap_or(50),
    }
    .check()?;
    let ids = services.store.event_ids(auth.0.id).await?;
    let wanted = paging.page * paging.limit + 1;
    let mut matched = Vec::new();
    for chunk in ids.chunks(MAX_LIMIT) {
        for e in load(&services, chunk).await? {
            if q.matches(&e) {
                matched.push(view(&e, false));
            }
        }
        if matched.len() >= wanted {
            break;
        }
    }
    Ok(page_of(&req, "events", paging, matched))
}

async fn find(services: &Services, auth: &Auth, raw: String) -> Result<EventRecord, Problem> {
    let missing = || Problem::not_found(format!("event {raw} does not exist"));
    if !is_token_like(&raw) {
        return Err(missing());
    }
    services
        .store
        .get_event(&EventId(raw.clone()))
        .await?
        .filter(|e| e.account_id == auth.0.id)
        .ok_or_else(missing)
}

async fn get(
    auth: Auth,
    id: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let event = find(&services, &auth, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(&event, true)))
}

async fn replay(
    auth: Auth,
    id: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let event = find(&services, &auth, id.into_inner()).await?;
    let event = services.replay(event).await?;
    Ok(HttpResponse::Ok().json(view(&event, false)))
}

async fn replay_handler(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let handler = super::handlers::find(&services, &auth, HandlerId(id.into_inner())).await?;
    let ids = services.store.dead_event_ids(auth.0.id, handler.id).await?;
    let mut replayed = Vec::new();
    for event in load(&services, &ids).await? {
        replayed.push(view(&services.replay(event).await?, false));
    }
    Ok(embedded("events", replayed))
}

//! `/api/v4/leads/{id}/notes`: how a handler logs back into the lead card. Notes of type
//! 25 (`service_message`) carry `params: {text, service}`, as amoCRM's; they appear on the
//! lead's timeline.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, Paging, Refused, listing, page_of, validate_all};
use crate::domain::ids::LeadId;
use crate::domain::time::to_secs;
use crate::domain::timeline::TimelineEntry;
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::notes::{SERVICE_MESSAGE, ServiceMessage};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_notes).service(create_notes);
}

/// A note on a lead.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteView {
    id: u64,
    /// The lead.
    entity_id: u64,
    #[schema(example = "service_message")]
    note_type: String,
    #[schema(example = 25)]
    note_type_id: u8,
    #[schema(value_type = Object, example = json!({"text": "SMS sent", "service": "Notify"}))]
    params: Value,
    created_at: i64,
}

listing!(NoteList, NoteItems, notes, NoteView; batch NoteBatch);

impl NoteView {
    fn of(lead: LeadId, entry: &TimelineEntry) -> Option<Self> {
        match entry {
            TimelineEntry::Note {
                at,
                id,
                note_type,
                params,
            } => Some(Self {
                id: *id,
                entity_id: lead.0,
                note_type: "service_message".into(),
                note_type_id: *note_type,
                params: params.clone(),
                created_at: to_secs(*at),
            }),
            _ => None,
        }
    }
}

/// A note to add: `note_type` 25 or `"service_message"`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    #[schema(value_type = Object, example = 25)]
    note_type: Value,
    params: NoteParams,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteParams {
    #[schema(example = "SMS sent to +7 900 123-45-67")]
    text: String,
    #[schema(example = "Notify")]
    service: String,
}

/// The lead's notes, oldest first.
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id"), Paging),
    responses((status = 200, description = "OK", body = NoteList), Refused))]
#[get("/leads/{id}/notes")]
async fn list_notes(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    paging: web::Query<Paging>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = paging.into_inner().check()?;
    let lead = LeadId(id.into_inner());
    let notes: Vec<NoteView> = services
        .notes(auth.0.id, lead)
        .await?
        .iter()
        .filter_map(|e| NoteView::of(lead, e))
        .collect();
    Ok(page_of::<NoteList>(&req, paging, notes))
}

/// Adds service messages to the lead's card (all or none).
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id")), request_body = Vec<NewNote>,
    responses((status = 200, description = "OK", body = NoteBatch), Refused))]
#[post("/leads/{id}/notes")]
async fn create_notes(
    auth: Auth,
    id: web::Path<u64>,
    body: ApiJson<Vec<NewNote>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let lead = LeadId(id.into_inner());
    let checked = validate_all(body.0, |n| {
        let mut errors = Vec::new();
        let is_service_message =
            n.note_type == json!(SERVICE_MESSAGE) || n.note_type == json!("service_message");
        if !is_service_message {
            errors.push(FieldError::new(
                "note_type",
                "only 25 (service_message) is supported",
            ));
        }
        for (field, value, max) in [
            ("params.text", &n.params.text, 10_000),
            ("params.service", &n.params.service, 255),
        ] {
            if value.trim().is_empty() {
                errors.push(FieldError::new(field, "is required"));
            } else if value.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("is longer than {max} characters"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(ServiceMessage {
                text: n.params.text,
                service: n.params.service,
            })
        } else {
            Err(errors)
        }
    })?;
    let created = services
        .add_notes(auth.0.id, lead, checked)
        .await?
        .iter()
        .filter_map(|e| NoteView::of(lead, e))
        .collect();
    Ok(HttpResponse::Ok().json(NoteBatch::of(created)))
}

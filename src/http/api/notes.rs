//! `/api/v4/leads/{id}/notes` and amoCRM's `/api/v4/leads/notes` (notes of several leads,
//! each naming its lead by `entity_id`): how a handler logs back into the lead card.
//! Notes of type 25 (`service_message`) carry `params: {text, service}`, type 4
//! (`common`) `params: {text}`, as amoCRM's; they appear on the lead's timeline.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::{self, ListParams};
use super::{Auth, Paging, Refused, listing, page_of, validate_all};
use crate::domain::ids::LeadId;
use crate::domain::time::to_secs;
use crate::domain::timeline::TimelineEntry;
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::notes::{
    self as note, COMMON, SERVICE_MESSAGE, ServiceMessage, note_type_name,
};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_all_notes)
        .service(create_lead_notes)
        .service(list_notes)
        .service(create_notes);
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
    updated_at: i64,
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
                note_type: note_type_name(*note_type).into(),
                note_type_id: *note_type,
                params: params.clone(),
                created_at: to_secs(*at),
                updated_at: to_secs(*at),
            }),
            _ => None,
        }
    }
}

/// A note to add: `note_type` 4 or `"common"` (`params.text`), 25 or
/// `"service_message"` (`params.text` and `params.service`). On `/leads/notes` each
/// names its lead with `entity_id`. amoCRM's `request_id`, `created_by` and
/// `responsible_user_id` are accepted and ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's fields are read to be accepted, and ignored
pub struct NewNote {
    #[serde(default)]
    entity_id: Option<u64>,
    #[schema(value_type = Object, example = 25)]
    note_type: Value,
    params: NoteParams,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    request_id: Option<Value>,
    #[serde(default)]
    created_by: Option<u64>,
    #[serde(default)]
    responsible_user_id: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteParams {
    #[schema(example = "SMS sent to +7 900 123-45-67")]
    text: String,
    /// Required for a service message.
    #[schema(example = "Notify")]
    #[serde(default)]
    service: Option<String>,
}

/// Checks one note; errors name its fields.
fn check_note(n: NewNote) -> Result<note::NewNote, Vec<FieldError>> {
    let mut errors = Vec::new();
    let common = n.note_type == json!(COMMON) || n.note_type == json!("common");
    let service_message =
        n.note_type == json!(SERVICE_MESSAGE) || n.note_type == json!("service_message");
    if !common && !service_message {
        errors.push(FieldError::new(
            "note_type",
            "is 4 (common) or 25 (service_message)",
        ));
    }
    let mut check = |field: &str, value: &str, max: usize| {
        if value.trim().is_empty() {
            errors.push(FieldError::new(field, "is required"));
        } else if value.chars().count() > max {
            errors.push(FieldError::new(
                field,
                format!("is longer than {max} characters"),
            ));
        }
    };
    check("params.text", &n.params.text, 10_000);
    if service_message {
        check(
            "params.service",
            n.params.service.as_deref().unwrap_or(""),
            255,
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(if common {
        note::NewNote::Common {
            text: n.params.text,
        }
    } else {
        note::NewNote::ServiceMessage(ServiceMessage {
            text: n.params.text,
            service: n.params.service.unwrap_or_default(),
        })
    })
}

/// The notes of the account's leads (amoCRM's `GET /leads/notes`): `filter[entity_id]`,
/// `filter[note_type]` (`common`, `service_message`), `filter[id]`.
#[utoipa::path(tag = "leads", params(Paging),
    responses((status = 200, description = "OK", body = NoteList),
        (status = 204, description = "No note matches"), Refused))]
#[get("/leads/notes")]
async fn list_all_notes(
    auth: Auth,
    req: HttpRequest,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging(super::DEFAULT_LIMIT)?;
    let leads: Vec<LeadId> = params
        .filter_numbers("entity_id")?
        .into_iter()
        .map(LeadId)
        .collect();
    let query = NoteQuery::read(&mut params)?;
    params.finish()?;
    let notes = services
        .lead_notes(auth.0.id, &leads)
        .await?
        .iter()
        .filter_map(|(lead, e)| NoteView::of(*lead, e))
        .collect();
    Ok(page_of::<NoteList>(&req, paging, query.apply(notes)))
}

/// The filters and order of a note list, as amoCRM clients send them: `filter[id]`,
/// `filter[note_type]` (`common`, `service_message` or the number),
/// `filter[updated_at][from|to]`, `order[updated_at|created_at|id]=asc|desc`, `with`.
struct NoteQuery {
    ids: Vec<u64>,
    types: Vec<String>,
    updated: query::Range,
    order: Option<query::Order>,
}

impl NoteQuery {
    fn read(params: &mut ListParams) -> Result<Self, Problem> {
        params.with();
        Ok(Self {
            ids: params.filter_numbers("id")?,
            types: params.filter_strings("note_type")?,
            updated: params.filter_range("updated_at")?,
            order: params.order(&["updated_at", "created_at", "id"])?,
        })
    }

    fn apply(&self, notes: Vec<NoteView>) -> Vec<NoteView> {
        let mut notes: Vec<NoteView> = notes
            .into_iter()
            .filter(|n| self.ids.is_empty() || self.ids.contains(&n.id))
            .filter(|n| {
                self.types.is_empty()
                    || self
                        .types
                        .iter()
                        .any(|t| *t == n.note_type || *t == n.note_type_id.to_string())
            })
            .filter(|n| self.updated.from.is_none_or(|f| n.updated_at >= f))
            .filter(|n| self.updated.to.is_none_or(|t| n.updated_at <= t))
            .collect();
        if let Some(order) = &self.order {
            notes.sort_by_key(|n| match order.field.as_str() {
                "id" => (0, n.id),
                _ => (n.updated_at, n.id),
            });
            if !order.ascending {
                notes.reverse();
            }
        }
        notes
    }
}

/// Adds notes to leads, each naming its lead with `entity_id` (all or none).
#[utoipa::path(tag = "leads", request_body = Vec<NewNote>,
    responses((status = 200, description = "OK", body = NoteBatch), Refused))]
#[post("/leads/notes")]
async fn create_lead_notes(
    auth: Auth,
    body: ApiJson<Vec<NewNote>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let checked = validate_all(body.0, |n| {
        let lead = n.entity_id;
        let note = check_note(n);
        match (lead, note) {
            (Some(lead), Ok(note)) => Ok((LeadId(lead), note)),
            (None, note) => {
                let mut errors = note.err().unwrap_or_default();
                errors.insert(0, FieldError::new("entity_id", "is required"));
                Err(errors)
            }
            (Some(_), Err(errors)) => Err(errors),
        }
    })?;
    let created = services
        .add_lead_notes(auth.0.id, checked)
        .await?
        .iter()
        .filter_map(|(lead, e)| NoteView::of(*lead, e))
        .collect();
    Ok(HttpResponse::Ok().json(NoteBatch::of(created)))
}

/// The lead's notes, oldest first.
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id"), Paging),
    responses((status = 200, description = "OK", body = NoteList),
        (status = 204, description = "No note"), Refused))]
#[get("/leads/{id}/notes")]
async fn list_notes(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging(super::DEFAULT_LIMIT)?;
    let query = NoteQuery::read(&mut params)?;
    params.finish()?;
    let lead = LeadId(id.into_inner());
    let notes: Vec<NoteView> = services
        .notes(auth.0.id, lead)
        .await?
        .iter()
        .filter_map(|e| NoteView::of(lead, e))
        .collect();
    Ok(page_of::<NoteList>(&req, paging, query.apply(notes)))
}

/// Adds notes to the lead's card (all or none).
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
    let checked = validate_all(body.0, check_note)?;
    let created = services
        .add_notes(auth.0.id, lead, checked)
        .await?
        .iter()
        .filter_map(|e| NoteView::of(lead, e))
        .collect();
    Ok(HttpResponse::Ok().json(NoteBatch::of(created)))
}

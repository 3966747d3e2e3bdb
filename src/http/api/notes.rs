//! `/api/v4/leads/{id}/notes`: how a handler logs back into the lead card. Notes of type
//! 25 (`service_message`) carry `params: {text, service}`, as amoCRM's; they appear on the
//! lead's timeline.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Auth, Paging, embedded, page_of, validate_all};
use crate::domain::handler::FieldError;
use crate::domain::ids::LeadId;
use crate::domain::time::{now_ms, to_secs};
use crate::domain::timeline::TimelineEntry;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::Sequence;

/// amoCRM's `service_message` note type.
const SERVICE_MESSAGE: u8 = 25;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/leads/{id}/notes", web::get().to(list))
        .route("/leads/{id}/notes", web::post().to(create));
}

fn view(lead: LeadId, entry: &TimelineEntry) -> Option<Value> {
    match entry {
        TimelineEntry::Note {
            at,
            id,
            note_type,
            params,
        } => Some(json!({
            "id": id, "entity_id": lead, "note_type": "service_message", "note_type_id": note_type,
            "params": params, "created_at": to_secs(*at),
        })),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNote {
    /// `25` or `"service_message"`.
    note_type: Value,
    params: NoteParams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteParams {
    text: String,
    service: String,
}

async fn list(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    paging: web::Query<Paging>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = paging.into_inner().check()?;
    let lead = services.lead(auth.0.id, LeadId(id.into_inner())).await?;
    let notes: Vec<Value> = services
        .store
        .timeline(lead.id)
        .await?
        .iter()
        .filter_map(|e| view(lead.id, e))
        .collect();
    Ok(page_of(&req, "notes", paging, notes))
}

async fn create(
    auth: Auth,
    id: web::Path<u64>,
    body: ApiJson<Vec<NewNote>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let lead = services.lead(auth.0.id, LeadId(id.into_inner())).await?;
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
            Ok(n.params)
        } else {
            Err(errors)
        }
    })?;
    let mut created = Vec::new();
    for params in checked {
        let entry = TimelineEntry::Note {
            at: now_ms(),
            id: services.store.next_id(Sequence::Note).await?,
            note_type: SERVICE_MESSAGE,
            params: json!({"text": params.text, "service": params.service}),
        };
        services.store.append_timeline(lead.id, &entry).await?;
        created.extend(view(lead.id, &entry));
    }
    services.live.publish(lead.account_id, lead.id, "note");
    Ok(embedded("notes", created))
}

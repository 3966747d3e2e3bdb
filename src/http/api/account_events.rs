//! `/api/v4/events`: the account's event log in amoCRM's shape — `lead_added`,
//! `lead_status_changed`, `common_note_added`, `service_message_note_added` — with
//! `filter[type]`, `filter[entity]`, `filter[entity_id]`, `filter[created_at]`,
//! `filter[id]`. footfall's webhook events and deliveries are at `/api/v4/webhook_events`.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::{self, ListParams};
use super::{Auth, DEFAULT_LIMIT, Paging, Refused, listing, page_of};
use crate::domain::account_event::{AccountEvent, AccountEventKind, AccountEventValue};
use crate::domain::time::to_secs;
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_account_events);
}

/// An event of the account, as amoCRM lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountEventView {
    id: String,
    #[serde(rename = "type")]
    #[schema(rename = "type", example = "lead_status_changed")]
    kind: &'static str,
    entity_id: u64,
    #[schema(example = "lead")]
    entity_type: &'static str,
    created_by: u64,
    created_at: i64,
    account_id: u64,
    #[schema(value_type = Vec<Object>, example = json!([{"lead_status": {"id": 1001, "pipeline_id": 1}}]))]
    value_before: Value,
    #[schema(value_type = Vec<Object>, example = json!([{"lead_status": {"id": 142, "pipeline_id": 1}}]))]
    value_after: Value,
}

listing!(
    AccountEventList,
    AccountEventItems,
    events,
    AccountEventView
);

fn value(v: &AccountEventValue) -> Value {
    match v {
        AccountEventValue::None => json!([]),
        AccountEventValue::Stage(s) => {
            json!([{"lead_status": {"id": s.status_id.0, "pipeline_id": s.pipeline_id.0}}])
        }
        AccountEventValue::Note(id) => json!([{"note": {"id": id}}]),
    }
}

impl AccountEventView {
    fn of(e: &AccountEvent, account: u64) -> Self {
        Self {
            id: e.id.clone(),
            kind: e.kind.code(),
            entity_id: e.lead.0,
            entity_type: "lead",
            created_by: 0,
            created_at: to_secs(e.at),
            account_id: account,
            value_before: value(&e.before),
            value_after: value(&e.after),
        }
    }
}

/// The account's event log, newest first (amoCRM's `GET /api/v4/events`).
#[utoipa::path(tag = "events", params(Paging),
    responses((status = 200, description = "OK", body = AccountEventList),
        (status = 204, description = "No event matches"), Refused))]
#[get("/events")]
async fn list_account_events(
    auth: Auth,
    req: HttpRequest,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging(DEFAULT_LIMIT)?;
    params.with();
    let types = params.filter_strings("type")?;
    let entities = params.filter_strings("entity")?;
    let entity_ids: Vec<u64> = params.filter_numbers("entity_id")?;
    let ids = params.filter_strings("id")?;
    let created = params.filter_range("created_at")?;
    params.finish()?;
    let known: Vec<&str> = AccountEventKind::ALL.iter().map(|k| k.code()).collect();
    if let Some(bad) = types
        .iter()
        .flat_map(|t| t.split(','))
        .find(|t| !known.contains(t))
    {
        return Err(Problem::field(
            "filter[type]",
            format!("`{bad}` is not one of {}", known.join(", ")),
        ));
    }
    if let Some(bad) = entities.iter().find(|e| *e != "lead" && *e != "leads") {
        return Err(query::unknown(&[format!("filter[entity]={bad}")]));
    }
    let account = auth.0.id;
    let events = services
        .account_events(account)
        .await?
        .iter()
        .filter(|e| {
            types.is_empty()
                || types
                    .iter()
                    .flat_map(|t| t.split(','))
                    .any(|t| t == e.kind.code())
        })
        .filter(|e| entity_ids.is_empty() || entity_ids.contains(&e.lead.0))
        .filter(|e| ids.is_empty() || ids.iter().flat_map(|i| i.split(',')).any(|i| i == e.id))
        .filter(|e| created.from.is_none_or(|f| to_secs(e.at) >= f))
        .filter(|e| created.to.is_none_or(|t| to_secs(e.at) <= t))
        .map(|e| AccountEventView::of(e, account.0))
        .collect();
    Ok(page_of::<AccountEventList>(&req, paging, events))
}

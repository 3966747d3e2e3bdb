//! `/api/v4/webhooks`: the account's webhooks, as amoCRM has them — `GET` (with
//! `filter[destination]`), `POST {"destination", "settings", "sort"}`, `DELETE
//! {"destination"}` — and each webhook's deliveries (`/webhooks/{id}/deliveries`; replay
//! one with `POST /webhook_events/{id}/replay`). The signing secret is in the creation's
//! answer only.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::events::{EventList, EventView};
use super::query::ListParams;
use super::{Auth, DEFAULT_LIMIT, Paging, Refused, page_of};
use crate::domain::account_webhook::{AccountWebhook, WebhookSetting};
use crate::domain::time::to_secs;
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::account_webhooks::{NewWebhook, destination_as_stored};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_webhooks)
        .service(add_webhook)
        .service(delete_webhook)
        .service(webhook_deliveries);
}

/// A webhook, as amoCRM shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    id: u64,
    destination: String,
    #[schema(example = json!(["add_lead", "status_lead"]))]
    settings: Vec<&'static str>,
    sort: i64,
    disabled: bool,
    account_id: u64,
    created_at: i64,
    updated_at: i64,
    created_by: u64,
    /// The Standard Webhooks signing secret: in the creation's answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookView {
    fn of(h: &AccountWebhook, with_secret: bool) -> Self {
        Self {
            id: h.id,
            destination: h.destination.clone(),
            settings: h.settings.iter().map(|s| s.code()).collect(),
            sort: h.sort,
            disabled: false,
            account_id: h.account_id.0,
            created_at: to_secs(h.created_at),
            updated_at: to_secs(h.created_at),
            created_by: 0,
            secret: with_secret.then(|| h.secret.clone()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookItems {
    webhooks: Vec<WebhookView>,
}

/// The account's webhooks, as amoCRM lists them.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    #[serde(rename = "_total_items")]
    #[schema(rename = "_total_items")]
    total_items: usize,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: WebhookItems,
}

/// The account's webhooks by `sort`; `filter[destination]` for one destination.
#[utoipa::path(tag = "webhooks",
    params(("filter[destination]" = Option<String>, Query, description = "Exact destination")),
    responses((status = 200, description = "OK", body = WebhookList),
        (status = 204, description = "No webhook"), Refused))]
#[get("/webhooks")]
async fn list_webhooks(
    auth: Auth,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let destinations: Vec<String> = params
        .filter_strings("destination")?
        .iter()
        .map(|d| destination_as_stored(d))
        .collect();
    params.finish()?;
    let hooks: Vec<WebhookView> = services
        .webhooks(auth.0.id)
        .await?
        .iter()
        .filter(|h| destinations.is_empty() || destinations.contains(&h.destination))
        .map(|h| WebhookView::of(h, false))
        .collect();
    if hooks.is_empty() {
        return Ok(HttpResponse::NoContent().finish());
    }
    Ok(HttpResponse::Ok().json(WebhookList {
        total_items: hooks.len(),
        embedded: WebhookItems { webhooks: hooks },
    }))
}

/// A webhook to subscribe: amoCRM's body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    #[schema(example = "https://crm-sync.example/amo")]
    destination: String,
    /// `add_lead`, `update_lead`, `status_lead`, `delete_lead`, `note_lead`,
    /// `add_contact`, `update_contact`, `delete_contact`, `add_unsorted`,
    /// `delete_unsorted`.
    settings: Vec<String>,
    #[serde(default)]
    sort: Option<i64>,
}

fn check_webhook(w: WebhookIn) -> Result<NewWebhook, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut settings = Vec::with_capacity(w.settings.len());
    for (i, code) in w.settings.iter().enumerate() {
        match WebhookSetting::parse(code) {
            Some(s) if !settings.contains(&s) => settings.push(s),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("settings[{i}]"),
                format!("`{code}` is not one of footfall's webhook settings"),
            )),
        }
    }
    if w.settings.is_empty() {
        errors.push(FieldError::new("settings", "names at least one change"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewWebhook {
        destination: w.destination,
        settings,
        sort: w.sort.unwrap_or(0),
    })
}

/// Subscribes a destination to the changes in `settings` (at most 100 webhooks per
/// account; a private destination is refused). The answer carries the signing secret,
/// this once. A destination already subscribed takes the new settings.
#[utoipa::path(tag = "webhooks", request_body = WebhookIn,
    responses((status = 200, description = "OK", body = WebhookView), Refused))]
#[post("/webhooks")]
async fn add_webhook(
    auth: Auth,
    body: ApiJson<WebhookIn>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let new = check_webhook(body.0).map_err(Problem::invalid)?;
    let (hook, created) = services.add_webhook(auth.0.id, new).await?;
    Ok(HttpResponse::Ok().json(WebhookView::of(&hook, created)))
}

/// The webhook to unsubscribe.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRef {
    destination: String,
}

/// Unsubscribes a destination.
#[utoipa::path(tag = "webhooks", request_body = WebhookRef,
    responses((status = 204, description = "Unsubscribed"), Refused))]
#[delete("/webhooks")]
async fn delete_webhook(
    auth: Auth,
    body: ApiJson<WebhookRef>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    services
        .delete_webhook(auth.0.id, &body.0.destination)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A webhook's deliveries, newest first, with their attempts and bodies.
#[utoipa::path(tag = "webhooks", params(("id" = u64, Path, description = "Webhook id"), Paging),
    responses((status = 200, description = "OK", body = EventList),
        (status = 204, description = "No delivery yet"), Refused))]
#[get("/webhooks/{id}/deliveries")]
async fn webhook_deliveries(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging(DEFAULT_LIMIT)?;
    params.finish()?;
    let events = services
        .webhook_deliveries(auth.0.id, id.into_inner())
        .await?
        .iter()
        .map(|e| EventView::of(e, true))
        .collect();
    Ok(page_of::<EventList>(&req, paging, events))
}

//! `/api/v4/handlers`: the receivers of webhooks (amoCRM's digital-pipeline widgets): a
//! code, a `webhook_url` (refused when it points to a non-public address), a settings
//! schema and a Standard Webhooks secret shown once, on creation.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::ListParams;
use super::{Auth, Paging, Refused, check_name, listing, page_of, validate_all};
use crate::delivery::ssrf::check_url;
use crate::domain::handler::{Handler, SettingsSchema, valid_code};
use crate::domain::ids::HandlerId;
use crate::domain::time::{now_ms, to_secs};
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::Sequence;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_handlers)
        .service(create_handlers)
        .service(get_handler)
        .service(update_handler);
}

/// A webhook receiver.
#[derive(Debug, Serialize, ToSchema)]
pub struct HandlerView {
    id: u64,
    code: String,
    name: String,
    webhook_url: String,
    /// May an action span several adjacent stages.
    action_multiple: bool,
    /// The settings schema: `{key: {name, type, required, options?}}`.
    #[schema(value_type = Object)]
    settings: Map<String, Value>,
    created_at: i64,
    /// Failing without a success for `delivery.failing_after_seconds`.
    failing: bool,
    failing_since: Option<i64>,
    /// The signing secret; only in the answers to a creation or a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

listing!(HandlerList, HandlerItems, handlers, HandlerView; batch HandlerBatch);

impl HandlerView {
    pub async fn of(handler: &Handler, services: &Services) -> Result<Self, Problem> {
        let (failing_since, failing) = services.handler_health(handler).await?;
        Ok(Self {
            id: handler.id.0,
            code: handler.code.clone(),
            name: handler.name.clone(),
            webhook_url: handler.webhook_url.clone(),
            action_multiple: handler.action_multiple,
            settings: handler.settings.clone(),
            created_at: to_secs(handler.created_at),
            failing,
            failing_since: failing_since.map(to_secs),
            secret: None,
        })
    }
}

/// A handler to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHandler {
    #[schema(example = "notify")]
    code: String,
    #[schema(example = "Notify")]
    name: String,
    #[schema(example = "https://hooks.example/footfall")]
    webhook_url: String,
    #[serde(default)]
    action_multiple: bool,
    /// `{key: {name, type: text|textarea|checkbox|select|url|number, required, options?}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>, example = json!({"message": {"name": "Message", "type": "text", "required": true}}))]
    settings: Option<Value>,
}

/// Changes to a handler.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandlerPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    webhook_url: Option<String>,
    /// `true` makes a new secret, returned in this answer only.
    #[serde(default)]
    rotate_secret: bool,
}

async fn check_webhook_url(url: &str, services: &Services) -> Result<String, FieldError> {
    check_url(url.trim(), services.settings.delivery.allow_private_targets)
        .await
        .map(|u| u.to_string())
        .map_err(|e| FieldError::new("webhook_url", e.to_string()))
}

pub async fn find(services: &Services, auth: &Auth, id: HandlerId) -> Result<Handler, Problem> {
    services
        .record(auth.0.id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("handler {id} does not exist")))
}

/// The account's handlers, with their failing state.
#[utoipa::path(tag = "handlers", params(Paging),
    responses((status = 200, description = "OK", body = HandlerList),
        (status = 204, description = "No handler"), Refused))]
#[get("/handlers")]
async fn list_handlers(
    auth: Auth,
    req: HttpRequest,
    params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging_only()?;
    let handlers: Vec<Handler> = services.records(auth.0.id).await?;
    let mut items = Vec::with_capacity(handlers.len());
    for h in &handlers {
        items.push(HandlerView::of(h, &services).await?);
    }
    Ok(page_of::<HandlerList>(&req, paging, items))
}

/// One handler.
#[utoipa::path(tag = "handlers", params(("id" = u64, Path, description = "Handler id")),
    responses((status = 200, description = "OK", body = HandlerView), Refused))]
#[get("/handlers/{id}")]
async fn get_handler(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let handler = find(&services, &auth, HandlerId(id.into_inner())).await?;
    Ok(HttpResponse::Ok().json(HandlerView::of(&handler, &services).await?))
}

/// Registers handlers (all or none); each answer carries its `secret`, shown only here.
#[utoipa::path(tag = "handlers", request_body = Vec<NewHandler>,
    responses((status = 200, description = "OK", body = HandlerBatch), Refused))]
#[post("/handlers")]
async fn create_handlers(
    auth: Auth,
    body: ApiJson<Vec<NewHandler>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let account = auth.0.id;
    let existing: Vec<Handler> = services.records(account).await?;
    // URLs are resolved (async) before the synchronous checks of each item.
    let mut urls = Vec::new();
    for h in &body.0 {
        urls.push(check_webhook_url(&h.webhook_url, &services).await);
    }
    let mut urls = urls.into_iter();
    let mut codes = Vec::new();
    let checked = validate_all(body.0, |h| {
        let mut errors = Vec::new();
        let name = check_name("name", &h.name, &mut errors);
        if !valid_code(&h.code) {
            errors.push(FieldError::new(
                "code",
                "is 1–64 characters of a-z, 0-9, _ and -",
            ));
        } else if existing.iter().any(|e| e.code == h.code) || codes.contains(&h.code) {
            errors.push(FieldError::new(
                "code",
                format!("`{}` is already in use", h.code),
            ));
        }
        codes.push(h.code.clone());
        let url = urls
            .next()
            .unwrap_or_else(|| Err(FieldError::new("webhook_url", "missing")));
        let url = url.map_err(|e| errors.push(e)).unwrap_or_default();
        let settings = h.settings.unwrap_or_else(|| Value::Object(Map::new()));
        if let Err(es) = SettingsSchema::parse(&settings) {
            errors.extend(es);
        }
        if errors.is_empty() {
            Ok((h.code, name, url, h.action_multiple, settings))
        } else {
            Err(errors)
        }
    })?;
    let mut created = Vec::new();
    for (code, name, webhook_url, action_multiple, settings) in checked {
        let handler = Handler {
            id: HandlerId(services.next_id(Sequence::Handler).await?),
            account_id: account,
            code,
            name,
            webhook_url,
            secret: Handler::generate_secret(),
            settings: match settings {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            action_multiple,
            created_at: now_ms(),
        };
        services.save(&handler).await?;
        let mut view = HandlerView::of(&handler, &services).await?;
        view.secret = Some(handler.secret.clone());
        created.push(view);
    }
    Ok(HttpResponse::Ok().json(HandlerBatch::of(created)))
}

/// Changes a handler's name or URL, or rotates its secret.
#[utoipa::path(tag = "handlers", params(("id" = u64, Path, description = "Handler id")), request_body = HandlerPatch,
    responses((status = 200, description = "OK", body = HandlerView), Refused))]
#[patch("/handlers/{id}")]
async fn update_handler(
    auth: Auth,
    id: web::Path<u64>,
    body: ApiJson<HandlerPatch>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let mut handler = find(&services, &auth, HandlerId(id.into_inner())).await?;
    let patch = body.0;
    let mut errors = Vec::new();
    if let Some(name) = &patch.name {
        handler.name = check_name("name", name, &mut errors);
    }
    if let Some(url) = &patch.webhook_url {
        match check_webhook_url(url, &services).await {
            Ok(url) => handler.webhook_url = url,
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    if patch.rotate_secret {
        handler.secret = Handler::generate_secret();
    }
    services.save(&handler).await?;
    let mut view = HandlerView::of(&handler, &services).await?;
    if patch.rotate_secret {
        view.secret = Some(handler.secret.clone());
    }
    Ok(HttpResponse::Ok().json(view))
}

//! `/api/v4/handlers`: the receivers of webhooks (amoCRM's digital-pipeline widgets): a
//! code, a `webhook_url` (refused when it points to a non-public address), a settings
//! schema and a Standard Webhooks secret shown once, on creation.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Auth, Paging, check_name, embedded, page_of, validate_all};
use crate::delivery::ssrf::check_url;
use crate::domain::handler::{FieldError, Handler, SettingsSchema, valid_code};
use crate::domain::ids::HandlerId;
use crate::domain::time::{now_ms, to_secs};
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::{Sequence, catalog};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/handlers", web::get().to(list))
        .route("/handlers", web::post().to(create))
        .route("/handlers/{id}", web::get().to(get))
        .route("/handlers/{id}", web::patch().to(update));
}

/// A handler as listed; the secret only appears in the answer to its creation.
pub async fn view(handler: &Handler, services: &Services) -> Result<Value, Problem> {
    let failing_since = services
        .store
        .handler_failing_since(handler.account_id, handler.id)
        .await?;
    let stretch = services.settings.delivery.failing_after_seconds as i64 * 1000;
    let failing = failing_since.is_some_and(|since| now_ms() - since >= stretch);
    Ok(json!({
        "id": handler.id, "code": handler.code, "name": handler.name,
        "webhook_url": handler.webhook_url, "action_multiple": handler.action_multiple,
        "settings": handler.settings, "created_at": to_secs(handler.created_at),
        "failing": failing, "failing_since": failing_since.map(to_secs),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewHandler {
    code: String,
    name: String,
    webhook_url: String,
    #[serde(default)]
    action_multiple: bool,
    #[serde(default)]
    settings: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandlerPatch {
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

async fn list(
    auth: Auth,
    req: HttpRequest,
    paging: web::Query<Paging>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = paging.into_inner().check()?;
    let handlers: Vec<Handler> = catalog::list(&*services.store, auth.0.id).await?;
    let mut items = Vec::with_capacity(handlers.len());
    for h in &handlers {
        items.push(view(h, &services).await?);
    }
    Ok(page_of(&req, "handlers", paging, items))
}

pub async fn find(services: &Services, auth: &Auth, id: HandlerId) -> Result<Handler, Problem> {
    catalog::get(&*services.store, auth.0.id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("handler {id} does not exist")))
}

async fn get(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let handler = find(&services, &auth, HandlerId(id.into_inner())).await?;
    Ok(HttpResponse::Ok().json(view(&handler, &services).await?))
}

async fn create(
    auth: Auth,
    body: ApiJson<Vec<NewHandler>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let account = auth.0.id;
    let existing: Vec<Handler> = catalog::list(&*services.store, account).await?;
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
            id: HandlerId(services.store.next_id(Sequence::Handler).await?),
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
        catalog::put(&*services.store, &handler).await?;
        let mut v = view(&handler, &services).await?;
        v["secret"] = json!(handler.secret);
        created.push(v);
    }
    Ok(embedded("handlers", created))
}

async fn update(
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
    catalog::put(&*services.store, &handler).await?;
    let mut v = view(&handler, &services).await?;
    if patch.rotate_secret {
        v["secret"] = json!(handler.secret);
    }
    Ok(HttpResponse::Ok().json(v))
}

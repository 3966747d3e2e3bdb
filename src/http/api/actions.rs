//! `/api/v4/actions`: triggers on pipeline stages. A `site_visit` action names the pages
//! that fire it (`site_url`) and may be delayed; an action may span adjacent stages only
//! when its handler allows `action_multiple`; its settings must fit the handler's schema.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Auth, Paging, embedded, page_of, validate_all};
use crate::domain::action::{Action, MAX_DELAY_SECONDS};
use crate::domain::event::EventType;
use crate::domain::handler::{FieldError, Handler};
use crate::domain::ids::{ActionId, PipelineId, StatusId};
use crate::domain::pipeline::Pipeline;
use crate::domain::site::SiteUrl;
use crate::domain::time::{now_ms, to_secs};
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::{Sequence, catalog};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/actions", web::get().to(list))
        .route("/actions", web::post().to(create))
        .route("/actions/{id}", web::get().to(get))
        .route("/actions/{id}", web::patch().to(update))
        .route("/actions/{id}", web::delete().to(delete));
}

fn view(a: &Action) -> Value {
    json!({
        "id": a.id, "pipeline_id": a.pipeline_id, "status_ids": a.status_ids,
        "event": a.event, "handler": a.handler, "handler_id": a.handler_id,
        "site_url": a.site_url, "delay_seconds": a.delay_seconds, "settings": a.settings,
        "enabled": a.enabled, "created_at": to_secs(a.created_at), "updated_at": to_secs(a.updated_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAction {
    pipeline_id: u64,
    status_ids: Vec<u64>,
    event: String,
    handler: String,
    #[serde(default)]
    site_url: Option<String>,
    #[serde(default)]
    delay_seconds: u32,
    #[serde(default)]
    settings: Map<String, Value>,
    #[serde(default = "enabled")]
    enabled: bool,
}

fn enabled() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionPatch {
    #[serde(default)]
    status_ids: Option<Vec<u64>>,
    #[serde(default)]
    site_url: Option<String>,
    #[serde(default)]
    delay_seconds: Option<u32>,
    #[serde(default)]
    settings: Option<Map<String, Value>>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// The rules every action keeps, checked on creation and after each change.
fn check(action: &Action, pipeline: Option<&Pipeline>, handler: &Handler) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match pipeline {
        None => errors.push(FieldError::new(
            "pipeline_id",
            format!("pipeline {} does not exist", action.pipeline_id),
        )),
        Some(p) => {
            if action.status_ids.is_empty() {
                errors.push(FieldError::new("status_ids", "needs at least one stage"));
            } else if let Some(missing) = action.status_ids.iter().find(|s| p.status(**s).is_none())
            {
                errors.push(FieldError::new(
                    "status_ids",
                    format!("pipeline {} has no status {missing}", p.id),
                ));
            } else if action.status_ids.len() > 1 && !handler.action_multiple {
                errors.push(FieldError::new("status_ids", format!("handler `{}` does not allow actions over several stages (action_multiple is false)", handler.code)));
            } else if !p.is_contiguous(&action.status_ids) {
                errors.push(FieldError::new("status_ids", "the stages must be adjacent"));
            }
        }
    }
    match action.event {
        EventType::SiteVisit => {
            if action.site_url.is_none() {
                errors.push(FieldError::new(
                    "site_url",
                    "a site_visit action needs the site URL",
                ));
            }
            if action.delay_seconds > MAX_DELAY_SECONDS {
                errors.push(FieldError::new(
                    "delay_seconds",
                    format!("is at most {MAX_DELAY_SECONDS} (30 days)"),
                ));
            }
        }
        _ => {
            if action.site_url.is_some() {
                errors.push(FieldError::new(
                    "site_url",
                    "only site_visit actions have a site URL",
                ));
            }
            if action.delay_seconds > 0 {
                errors.push(FieldError::new(
                    "delay_seconds",
                    "only site_visit actions can be delayed",
                ));
            }
        }
    }
    if let Err(es) = handler.schema().validate(&action.settings) {
        errors.extend(es);
    }
    errors
}

fn parse_site_url(raw: Option<String>, errors: &mut Vec<FieldError>) -> Option<SiteUrl> {
    let raw = raw.filter(|s| !s.trim().is_empty())?;
    SiteUrl::parse(&raw)
        .map_err(|e| errors.push(FieldError::new("site_url", e)))
        .ok()
}

async fn list(
    auth: Auth,
    req: HttpRequest,
    paging: web::Query<Paging>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = paging.into_inner().check()?;
    let actions: Vec<Action> = catalog::list(&*services.store, auth.0.id).await?;
    Ok(page_of(
        &req,
        "actions",
        paging,
        actions.iter().map(view).collect(),
    ))
}

async fn find(services: &Services, auth: &Auth, id: ActionId) -> Result<Action, Problem> {
    catalog::get(&*services.store, auth.0.id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("action {id} does not exist")))
}

async fn get(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(view(
        &find(&services, &auth, ActionId(id.into_inner())).await?,
    )))
}

async fn create(
    auth: Auth,
    body: ApiJson<Vec<NewAction>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let account = auth.0.id;
    let pipelines: Vec<Pipeline> = catalog::list(&*services.store, account).await?;
    let handlers: Vec<Handler> = catalog::list(&*services.store, account).await?;
    let now = now_ms();
    let checked = validate_all(body.0, |a| {
        let mut errors = Vec::new();
        let event = EventType::from_code(&a.event).filter(|e| e.is_actionable());
        if event.is_none() {
            errors.push(FieldError::new(
                "event",
                format!(
                    "must be one of: {}",
                    EventType::actionable_codes().join(", ")
                ),
            ));
        }
        let handler = handlers.iter().find(|h| h.code == a.handler);
        if handler.is_none() {
            errors.push(FieldError::new(
                "handler",
                format!("no handler has the code `{}`", a.handler),
            ));
        }
        let site_url = parse_site_url(a.site_url, &mut errors);
        let (Some(event), Some(handler)) = (event, handler) else {
            return Err(errors);
        };
        let action = Action {
            id: ActionId(0),
            account_id: account,
            pipeline_id: PipelineId(a.pipeline_id),
            status_ids: a.status_ids.into_iter().map(StatusId).collect(),
            event,
            handler_id: handler.id,
            handler: handler.code.clone(),
            site_url,
            delay_seconds: a.delay_seconds,
            settings: a.settings,
            enabled: a.enabled,
            created_at: now,
            updated_at: now,
        };
        let pipeline = pipelines.iter().find(|p| p.id == action.pipeline_id);
        errors.extend(check(&action, pipeline, handler));
        if errors.is_empty() {
            Ok(action)
        } else {
            Err(errors)
        }
    })?;
    let mut created = Vec::new();
    for mut action in checked {
        action.id = ActionId(services.store.next_id(Sequence::Action).await?);
        catalog::put(&*services.store, &action).await?;
        created.push(view(&action));
    }
    Ok(embedded("actions", created))
}

async fn update(
    auth: Auth,
    id: web::Path<u64>,
    body: ApiJson<ActionPatch>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let mut action = find(&services, &auth, ActionId(id.into_inner())).await?;
    let patch = body.0;
    let mut errors = Vec::new();
    if let Some(ids) = patch.status_ids {
        action.status_ids = ids.into_iter().map(StatusId).collect();
    }
    if patch.site_url.is_some() {
        action.site_url = parse_site_url(patch.site_url, &mut errors);
    }
    if let Some(d) = patch.delay_seconds {
        action.delay_seconds = d;
    }
    if let Some(s) = patch.settings {
        action.settings = s;
    }
    if let Some(e) = patch.enabled {
        action.enabled = e;
    }
    let pipeline: Option<Pipeline> =
        catalog::get(&*services.store, auth.0.id, action.pipeline_id).await?;
    let handler: Option<Handler> =
        catalog::get(&*services.store, auth.0.id, action.handler_id).await?;
    let Some(handler) = handler else {
        return Err(Problem::field(
            "handler",
            "the action's handler no longer exists",
        ));
    };
    errors.extend(check(&action, pipeline.as_ref(), &handler));
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    action.updated_at = now_ms();
    catalog::put(&*services.store, &action).await?;
    Ok(HttpResponse::Ok().json(view(&action)))
}

async fn delete(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let id = ActionId(id.into_inner());
    if catalog::delete::<Action>(&*services.store, auth.0.id, id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Problem::not_found(format!("action {id} does not exist")))
    }
}

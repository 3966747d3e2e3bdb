//! `/api/v4/actions`: triggers on pipeline stages. A `site_visit` action names the pages
//! that fire it (`site_url`) and may be delayed; an action may span adjacent stages only
//! when its handler allows `action_multiple`; its settings must fit the handler's schema.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::ListParams;
use super::{Auth, Paging, Refused, listing, page_of, validate_all};
use crate::domain::action::{Action, MAX_DELAY_SECONDS};
use crate::domain::conditions::Conditions;
use crate::domain::event::EventType;
use crate::domain::handler::Handler;
use crate::domain::ids::{ActionId, PipelineId, StatusId};
use crate::domain::pipeline::Pipeline;
use crate::domain::site::SiteUrl;
use crate::domain::time::{now_ms, to_secs};
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::Sequence;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_actions)
        .service(create_actions)
        .service(get_action)
        .service(update_action)
        .service(delete_action);
}

/// A trigger on one stage or a stretch of adjacent stages.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionView {
    id: u64,
    pipeline_id: u64,
    status_ids: Vec<u64>,
    /// `site_visit`, `lead_status_changed` or `lead_added`.
    event: String,
    /// The handler's code.
    handler: String,
    handler_id: u64,
    /// For `site_visit`: the pages that fire it (host and optional path prefix).
    site_url: Option<String>,
    delay_seconds: u32,
    /// For `site_visit`: conditions that must all hold at a page view of the visit
    /// (`page`, `min_visit_number`, `min_pages_in_visit`, `min_seconds_in_stage`,
    /// `cooldown_seconds`); absent when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"page": {"match": "starts_with", "value": "/pricing"}, "min_pages_in_visit": 2}))]
    conditions: Option<Conditions>,
    /// The handler's settings; strings may hold macros such as `{{contact.name}}`.
    #[schema(value_type = Object)]
    settings: Map<String, Value>,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

listing!(ActionList, ActionItems, actions, ActionView; batch ActionBatch);

impl ActionView {
    fn of(a: &Action) -> Self {
        Self {
            id: a.id.0,
            pipeline_id: a.pipeline_id.0,
            status_ids: a.status_ids.iter().map(|s| s.0).collect(),
            event: a.event.code().to_owned(),
            handler: a.handler.clone(),
            handler_id: a.handler_id.0,
            site_url: a.site_url.clone().map(String::from),
            delay_seconds: a.delay_seconds,
            conditions: a.conditions.clone(),
            settings: a.settings.clone(),
            enabled: a.enabled,
            created_at: to_secs(a.created_at),
            updated_at: to_secs(a.updated_at),
        }
    }
}

/// An action to place on a stage.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAction {
    pipeline_id: u64,
    /// One stage, or adjacent stages when the handler has `action_multiple`.
    status_ids: Vec<u64>,
    #[schema(example = "site_visit")]
    event: String,
    /// The handler's code.
    #[schema(example = "notify")]
    handler: String,
    #[serde(default)]
    #[schema(example = "https://shop.example")]
    site_url: Option<String>,
    /// 0 (at once) to 2 592 000 (30 days); only for `site_visit`.
    #[serde(default)]
    delay_seconds: u32,
    /// Only for `site_visit`: `page` (`{"match": "is"|"starts_with"|"contains"|"glob",
    /// "value": "/pricing*"}` on the page's path and query), `min_visit_number`,
    /// `min_pages_in_visit`, `min_seconds_in_stage`, `cooldown_seconds`; all must hold.
    #[serde(default)]
    #[schema(value_type = Option<Object>, example = json!({"page": {"match": "starts_with", "value": "/pricing"}}))]
    conditions: Value,
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"message": "Hi {{contact.name}}"}))]
    settings: Map<String, Value>,
    #[serde(default = "enabled")]
    enabled: bool,
}

fn enabled() -> bool {
    true
}

/// A field given as `null` is still given (`Some(Value::Null)`: remove the conditions).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn parse_conditions(raw: &Value, errors: &mut Vec<FieldError>) -> Option<Conditions> {
    Conditions::parse(raw).unwrap_or_else(|es| {
        errors.extend(es);
        None
    })
}

/// Changes to an action; it is checked again as a whole.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionPatch {
    #[serde(default)]
    status_ids: Option<Vec<u64>>,
    #[serde(default)]
    site_url: Option<String>,
    #[serde(default)]
    delay_seconds: Option<u32>,
    /// Replaces the conditions; `null` or `{}` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    conditions: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    settings: Option<Map<String, Value>>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// The rules every action keeps, checked on creation and after each change; its settings
/// become what the handler receives (`SettingsSchema::normalized`).
fn check(action: &mut Action, pipeline: Option<&Pipeline>, handler: &Handler) -> Vec<FieldError> {
    let schema = handler.schema();
    action.settings = schema.normalized(std::mem::take(&mut action.settings));
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
            if action.conditions.is_some() {
                errors.push(FieldError::new(
                    "conditions",
                    "only site_visit actions have conditions",
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
    if let Err(es) = schema.validate(&action.settings) {
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

/// The account's actions.
#[utoipa::path(tag = "actions", params(Paging),
    responses((status = 200, description = "OK", body = ActionList),
        (status = 204, description = "No action"), Refused))]
#[get("/actions")]
async fn list_actions(
    auth: Auth,
    req: HttpRequest,
    params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging_only()?;
    let actions: Vec<Action> = services.records(auth.0.id).await?;
    Ok(page_of::<ActionList>(
        &req,
        paging,
        actions.iter().map(ActionView::of).collect(),
    ))
}

async fn find(services: &Services, auth: &Auth, id: ActionId) -> Result<Action, Problem> {
    services
        .record(auth.0.id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("action {id} does not exist")))
}

/// One action.
#[utoipa::path(tag = "actions", params(("id" = u64, Path, description = "Action id")),
    responses((status = 200, description = "OK", body = ActionView), Refused))]
#[get("/actions/{id}")]
async fn get_action(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let action = find(&services, &auth, ActionId(id.into_inner())).await?;
    Ok(HttpResponse::Ok().json(ActionView::of(&action)))
}

/// Places actions (all or none); settings are checked against the handler's schema.
#[utoipa::path(tag = "actions", request_body = Vec<NewAction>,
    responses((status = 200, description = "OK", body = ActionBatch), Refused))]
#[post("/actions")]
async fn create_actions(
    auth: Auth,
    body: ApiJson<Vec<NewAction>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let account = auth.0.id;
    let pipelines: Vec<Pipeline> = services.records(account).await?;
    let handlers: Vec<Handler> = services.records(account).await?;
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
        let conditions = parse_conditions(&a.conditions, &mut errors);
        let (Some(event), Some(handler)) = (event, handler) else {
            return Err(errors);
        };
        let mut action = Action {
            id: ActionId(0),
            account_id: account,
            pipeline_id: PipelineId(a.pipeline_id),
            status_ids: a.status_ids.into_iter().map(StatusId).collect(),
            event,
            handler_id: handler.id,
            handler: handler.code.clone(),
            site_url,
            delay_seconds: a.delay_seconds,
            conditions,
            settings: a.settings,
            enabled: a.enabled,
            created_at: now,
            updated_at: now,
        };
        let pipeline = pipelines.iter().find(|p| p.id == action.pipeline_id);
        errors.extend(check(&mut action, pipeline, handler));
        if errors.is_empty() {
            Ok(action)
        } else {
            Err(errors)
        }
    })?;
    let mut created = Vec::new();
    for mut action in checked {
        action.id = ActionId(services.next_id(Sequence::Action).await?);
        services.save(&action).await?;
        created.push(ActionView::of(&action));
    }
    Ok(HttpResponse::Ok().json(ActionBatch::of(created)))
}

/// Changes an action (stages, site URL, delay, conditions, settings, enabled).
#[utoipa::path(tag = "actions", params(("id" = u64, Path, description = "Action id")), request_body = ActionPatch,
    responses((status = 200, description = "OK", body = ActionView), Refused))]
#[patch("/actions/{id}")]
async fn update_action(
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
    if let Some(c) = &patch.conditions {
        action.conditions = parse_conditions(c, &mut errors);
    }
    if let Some(s) = patch.settings {
        action.settings = s;
    }
    if let Some(e) = patch.enabled {
        action.enabled = e;
    }
    let pipeline: Option<Pipeline> = services.record(auth.0.id, action.pipeline_id).await?;
    let handler: Option<Handler> = services.record(auth.0.id, action.handler_id).await?;
    let Some(handler) = handler else {
        return Err(Problem::field(
            "handler",
            "the action's handler no longer exists",
        ));
    };
    errors.extend(check(&mut action, pipeline.as_ref(), &handler));
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    action.updated_at = now_ms();
    services.save(&action).await?;
    Ok(HttpResponse::Ok().json(ActionView::of(&action)))
}

/// Removes an action; delayed events it scheduled are cancelled when they come due.
#[utoipa::path(tag = "actions", params(("id" = u64, Path, description = "Action id")),
    responses((status = 204, description = "Removed"), Refused))]
#[delete("/actions/{id}")]
async fn delete_action(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let id = ActionId(id.into_inner());
    if services.delete_record::<Action>(auth.0.id, id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Problem::not_found(format!("action {id} does not exist")))
    }
}

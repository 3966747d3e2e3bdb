//! `/api/v4/leads/pipelines`: each account's pipelines and their stages, as amoCRM lists
//! them (type 1 is Unsorted; 142 won and 143 lost close every pipeline). A new pipeline
//! names its working stages; Unsorted, won and lost are added around them.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::ListParams;
use super::{Auth, Paging, Refused, check_name, listing, page_of, validate_all};
use crate::domain::ids::{PipelineId, StatusId};
use crate::domain::pipeline::{LOST, Pipeline, Status, StatusType, WON};
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::Sequence;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_pipelines)
        .service(create_pipelines)
        .service(get_pipeline)
        .service(list_statuses)
        .service(get_status);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    id: u64,
    name: String,
    sort: u32,
    /// 1 for Unsorted, 0 for every other stage.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    status_type: u8,
    pipeline_id: u64,
    is_editable: bool,
    /// `won` or `lost` for the closing stages (142, 143), absent for the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    closing: Option<&'static str>,
    /// amoCRM's colour of the stage: grey Unsorted, green won, grey lost, and the
    /// working stages through amoCRM's palette in order.
    #[schema(example = "#99ccff")]
    color: &'static str,
}

/// amoCRM's stage colours, given to the working stages in turn.
const PALETTE: [&str; 12] = [
    "#99ccff", "#ffff99", "#ffcc66", "#ffcccc", "#ccff66", "#deff81", "#87f2c0", "#f9deff",
    "#ccc8f9", "#eb93ff", "#f2f3f4", "#e6e8ea",
];

fn color_of(status: &Status, index: usize) -> &'static str {
    match (status.id.0, status.status_type) {
        (142, _) => "#CCFF66",
        (143, _) => "#D5D8DB",
        (_, StatusType::Unsorted) => "#c1c1c1",
        _ => PALETTE[index % PALETTE.len()],
    }
}

impl StatusView {
    fn of(p: &Pipeline, index: usize, s: &Status) -> Self {
        Self {
            id: s.id.0,
            name: s.name.clone(),
            sort: s.sort,
            status_type: s.status_type.code(),
            pipeline_id: p.id.0,
            is_editable: s.status_type == StatusType::Normal && s.id.0 > 1000,
            color: color_of(s, index),
            closing: match s.id {
                WON => Some("won"),
                LOST => Some("lost"),
                _ => None,
            },
        }
    }
}

listing!(StatusList, StatusItems, statuses, StatusView);

#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineView {
    id: u64,
    name: String,
    is_main: bool,
    account_id: u64,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: StatusItems,
}

listing!(PipelineList, PipelineItems, pipelines, PipelineView; batch PipelineBatch);

impl PipelineView {
    fn of(p: &Pipeline) -> Self {
        Self {
            id: p.id.0,
            name: p.name.clone(),
            is_main: p.is_main,
            account_id: p.account_id.0,
            embedded: StatusItems {
                statuses: p
                    .statuses
                    .iter()
                    .enumerate()
                    .map(|(i, s)| StatusView::of(p, i, s))
                    .collect(),
            },
        }
    }
}

/// A pipeline to create: its working stages in order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's `sort`, `request_id` and others are accepted, and ignored
pub struct NewPipeline {
    #[schema(example = "Partners")]
    name: String,
    #[serde(default)]
    sort: Option<u32>,
    #[serde(default)]
    is_main: Option<bool>,
    #[serde(default)]
    is_unsorted_on: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    request_id: Option<serde_json::Value>,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: NewStatuses,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStatuses {
    statuses: Vec<NewStatus>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's `sort` and `color` are read to be accepted, and ignored
pub struct NewStatus {
    #[schema(example = "Qualified")]
    name: String,
    /// amoCRM's; footfall keeps the stages in the order sent.
    #[serde(default)]
    sort: Option<u32>,
    /// amoCRM's; footfall colours stages itself.
    #[serde(default)]
    color: Option<String>,
}

/// The account's pipelines with their stages.
#[utoipa::path(tag = "pipelines", params(Paging),
    responses((status = 200, description = "OK", body = PipelineList),
        (status = 204, description = "No pipeline"), Refused))]
#[get("/leads/pipelines")]
async fn list_pipelines(
    auth: Auth,
    req: HttpRequest,
    params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging_only()?;
    let pipelines: Vec<Pipeline> = services.records(auth.0.id).await?;
    Ok(page_of::<PipelineList>(
        &req,
        paging,
        pipelines.iter().map(PipelineView::of).collect(),
    ))
}

/// One pipeline with its stages.
#[utoipa::path(tag = "pipelines", params(("id" = u64, Path, description = "Pipeline id")),
    responses((status = 200, description = "OK", body = PipelineView), Refused))]
#[get("/leads/pipelines/{id}")]
async fn get_pipeline(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let pipeline = services
        .pipeline(auth.0.id, PipelineId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(PipelineView::of(&pipeline)))
}

/// The stages of a pipeline, in order.
#[utoipa::path(tag = "pipelines", params(("id" = u64, Path, description = "Pipeline id"), Paging),
    responses((status = 200, description = "OK", body = StatusList),
        (status = 204, description = "No status"), Refused))]
#[get("/leads/pipelines/{id}/statuses")]
async fn list_statuses(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging_only()?;
    let pipeline = services
        .pipeline(auth.0.id, PipelineId(id.into_inner()))
        .await?;
    let statuses = pipeline
        .statuses
        .iter()
        .enumerate()
        .map(|(i, s)| StatusView::of(&pipeline, i, s))
        .collect();
    Ok(page_of::<StatusList>(&req, paging, statuses))
}

/// One stage of a pipeline.
#[utoipa::path(tag = "pipelines", params(("id" = u64, Path, description = "Pipeline id"),
        ("status_id" = u64, Path, description = "Status id")),
    responses((status = 200, description = "OK", body = StatusView), Refused))]
#[get("/leads/pipelines/{id}/statuses/{status_id}")]
async fn get_status(
    auth: Auth,
    path: web::Path<(u64, u64)>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (id, status_id) = path.into_inner();
    let pipeline = services.pipeline(auth.0.id, PipelineId(id)).await?;
    let (index, status) = pipeline
        .statuses
        .iter()
        .enumerate()
        .find(|(_, s)| s.id == StatusId(status_id))
        .ok_or_else(|| Problem::not_found(format!("pipeline {id} has no status {status_id}")))?;
    Ok(HttpResponse::Ok().json(StatusView::of(&pipeline, index, status)))
}

/// The most pipelines an account has (amoCRM's bound).
const MAX_PIPELINES: usize = 50;

/// Creates pipelines: Unsorted, the given stages in order, then won (142) and lost (143);
/// at most 50 per account.
#[utoipa::path(tag = "pipelines", request_body = Vec<NewPipeline>,
    responses((status = 200, description = "OK", body = PipelineBatch), Refused))]
#[post("/leads/pipelines")]
async fn create_pipelines(
    auth: Auth,
    body: ApiJson<Vec<NewPipeline>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let existing: Vec<Pipeline> = services.records(auth.0.id).await?;
    let mut count = existing.len();
    let checked = validate_all(body.0, |p| {
        let mut errors = Vec::new();
        let name = check_name("name", &p.name, &mut errors);
        // amoCRM's own bound, which also keeps the list on the one page its clients read.
        count += 1;
        if count > MAX_PIPELINES {
            errors.push(FieldError::new(
                "name",
                format!("an account has at most {MAX_PIPELINES} pipelines"),
            ));
        }
        if p.is_unsorted_on == Some(false) {
            errors.push(FieldError::new(
                "is_unsorted_on",
                "footfall's pipelines always have an Unsorted stage, where forms put their leads",
            ));
        }
        let stages = p.embedded.statuses;
        if stages.is_empty() || stages.len() > 30 {
            errors.push(FieldError::new(
                "_embedded.statuses",
                "needs 1 to 30 stages",
            ));
        }
        let names: Vec<String> = stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                check_name(
                    &format!("_embedded.statuses[{i}].name"),
                    &s.name,
                    &mut errors,
                )
            })
            .collect();
        if errors.is_empty() {
            Ok((name, names))
        } else {
            Err(errors)
        }
    })?;
    let mut created = Vec::new();
    for (name, stages) in checked {
        let id = PipelineId(services.next_id(Sequence::Pipeline).await?);
        let mut statuses = vec![Status {
            id: StatusId(services.next_id(Sequence::Status).await?),
            name: "Unsorted".into(),
            sort: 10,
            status_type: StatusType::Unsorted,
        }];
        for (i, stage) in stages.into_iter().enumerate() {
            statuses.push(Status {
                id: StatusId(services.next_id(Sequence::Status).await?),
                name: stage,
                sort: 20 + 10 * i as u32,
                status_type: StatusType::Normal,
            });
        }
        let closing = Pipeline::default_for(auth.0.id, id, [StatusId(0); 3]).statuses;
        statuses.extend(
            closing
                .into_iter()
                .filter(|s| s.id.0 == 142 || s.id.0 == 143),
        );
        let pipeline = Pipeline {
            id,
            account_id: auth.0.id,
            name,
            is_main: false,
            statuses,
        };
        services.save(&pipeline).await?;
        created.push(PipelineView::of(&pipeline));
    }
    Ok(HttpResponse::Ok().json(PipelineBatch::of(created)))
}

//! `/api/v4/leads/pipelines`: each account's pipelines and their stages, as amoCRM lists
//! them (type 1 is Unsorted; 142 won and 143 lost close every pipeline).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{Auth, Paging, page_of};
use crate::domain::ids::PipelineId;
use crate::domain::pipeline::Pipeline;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::catalog;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/leads/pipelines", web::get().to(list))
        .route("/leads/pipelines/{id}", web::get().to(get));
}

fn view(p: &Pipeline) -> Value {
    let statuses: Vec<Value> = p
        .statuses
        .iter()
        .map(|s| {
            json!({"id": s.id, "name": s.name, "sort": s.sort, "type": s.status_type,
                        "pipeline_id": p.id, "is_editable": s.status_type == 0 && s.id.0 > 1000})
        })
        .collect();
    json!({"id": p.id, "name": p.name, "is_main": p.is_main, "account_id": p.account_id,
           "_embedded": {"statuses": statuses}})
}

async fn list(
    auth: Auth,
    req: HttpRequest,
    paging: web::Query<Paging>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = paging.into_inner().check()?;
    let pipelines: Vec<Pipeline> = catalog::list(&*services.store, auth.0.id).await?;
    Ok(page_of(
        &req,
        "pipelines",
        paging,
        pipelines.iter().map(view).collect(),
    ))
}

async fn get(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let pipeline = services
        .pipeline(auth.0.id, PipelineId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(view(&pipeline)))
}

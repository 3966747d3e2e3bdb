//! `GET /api/v4/leads/export.csv`: the leads the list's filters find (the same
//! `filter[…]`, `query`, `order[…]` parameters as `GET /leads`), as CSV.

use actix_web::{HttpResponse, get, http::header, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::leads::lead_query;
use super::query::ListParams;
use super::{Auth, Refused};
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(export_leads);
}

/// The filtered leads as CSV: id, name, pipeline, stage, main contact, created, first and
/// last touch source, visit count, last visit.
#[utoipa::path(tag = "leads", params(super::leads::LeadQuery),
    responses((status = 200, description = "CSV, one row per lead", content_type = "text/csv", body = String), Refused))]
#[get("/leads/export.csv")]
async fn export_leads(
    auth: Auth,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (filter, order) = lead_query(&mut params)?;
    params.finish()?;
    let csv = services.export_leads(auth.0.id, &filter, order).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"leads.csv\"",
        ))
        .body(csv))
}

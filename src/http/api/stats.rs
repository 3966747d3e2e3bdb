//! `GET /api/v4/sites/{id}/stats`: what visitors did on a site, per day (UTC) — page
//! views, visits, unique browsers, new and linked browsers, form submissions, site-visit
//! events — with the period's totals and its top pages and sources.

use actix_web::{HttpRequest, HttpResponse, get, web};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, Refused};
use crate::domain::ids::SiteId;
use crate::domain::stats::SiteStats;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::stats::Period;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(site_stats);
}

/// The period of a statistics request.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; read by hand (unknown keys are refused)
struct StatsQuery {
    /// First day, `2026-11-01` (UTC); by default 29 days before `to`.
    from: Option<String>,
    /// Last day, inclusive; by default today. At most 400 days from `from`.
    to: Option<String>,
    /// `day` (the only interval).
    interval: Option<String>,
}

/// A site's statistics per day over a period.
#[utoipa::path(tag = "sites", params(("id" = u64, Path, description = "Site id"), StatsQuery),
    responses((status = 200, description = "OK", body = SiteStats), Refused))]
#[get("/sites/{id}/stats")]
async fn site_stats(
    auth: Auth,
    id: web::Path<u64>,
    req: HttpRequest,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let mut from = None;
    let mut to = None;
    let mut interval = None;
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        let slot = match key.as_ref() {
            "from" => &mut from,
            "to" => &mut to,
            "interval" => &mut interval,
            other => {
                return Err(Problem::field(
                    other,
                    "is not a parameter of this route (from, to, interval)",
                ));
            }
        };
        *slot = Some(value.into_owned());
    }
    let stats = services
        .site_stats(
            auth.0.id,
            SiteId(id.into_inner()),
            Period {
                from: from.as_deref(),
                to: to.as_deref(),
                interval: interval.as_deref(),
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(stats))
}

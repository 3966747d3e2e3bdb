//! `/api/v4/quotas`: the account's use of its quotas (`service::quotas`), which the
//! console shows: its own and each of its sites', per kind (page views per second, new
//! visitors and form posts per hour). Per-address quotas are not listed (one per client).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, Refused};
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::quotas::QuotaUse;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(quota_use);
}

#[derive(Serialize, ToSchema)]
pub struct QuotaUseList {
    /// One line per quota that is on.
    quotas: Vec<QuotaUse>,
}

/// The account's use of its quotas now (shared by every footfall instance).
#[utoipa::path(tag = "quotas",
    responses((status = 200, description = "OK", body = QuotaUseList), Refused))]
#[get("/quotas")]
async fn quota_use(auth: Auth, services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    let quotas = services.quota_use(auth.0.id).await?;
    Ok(HttpResponse::Ok().json(QuotaUseList { quotas }))
}

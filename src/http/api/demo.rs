//! `/api/v4/demo`: what the console needs to show the demo — its site, form and handler,
//! and the sample handler's inbox (newest first).

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::Auth;
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo", web::get().to(describe))
        .route("/demo/inbox", web::get().to(inbox));
}

fn demo<'a>(
    services: &'a Services,
    auth: &Auth,
) -> Result<&'a crate::service::demo::Demo, Problem> {
    services
        .demo
        .as_ref()
        .filter(|d| d.account.id == auth.0.id)
        .ok_or_else(|| Problem::not_found("the demo is off, or belongs to another account"))
}

async fn describe(auth: Auth, services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(demo(&services, &auth)?.describe()))
}

async fn inbox(auth: Auth, services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    let items = demo(&services, &auth)?.inbox();
    Ok(HttpResponse::Ok().json(json!({"_embedded": {"inbox": items}})))
}

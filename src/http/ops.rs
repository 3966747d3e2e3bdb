//! Operations endpoints: liveness, readiness (the store answers) and Prometheus metrics.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;

use super::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    match services.readiness(Duration::from_secs(1)).await {
        Ok(store) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "status": "ready", "store": store,
        }))),
        Err(why) => Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, why)),
    }
}

async fn metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

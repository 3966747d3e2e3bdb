//! Operations endpoints: liveness, readiness (the store answers) and Prometheus metrics.
//! Readiness and metrics tell the store's address and its errors: they answer a direct
//! request from loopback (not one a proxy forwarded: it carries `X-Forwarded-For` or
//! `Forwarded`, or comes from a peer in `server.trusted_proxies`, which a proxy that adds
//! no header is; with the old `server.trust_proxy_headers = true`, every peer is a proxy),
//! or one with `Authorization: Bearer <server.ops_token>`; anyone else gets 403 and
//! learns nothing. Liveness says only "ok" and stays open.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::client::ProxyTrust;
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

/// Whether a request may see an operations endpoint.
fn ops_allowed(req: &HttpRequest, services: &Services) -> Result<(), Problem> {
    let headers = req.headers();
    let forwarded = headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded");
    let from_proxy = |ip| {
        req.app_data::<ProxyTrust>()
            .is_some_and(|trust| trust.is_proxy_peer(ip))
    };
    let local = !forwarded
        && req
            .peer_addr()
            .is_some_and(|a| a.ip().is_loopback() && !from_proxy(a.ip()));
    let token = services.settings.server.ops_token.expose_secret();
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token_ok = !token.is_empty()
        && bearer.is_some_and(|b| bool::from(b.as_bytes().ct_eq(token.as_bytes())));
    if local || token_ok {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "operations endpoints answer on loopback, or with the ops token (server.ops_token)",
        ))
    }
}

async fn readyz(req: HttpRequest, services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    ops_allowed(&req, &services)?;
    match services.readiness(Duration::from_secs(1)).await {
        Ok(store) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "status": "ready", "store": store,
        }))),
        Err(why) => Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, why)),
    }
}

async fn metrics(
    req: HttpRequest,
    services: web::Data<Services>,
    handle: web::Data<PrometheusHandle>,
) -> Result<HttpResponse, Problem> {
    ops_allowed(&req, &services)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render()))
}

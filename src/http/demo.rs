//! The demo's public side: the sample site (`/demo`, `/demo/{page}`), rendered from
//! `static/demo/index.html` with the demo site's key and form id, and the sample
//! handler's inbox (`POST /demo/inbox`), which takes only webhooks signed with the demo
//! handler's secret (401 otherwise).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use subtle::ConstantTimeEq;

use super::body::read_body;
use super::problem::Problem;
use crate::delivery::signature;
use crate::domain::handler::Handler;
use crate::domain::ids::LeadId;
use crate::domain::time::{now_ms, to_secs};
use crate::service::Services;
use crate::service::demo::InboxItem;
use crate::service::live::LiveKind;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo", web::get().to(page))
        .route("/demo/inbox", web::post().to(inbox))
        .route("/demo/{page}", web::get().to(page));
}

async fn page(req: HttpRequest, services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    let Some(demo) = &services.demo else {
        return Err(Problem::not_found("the demo is off (demo.enabled = false)"));
    };
    let path = services.settings.server.static_dir.join("demo/index.html");
    let template = std::fs::read_to_string(&path)
        .map_err(|_| Problem::not_found("static/demo/index.html is missing"))?;
    let page = req.match_info().get("page").unwrap_or("home");
    let html = template
        .replace(
            "{{PUBLIC_URL}}",
            services.settings.server.public_url.trim_end_matches('/'),
        )
        .replace("{{SITE_KEY}}", demo.site_key.as_str())
        .replace("{{FORM_ID}}", demo.form_id.as_str())
        .replace(
            "{{PAGE}}",
            &page
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>(),
        );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(html))
}

/// How far a webhook's timestamp may be from now (Standard Webhooks' default).
const TOLERANCE_SECS: u64 = 300;

async fn inbox(
    req: HttpRequest,
    mut payload: web::Payload,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let Some(demo) = &services.demo else {
        return Err(Problem::not_found("the demo is off (demo.enabled = false)"));
    };
    let body = read_body(&req, &mut payload, 64 * 1024).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, timestamp, sent) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let handler: Option<Handler> = services.record(demo.account.id, demo.handler_id).await?;
    // As a Standard Webhooks verifier: a signature compared in constant time, and a
    // timestamp within five minutes of now, so that a captured webhook cannot be
    // replayed later.
    let fresh = |ts: i64| ts.abs_diff(to_secs(now_ms())) <= TOLERANCE_SECS;
    let signature_valid = match (handler, timestamp.parse::<i64>()) {
        (Some(h), Ok(ts)) if fresh(ts) => {
            signature::sign(&h.secret, &id, ts, &text).is_ok_and(|expected| {
                sent.split(' ')
                    .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
            })
        }
        _ => false,
    };
    // Only the demo handler's own webhooks: anything else would let anyone fill the
    // inbox (and the console's live stream) with whatever they like.
    if !signature_valid {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "the demo inbox takes only webhooks signed with the demo handler's secret",
        ));
    }
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let lead = body["event"]["data"]["id"].as_u64().map(LeadId);
    demo.receive(InboxItem {
        received_at: now_ms(),
        webhook_id: id,
        signature_valid,
        body,
    });
    if let Some(lead) = lead {
        services
            .live
            .publish(demo.account.id, lead, LiveKind::Inbox);
    }
    Ok(HttpResponse::Ok().finish())
}

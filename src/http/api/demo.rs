//! `/api/v4/demo`: what the console needs to show the demo — its site, form and handler,
//! and the sample handler's inbox (newest first).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, Refused};
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(get_demo).service(demo_inbox);
}

/// The demo's resources.
#[derive(Serialize, ToSchema)]
pub struct DemoView {
    site_id: u64,
    site_key: String,
    form_id: String,
    handler_id: u64,
    handler: String,
    inbox_url: String,
}

/// A webhook the sample handler received.
#[derive(Serialize, ToSchema)]
pub struct InboxItemView {
    received_at: i64,
    webhook_id: String,
    signature_valid: bool,
    #[schema(value_type = Object)]
    body: Value,
}

#[derive(Serialize, ToSchema)]
pub struct InboxItems {
    inbox: Vec<InboxItemView>,
}

#[derive(Serialize, ToSchema)]
pub struct InboxView {
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: InboxItems,
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

/// The demo's site, form and handler (404 when the demo is off).
#[utoipa::path(tag = "demo", responses((status = 200, description = "OK", body = DemoView), Refused))]
#[get("/demo")]
async fn get_demo(auth: Auth, services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    let d = demo(&services, &auth)?;
    Ok(HttpResponse::Ok().json(DemoView {
        site_id: d.site_id.0,
        site_key: d.site_key.to_string(),
        form_id: d.form_id.to_string(),
        handler_id: d.handler_id.0,
        handler: crate::service::demo::HANDLER_CODE.to_owned(),
        inbox_url: d.inbox_url.clone(),
    }))
}

/// What the sample handler received, newest first.
#[utoipa::path(tag = "demo", responses((status = 200, description = "OK", body = InboxView), Refused))]
#[get("/demo/inbox")]
async fn demo_inbox(auth: Auth, services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    let inbox = demo(&services, &auth)?
        .inbox()
        .into_iter()
        .map(|i| InboxItemView {
            received_at: i.received_at,
            webhook_id: i.webhook_id,
            signature_valid: i.signature_valid,
            body: i.body,
        })
        .collect();
    Ok(HttpResponse::Ok().json(InboxView {
        embedded: InboxItems { inbox },
    }))
}

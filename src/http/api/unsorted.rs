//! `/api/v4/leads/unsorted`: incoming form submissions waiting for a marketer — list,
//! one entry, accept into a stage (the seed's step 5) or decline.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Auth, Paging, page_of};
use crate::domain::ids::{PipelineId, StatusId, UnsortedUid, is_token_like};
use crate::domain::lead::Unsorted;
use crate::domain::time::to_secs;
use crate::http::body::{parse_json, read_body};
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/leads/unsorted", web::get().to(list))
        .route("/leads/unsorted/{uid}", web::get().to(get))
        .route("/leads/unsorted/{uid}/accept", web::post().to(accept))
        .route("/leads/unsorted/{uid}/decline", web::post().to(decline));
}

fn view(u: &Unsorted) -> Value {
    let m = &u.metadata;
    json!({
        "uid": u.uid, "category": u.category, "pipeline_id": u.pipeline_id,
        "account_id": u.account_id, "created_at": to_secs(u.created_at),
        "metadata": {
            "form_id": m.form_id, "form_name": m.form_name, "form_page": m.form_page,
            "ip": m.ip, "referer": m.referer, "visitor_uid": m.visitor_uid,
            "form_sent_at": m.form_sent_at,
        },
        "_embedded": {"leads": [{"id": u.lead_id}], "contacts": [{"id": u.contact_id}]},
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsortedQuery {
    page: Option<usize>,
    limit: Option<usize>,
    pipeline_id: Option<u64>,
    form_id: Option<String>,
}

fn uid(raw: String) -> Result<UnsortedUid, Problem> {
    if is_token_like(&raw) {
        Ok(UnsortedUid(raw))
    } else {
        Err(Problem::not_found(format!(
            "unsorted entry {raw} does not exist"
        )))
    }
}

async fn list(
    auth: Auth,
    req: HttpRequest,
    query: web::Query<UnsortedQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let q = query.into_inner();
    let paging = Paging {
        page: q.page.unwrap_or(1),
        limit: q.limit.unwrap_or(50),
    }
    .check()?;
    let items: Vec<Value> = services
        .store
        .list_unsorted(auth.0.id)
        .await?
        .iter()
        .filter(|u| q.pipeline_id.is_none_or(|p| u.pipeline_id == PipelineId(p)))
        .filter(|u| {
            q.form_id
                .as_deref()
                .is_none_or(|f| u.metadata.form_id.as_str() == f)
        })
        .map(view)
        .collect();
    Ok(page_of(&req, "unsorted", paging, items))
}

async fn get(
    auth: Auth,
    path: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let uid = uid(path.into_inner())?;
    let entry = services
        .store
        .get_unsorted(auth.0.id, &uid)
        .await?
        .ok_or_else(|| Problem::not_found(format!("unsorted entry {uid} does not exist")))?;
    Ok(HttpResponse::Ok().json(view(&entry)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    #[serde(default)]
    status_id: Option<u64>,
}

async fn accept(
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let uid = uid(path.into_inner())?;
    // The body is optional: without it the lead goes to the first working stage.
    let body = read_body(&req, &mut payload, 4096).await?;
    let body: AcceptBody = if body.iter().all(u8::is_ascii_whitespace) {
        AcceptBody::default()
    } else {
        parse_json(&body)?
    };
    let lead = services
        .accept(auth.0.id, &uid, body.status_id.map(StatusId))
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "uid": uid, "pipeline_id": lead.pipeline_id, "status_id": lead.status_id,
        "_embedded": {"leads": [{"id": lead.id}]},
    })))
}

async fn decline(
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let uid = uid(path.into_inner())?;
    read_body(&req, &mut payload, 4096).await?;
    let lead = services.decline(auth.0.id, &uid).await?;
    Ok(HttpResponse::Ok().json(json!({
        "uid": uid, "_embedded": {"leads": [{"id": lead.id}]},
    })))
}

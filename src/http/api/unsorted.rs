//! `/api/v4/leads/unsorted`: incoming form submissions waiting for a marketer — list,
//! one entry, accept into a stage (the seed's step 5) or decline.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, Paging, Refused, listing, page_of};
use crate::domain::ids::{PipelineId, StatusId, UnsortedUid, is_token_like};
use crate::domain::lead::UnsortedFilter;
use crate::domain::lead::{Lead, Unsorted};
use crate::domain::time::to_secs;
use crate::http::body::OptionalApiJson;
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_unsorted)
        .service(get_unsorted)
        .service(accept_unsorted)
        .service(decline_unsorted);
}

/// What amoCRM records about a form submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetadataView {
    form_id: String,
    form_name: String,
    form_page: String,
    ip: String,
    referer: String,
    visitor_uid: Option<String>,
    form_sent_at: i64,
    /// The open lead whose email or phone this submission named: a possible duplicate,
    /// merged by accepting this entry into that lead. The submission did not join it.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of_lead_id: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdRef {
    id: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnsortedEmbedded {
    leads: Vec<IdRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts: Option<Vec<IdRef>>,
}

/// An Unsorted entry (category `forms`).
#[derive(Debug, Serialize, ToSchema)]
pub struct UnsortedView {
    uid: String,
    category: String,
    pipeline_id: u64,
    account_id: u64,
    created_at: i64,
    metadata: MetadataView,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: UnsortedEmbedded,
}

listing!(UnsortedList, UnsortedItems, unsorted, UnsortedView);

impl UnsortedView {
    fn of(u: &Unsorted) -> Self {
        let m = &u.metadata;
        Self {
            uid: u.uid.to_string(),
            category: u.category.clone(),
            pipeline_id: u.pipeline_id.0,
            account_id: u.account_id.0,
            created_at: to_secs(u.created_at),
            metadata: MetadataView {
                form_id: m.form_id.to_string(),
                form_name: m.form_name.clone(),
                form_page: m.form_page.clone(),
                ip: m.ip.clone(),
                referer: m.referer.clone(),
                visitor_uid: m.visitor_uid.clone(),
                form_sent_at: m.form_sent_at,
                duplicate_of_lead_id: m.duplicate_of_lead_id.map(|l| l.0),
            },
            embedded: UnsortedEmbedded {
                leads: vec![IdRef { id: u.lead_id.0 }],
                contacts: Some(vec![IdRef { id: u.contact_id.0 }]),
            },
        }
    }
}

/// The outcome of accepting or declining an entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    uid: String,
    /// Where the lead stands now.
    pipeline_id: u64,
    status_id: u64,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: UnsortedEmbedded,
}

impl DecisionView {
    fn of(uid: &UnsortedUid, lead: &Lead) -> Self {
        Self {
            uid: uid.to_string(),
            pipeline_id: lead.pipeline_id.0,
            status_id: lead.status_id.0,
            embedded: UnsortedEmbedded {
                leads: vec![IdRef { id: lead.id.0 }],
                contacts: None,
            },
        }
    }
}

/// Filters of the Unsorted list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UnsortedQuery {
    page: Option<usize>,
    limit: Option<usize>,
    pipeline_id: Option<u64>,
    form_id: Option<String>,
}

/// The body of an acceptance; without it the lead goes to the first working stage.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    #[serde(default)]
    status_id: Option<u64>,
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

/// Entries waiting in Unsorted, oldest first.
#[utoipa::path(tag = "unsorted", params(UnsortedQuery),
    responses((status = 200, description = "OK", body = UnsortedList), Refused))]
#[get("/leads/unsorted")]
async fn list_unsorted(
    auth: Auth,
    req: HttpRequest,
    query: web::Query<UnsortedQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let q = query.into_inner();
    let paging = Paging::new(q.page, q.limit)?;
    let filter = UnsortedFilter {
        pipeline_id: q.pipeline_id.map(PipelineId),
        form_id: q.form_id.clone(),
    };
    let items: Vec<UnsortedView> = services
        .unsorted(auth.0.id, &filter)
        .await?
        .iter()
        .map(UnsortedView::of)
        .collect();
    Ok(page_of::<UnsortedList>(&req, paging, items))
}

/// One Unsorted entry.
#[utoipa::path(tag = "unsorted", params(("uid" = String, Path, description = "Entry uid")),
    responses((status = 200, description = "OK", body = UnsortedView), Refused))]
#[get("/leads/unsorted/{uid}")]
async fn get_unsorted(
    auth: Auth,
    path: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let uid = uid(path.into_inner())?;
    let entry = services.unsorted_entry(auth.0.id, &uid).await?;
    Ok(HttpResponse::Ok().json(UnsortedView::of(&entry)))
}

/// Accepts the entry's lead into a stage of its pipeline (the seed's step 5); the stage's
/// actions fire. A second acceptance of the same entry answers 404 or 409.
#[utoipa::path(tag = "unsorted", params(("uid" = String, Path, description = "Entry uid")), request_body(content = AcceptBody, description = "Optional"),
    responses((status = 200, description = "OK", body = DecisionView), Refused))]
#[post("/leads/unsorted/{uid}/accept")]
async fn accept_unsorted(
    auth: Auth,
    path: web::Path<String>,
    body: OptionalApiJson<AcceptBody>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let uid = uid(path.into_inner())?;
    let body = body.0.unwrap_or_default();
    let lead = services
        .accept(auth.0.id, &uid, body.status_id.map(StatusId))
        .await?;
    Ok(HttpResponse::Ok().json(DecisionView::of(&uid, &lead)))
}

/// Declines the entry: it leaves Unsorted and its lead is closed as lost (143).
#[utoipa::path(tag = "unsorted", params(("uid" = String, Path, description = "Entry uid")),
    responses((status = 200, description = "OK", body = DecisionView), Refused))]
#[post("/leads/unsorted/{uid}/decline")]
async fn decline_unsorted(
    auth: Auth,
    path: web::Path<String>,
    _no_body: OptionalApiJson<serde::de::IgnoredAny>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let uid = uid(path.into_inner())?;
    let lead = services.decline(auth.0.id, &uid).await?;
    Ok(HttpResponse::Ok().json(DecisionView::of(&uid, &lead)))
}

//! `/api/v4/leads`: leads with filters, one lead with its contacts and browsers, moves
//! (`PATCH` with `status_id` / `pipeline_id`, which fire the stage's actions), the lead's
//! timeline and its visits.

use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, MAX_LIMIT, Paging, Refused, listing, page_of};
use crate::domain::ids::{LeadId, PipelineId, StatusId};
use crate::domain::lead::{Lead, LeadFilter, VisitorLink};
use crate::domain::time::to_secs;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::leads::LeadChange;
use serde_json::Value;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_leads)
        .service(get_lead)
        .service(update_lead)
        .service(lead_timeline)
        .service(lead_visits);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    id: u64,
    name: String,
    phone: Option<String>,
    email: Option<String>,
    is_main: bool,
}

/// A browser linked to the lead; its page views from `since` (or all, when it was
/// anonymous before the form) until `until` belong to the lead.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorView {
    visitor: String,
    linked_at: i64,
    since: Option<i64>,
    until: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadEmbedded {
    contacts: Vec<ContactView>,
    /// In the answer for one lead.
    #[serde(skip_serializing_if = "Option::is_none")]
    visitors: Option<Vec<VisitorView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadView {
    id: u64,
    name: String,
    status_id: u64,
    pipeline_id: u64,
    account_id: u64,
    created_at: i64,
    updated_at: i64,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: LeadEmbedded,
}

listing!(LeadList, LeadItems, leads, LeadView);

impl LeadView {
    pub fn of(lead: &Lead, visitors: Option<&[VisitorLink]>) -> Self {
        Self {
            id: lead.id.0,
            name: lead.name.clone(),
            status_id: lead.status_id.0,
            pipeline_id: lead.pipeline_id.0,
            account_id: lead.account_id.0,
            created_at: to_secs(lead.created_at),
            updated_at: to_secs(lead.updated_at),
            embedded: LeadEmbedded {
                contacts: lead
                    .contacts
                    .iter()
                    .map(|c| ContactView {
                        id: c.id.0,
                        name: c.name.clone(),
                        phone: c.phone.clone(),
                        email: c.email.clone(),
                        is_main: c.is_main,
                    })
                    .collect(),
                visitors: visitors.map(|vs| {
                    vs.iter()
                        .map(|v| VisitorView {
                            visitor: v.visitor.encode(),
                            linked_at: to_secs(v.linked_at),
                            since: v.since.map(to_secs),
                            until: v.until.map(to_secs),
                        })
                        .collect()
                }),
            },
        }
    }
}

/// Filters of the lead list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LeadQuery {
    page: Option<usize>,
    limit: Option<usize>,
    status_id: Option<u64>,
    pipeline_id: Option<u64>,
    /// Created at or after (Unix seconds).
    created_from: Option<i64>,
    /// Created at or before (Unix seconds).
    created_to: Option<i64>,
    /// Text in the lead's name or its contacts' name, phone or email.
    query: Option<String>,
}

impl LeadQuery {
    fn filter(&self) -> LeadFilter {
        LeadFilter {
            status_id: self.status_id.map(StatusId),
            pipeline_id: self.pipeline_id.map(PipelineId),
            created_from: self.created_from,
            created_to: self.created_to,
            query: self.query.clone(),
        }
    }
}

/// The account's leads, newest first, filtered.
#[utoipa::path(tag = "leads", params(LeadQuery),
    responses((status = 200, description = "OK", body = LeadList), Refused))]
#[get("/leads")]
async fn list_leads(
    auth: Auth,
    req: HttpRequest,
    query: web::Query<LeadQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let paging = Paging::new(query.page, query.limit)?;
    // Enough matches for this page and one more (to know whether a next page exists).
    let wanted = paging.page * paging.limit + 1;
    let leads = services
        .search_leads(auth.0.id, &query.filter(), wanted)
        .await?;
    let views = leads.iter().map(|l| LeadView::of(l, None)).collect();
    Ok(page_of::<LeadList>(&req, paging, views))
}

/// One lead with its contacts and linked browsers.
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id")),
    responses((status = 200, description = "OK", body = LeadView), Refused))]
#[get("/leads/{id}")]
async fn get_lead(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (lead, browsers) = services
        .lead_with_browsers(auth.0.id, LeadId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(LeadView::of(&lead, Some(&browsers))))
}

/// Changes to a lead: a move (which fires the stages' actions) or a new name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadPatch {
    #[serde(default)]
    status_id: Option<u64>,
    /// Another pipeline (with `status_id` of that pipeline).
    #[serde(default)]
    pipeline_id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
}

/// Moves a lead to another stage (or pipeline) and/or renames it.
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id")), request_body = LeadPatch,
    responses((status = 200, description = "OK", body = LeadView), Refused))]
#[patch("/leads/{id}")]
async fn update_lead(
    auth: Auth,
    id: web::Path<u64>,
    body: ApiJson<LeadPatch>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let patch = body.0;
    let change = LeadChange {
        name: patch.name,
        pipeline_id: patch.pipeline_id.map(PipelineId),
        status_id: patch.status_id.map(StatusId),
    };
    let lead = services
        .change_lead(auth.0.id, LeadId(id.into_inner()), change)
        .await?;
    Ok(HttpResponse::Ok().json(LeadView::of(&lead, None)))
}

listing!(TimelineList, TimelineItems, timeline, Value);

/// The page of a timeline (oldest first); the whole history fits in 250 by default.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    page: Option<usize>,
    limit: Option<usize>,
}

/// The lead's history, oldest first: `lead_created`, `moved`, `declined`,
/// `form_submitted`, `visitor_linked`, `visitor_moved`, `visit`, `page_view`,
/// `event_fired`, `delivery`, `event_cancelled`, `note` items, each with `at` (ms) and
/// `created_at` (s).
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id"), TimelineQuery),
    responses((status = 200, description = "OK", body = TimelineList), Refused))]
#[get("/leads/{id}/timeline")]
async fn lead_timeline(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    query: web::Query<TimelineQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = Paging::new(query.page, Some(query.limit.unwrap_or(MAX_LIMIT)))?;
    let items = services
        .timeline(auth.0.id, LeadId(id.into_inner()))
        .await?
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()
        .map_err(crate::store::corrupt)?;
    Ok(page_of::<TimelineList>(&req, paging, items))
}

/// A visit of one of the lead's browsers.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitView {
    visitor: String,
    /// The visit's number among this browser's visits.
    number: u32,
    site_id: u64,
    started_at: i64,
    url: String,
    title: String,
    referrer: String,
}

listing!(VisitList, VisitItems, visits, VisitView);

/// The visits of the lead's browsers, oldest first.
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id"), Paging),
    responses((status = 200, description = "OK", body = VisitList), Refused))]
#[get("/leads/{id}/visits")]
async fn lead_visits(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    paging: web::Query<Paging>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = paging.into_inner().check()?;
    let visits = services
        .lead_visits(auth.0.id, LeadId(id.into_inner()))
        .await?
        .into_iter()
        .map(|(visitor, v)| VisitView {
            visitor: visitor.encode(),
            number: v.number,
            site_id: v.site_id.0,
            started_at: to_secs(v.started_at),
            url: v.url,
            title: v.title,
            referrer: v.referrer,
        })
        .collect();
    Ok(page_of::<VisitList>(&req, paging, visits))
}

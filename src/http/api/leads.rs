//! `/api/v4/leads`: leads with filters, one lead with its contacts and browsers, moves
//! (`PATCH` with `status_id` / `pipeline_id`, which fire the stage's actions), the lead's
//! timeline and its visits.

use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, MAX_LIMIT, Paging, Refused, listing, page_of};
use crate::domain::action::MoveKind;
use crate::domain::ids::{LeadId, PipelineId, StatusId};
use crate::domain::lead::{Lead, VisitorLink};
use crate::domain::time::{now_ms, to_secs};
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;

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
    fn matches(&self, lead: &Lead) -> bool {
        let created = to_secs(lead.created_at);
        let needle = self
            .query
            .as_deref()
            .map(str::to_lowercase)
            .filter(|q| !q.is_empty());
        self.status_id.is_none_or(|s| lead.status_id == StatusId(s))
            && self
                .pipeline_id
                .is_none_or(|p| lead.pipeline_id == PipelineId(p))
            && self.created_from.is_none_or(|f| created >= f)
            && self.created_to.is_none_or(|t| created <= t)
            && needle.is_none_or(|q| {
                lead.name.to_lowercase().contains(&q)
                    || lead.contacts.iter().any(|c| {
                        [Some(&c.name), c.phone.as_ref(), c.email.as_ref()]
                            .into_iter()
                            .flatten()
                            .any(|v| v.to_lowercase().contains(&q))
                    })
            })
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
    let ids = services.store.lead_ids(auth.0.id).await?;
    // Enough matches for this page and one more (to know whether a next page exists).
    let wanted = paging.page * paging.limit + 1;
    let mut matched = Vec::new();
    for chunk in ids.chunks(MAX_LIMIT) {
        for lead in services.store.get_leads(chunk).await? {
            if query.matches(&lead) {
                matched.push(LeadView::of(&lead, None));
            }
        }
        if matched.len() >= wanted {
            break;
        }
    }
    Ok(page_of::<LeadList>(&req, paging, matched))
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
    let lead = services.lead(auth.0.id, LeadId(id.into_inner())).await?;
    let visitors = services.store.lead_visitors(lead.id).await?;
    Ok(HttpResponse::Ok().json(LeadView::of(&lead, Some(&visitors))))
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
    let id = LeadId(id.into_inner());
    let patch = body.0;
    let account = auth.0.id;
    let mut lead = services.lead(account, id).await?;
    if patch.status_id.is_none() && patch.pipeline_id.is_some() {
        return Err(Problem::field(
            "status_id",
            "is required when pipeline_id is given",
        ));
    }
    if let Some(name) = &patch.name {
        let mut errors = Vec::new();
        let name = super::check_name("name", name, &mut errors);
        if !errors.is_empty() {
            return Err(Problem::invalid(errors));
        }
        services.store.rename_lead(id, &name, now_ms()).await?;
        lead.name = name;
    }
    if let Some(status) = patch.status_id {
        let moved = services
            .move_lead(
                account,
                id,
                patch.pipeline_id.map(PipelineId),
                StatusId(status),
                MoveKind::Moved,
                None,
            )
            .await?;
        lead = Lead {
            name: lead.name,
            ..moved
        };
    }
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
        .await?;
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
    let lead = services.lead(auth.0.id, LeadId(id.into_inner())).await?;
    let mut visits = Vec::new();
    for link in services.store.lead_visitors(lead.id).await? {
        let (_, browser_visits) = services.browsing(lead.account_id, link.visitor).await?;
        for v in browser_visits {
            if link.covers(v.started_at) {
                visits.push((
                    v.started_at,
                    VisitView {
                        visitor: link.visitor.encode(),
                        number: v.number,
                        site_id: v.site_id.0,
                        started_at: to_secs(v.started_at),
                        url: v.url,
                        title: v.title,
                        referrer: v.referrer,
                    },
                ));
            }
        }
    }
    visits.sort_by_key(|(at, _)| *at);
    Ok(page_of::<VisitList>(
        &req,
        paging,
        visits.into_iter().map(|(_, v)| v).collect(),
    ))
}

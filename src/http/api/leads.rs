//! `/api/v4/leads`: leads with filters, one lead with its contacts and browsers, moves
//! (`PATCH` with `status_id` / `pipeline_id`, which fire the stage's actions), the lead's
//! timeline and its visits.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::{self, ListParams};
use super::{
    Auth, DEFAULT_LIMIT, MAX_LIMIT, Paging, Refused, listing, page_of, validate_all, validate_items,
};
use crate::domain::ids::{LeadId, PipelineId, StatusId};
use crate::domain::lead::{Lead, LeadFilter, LeadOrder, VisitorLink};
use crate::domain::pipeline::Stage;
use crate::domain::source::LeadSource;
use crate::domain::time::to_secs;
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::lead_changes::LeadChange;
use serde_json::Value;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_leads)
        .service(get_lead)
        .service(update_lead)
        .service(update_leads)
        .service(link_lead_visitors)
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

impl VisitorView {
    fn of(v: &VisitorLink) -> Self {
        Self {
            visitor: v.visitor.encode(),
            linked_at: to_secs(v.linked_at),
            since: v.since.map(to_secs),
            until: v.until.map(to_secs),
        }
    }
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
    /// Where the lead came from: its first touch (the earliest visit of any of its
    /// browsers) and last touch (the visit of the form), each with its landing page,
    /// referrer and campaign parameters. Only on `GET /leads/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<LeadSource>,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: LeadEmbedded,
}

listing!(LeadList, LeadItems, leads, LeadView; batch LeadBatch);

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
            source: None,
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
                visitors: visitors.map(|vs| vs.iter().map(VisitorView::of).collect()),
            },
        }
    }
}

/// Filters of the lead list (documentation; the handler reads them with `ListParams`,
/// in amoCRM's bracket form too: `filter[id][]`, `filter[name]`,
/// `filter[statuses][0][pipeline_id]` and `[status_id]`, `filter[pipeline_id]`,
/// `filter[created_at][from|to]`, `filter[updated_at][from|to]`,
/// `order[id|created_at|updated_at]=asc|desc`, `with=contacts`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query in the document
pub struct LeadQuery {
    page: Option<usize>,
    limit: Option<usize>,
    /// `contacts` (always embedded), and amoCRM's other values, accepted.
    with: Option<String>,
    status_id: Option<u64>,
    pipeline_id: Option<u64>,
    /// Created at or after (Unix seconds).
    created_from: Option<i64>,
    /// Created at or before (Unix seconds).
    created_to: Option<i64>,
    /// Text in the lead's name or its contacts' name, phone or email.
    query: Option<String>,
}

/// The lead list's filters and order, from amoCRM's query forms and footfall's own.
pub(super) fn lead_query(
    params: &mut ListParams,
) -> Result<(LeadFilter, Option<LeadOrder>), Problem> {
    let mut stages: Vec<(String, Option<u64>, Option<u64>)> = Vec::new();
    for (rest, value, name) in params.take_under("filter", "statuses") {
        let (index, field) = match rest.as_slice() {
            [index, field] => (index.clone(), field.as_str()),
            _ => return Err(query::unknown(&[name])),
        };
        let n: u64 = value
            .trim()
            .parse()
            .map_err(|_| Problem::field(&name, format!("`{value}` is not a valid value")))?;
        let i = match stages.iter().position(|s| s.0 == index) {
            Some(i) => i,
            None => {
                stages.push((index, None, None));
                stages.len() - 1
            }
        };
        match field {
            "pipeline_id" => stages[i].1 = Some(n),
            "status_id" => stages[i].2 = Some(n),
            _ => return Err(query::unknown(&[name])),
        }
    }
    let stages = stages
        .into_iter()
        .map(|(index, pipeline, status)| match (pipeline, status) {
            (Some(p), Some(s)) => Ok(Stage {
                pipeline_id: PipelineId(p),
                status_id: StatusId(s),
            }),
            _ => Err(Problem::field(
                &format!("filter[statuses][{index}]"),
                "needs both pipeline_id and status_id",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let created = params.filter_range("created_at")?;
    let updated = params.filter_range("updated_at")?;
    let filter = LeadFilter {
        status_id: params.number("status_id")?.map(StatusId),
        pipeline_id: params.number("pipeline_id")?.map(PipelineId),
        created_from: params.number("created_from")?.or(created.from),
        created_to: params.number("created_to")?.or(created.to),
        query: params.take("query"),
        ids: params
            .filter_numbers("id")?
            .into_iter()
            .map(LeadId)
            .collect(),
        names: params.filter_strings("name")?,
        pipeline_ids: params
            .filter_numbers("pipeline_id")?
            .into_iter()
            .map(PipelineId)
            .collect(),
        stages,
        updated_from: updated.from,
        updated_to: updated.to,
    };
    let order = params
        .order(&LeadOrder::FIELDS)?
        .and_then(|o| LeadOrder::parse(&o.field, o.ascending));
    Ok((filter, order))
}

/// The account's leads, newest first (or in `order[…]`), filtered.
#[utoipa::path(tag = "leads", params(LeadQuery),
    responses((status = 200, description = "OK", body = LeadList),
        (status = 204, description = "No lead matches"), Refused))]
#[get("/leads")]
async fn list_leads(
    auth: Auth,
    req: HttpRequest,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging(DEFAULT_LIMIT)?;
    params.with();
    let (filter, order) = lead_query(&mut params)?;
    params.finish()?;
    let wanted = paging.wanted();
    let leads = services
        .search_leads(auth.0.id, &filter, wanted, order)
        .await?;
    let views = leads.iter().map(|l| LeadView::of(l, None)).collect();
    Ok(page_of::<LeadList>(&req, paging, views))
}

/// One lead with its contacts, linked browsers and source (first and last touch).
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id")),
    responses((status = 200, description = "OK", body = LeadView), Refused))]
#[get("/leads/{id}")]
async fn get_lead(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (lead, browsers, source) = services
        .lead_with_source(auth.0.id, LeadId(id.into_inner()))
        .await?;
    let mut view = LeadView::of(&lead, Some(&browsers));
    view.source = Some(source);
    Ok(HttpResponse::Ok().json(view))
}

/// Changes to a lead: a move (which fires the stages' actions) or a new name. amoCRM's
/// fields that footfall has no use for are accepted and ignored, and so is every field of
/// a lead as footfall answers it: client libraries send a fetched lead back whole.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's fields are read to be accepted, and then ignored
pub struct LeadPatch {
    /// The lead (in a batch update; ignored on `/leads/{id}`).
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    status_id: Option<u64>,
    /// Another pipeline (with `status_id` of that pipeline).
    #[serde(default)]
    pipeline_id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    /// amoCRM's fields, accepted and ignored.
    #[serde(default)]
    price: Option<u64>,
    #[serde(default)]
    responsible_user_id: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    request_id: Option<Value>,
    #[serde(default)]
    updated_at: Option<i64>,
    #[serde(default)]
    updated_by: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    custom_fields_values: Option<Value>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    created_by: Option<u64>,
    #[serde(default)]
    closed_at: Option<i64>,
    #[serde(default)]
    loss_reason_id: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    tags_to_add: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    tags_to_delete: Option<Value>,
    /// As answered (`account_id`, `source`, `_embedded`, `_links`): read-only, ignored.
    #[serde(default)]
    account_id: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    source: Option<Value>,
    #[serde(rename = "_embedded", default)]
    #[schema(rename = "_embedded", value_type = Option<Object>)]
    embedded: Option<Value>,
    #[serde(rename = "_links", default)]
    #[schema(rename = "_links", value_type = Option<Object>)]
    links: Option<Value>,
}

impl LeadPatch {
    fn change(self) -> LeadChange {
        LeadChange {
            name: self.name,
            pipeline_id: self.pipeline_id.map(PipelineId),
            status_id: self.status_id.map(StatusId),
        }
    }
}

/// amoCRM's batch update: each item names its lead by `id`; every lead must exist.
#[utoipa::path(tag = "leads", request_body = Vec<LeadPatch>,
    responses((status = 200, description = "OK", body = LeadBatch), Refused))]
#[patch("/leads")]
async fn update_leads(
    auth: Auth,
    body: ApiJson<Vec<LeadPatch>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (changes, request_ids) = validate_items(
        body.0,
        |p| p.request_id.as_ref(),
        |p| match p.id {
            Some(id) => Ok((LeadId(id), p.change())),
            None => Err(vec![FieldError::new("id", "is required")]),
        },
    )?;
    let leads = services
        .change_leads(auth.0.id, changes)
        .await
        .map_err(|e| Problem::from(e).of_items(&request_ids))?;
    Ok(HttpResponse::Ok().json(LeadBatch::of(
        leads.iter().map(|l| LeadView::of(l, None)).collect(),
    )))
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
    let change = body.0.change();
    let lead = services
        .change_lead(auth.0.id, LeadId(id.into_inner()), change)
        .await?;
    Ok(HttpResponse::Ok().json(LeadView::of(&lead, None)))
}

listing!(TimelineList, TimelineItems, timeline, Value);

/// The page of a timeline (oldest first); the whole history fits in 250 by default.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query in the document
pub struct TimelineQuery {
    page: Option<usize>,
    limit: Option<usize>,
}

/// The lead's history, oldest first: `lead_created`, `moved`, `declined`,
/// `form_submitted`, `visitor_linked`, `visitor_moved`, `visit`, `page_view`,
/// `event_fired`, `delivery`, `event_cancelled`, `note` items, each with `at` (ms) and
/// `created_at` (s).
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id"), TimelineQuery),
    responses((status = 200, description = "OK", body = TimelineList),
        (status = 204, description = "Nothing on the timeline"), Refused))]
#[get("/leads/{id}/timeline")]
async fn lead_timeline(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging(MAX_LIMIT)?;
    params.finish()?;
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
    responses((status = 200, description = "OK", body = VisitList),
        (status = 204, description = "No visit"), Refused))]
#[get("/leads/{id}/visits")]
async fn lead_visits(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging_only()?;
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

/// A browser to link: the signed id t.js gave the page (`footfall('visitor_uid', …)`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVisitorLink {
    visitor_uid: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorItems {
    visitors: Vec<VisitorView>,
}

/// The lead's browsers after linking.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorBatch {
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: VisitorItems,
}

/// Links browsers to the lead, each exactly as a form links it: its earlier page views
/// join the lead's history and its later visits fire the stage's site-visit actions. A
/// forged or unknown `visitor_uid` is refused by name, and nothing is linked.
#[utoipa::path(tag = "leads", params(("id" = u64, Path, description = "Lead id")),
    request_body = Vec<NewVisitorLink>,
    responses((status = 200, description = "OK", body = VisitorBatch), Refused))]
#[post("/leads/{id}/visitors")]
async fn link_lead_visitors(
    auth: Auth,
    id: web::Path<u64>,
    body: ApiJson<Vec<NewVisitorLink>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let signed = validate_all(body.0, |v| Ok::<_, Vec<FieldError>>(v.visitor_uid))?;
    let links = services
        .link_visitors(auth.0.id, LeadId(id.into_inner()), signed)
        .await?;
    Ok(HttpResponse::Ok().json(VisitorBatch {
        embedded: VisitorItems {
            visitors: links.iter().map(VisitorView::of).collect(),
        },
    }))
}

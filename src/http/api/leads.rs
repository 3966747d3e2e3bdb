//! `/api/v4/leads`: leads with filters, one lead with its contacts and browsers, moves
//! (`PATCH` with `status_id` / `pipeline_id`, which fire the stage's actions), the lead's
//! timeline and its visits.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Auth, MAX_LIMIT, Paging, page_of};
use crate::domain::action::MoveKind;
use crate::domain::ids::{LeadId, PipelineId, StatusId};
use crate::domain::lead::{Lead, VisitorLink};
use crate::domain::time::to_secs;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/leads", web::get().to(list))
        .route("/leads/{id}", web::get().to(get))
        .route("/leads/{id}", web::patch().to(update))
        .route("/leads/{id}/timeline", web::get().to(timeline))
        .route("/leads/{id}/visits", web::get().to(visits));
}

pub fn view(lead: &Lead, visitors: Option<&[VisitorLink]>) -> Value {
    let contacts: Vec<Value> = lead
        .contacts
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "phone": c.phone, "email": c.email, "is_main": c.is_main}))
        .collect();
    let mut embedded = json!({ "contacts": contacts });
    if let Some(visitors) = visitors {
        embedded["visitors"] = visitors
            .iter()
            .map(|v| {
                json!({"visitor": v.visitor, "linked_at": to_secs(v.linked_at),
                            "since": v.since.map(to_secs), "until": v.until.map(to_secs)})
            })
            .collect();
    }
    json!({
        "id": lead.id, "name": lead.name, "status_id": lead.status_id, "pipeline_id": lead.pipeline_id,
        "account_id": lead.account_id, "created_at": to_secs(lead.created_at),
        "updated_at": to_secs(lead.updated_at), "_embedded": embedded,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeadQuery {
    page: Option<usize>,
    limit: Option<usize>,
    status_id: Option<u64>,
    pipeline_id: Option<u64>,
    /// Unix seconds, inclusive.
    created_from: Option<i64>,
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

async fn list(
    auth: Auth,
    req: HttpRequest,
    query: web::Query<LeadQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let paging = Paging {
        page: query.page.unwrap_or(1),
        limit: query.limit.unwrap_or(50),
    }
    .check()?;
    let ids = services.store.lead_ids(auth.0.id).await?;
    // Enough matches for this page and one more (to know whether a next page exists).
    let wanted = paging.page * paging.limit + 1;
    let mut matched = Vec::new();
    for chunk in ids.chunks(MAX_LIMIT) {
        for lead in services.store.get_leads(chunk).await? {
            if query.matches(&lead) {
                matched.push(view(&lead, None));
            }
        }
        if matched.len() >= wanted {
            break;
        }
    }
    Ok(page_of(&req, "leads", paging, matched))
}

async fn get(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let lead = services.lead(auth.0.id, LeadId(id.into_inner())).await?;
    let visitors = services.store.lead_visitors(lead.id).await?;
    Ok(HttpResponse::Ok().json(view(&lead, Some(&visitors))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeadPatch {
    #[serde(default)]
    status_id: Option<u64>,
    #[serde(default)]
    pipeline_id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
}

async fn update(
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
        services
            .store
            .rename_lead(id, &name, crate::domain::time::now_ms())
            .await?;
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
    Ok(HttpResponse::Ok().json(view(&lead, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    #[serde(default = "first")]
    page: usize,
    #[serde(default = "max")]
    limit: usize,
}

fn first() -> usize {
    1
}

fn max() -> usize {
    MAX_LIMIT
}

async fn timeline(
    auth: Auth,
    req: HttpRequest,
    id: web::Path<u64>,
    query: web::Query<TimelineQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = Paging {
        page: query.page,
        limit: query.limit,
    }
    .check()?;
    let items = services
        .timeline(auth.0.id, LeadId(id.into_inner()))
        .await?;
    Ok(page_of(&req, "timeline", paging, items))
}

async fn visits(
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
        for v in services.store.visits(link.visitor).await? {
            if link.covers(v.started_at) {
                visits.push((
                    v.started_at,
                    json!({
                        "visitor": link.visitor, "number": v.number, "site_id": v.site_id,
                        "started_at": to_secs(v.started_at), "url": v.url, "title": v.title,
                        "referrer": v.referrer,
                    }),
                ));
            }
        }
    }
    visits.sort_by_key(|(at, _)| *at);
    Ok(page_of(
        &req,
        "visits",
        paging,
        visits.into_iter().map(|(_, v)| v).collect(),
    ))
}

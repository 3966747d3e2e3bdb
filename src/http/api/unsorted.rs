//! `/api/v4/leads/unsorted`: incoming form submissions waiting for a marketer — list,
//! one entry, accept into a stage (the seed's step 5) or decline.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::{self, ListParams};
use super::{Auth, DEFAULT_LIMIT, Refused, listing, page_of};
use crate::domain::ids::{PipelineId, StatusId, UnsortedUid, is_token_like};
use crate::domain::lead::{Lead, Unsorted};
use crate::domain::source::Utm;
use crate::domain::time::to_secs;
use crate::http::body::OptionalApiJson;
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_unsorted)
        .service(unsorted_summary)
        .service(get_unsorted)
        .service(accept_unsorted)
        .service(decline_unsorted)
        .service(decline_unsorted_delete);
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
    /// The campaign parameters (`utm_source` … `utm_term`, `gclid`, `yclid`, `fbclid`) of
    /// the landing page of the visit the form was sent in; absent when it had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    utm: Option<Utm>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdRef {
    pub id: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnsortedEmbedded {
    pub leads: Vec<IdRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<IdRef>>,
}

/// An Unsorted entry (category `forms`).
#[derive(Debug, Serialize, ToSchema)]
pub struct UnsortedView {
    uid: String,
    /// amoCRM's source of the entry: the form's id and name.
    source_uid: String,
    source_name: String,
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
            source_uid: m.form_id.to_string(),
            source_name: m.form_name.clone(),
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
                utm: m.utm.clone(),
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
    /// amoCRM's answer: the entry, where its lead stands, and the lead and contacts.
    fn of(uid: &UnsortedUid, lead: &Lead) -> Self {
        Self {
            uid: uid.to_string(),
            pipeline_id: lead.pipeline_id.0,
            status_id: lead.status_id.0,
            embedded: UnsortedEmbedded {
                leads: vec![IdRef { id: lead.id.0 }],
                contacts: Some(lead.contacts.iter().map(|c| IdRef { id: c.id.0 }).collect()),
            },
        }
    }
}

/// What waits in Unsorted, as amoCRM sums it up.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryView {
    /// Entries waiting.
    total: usize,
    /// Entries waiting by category, as amoCRM's: `{"forms": {"total": 3}}`.
    #[schema(value_type = Object, example = json!({"forms": {"total": 3}}))]
    categories: std::collections::BTreeMap<String, CategoryTotal>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CategoryTotal {
    total: usize,
}

/// Filters of the Unsorted list (documentation; read with `ListParams`, in amoCRM's
/// forms too: `filter[pipeline_id]`, `filter[uid]`, `filter[category]` (`forms`),
/// `order[created_at|updated_at]=asc|desc`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query in the document
pub struct UnsortedQuery {
    page: Option<usize>,
    limit: Option<usize>,
    pipeline_id: Option<u64>,
    form_id: Option<String>,
}

/// What the Unsorted list asks for.
struct UnsortedParams {
    pipeline_ids: Vec<PipelineId>,
    uids: Vec<String>,
    categories: Vec<String>,
    form_id: Option<String>,
    created: query::Range,
    newest_first: bool,
}

impl UnsortedParams {
    fn read(params: &mut ListParams) -> Result<Self, Problem> {
        let mut pipeline_ids: Vec<PipelineId> = params
            .filter_numbers("pipeline_id")?
            .into_iter()
            .map(PipelineId)
            .collect();
        pipeline_ids.extend(params.number("pipeline_id")?.map(PipelineId));
        let order = params.order(&["created_at", "updated_at"])?;
        Ok(Self {
            pipeline_ids,
            uids: params.filter_strings("uid")?,
            categories: params.filter_strings("category")?,
            form_id: params.take("form_id"),
            created: params.filter_range("created_at")?,
            newest_first: order.is_some_and(|o| !o.ascending),
        })
    }

    fn matches(&self, u: &Unsorted) -> bool {
        (self.pipeline_ids.is_empty() || self.pipeline_ids.contains(&u.pipeline_id))
            && (self.uids.is_empty() || self.uids.iter().any(|x| x == u.uid.as_str()))
            && (self.categories.is_empty() || self.categories.contains(&u.category))
            && self
                .form_id
                .as_deref()
                .is_none_or(|f| u.metadata.form_id.as_str() == f)
            && self.created.from.is_none_or(|f| to_secs(u.created_at) >= f)
            && self.created.to.is_none_or(|t| to_secs(u.created_at) <= t)
    }
}

/// The body of an acceptance; without it the lead goes to the first working stage.
/// amoCRM's `user_id` is accepted and ignored.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `user_id` is read to be accepted, and ignored
pub struct AcceptBody {
    #[serde(default)]
    status_id: Option<u64>,
    #[serde(default)]
    user_id: Option<u64>,
}

/// The body of a decline: amoCRM's `user_id`, accepted and ignored.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `user_id` is read to be accepted, and ignored
pub struct DeclineBody {
    #[serde(default)]
    user_id: Option<u64>,
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
    responses((status = 200, description = "OK", body = UnsortedList),
        (status = 204, description = "No entry matches"), Refused))]
#[get("/leads/unsorted")]
async fn list_unsorted(
    auth: Auth,
    req: HttpRequest,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging(DEFAULT_LIMIT)?;
    params.with();
    let filter = UnsortedParams::read(&mut params)?;
    params.finish()?;
    let mut items: Vec<UnsortedView> = services
        .unsorted(auth.0.id, &Default::default())
        .await?
        .iter()
        .filter(|u| filter.matches(u))
        .map(UnsortedView::of)
        .collect();
    if filter.newest_first {
        items.reverse();
    }
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
    request_body(content = DeclineBody, description = "Optional"),
    responses((status = 200, description = "OK", body = DecisionView), Refused))]
#[delete("/leads/unsorted/{uid}/decline")]
async fn decline_unsorted_delete(
    auth: Auth,
    path: web::Path<String>,
    _body: OptionalApiJson<DeclineBody>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let uid = uid(path.into_inner())?;
    let lead = services.decline(auth.0.id, &uid).await?;
    Ok(HttpResponse::Ok().json(DecisionView::of(&uid, &lead)))
}

/// Declines the entry, as `DELETE …/decline` does (kept for earlier clients).
#[utoipa::path(tag = "unsorted", params(("uid" = String, Path, description = "Entry uid")),
    request_body(content = DeclineBody, description = "Optional"),
    responses((status = 200, description = "OK", body = DecisionView), Refused))]
#[post("/leads/unsorted/{uid}/decline")]
async fn decline_unsorted(
    auth: Auth,
    path: web::Path<String>,
    _body: OptionalApiJson<DeclineBody>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let uid = uid(path.into_inner())?;
    let lead = services.decline(auth.0.id, &uid).await?;
    Ok(HttpResponse::Ok().json(DecisionView::of(&uid, &lead)))
}

/// How many entries wait in Unsorted, by category (`filter[pipeline_id]`, `filter[uid]`).
#[utoipa::path(tag = "unsorted",
    responses((status = 200, description = "OK", body = SummaryView), Refused))]
#[get("/leads/unsorted/summary")]
async fn unsorted_summary(
    auth: Auth,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let filter = UnsortedParams::read(&mut params)?;
    params.finish()?;
    let entries: Vec<Unsorted> = services
        .unsorted(auth.0.id, &Default::default())
        .await?
        .into_iter()
        .filter(|u| filter.matches(u))
        .collect();
    let mut categories = std::collections::BTreeMap::new();
    for u in &entries {
        categories
            .entry(u.category.clone())
            .or_insert_with(CategoryTotal::default)
            .total += 1;
    }
    Ok(HttpResponse::Ok().json(SummaryView {
        total: entries.len(),
        categories,
    }))
}

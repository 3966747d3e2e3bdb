//! `/api/v4/leads/unsorted`: incoming form submissions waiting for a marketer — list,
//! one entry, accept into a stage (the seed's step 5) or decline.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::{self, ListParams};
use super::{Auth, DEFAULT_LIMIT, Refused, check_name, listing, page_of, validate_all};
use crate::domain::ids::{FormId, PipelineId, StatusId, UnsortedUid, is_token_like};
use crate::domain::lead::{Lead, Unsorted};
use crate::domain::time::to_secs;
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::body::OptionalApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::submissions::ApiSubmission;
use std::collections::HashMap;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_unsorted)
        .service(unsorted_summary)
        .service(add_unsorted_forms)
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
    responses((status = 200, description = "OK", body = UnsortedList), Refused))]
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

/// amoCRM's incoming lead from a site's form (`POST /leads/unsorted/forms`), sent by the
/// site's own backend. `metadata.visitor_uid` is the signed id t.js gave the page
/// (`footfall('visitor_uid', …)`): that browser is linked to the lead as a form links it.
/// amoCRM's `request_id`, `created_at`, `form_type` and lead `price` are accepted and
/// ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's fields footfall has no use for are accepted, and ignored
pub struct NewFormEntry {
    #[schema(example = "shop-contact")]
    source_uid: String,
    #[schema(example = "Contact form")]
    source_name: String,
    pipeline_id: u64,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    request_id: Option<serde_json::Value>,
    #[serde(default)]
    created_at: Option<i64>,
    metadata: NewFormMetadata,
    #[serde(rename = "_embedded", default)]
    #[schema(rename = "_embedded")]
    embedded: NewFormEmbedded,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `form_type` is accepted, and ignored
pub struct NewFormMetadata {
    #[schema(example = "shop-contact")]
    form_id: String,
    form_name: String,
    #[serde(default)]
    form_page: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    form_sent_at: Option<i64>,
    #[serde(default)]
    referer: String,
    /// The signed visitor id from the page.
    #[serde(default)]
    visitor_uid: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    form_type: Option<serde_json::Value>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFormEmbedded {
    #[serde(default)]
    leads: Vec<NewEntryLead>,
    #[serde(default)]
    contacts: Vec<NewEntryContact>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's `price` and custom fields are accepted, and ignored
pub struct NewEntryLead {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    price: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    custom_fields_values: Option<serde_json::Value>,
}

/// A contact as amoCRM writes it: phone and email among `custom_fields_values` by
/// `field_code` `PHONE` / `EMAIL`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntryContact {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    custom_fields_values: Vec<CustomFieldValue>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // `field_id` and the values' enums are accepted, and ignored
pub struct CustomFieldValue {
    #[serde(default)]
    field_id: Option<u64>,
    #[serde(default)]
    #[schema(example = "PHONE")]
    field_code: Option<String>,
    values: Vec<CustomFieldItem>,
}

#[derive(Deserialize, ToSchema)]
pub struct CustomFieldItem {
    #[schema(example = "+7 900 123-45-67")]
    value: String,
    #[serde(default)]
    #[schema(example = "WORK")]
    enum_code: Option<String>,
}

impl NewEntryContact {
    /// `name`, `phone`, `email` as a form sends them (the first value of each code).
    fn fields(&self) -> HashMap<String, String> {
        let mut fields = HashMap::new();
        let name = self.name.clone().or_else(|| {
            let joined = [self.first_name.as_deref(), self.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!joined.trim().is_empty()).then_some(joined)
        });
        if let Some(name) = name {
            fields.insert("name".to_owned(), name);
        }
        for cf in &self.custom_fields_values {
            let key = match cf.field_code.as_deref() {
                Some("PHONE") => "phone",
                Some("EMAIL") => "email",
                _ => continue,
            };
            if let Some(first) = cf.values.first() {
                let _kind = &first.enum_code;
                fields
                    .entry(key.to_owned())
                    .or_insert_with(|| first.value.clone());
            }
        }
        fields
    }
}

fn check_form_entry(e: NewFormEntry) -> Result<ApiSubmission, Vec<FieldError>> {
    let mut errors = Vec::new();
    if !is_token_like(&e.metadata.form_id) {
        errors.push(FieldError::new(
            "metadata.form_id",
            "is 1 to 64 letters, digits, - or _",
        ));
    }
    let form_name = check_name("metadata.form_name", &e.metadata.form_name, &mut errors);
    check_name("source_name", &e.source_name, &mut errors);
    if e.source_uid.trim().is_empty() {
        errors.push(FieldError::new("source_uid", "is required"));
    }
    if e.embedded.leads.len() > 1 || e.embedded.contacts.len() > 1 {
        errors.push(FieldError::new(
            "_embedded",
            "takes at most one lead and one contact",
        ));
    }
    let lead_name = e
        .embedded
        .leads
        .first()
        .and_then(|l| l.name.as_deref())
        .map(|n| check_name("_embedded.leads[0].name", n, &mut errors));
    let contact = e
        .embedded
        .contacts
        .first()
        .map(NewEntryContact::fields)
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ApiSubmission {
        pipeline_id: PipelineId(e.pipeline_id),
        form_id: FormId(e.metadata.form_id),
        form_name,
        form_page: e.metadata.form_page,
        ip: e.metadata.ip,
        referer: e.metadata.referer,
        form_sent_at: e.metadata.form_sent_at,
        visitor_uid: e.metadata.visitor_uid,
        lead_name,
        contact,
    })
}

/// One created entry, as amoCRM answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEntryView {
    /// None when the contact's open lead took the submission (no new entry).
    uid: Option<String>,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: UnsortedEmbedded,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEntries {
    unsorted: Vec<CreatedEntryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEntriesAnswer {
    #[serde(rename = "_total_items")]
    #[schema(rename = "_total_items")]
    total_items: usize,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: CreatedEntries,
}

/// Adds incoming leads from a site's forms, sent by the site's backend (all or none are
/// checked first). A forged or unknown `metadata.visitor_uid` is refused, naming it.
#[utoipa::path(tag = "unsorted", request_body = Vec<NewFormEntry>,
    responses((status = 200, description = "OK", body = CreatedEntriesAnswer), Refused))]
#[post("/leads/unsorted/forms")]
async fn add_unsorted_forms(
    auth: Auth,
    body: ApiJson<Vec<NewFormEntry>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let entries = validate_all(body.0, check_form_entry)?;
    let created: Vec<CreatedEntryView> = services
        .submit_api_forms(auth.0.id, entries)
        .await?
        .into_iter()
        .map(|c| CreatedEntryView {
            uid: c.uid.map(|u| u.to_string()),
            embedded: UnsortedEmbedded {
                leads: vec![IdRef { id: c.lead_id.0 }],
                contacts: Some(
                    c.contact_id
                        .map(|id| IdRef { id: id.0 })
                        .into_iter()
                        .collect(),
                ),
            },
        })
        .collect();
    Ok(HttpResponse::Ok().json(CreatedEntriesAnswer {
        total_items: created.len(),
        embedded: CreatedEntries { unsorted: created },
    }))
}

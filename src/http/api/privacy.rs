//! The privacy routes: erasure of a lead (`DELETE /leads/{id}`), of a browser
//! (`DELETE /visitors/{visitor_uid}`) and of a data subject (`POST /privacy/erase`), the
//! erasure audit, and the export of everything held about a subject.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::ListParams;
use super::{Auth, Paging, Refused, listing, page_of};
use crate::domain::event_record::EventRecord;
use crate::domain::ids::LeadId;
use crate::domain::lead::{Contact, Lead, Unsorted};
use crate::domain::privacy::{AuditRecord, Erased, ErasureKind, Subject, token_label};
use crate::domain::time::to_secs;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::privacy::{BrowserExport, NoteExport, SubjectExport};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(erase_lead)
        .service(erase_visitor)
        .service(erase_subject)
        .service(list_audit)
        .service(export_subject);
}

/// Who asked, for the audit: the label of the request's token (never the token).
pub struct Actor(String);

impl FromRequest for Actor {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.get(7..).unwrap_or("").trim())
            .unwrap_or("");
        ready(Ok(Actor(token_label(token))))
    }
}

/// How much an erasure removed (counts, never contents).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasedView {
    leads: u64,
    contacts: u64,
    unsorted: u64,
    visitors: u64,
    page_views: u64,
    events: u64,
}

impl ErasedView {
    fn of(e: &Erased) -> Self {
        Self {
            leads: e.leads,
            contacts: e.contacts,
            unsorted: e.unsorted,
            visitors: e.visitors,
            page_views: e.page_views,
            events: e.events,
        }
    }
}

/// Erases the lead and everything of it: its contacts (kept on the lead), Unsorted
/// entries, notes and timeline, its events (a delayed one never fires), and the history
/// and links of every browser linked to it.
#[utoipa::path(tag = "privacy", params(("id" = u64, Path, description = "Lead id")),
    responses((status = 204, description = "Erased"), Refused))]
#[delete("/leads/{id}")]
async fn erase_lead(
    auth: Auth,
    actor: Actor,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    services
        .erase_lead(auth.0.id, LeadId(id.into_inner()), &actor.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Erases one browser's history in the account, its last sightings, its links to leads
/// and the timeline entries that name it; the leads stay. `visitor_uid` is the id shown
/// in a lead's `visitors` or an Unsorted entry's metadata, or the signed id t.js gave the
/// page.
#[utoipa::path(tag = "privacy",
    params(("visitor_uid" = String, Path, description = "The browser's id")),
    responses((status = 204, description = "Erased"), Refused))]
#[delete("/visitors/{visitor_uid}")]
async fn erase_visitor(
    auth: Auth,
    actor: Actor,
    path: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let visitor = services.named_visitor(auth.0.id, &path.into_inner())?;
    services.erase_visitor(auth.0.id, visitor, &actor.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A data subject to erase: one of `email` and `phone`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    #[schema(example = "anna@example.com")]
    email: Option<String>,
    phone: Option<String>,
}

fn subject_of(email: Option<&str>, phone: Option<&str>) -> Result<Subject, Problem> {
    match (email, phone) {
        (Some(email), None) => Subject::email(email).map_err(|e| Problem::invalid(vec![e])),
        (None, Some(phone)) => Subject::phone(phone).map_err(|e| Problem::invalid(vec![e])),
        _ => Err(Problem::bad_request("give exactly one of email and phone")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EraseAnswer {
    erased: ErasedView,
}

/// Erases everything of a data subject in the account: every lead with a contact of that
/// email or phone, as `DELETE /leads/{id}` erases one. Answers what was removed (counts).
#[utoipa::path(tag = "privacy", request_body = EraseRequest,
    responses((status = 200, description = "Erased", body = EraseAnswer), Refused))]
#[post("/privacy/erase")]
async fn erase_subject(
    auth: Auth,
    actor: Actor,
    body: ApiJson<EraseRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let subject = subject_of(body.0.email.as_deref(), body.0.phone.as_deref())?;
    let erased = services
        .erase_subject(auth.0.id, &subject, &actor.0)
        .await?;
    Ok(HttpResponse::Ok().json(EraseAnswer {
        erased: ErasedView::of(&erased),
    }))
}

/// One erasure: when, by which token (a digest label), what kind, how many.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Unix seconds.
    at: i64,
    #[schema(example = "sha256:3f2a9c01b7de")]
    token: String,
    #[schema(value_type = String, example = "lead")]
    kind: ErasureKind,
    erased: ErasedView,
}

impl AuditView {
    fn of(r: &AuditRecord) -> Self {
        Self {
            at: to_secs(r.at),
            token: r.token.clone(),
            kind: r.kind,
            erased: ErasedView::of(&r.erased),
        }
    }
}

listing!(AuditList, AuditItems, audit, AuditView);

/// The account's erasures, newest first (the newest 10 000), a page at a time; 204 when
/// there are none. No personal data.
#[utoipa::path(tag = "privacy", params(Paging),
    responses((status = 200, description = "OK", body = AuditList),
        (status = 204, description = "No erasure recorded"), Refused))]
#[get("/privacy/audit")]
async fn list_audit(
    auth: Auth,
    req: HttpRequest,
    params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging_only()?;
    let records = services.privacy_audit(auth.0.id).await?;
    let items = records.iter().map(AuditView::of).collect();
    Ok(page_of::<AuditList>(&req, paging, items))
}

/// Whose data to export: exactly one of these.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    email: Option<String>,
    phone: Option<String>,
    visitor_uid: Option<String>,
    lead_id: Option<u64>,
}

/// Everything held about the subject, records as footfall stores them (times in Unix
/// milliseconds).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportView {
    #[schema(value_type = Vec<Object>)]
    contacts: Vec<Contact>,
    #[schema(value_type = Vec<Object>)]
    leads: Vec<Lead>,
    #[schema(value_type = Vec<Object>)]
    unsorted: Vec<Unsorted>,
    /// Each browser with its visits and page views.
    #[schema(value_type = Vec<Object>)]
    browsers: Vec<BrowserExport>,
    /// Webhook events with their delivery attempts.
    #[schema(value_type = Vec<Object>)]
    events: Vec<EventRecord>,
    #[schema(value_type = Vec<Object>)]
    notes: Vec<NoteExport>,
}

impl From<SubjectExport> for ExportView {
    fn from(e: SubjectExport) -> Self {
        Self {
            contacts: e.contacts,
            leads: e.leads,
            unsorted: e.unsorted,
            browsers: e.browsers,
            events: e.events,
            notes: e.notes,
        }
    }
}

/// Everything footfall holds about a subject — by `email`, `phone`, `visitor_uid` or
/// `lead_id` — as one JSON document: contacts, leads, Unsorted entries, browsers with
/// visits and page views, events with deliveries, notes.
#[utoipa::path(tag = "privacy", params(ExportQuery),
    responses((status = 200, description = "OK", body = ExportView), Refused))]
#[get("/privacy/export")]
async fn export_subject(
    auth: Auth,
    query: web::Query<ExportQuery>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let q = query.into_inner();
    let given = [
        q.email.is_some(),
        q.phone.is_some(),
        q.visitor_uid.is_some(),
        q.lead_id.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(Problem::bad_request(
            "give exactly one of email, phone, visitor_uid and lead_id",
        ));
    }
    let subject = match (q.visitor_uid, q.lead_id) {
        (Some(raw), _) => Subject::Visitor(services.named_visitor(auth.0.id, &raw)?),
        (_, Some(id)) => Subject::Lead(LeadId(id)),
        _ => subject_of(q.email.as_deref(), q.phone.as_deref())?,
    };
    let export = services.export_subject(auth.0.id, &subject).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "content-disposition",
            "attachment; filename=\"footfall-export.json\"",
        ))
        .json(ExportView::from(export)))
}

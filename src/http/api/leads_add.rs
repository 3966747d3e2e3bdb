//! `POST /api/v4/leads` and `POST /api/v4/leads/complex`: leads added by a site's backend
//! or an integration, amoCRM-shaped — an array of leads, each with `_embedded.contacts`
//! (by `id`, or new with `name` and `custom_fields_values` of `field_code` `PHONE` /
//! `EMAIL`) and a `visitor_uid` that links the page's browser to the lead as a form does.
//! The answers are amoCRM's: `_embedded.leads` for `/leads`, a bare array of ids for
//! `/leads/complex`.

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::unsorted_forms::{CustomFieldValue, contact_fields};
use super::{Auth, Link, Refused, check_name, validate_items};
use crate::domain::ids::{ContactId, PipelineId, StatusId};
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::api_leads::{ApiLead, ApiLeadAdded, LeadContact};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(add_leads).service(add_leads_complex);
}

/// A lead to add. amoCRM's fields footfall has no use for (`price`, `responsible_user_id`,
/// `created_by`, `custom_fields_values`, tags, companies …) are accepted and ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's fields footfall has no use for are accepted, and ignored
pub struct NewLeadIn {
    #[serde(default)]
    #[schema(example = "Order #1024")]
    name: Option<String>,
    #[serde(default)]
    price: Option<u64>,
    /// The pipeline (the account's first when neither it nor `status_id` is given).
    #[serde(default)]
    pipeline_id: Option<u64>,
    /// The stage (the pipeline's first working stage when not given).
    #[serde(default)]
    status_id: Option<u64>,
    /// The signed visitor id t.js gave the page (`footfall('visitor_uid', …)`): that
    /// browser is linked to the lead as a form links it.
    #[serde(default)]
    visitor_uid: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    request_id: Option<Value>,
    #[serde(default)]
    responsible_user_id: Option<u64>,
    #[serde(default)]
    created_by: Option<u64>,
    #[serde(default)]
    updated_by: Option<u64>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    updated_at: Option<i64>,
    #[serde(default)]
    closed_at: Option<i64>,
    #[serde(default)]
    loss_reason_id: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    custom_fields_values: Option<Value>,
    #[serde(rename = "_embedded", default)]
    #[schema(rename = "_embedded")]
    embedded: NewLeadEmbedded,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // tags and companies are accepted, and ignored
pub struct NewLeadEmbedded {
    #[serde(default)]
    contacts: Vec<NewLeadContact>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    tags: Option<Vec<Value>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    companies: Option<Vec<Value>>,
}

/// A contact of the new lead: an existing one by `id`, or a new one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's fields footfall has no use for are accepted, and ignored
pub struct NewLeadContact {
    #[serde(default)]
    id: Option<u64>,
    /// The first contact is the main one.
    #[serde(default)]
    is_main: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    custom_fields_values: Vec<CustomFieldValue>,
    #[serde(default)]
    responsible_user_id: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    request_id: Option<Value>,
}

/// The most contacts a lead takes in one request.
const MAX_CONTACTS: usize = 10;

/// A lead as the service takes it; `complex` wants new contacts only, at most one.
fn check_lead(l: NewLeadIn, complex: bool) -> Result<ApiLead, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = l
        .name
        .as_deref()
        .map(|n| check_name("name", n, &mut errors));
    let limit = if complex { 1 } else { MAX_CONTACTS };
    if l.embedded.contacts.len() > limit {
        errors.push(FieldError::new(
            "_embedded.contacts",
            format!("takes at most {limit}"),
        ));
    }
    let mut contacts = Vec::with_capacity(l.embedded.contacts.len());
    for (j, c) in l.embedded.contacts.iter().enumerate() {
        match c.id {
            Some(_) if complex => errors.push(FieldError::new(
                format!("_embedded.contacts[{j}].id"),
                "a complex lead comes with new contacts; link existing ones with POST /leads",
            )),
            Some(id) => contacts.push(LeadContact::Existing(ContactId(id))),
            None => contacts.push(LeadContact::New(contact_fields(
                c.name.as_deref(),
                c.first_name.as_deref(),
                c.last_name.as_deref(),
                &c.custom_fields_values,
            ))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ApiLead {
        name,
        pipeline_id: l.pipeline_id.map(PipelineId),
        status_id: l.status_id.map(StatusId),
        contacts,
        visitor_uid: l.visitor_uid,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SelfLink {
    #[serde(rename = "self")]
    this: Link,
}

/// One added lead, as amoCRM answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedLead {
    id: u64,
    request_id: String,
    #[serde(rename = "_links")]
    #[schema(rename = "_links")]
    links: SelfLink,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddedLeads {
    leads: Vec<AddedLead>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddedLeadsAnswer {
    #[serde(rename = "_links")]
    #[schema(rename = "_links")]
    links: SelfLink,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: AddedLeads,
}

fn link(services: &Services, path: &str) -> Link {
    Link {
        href: format!(
            "{}/api/v4{path}",
            services.settings.server.public_url.trim_end_matches('/')
        ),
    }
}

/// The one road of both routes: every lead checked (`complex`: with its contact), then
/// added; errors name the item by its `request_id`. The added leads and those ids.
async fn add(
    auth: &Auth,
    body: ApiJson<Vec<NewLeadIn>>,
    services: &Services,
    complex: bool,
) -> Result<(Vec<ApiLeadAdded>, Vec<String>), Problem> {
    let (leads, request_ids) = validate_items(
        body.0,
        |l| l.request_id.as_ref(),
        |l| check_lead(l, complex),
    )?;
    let added = services
        .add_leads(auth.0.id, leads)
        .await
        .map_err(|e| Problem::from(e).of_items(&request_ids))?;
    Ok((added, request_ids))
}

/// Adds leads (all are checked first; errors name the item: `[0].visitor_uid`).
#[utoipa::path(tag = "leads", request_body = Vec<NewLeadIn>,
    responses((status = 200, description = "OK", body = AddedLeadsAnswer), Refused))]
#[post("/leads")]
async fn add_leads(
    auth: Auth,
    body: ApiJson<Vec<NewLeadIn>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (added, request_ids) = add(&auth, body, &services, false).await?;
    let leads = added
        .iter()
        .zip(request_ids)
        .map(|(a, request_id)| AddedLead {
            id: a.lead_id.0,
            request_id,
            links: SelfLink {
                this: link(&services, &format!("/leads/{}", a.lead_id)),
            },
        })
        .collect();
    Ok(HttpResponse::Ok().json(AddedLeadsAnswer {
        links: SelfLink {
            this: link(&services, "/leads"),
        },
        embedded: AddedLeads { leads },
    }))
}

/// One lead of a complex addition, as amoCRM answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplexAdded {
    id: u64,
    contact_id: Option<u64>,
    /// footfall keeps no companies: always null.
    company_id: Option<u64>,
    request_id: Vec<String>,
    /// footfall never merges a complex lead into a known one.
    merged: bool,
}

/// Adds leads each with at most one new contact, in one call (amoCRM's `/leads/complex`);
/// the answer is a bare array, as amoCRM's.
#[utoipa::path(tag = "leads", request_body = Vec<NewLeadIn>,
    responses((status = 200, description = "OK", body = Vec<ComplexAdded>), Refused))]
#[post("/leads/complex")]
async fn add_leads_complex(
    auth: Auth,
    body: ApiJson<Vec<NewLeadIn>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (added, request_ids) = add(&auth, body, &services, true).await?;
    let answer: Vec<ComplexAdded> = added
        .iter()
        .zip(request_ids)
        .map(|(a, request_id)| ComplexAdded {
            id: a.lead_id.0,
            contact_id: a.contact_ids.first().map(|c| c.0),
            company_id: None,
            request_id: vec![request_id],
            merged: false,
        })
        .collect();
    Ok(HttpResponse::Ok().json(answer))
}

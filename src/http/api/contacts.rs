//! `/api/v4/contacts`: the account's contacts as amoCRM lists them — phone and email in
//! `custom_fields_values` (`field_code` `PHONE` / `EMAIL`), `with=leads` for the leads
//! each belongs to. Read only: contacts come with their leads (forms, the API's
//! Unsorted forms).

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::ListParams;
use super::{Auth, DEFAULT_LIMIT, Paging, Refused, listing, page_of};
use crate::domain::ids::ContactId;
use crate::domain::time::to_secs;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::contacts::ContactRecord;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_contacts).service(get_contact);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldValue {
    value: String,
    #[schema(example = "WORK")]
    enum_code: &'static str,
}

/// A custom field's values, as amoCRM writes them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomFieldView {
    #[schema(example = "PHONE")]
    field_code: &'static str,
    #[schema(example = "Phone")]
    field_name: &'static str,
    #[schema(example = "multitext")]
    field_type: &'static str,
    values: Vec<FieldValue>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadRef {
    id: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactEmbedded {
    /// With `with=leads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    leads: Option<Vec<LeadRef>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    id: u64,
    name: String,
    account_id: u64,
    created_at: i64,
    updated_at: i64,
    custom_fields_values: Vec<CustomFieldView>,
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: ContactEmbedded,
}

listing!(ContactList, ContactItems, contacts, ContactView);

impl ContactView {
    pub(super) fn of(r: &ContactRecord, account: u64, with_leads: bool) -> Self {
        let field = |code, name, value: &Option<String>| {
            value.as_ref().map(|v| CustomFieldView {
                field_code: code,
                field_name: name,
                field_type: "multitext",
                values: vec![FieldValue {
                    value: v.clone(),
                    enum_code: "WORK",
                }],
            })
        };
        Self {
            id: r.contact.id.0,
            name: r.contact.name.clone(),
            account_id: account,
            created_at: to_secs(r.created_at),
            updated_at: to_secs(r.updated_at),
            custom_fields_values: [
                field("PHONE", "Phone", &r.contact.phone),
                field("EMAIL", "Email", &r.contact.email),
            ]
            .into_iter()
            .flatten()
            .collect(),
            embedded: ContactEmbedded {
                leads: with_leads.then(|| r.leads.iter().map(|l| LeadRef { id: l.0 }).collect()),
            },
        }
    }
}

/// The account's contacts, newest first: `filter[id]`, `query` (name, phone, email),
/// `with=leads`, `order[id]`.
#[utoipa::path(tag = "contacts", params(Paging),
    responses((status = 200, description = "OK", body = ContactList),
        (status = 204, description = "No contact matches"), Refused))]
#[get("/contacts")]
async fn list_contacts(
    auth: Auth,
    req: HttpRequest,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging(DEFAULT_LIMIT)?;
    let with_leads = params.with().iter().any(|w| w == "leads");
    let ids: Vec<u64> = params.filter_numbers("id")?;
    let query = params.take("query").map(|q| q.to_lowercase());
    let order = params.order(&["id"])?;
    params.finish()?;
    let account = auth.0.id;
    let mut contacts: Vec<ContactView> = services
        .contacts(account)
        .await?
        .iter()
        .filter(|r| ids.is_empty() || ids.contains(&r.contact.id.0))
        .filter(|r| {
            query.as_deref().is_none_or(|q| {
                [
                    Some(&r.contact.name),
                    r.contact.phone.as_ref(),
                    r.contact.email.as_ref(),
                ]
                .into_iter()
                .flatten()
                .any(|v| v.to_lowercase().contains(q))
            })
        })
        .map(|r| ContactView::of(r, account.0, with_leads))
        .collect();
    if order.is_some_and(|o| o.ascending) {
        contacts.reverse();
    }
    Ok(page_of::<ContactList>(&req, paging, contacts))
}

/// One contact (`with=leads` for its leads).
#[utoipa::path(tag = "contacts", params(("id" = u64, Path, description = "Contact id")),
    responses((status = 200, description = "OK", body = ContactView), Refused))]
#[get("/contacts/{id}")]
async fn get_contact(
    auth: Auth,
    id: web::Path<u64>,
    mut params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let with_leads = params.with().iter().any(|w| w == "leads");
    params.finish()?;
    let record = services
        .contact(auth.0.id, ContactId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(ContactView::of(&record, auth.0.id.0, with_leads)))
}

//! `POST /api/v4/contacts`, `PATCH /api/v4/contacts` (batch) and `PATCH
//! /api/v4/contacts/{id}`: contacts as amoCRM writes them — `name` (or `first_name` and
//! `last_name`), phone and email among `custom_fields_values` by `field_code`. A change
//! reaches every lead the contact is on, and the lookups by email and phone.

use actix_web::{HttpResponse, patch, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::contacts::ContactView;
use super::unsorted_forms::{CustomFieldValue, contact_fields};
use super::{Auth, Link, Refused, check_name, validate_items};
use crate::domain::ids::ContactId;
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::contact_writes::ContactPatch;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(add_contacts)
        .service(update_contacts)
        .service(update_contact);
}

/// A contact as amoCRM writes it. amoCRM's fields footfall has no use for are accepted
/// and ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // amoCRM's fields footfall has no use for are accepted, and ignored
pub struct ContactIn {
    /// The contact (in a batch update; ignored elsewhere).
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    #[schema(example = "Anna Petrova")]
    name: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    /// `PHONE` and `EMAIL` by `field_code`; on a change, a code given with no values
    /// removes it.
    #[serde(default)]
    custom_fields_values: Option<Vec<CustomFieldValue>>,
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
    #[schema(value_type = Option<Object>)]
    request_id: Option<Value>,
    #[serde(rename = "_embedded", default)]
    #[schema(rename = "_embedded", value_type = Option<Object>)]
    embedded: Option<Value>,
}

impl ContactIn {
    /// The change it asks for: only what it names.
    fn patch(&self) -> Result<ContactPatch, Vec<FieldError>> {
        let mut errors = Vec::new();
        let joined = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let name = self
            .name
            .clone()
            .or_else(|| (!joined.trim().is_empty()).then_some(joined))
            .map(|n| check_name("name", &n, &mut errors));
        let mut patch = ContactPatch {
            name,
            ..ContactPatch::default()
        };
        for (i, cf) in self.custom_fields_values.iter().flatten().enumerate() {
            let slot = match cf.field_code.as_deref() {
                Some("PHONE") => &mut patch.phone,
                Some("EMAIL") => &mut patch.email,
                _ => continue,
            };
            // No value removes the field; a value that is not text is a mistake, not
            // a removal.
            *slot = Some(match cf.values.first() {
                None => String::new(),
                Some(v) => match v.text() {
                    Some(text) => text,
                    None => {
                        errors.push(FieldError::new(
                            format!("custom_fields_values[{i}].values[0].value"),
                            "must be text",
                        ));
                        continue;
                    }
                },
            });
        }
        if errors.is_empty() {
            Ok(patch)
        } else {
            Err(errors)
        }
    }
}

/// One added contact, as amoCRM answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedContact {
    id: u64,
    request_id: String,
    #[serde(rename = "_links")]
    #[schema(rename = "_links")]
    links: ContactLinks,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactLinks {
    #[serde(rename = "self")]
    this: Link,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddedContactItems {
    contacts: Vec<AddedContact>,
}

/// The contacts added, as amoCRM answers them.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedContactBatch {
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: AddedContactItems,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangedContactItems {
    contacts: Vec<ContactView>,
}

/// The contacts changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangedContactBatch {
    #[serde(rename = "_embedded")]
    #[schema(rename = "_embedded")]
    embedded: ChangedContactItems,
}

/// Adds contacts (all are checked first; errors name the item: `[0].email`).
#[utoipa::path(tag = "contacts", request_body = Vec<ContactIn>,
    responses((status = 200, description = "OK", body = AddedContactBatch), Refused))]
#[post("/contacts")]
async fn add_contacts(
    auth: Auth,
    body: ApiJson<Vec<ContactIn>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (contacts, request_ids) = validate_items(
        body.0,
        |c| c.request_id.as_ref(),
        |c| {
            let mut errors = Vec::new();
            if let Some(name) = &c.name {
                check_name("name", name, &mut errors);
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            Ok(contact_fields(
                c.name.as_deref(),
                c.first_name.as_deref(),
                c.last_name.as_deref(),
                c.custom_fields_values.as_deref().unwrap_or_default(),
            ))
        },
    )?;
    let base = services.settings.server.public_url.trim_end_matches('/');
    let added = services
        .add_contacts(auth.0.id, contacts)
        .await
        .map_err(|e| Problem::from(e).of_items(&request_ids))?
        .into_iter()
        .zip(request_ids)
        .map(|(r, request_id)| AddedContact {
            id: r.contact.id.0,
            request_id,
            links: ContactLinks {
                this: Link {
                    href: format!("{base}/api/v4/contacts/{}", r.contact.id),
                },
            },
        })
        .collect();
    Ok(HttpResponse::Ok().json(AddedContactBatch {
        embedded: AddedContactItems { contacts: added },
    }))
}

/// amoCRM's batch change: each item names its contact by `id`; every contact must exist.
#[utoipa::path(tag = "contacts", request_body = Vec<ContactIn>,
    responses((status = 200, description = "OK", body = ChangedContactBatch), Refused))]
#[patch("/contacts")]
async fn update_contacts(
    auth: Auth,
    body: ApiJson<Vec<ContactIn>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let (changes, request_ids) = validate_items(
        body.0,
        |c| c.request_id.as_ref(),
        |c| match c.id {
            Some(id) => Ok((ContactId(id), c.patch()?)),
            None => Err(vec![FieldError::new("id", "is required")]),
        },
    )?;
    let account = auth.0.id;
    let changed = services
        .update_contacts(account, changes)
        .await
        .map_err(|e| Problem::from(e).of_items(&request_ids))?;
    Ok(HttpResponse::Ok().json(ChangedContactBatch {
        embedded: ChangedContactItems {
            contacts: changed
                .iter()
                .map(|r| ContactView::of(r, account.0, false))
                .collect(),
        },
    }))
}

/// Changes one contact.
#[utoipa::path(tag = "contacts", params(("id" = u64, Path, description = "Contact id")),
    request_body = ContactIn,
    responses((status = 200, description = "OK", body = ContactView), Refused))]
#[patch("/contacts/{id}")]
async fn update_contact(
    auth: Auth,
    id: web::Path<u64>,
    body: ApiJson<ContactIn>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let patch = body.0.patch().map_err(Problem::invalid)?;
    let account = auth.0.id;
    let id = ContactId(id.into_inner());
    services.contact(account, id).await?;
    let changed = services
        .update_contacts(account, vec![(id, patch)])
        .await
        .map_err(|e| match e {
            // One contact: its errors name its fields, not `[0]`.
            crate::service::Error::Invalid(es) => crate::service::Error::Invalid(
                es.into_iter()
                    .map(|f| {
                        let field = f.field.strip_prefix("[0].").unwrap_or(&f.field).to_owned();
                        FieldError::new(field, f.message)
                    })
                    .collect(),
            ),
            other => other,
        })?;
    let view = changed
        .first()
        .map(|r| ContactView::of(r, account.0, false))
        .ok_or_else(|| Problem::bad_request("nothing changed"))?;
    Ok(HttpResponse::Ok().json(view))
}

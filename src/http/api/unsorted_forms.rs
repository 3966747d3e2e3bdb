//! `POST /api/v4/leads/unsorted/forms`: amoCRM's incoming leads from a site's own backend,
//! each with the `visitor_uid` t.js gave the page, so that the browser is linked to the
//! lead exactly as a form links it.

use std::collections::HashMap;

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::unsorted::{IdRef, UnsortedEmbedded};
use super::{Auth, Refused, check_name, validate_items};
use crate::domain::ids::{FormId, PipelineId, is_token_like};
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::api_submissions::ApiSubmission;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(add_unsorted_forms);
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
    pub(super) field_id: Option<u64>,
    #[serde(default)]
    #[schema(example = "PHONE")]
    pub(super) field_code: Option<String>,
    pub(super) values: Vec<CustomFieldItem>,
}

/// One value of a custom field: text, a number, a flag, or none (a select field's
/// `enum_id`); footfall reads the text of `PHONE` and `EMAIL` and ignores the rest.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // the values' enums are accepted, and ignored
pub struct CustomFieldItem {
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "+7 900 123-45-67")]
    value: Option<serde_json::Value>,
    #[serde(default)]
    enum_id: Option<u64>,
    #[serde(default)]
    #[schema(example = "WORK")]
    enum_code: Option<String>,
}

impl CustomFieldItem {
    /// The value as text (a number as written); none for another kind of value.
    pub(super) fn text(&self) -> Option<String> {
        match self.value.as_ref()? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl NewEntryContact {
    /// `name`, `phone`, `email` as a form sends them (the first value of each code).
    fn fields(&self) -> HashMap<String, String> {
        contact_fields(
            self.name.as_deref(),
            self.first_name.as_deref(),
            self.last_name.as_deref(),
            &self.custom_fields_values,
        )
    }
}

/// A contact's `name`, `phone`, `email` as a form sends them, from amoCRM's form of a
/// contact: `name` (or `first_name` and `last_name`), and the first value of the
/// `PHONE` and `EMAIL` custom fields.
pub(super) fn contact_fields(
    name: Option<&str>,
    first_name: Option<&str>,
    last_name: Option<&str>,
    custom_fields_values: &[CustomFieldValue],
) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    let name = name.map(str::to_owned).or_else(|| {
        let joined = [first_name, last_name]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!joined.trim().is_empty()).then_some(joined)
    });
    if let Some(name) = name {
        fields.insert("name".to_owned(), name);
    }
    for cf in custom_fields_values {
        let key = match cf.field_code.as_deref() {
            Some("PHONE") => "phone",
            Some("EMAIL") => "email",
            _ => continue,
        };
        if let Some(text) = cf.values.first().and_then(CustomFieldItem::text) {
            fields.entry(key.to_owned()).or_insert(text);
        }
    }
    fields
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
    let (entries, request_ids) =
        validate_items(body.0, |e| e.request_id.as_ref(), check_form_entry)?;
    let created: Vec<CreatedEntryView> = services
        .submit_api_forms(auth.0.id, entries)
        .await
        .map_err(|e| Problem::from(e).of_items(&request_ids))?
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

//! `/api/v4/forms`: forms on a site. A submission creates an Unsorted lead in the form's
//! pipeline; a plain HTML post is redirected to `success_url`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::ListParams;
use super::{Auth, Paging, Refused, check_name, listing, page_of, validate_all};
use crate::domain::form::{ContactField, Form, default_required};
use crate::domain::ids::{FormId, PipelineId, SiteId, is_token_like};
use crate::domain::pipeline::Pipeline;
use crate::domain::site::{Site, parse_web_url};
use crate::domain::time::{now_ms, to_secs};
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_forms)
        .service(create_forms)
        .service(get_form);
}

/// A form on a site.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormView {
    /// Goes into the form's `data-footfall-form`.
    id: String,
    name: String,
    site_id: u64,
    pipeline_id: u64,
    /// Where a plain HTML post is redirected after a submission.
    success_url: Option<String>,
    /// Contact fields a submission must carry: `name`, `phone`, `email`.
    required: Vec<String>,
    created_at: i64,
    /// The HTML form to paste into the site.
    snippet: String,
}

listing!(FormList, FormItems, forms, FormView; batch FormBatch);

fn field_name(f: ContactField) -> &'static str {
    match f {
        ContactField::Name => "name",
        ContactField::Phone => "phone",
        ContactField::Email => "email",
    }
}

impl FormView {
    fn of(form: &Form, services: &Services) -> Self {
        let base = services.settings.server.public_url.trim_end_matches('/');
        let required = |f: ContactField| {
            if form.required.contains(&f) {
                " required"
            } else {
                ""
            }
        };
        let snippet = format!(
            "<form data-footfall-form=\"{id}\" method=\"post\" action=\"{base}/v1/forms/{id}/submit\">\n  \
             <input name=\"name\" placeholder=\"Name\"{}>\n  \
             <input name=\"phone\" type=\"tel\" placeholder=\"Phone\"{}>\n  \
             <input name=\"email\" type=\"email\" placeholder=\"Email\"{}>\n  \
             <input name=\"ff_hp\" tabindex=\"-1\" autocomplete=\"off\" aria-hidden=\"true\" style=\"position:absolute;left:-9999px\">\n  \
             <button>Send</button>\n</form>",
            required(ContactField::Name),
            required(ContactField::Phone),
            required(ContactField::Email),
            id = form.id,
        );
        Self {
            id: form.id.to_string(),
            name: form.name.clone(),
            site_id: form.site_id.0,
            pipeline_id: form.pipeline_id.0,
            success_url: form.success_url.clone(),
            required: form
                .required
                .iter()
                .map(|f| field_name(*f).to_owned())
                .collect(),
            created_at: to_secs(form.created_at),
            snippet,
        }
    }
}

/// A form to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewForm {
    #[schema(example = "Contact")]
    name: String,
    site_id: u64,
    pipeline_id: u64,
    #[serde(default)]
    #[schema(example = "https://shop.example/thanks")]
    success_url: Option<String>,
    /// Defaults to `["name"]`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, example = json!(["name", "email"]))]
    required: Option<Vec<ContactField>>,
}

/// The account's forms.
#[utoipa::path(tag = "forms", params(Paging),
    responses((status = 200, description = "OK", body = FormList),
        (status = 204, description = "No form"), Refused))]
#[get("/forms")]
async fn list_forms(
    auth: Auth,
    req: HttpRequest,
    params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging_only()?;
    let forms: Vec<Form> = services.records(auth.0.id).await?;
    Ok(page_of::<FormList>(
        &req,
        paging,
        forms.iter().map(|f| FormView::of(f, &services)).collect(),
    ))
}

/// One form.
#[utoipa::path(tag = "forms", params(("id" = String, Path, description = "Form id")),
    responses((status = 200, description = "OK", body = FormView), Refused))]
#[get("/forms/{id}")]
async fn get_form(
    auth: Auth,
    id: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let form: Option<Form> = if is_token_like(&id) {
        services.record(auth.0.id, &id).await?
    } else {
        None
    };
    let form = form.ok_or_else(|| Problem::not_found(format!("form {id} does not exist")))?;
    Ok(HttpResponse::Ok().json(FormView::of(&form, &services)))
}

/// Creates forms (all or none).
#[utoipa::path(tag = "forms", request_body = Vec<NewForm>,
    responses((status = 200, description = "OK", body = FormBatch), Refused))]
#[post("/forms")]
async fn create_forms(
    auth: Auth,
    body: ApiJson<Vec<NewForm>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let account = auth.0.id;
    let sites: Vec<Site> = services.records(account).await?;
    let pipelines: Vec<Pipeline> = services.records(account).await?;
    let checked = validate_all(body.0, |f| {
        let mut errors = Vec::new();
        let name = check_name("name", &f.name, &mut errors);
        if !sites.iter().any(|s| s.id == SiteId(f.site_id)) {
            errors.push(FieldError::new(
                "site_id",
                format!("site {} does not exist", f.site_id),
            ));
        }
        if !pipelines.iter().any(|p| p.id == PipelineId(f.pipeline_id)) {
            errors.push(FieldError::new(
                "pipeline_id",
                format!("pipeline {} does not exist", f.pipeline_id),
            ));
        }
        // The parsed URL is stored, never the text as typed: the URL parser drops CR, LF
        // and tabs silently, so a control character is refused before parsing (it would
        // otherwise reach the `Location` header of a redirect).
        let typed = f
            .success_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        let success_url = match typed.as_deref() {
            None => None,
            Some(u) if u.chars().any(char::is_control) => {
                errors.push(FieldError::new(
                    "success_url",
                    "must not contain control characters (CR, LF, tab)",
                ));
                None
            }
            Some(u) => match parse_web_url(u) {
                Some(parsed) => Some(parsed.to_string()),
                None => {
                    errors.push(FieldError::new(
                        "success_url",
                        "must be an absolute http(s) URL",
                    ));
                    None
                }
            },
        };
        let required = f.required.unwrap_or_else(default_required);
        if errors.is_empty() {
            Ok(Form {
                id: FormId::generate(),
                account_id: account,
                name,
                site_id: SiteId(f.site_id),
                pipeline_id: PipelineId(f.pipeline_id),
                success_url,
                required,
                created_at: now_ms(),
            })
        } else {
            Err(errors)
        }
    })?;
    let mut created = Vec::new();
    for form in checked {
        services.save(&form).await?;
        created.push(FormView::of(&form, &services));
    }
    Ok(HttpResponse::Ok().json(FormBatch::of(created)))
}

//! `/api/v4/forms`: forms on a site. A submission creates an Unsorted lead in the form's
//! pipeline; a plain HTML post is redirected to `success_url`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Auth, Paging, check_name, embedded, page_of, validate_all};
use crate::domain::form::{ContactField, Form, default_required};
use crate::domain::handler::FieldError;
use crate::domain::ids::{FormId, PipelineId, SiteId, is_token_like};
use crate::domain::pipeline::Pipeline;
use crate::domain::site::{Site, parse_web_url};
use crate::domain::time::{now_ms, to_secs};
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::catalog;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/forms", web::get().to(list))
        .route("/forms", web::post().to(create))
        .route("/forms/{id}", web::get().to(get));
}

fn view(form: &Form, services: &Services) -> Value {
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
    json!({
        "id": form.id, "name": form.name, "site_id": form.site_id, "pipeline_id": form.pipeline_id,
        "success_url": form.success_url, "required": form.required,
        "created_at": to_secs(form.created_at), "snippet": snippet,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewForm {
    name: String,
    site_id: u64,
    pipeline_id: u64,
    #[serde(default)]
    success_url: Option<String>,
    #[serde(default)]
    required: Option<Vec<ContactField>>,
}

async fn list(
    auth: Auth,
    req: HttpRequest,
    paging: web::Query<Paging>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = paging.into_inner().check()?;
    let forms: Vec<Form> = catalog::list(&*services.store, auth.0.id).await?;
    Ok(page_of(
        &req,
        "forms",
        paging,
        forms.iter().map(|f| view(f, &services)).collect(),
    ))
}

async fn get(
    auth: Auth,
    id: web::Path<String>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let form: Option<Form> = if is_token_like(&id) {
        catalog::get(&*services.store, auth.0.id, &id).await?
    } else {
        None
    };
    let form = form.ok_or_else(|| Problem::not_found(format!("form {id} does not exist")))?;
    Ok(HttpResponse::Ok().json(view(&form, &services)))
}

async fn create(
    auth: Auth,
    body: ApiJson<Vec<NewForm>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let account = auth.0.id;
    let sites: Vec<Site> = catalog::list(&*services.store, account).await?;
    let pipelines: Vec<Pipeline> = catalog::list(&*services.store, account).await?;
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
        let success_url = f
            .success_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        if success_url
            .as_deref()
            .is_some_and(|u| parse_web_url(u).is_none())
        {
            errors.push(FieldError::new(
                "success_url",
                "must be an absolute http(s) URL",
            ));
        }
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
        catalog::put_form(&*services.store, &form).await?;
        created.push(view(&form, &services));
    }
    Ok(embedded("forms", created))
}

//! The management API, shaped after amoCRM's v4: `Authorization: Bearer <account token>`,
//! creation with a JSON array, answers with `_embedded` lists, `page`/`limit` paging
//! (at most 250) with HAL links, errors as problem+json. Every lookup is scoped to the
//! token's account: another account's resources simply do not exist.
//!
//! Each handler carries its OpenAPI description (`#[utoipa::path]`) and is registered
//! through `utoipa_actix_web`, so the document served at `/api/v4/openapi.json` is made
//! from the same registrations as the routes and cannot miss one.

mod account_events;
mod actions;
mod contacts;
mod contacts_write;
mod demo;
mod events;
mod export;
mod forms;
mod handlers;
mod leads;
mod leads_add;
mod notes;
mod pipelines;
mod privacy;
pub mod query;
mod quotas;
mod sites;
mod stats;
mod stream;
mod unsorted;
mod unsorted_forms;
mod webhooks;

use std::future::{Ready, ready};

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::problem::Problem;
use crate::domain::Account;
use crate::domain::validation::FieldError;
use crate::service::Services;

/// The API's scope, for the App: every endpoint, and the document at
/// `/api/v4/openapi.json`.
pub fn scope() -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    utoipa_actix_web::scope("/api/v4").configure(routes)
}

/// The OpenAPI document of the management API, collected from its routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa_actix_web::AppExt;
    actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(scope())
        .split_for_parts()
        .1
}

async fn openapi_json() -> Result<HttpResponse, Problem> {
    static DOCUMENT: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let json = DOCUMENT
        .get_or_init(|| openapi().to_pretty_json().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.clone()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json.clone()))
}

/// Registers every API endpoint (under the `/api/v4` scope).
fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .configure(sites::routes)
        .configure(stats::routes)
        .configure(forms::routes)
        .configure(pipelines::routes)
        .configure(unsorted_forms::routes)
        .configure(unsorted::routes)
        .configure(notes::routes)
        .configure(leads_add::routes)
        .configure(export::routes)
        .configure(leads::routes)
        .configure(contacts::routes)
        .configure(contacts_write::routes)
        .configure(handlers::routes)
        .configure(actions::routes)
        .configure(events::routes)
        .configure(account_events::routes)
        .configure(webhooks::routes)
        .configure(quotas::routes)
        .configure(stream::routes)
        .configure(privacy::routes)
        .configure(demo::routes);
}

/// The document's frame; the paths and schemas are collected from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "footfall management API",
        description = "Sites, forms, pipelines, leads, handlers, actions and events of footfall, \
                       shaped after amoCRM's API v4.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ProblemDoc, FieldError, ValidationGroupDoc, ValidationErrorDoc)),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The account's API token from footfall's configuration.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The refusal every endpoint may answer: a 4xx problem naming what was wrong.
#[derive(utoipa::IntoResponses)]
#[response(
    status = "4XX",
    description = "The request was refused; the problem names what was wrong",
    content_type = "application/problem+json"
)]
#[allow(dead_code)] // describes `Problem`'s answers in the document
pub struct Refused(ProblemDoc);

/// An error, as every endpoint answers it (`application/problem+json`, RFC 9457).
#[derive(ToSchema)]
#[allow(dead_code)] // describes `Problem`'s body in the document
pub struct ProblemDoc {
    #[schema(rename = "type", example = "about:blank")]
    kind: String,
    #[schema(example = "Bad Request")]
    title: String,
    #[schema(example = 400)]
    status: u16,
    #[schema(example = "[0].url: must be an absolute http(s) URL")]
    detail: String,
    errors: Option<Vec<FieldError>>,
    /// amoCRM's form of the same errors, one group per item of the request.
    #[schema(rename = "validation-errors")]
    validation_errors: Option<Vec<ValidationGroupDoc>>,
}

/// amoCRM's validation errors of one item of a request.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `Problem`'s body in the document
pub struct ValidationGroupDoc {
    #[schema(example = "0")]
    request_id: String,
    errors: Vec<ValidationErrorDoc>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes `Problem`'s body in the document
pub struct ValidationErrorDoc {
    #[schema(example = "NotBlank")]
    code: String,
    #[schema(example = "name")]
    path: String,
    #[schema(example = "is required")]
    detail: String,
}

/// The account of the request's bearer token.
pub struct Auth(pub Account);

impl FromRequest for Auth {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let unauthorized = |detail: &str| Problem::new(StatusCode::UNAUTHORIZED, detail);
        let Some(services) = req.app_data::<web::Data<Services>>() else {
            return ready(Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "not configured",
            )));
        };
        let token = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        ready(match token {
            None => Err(unauthorized("send `Authorization: Bearer <account token>`")),
            Some(token) => services
                .accounts
                .authenticate(token.trim())
                .cloned()
                .map(Auth)
                .ok_or_else(|| unauthorized("the token is not valid")),
        })
    }
}

/// amoCRM's cap on list sizes.
pub const MAX_LIMIT: usize = 250;

/// `?page=&limit=` of a list.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page number, from 1.
    #[serde(default = "first_page")]
    #[param(minimum = 1, default = 1)]
    pub page: usize,
    /// Items per page, at most 250.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 250, default = 50)]
    pub limit: usize,
}

fn first_page() -> usize {
    1
}

/// Items per page when the request does not say.
pub const DEFAULT_LIMIT: usize = 50;

fn default_limit() -> usize {
    DEFAULT_LIMIT
}

impl Paging {
    pub fn new(page: Option<usize>, limit: Option<usize>) -> Result<Self, Problem> {
        Self {
            page: page.unwrap_or_else(first_page),
            limit: limit.unwrap_or_else(default_limit),
        }
        .check()
    }

    pub fn check(self) -> Result<Self, Problem> {
        if self.page == 0 {
            return Err(Problem::field("page", "pages start at 1"));
        }
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(Problem::field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok(self)
    }

    /// How many matches a search collects: enough for this page and one more (to know
    /// whether a next page exists); any page number is an answer, never an overflow.
    pub fn wanted(&self) -> usize {
        self.page.saturating_mul(self.limit).saturating_add(1)
    }

    /// This page of `items`, and whether another page follows.
    pub fn slice<T>(&self, items: Vec<T>) -> (Vec<T>, bool) {
        let total = items.len();
        let start = (self.page - 1).saturating_mul(self.limit);
        let has_next = start.saturating_add(self.limit) < total;
        (
            items.into_iter().skip(start).take(self.limit).collect(),
            has_next,
        )
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    pub href: String,
}

/// HAL links of a page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: Link,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<Link>,
}

impl Links {
    /// Absolute links, as amoCRM's: built from `server.public_url` (clients follow them).
    fn of(req: &HttpRequest, paging: Paging, has_next: bool) -> Self {
        let base = req
            .app_data::<web::Data<Services>>()
            .map(|s| {
                s.settings
                    .server
                    .public_url
                    .trim_end_matches('/')
                    .to_owned()
            })
            .unwrap_or_default();
        let link = |page: usize| {
            let mut query: Vec<(String, String)> =
                url::form_urlencoded::parse(req.query_string().as_bytes())
                    .into_owned()
                    .filter(|(k, _)| k != "page" && k != "limit")
                    .collect();
            query.push(("page".into(), page.to_string()));
            query.push(("limit".into(), paging.limit.to_string()));
            let qs = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish();
            Link {
                href: format!("{base}{}?{qs}", req.path()),
            }
        };
        Self {
            this: link(paging.page),
            next: has_next.then(|| link(paging.page + 1)),
            prev: (paging.page > 1).then(|| link(paging.page - 1)),
        }
    }
}

/// A resource's list and creation answers: `{"_page", "_links", "_embedded": {"<name>": […]}}`
/// and `{"_embedded": {"<name>": […]}}`.
pub trait Listing: Sized {
    type Item: Serialize;
    fn page(page: usize, links: Links, items: Vec<Self::Item>) -> Self;
}

/// Defines a resource's list answer (paged) around `_embedded.<field>`, and with
/// `batch Name` the answer to a creation or batch change (`{"_embedded": {"<field>": […]}}`).
macro_rules! listing {
    ($list:ident, $embedded:ident, $field:ident, $item:ty $(; batch $batch:ident)?) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $embedded {
            pub $field: Vec<$item>,
        }

        /// One page of the list.
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $list {
            #[serde(rename = "_page")]
            #[schema(rename = "_page")]
            pub page: usize,
            #[serde(rename = "_links")]
            #[schema(rename = "_links")]
            pub links: $crate::http::api::Links,
            #[serde(rename = "_embedded")]
            #[schema(rename = "_embedded")]
            pub embedded: $embedded,
        }

        impl $crate::http::api::Listing for $list {
            type Item = $item;
            fn page(page: usize, links: $crate::http::api::Links, items: Vec<$item>) -> Self {
                Self { page, links, embedded: $embedded { $field: items } }
            }
        }

        $(
            /// The items created or changed by one request.
            #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
            pub struct $batch {
                #[serde(rename = "_embedded")]
                #[schema(rename = "_embedded")]
                pub embedded: $embedded,
            }

            impl $batch {
                pub fn of(items: Vec<$item>) -> Self {
                    Self { embedded: $embedded { $field: items } }
                }
            }
        )?
    };
}
pub(crate) use listing;

/// One page of a list, as amoCRM answers it; a page with nothing on it is
/// `204 No Content`, as amoCRM's.
pub fn page_of<L: Listing + Serialize>(
    req: &HttpRequest,
    paging: Paging,
    items: Vec<L::Item>,
) -> HttpResponse {
    let (items, has_next) = paging.slice(items);
    if items.is_empty() {
        return HttpResponse::NoContent().finish();
    }
    HttpResponse::Ok().json(L::page(
        paging.page,
        Links::of(req, paging, has_next),
        items,
    ))
}

/// The `request_id` a client sent for each item (amoCRM's: text or a number), or the
/// item's place in the request.
fn request_ids<T>(items: &[T], sent: impl Fn(&T) -> Option<&serde_json::Value>) -> Vec<String> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match sent(item) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => i.to_string(),
        })
        .collect()
}

/// [`validate_all`] for a batch whose items may name themselves (`request_id`, read by
/// `sent`): the checked items, and each item's request id (as [`request_ids`] reads
/// them), by which the errors name the items, these and the service's alike.
pub fn validate_items<T, U>(
    items: Vec<T>,
    sent: impl Fn(&T) -> Option<&serde_json::Value>,
    check: impl FnMut(T) -> Result<U, Vec<FieldError>>,
) -> Result<(Vec<U>, Vec<String>), Problem> {
    let ids = request_ids(&items, sent);
    let checked = validate_all(items, check).map_err(|p| p.of_items(&ids))?;
    Ok((checked, ids))
}

/// Checks every item of a creation request; errors name the item (`[1].url`). Nothing
/// is created unless every item is valid.
pub fn validate_all<T, U>(
    items: Vec<T>,
    mut check: impl FnMut(T) -> Result<U, Vec<FieldError>>,
) -> Result<Vec<U>, Problem> {
    if items.is_empty() {
        return Err(Problem::bad_request(
            "send a JSON array with at least one item",
        ));
    }
    if items.len() > MAX_LIMIT {
        return Err(Problem::bad_request(format!(
            "at most {MAX_LIMIT} items at once"
        )));
    }
    let mut ok = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match check(item) {
            Ok(v) => ok.push(v),
            Err(es) => errors.extend(es.into_iter().map(|f| f.of_item(i))),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(Problem::invalid(errors))
    }
}

/// A required, trimmed, bounded name; its errors added to `errors`.
pub fn check_name(field: &str, name: &str, errors: &mut Vec<FieldError>) -> String {
    crate::domain::validation::name(field, name).unwrap_or_else(|e| {
        errors.extend(e);
        name.trim().to_owned()
    })
}

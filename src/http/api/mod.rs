//! The management API, shaped after amoCRM's v4: `Authorization: Bearer <account token>`,
//! creation with a JSON array, answers with `_embedded` lists, `page`/`limit` paging
//! (at most 250) with HAL links, errors as problem+json. Every lookup is scoped to the
//! token's account: another account's resources simply do not exist.

mod actions;
mod demo;
mod events;
mod forms;
mod handlers;
mod leads;
mod notes;
mod pipelines;
mod sites;
mod stream;
mod unsorted;

use std::future::{Ready, ready};

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::problem::Problem;
use crate::domain::Account;
use crate::domain::handler::FieldError;
use crate::service::Services;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v4")
            .configure(sites::routes)
            .configure(forms::routes)
            .configure(pipelines::routes)
            .configure(unsorted::routes)
            .configure(notes::routes)
            .configure(leads::routes)
            .configure(handlers::routes)
            .configure(actions::routes)
            .configure(events::routes)
            .configure(stream::routes)
            .configure(demo::routes),
    );
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

/// `?page=&limit=` of a list.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Paging {
    #[serde(default = "first_page")]
    pub page: usize,
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn first_page() -> usize {
    1
}

fn default_limit() -> usize {
    50
}

/// amoCRM's cap on list sizes.
pub const MAX_LIMIT: usize = 250;

impl Paging {
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

fn link(req: &HttpRequest, page: usize, limit: usize) -> Value {
    let mut query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "page" && k != "limit")
            .collect();
    query.push(("page".into(), page.to_string()));
    query.push(("limit".into(), limit.to_string()));
    let qs = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    json!({"href": format!("{}?{qs}", req.path())})
}

/// One page of a list, as amoCRM answers it.
pub fn page_of(req: &HttpRequest, name: &str, paging: Paging, items: Vec<Value>) -> HttpResponse {
    let (items, has_next) = paging.slice(items);
    let mut links = serde_json::Map::new();
    links.insert("self".into(), link(req, paging.page, paging.limit));
    if has_next {
        links.insert("next".into(), link(req, paging.page + 1, paging.limit));
    }
    if paging.page > 1 {
        links.insert("prev".into(), link(req, paging.page - 1, paging.limit));
    }
    HttpResponse::Ok().json(json!({
        "_page": paging.page,
        "_links": links,
        "_embedded": { name: items },
    }))
}

/// The answer to a creation or an update of several resources.
pub fn embedded(name: &str, items: Vec<Value>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "_embedded": { name: items } }))
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
            Err(es) => errors.extend(
                es.into_iter()
                    .map(|e| FieldError::new(format!("[{i}].{}", e.field), e.message)),
            ),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(Problem::invalid(errors))
    }
}

/// A required, trimmed, bounded name.
pub fn check_name(field: &str, name: &str, errors: &mut Vec<FieldError>) -> String {
    let name = name.trim();
    if name.is_empty() {
        errors.push(FieldError::new(field, "is required"));
    } else if name.chars().count() > 255 {
        errors.push(FieldError::new(field, "is longer than 255 characters"));
    }
    name.to_owned()
}

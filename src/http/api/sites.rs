//! `/api/v4/sites`: the sites an account tracks. A site's `key` goes into the script tag's
//! `data-site`; its `hosts` are the only hosts whose pages may report to it.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Auth, Paging, check_name, embedded, page_of, validate_all};
use crate::domain::handler::FieldError;
use crate::domain::ids::{SiteId, SiteKey};
use crate::domain::site::{Site, parse_web_url};
use crate::domain::time::{now_ms, to_secs};
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::{Sequence, catalog};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sites", web::get().to(list))
        .route("/sites", web::post().to(create))
        .route("/sites/{id}", web::get().to(get))
        .route("/sites/{id}", web::patch().to(update));
}

pub fn view(site: &Site, services: &Services) -> Value {
    let tracker = format!(
        "{}/t.js",
        services.settings.server.public_url.trim_end_matches('/')
    );
    json!({
        "id": site.id, "key": site.key, "name": site.name, "url": site.url,
        "hosts": site.hosts, "respect_dnt": site.respect_dnt,
        "created_at": to_secs(site.created_at),
        "snippet": format!("<script async src=\"{tracker}\" data-site=\"{}\"></script>", site.key),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSite {
    name: String,
    url: String,
    #[serde(default)]
    hosts: Option<Vec<String>>,
    #[serde(default)]
    respect_dnt: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SitePatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    hosts: Option<Vec<String>>,
    #[serde(default)]
    respect_dnt: Option<bool>,
}

/// A host as a browser sends it: lower case, a name or an address, no port or path.
fn parse_host(raw: &str) -> Option<String> {
    let host = raw.trim().to_ascii_lowercase();
    let url = url::Url::parse(&format!("http://{host}/")).ok()?;
    (url.host_str() == Some(host.as_str()) && url.port().is_none()).then_some(host)
}

fn check_hosts(hosts: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if hosts.is_empty() || hosts.len() > 50 {
        errors.push(FieldError::new("hosts", "needs 1 to 50 hosts"));
    }
    let mut parsed = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        match parse_host(h) {
            Some(h) if !parsed.contains(&h) => parsed.push(h),
            Some(_) => {}
            None => errors.push(FieldError::new(format!("hosts[{i}]"), "is not a host name")),
        }
    }
    parsed
}

async fn list(
    auth: Auth,
    req: HttpRequest,
    paging: web::Query<Paging>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = paging.into_inner().check()?;
    let sites: Vec<Site> = catalog::list(&*services.store, auth.0.id).await?;
    Ok(page_of(
        &req,
        "sites",
        paging,
        sites.iter().map(|s| view(s, &services)).collect(),
    ))
}

async fn get(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let site = find(&services, &auth, SiteId(id.into_inner())).await?;
    Ok(HttpResponse::Ok().json(view(&site, &services)))
}

async fn find(services: &Services, auth: &Auth, id: SiteId) -> Result<Site, Problem> {
    catalog::get(&*services.store, auth.0.id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("site {id} does not exist")))
}

async fn create(
    auth: Auth,
    body: ApiJson<Vec<NewSite>>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let checked = validate_all(body.0, |s| {
        let mut errors = Vec::new();
        let name = check_name("name", &s.name, &mut errors);
        let url = parse_web_url(s.url.trim());
        if url.is_none() {
            errors.push(FieldError::new("url", "must be an absolute http(s) URL"));
        }
        let default_host = url
            .as_ref()
            .and_then(|u| u.host_str())
            .map(|h| vec![h.to_owned()]);
        let hosts = check_hosts(&s.hosts.or(default_host).unwrap_or_default(), &mut errors);
        if errors.is_empty() {
            Ok((name, s.url.trim().to_owned(), hosts, s.respect_dnt))
        } else {
            Err(errors)
        }
    })?;
    let mut created = Vec::new();
    for (name, url, hosts, respect_dnt) in checked {
        let site = Site {
            id: SiteId(services.store.next_id(Sequence::Site).await?),
            account_id: auth.0.id,
            key: SiteKey::generate(),
            name,
            url,
            hosts,
            respect_dnt,
            created_at: now_ms(),
        };
        catalog::put_site(&*services.store, &site).await?;
        created.push(view(&site, &services));
    }
    Ok(embedded("sites", created))
}

async fn update(
    auth: Auth,
    id: web::Path<u64>,
    body: ApiJson<SitePatch>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let mut site = find(&services, &auth, SiteId(id.into_inner())).await?;
    let patch = body.0;
    let mut errors = Vec::new();
    if let Some(name) = &patch.name {
        site.name = check_name("name", name, &mut errors);
    }
    if let Some(hosts) = &patch.hosts {
        site.hosts = check_hosts(hosts, &mut errors);
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    if let Some(respect) = patch.respect_dnt {
        site.respect_dnt = respect;
    }
    catalog::put_site(&*services.store, &site).await?;
    services.sites.forget(&site.key);
    Ok(HttpResponse::Ok().json(view(&site, &services)))
}

//! `/api/v4/sites`: the sites an account tracks. A site's `key` goes into the script tag's
//! `data-site`; its `hosts` are the only hosts whose pages may report to it.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::query::ListParams;
use super::{Auth, Paging, Refused, check_name, listing, page_of, validate_all};
use crate::domain::ids::{SiteId, SiteKey};
use crate::domain::privacy::{Consent, MAX_CONSENT_DAYS};
use crate::domain::site::{Site, parse_web_url};
use crate::domain::time::{now_ms, to_secs};
use crate::domain::validation::FieldError;
use crate::http::body::ApiJson;
use crate::http::problem::Problem;
use crate::service::Services;
use crate::store::Sequence;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_sites)
        .service(create_sites)
        .service(get_site)
        .service(update_site);
}

/// A tracked site.
#[derive(Debug, Serialize, ToSchema)]
pub struct SiteView {
    id: u64,
    /// Public key for the script tag's `data-site`.
    key: String,
    name: String,
    url: String,
    /// Hosts whose pages may report page views and submit forms.
    hosts: Vec<String>,
    /// Browsers with Do-Not-Track or Global Privacy Control are not tracked.
    respect_opt_out: bool,
    /// The same as `respect_opt_out` (its earlier name).
    respect_dnt: bool,
    /// `required`: t.js sends and stores nothing until the page calls
    /// `footfall('consent', true)`; `none`: it tracks from the first page view.
    #[schema(value_type = String, example = "none")]
    consent: Consent,
    /// How long t.js remembers a consent, in days.
    consent_days: u32,
    /// A gap without page views longer than this ends a visit on this site (the
    /// configuration's `tracking.visit_idle_seconds` unless the site sets its own).
    visit_idle_seconds: u64,
    created_at: i64,
    /// The script tag to paste into the site.
    snippet: String,
}

listing!(SiteList, SiteItems, sites, SiteView; batch SiteBatch);

impl SiteView {
    fn of(site: &Site, services: &Services) -> Self {
        let tracker = format!(
            "{}/t.js",
            services.settings.server.public_url.trim_end_matches('/')
        );
        Self {
            id: site.id.0,
            key: site.key.to_string(),
            name: site.name.clone(),
            url: site.url.clone(),
            hosts: site.hosts.clone(),
            respect_opt_out: site.respect_opt_out,
            respect_dnt: site.respect_opt_out,
            consent: site.consent,
            consent_days: site.consent_days(),
            visit_idle_seconds: site
                .visit_idle_seconds
                .unwrap_or(services.settings.tracking.visit_idle_seconds),
            created_at: to_secs(site.created_at),
            snippet: site.snippet(&tracker),
        }
    }
}

/// A site to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    #[schema(example = "Shop")]
    name: String,
    #[schema(example = "https://shop.example")]
    url: String,
    /// Defaults to the URL's host.
    #[serde(default)]
    hosts: Option<Vec<String>>,
    /// Honour Do-Not-Track and Global Privacy Control (also read as `respect_dnt`).
    #[serde(default, alias = "respect_dnt")]
    respect_opt_out: bool,
    /// `none` (default) or `required`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "required")]
    consent: Option<Consent>,
    /// Days a consent is remembered (1 to 3650; default 395).
    #[serde(default)]
    consent_days: Option<u32>,
    /// This site's visit gap (1 s to 1 day); default: the configuration's.
    #[serde(default)]
    visit_idle_seconds: Option<u64>,
}

/// Changes to a site.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SitePatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    hosts: Option<Vec<String>>,
    /// Also read as `respect_dnt`.
    #[serde(default, alias = "respect_dnt")]
    respect_opt_out: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "required")]
    consent: Option<Consent>,
    #[serde(default)]
    consent_days: Option<u32>,
    #[serde(default)]
    visit_idle_seconds: Option<u64>,
}

fn check_consent_days(days: Option<u32>, errors: &mut Vec<FieldError>) -> Option<u32> {
    if days.is_some_and(|d| d == 0 || d > MAX_CONSENT_DAYS) {
        errors.push(FieldError::new(
            "consent_days",
            format!("must be 1 to {MAX_CONSENT_DAYS} days"),
        ));
    }
    days
}

/// The longest visit gap a site may set: a day.
const MAX_VISIT_IDLE_SECONDS: u64 = 86_400;

fn check_idle(seconds: Option<u64>, errors: &mut Vec<FieldError>) -> Option<u64> {
    if seconds.is_some_and(|s| s == 0 || s > MAX_VISIT_IDLE_SECONDS) {
        errors.push(FieldError::new(
            "visit_idle_seconds",
            "must be 1 to 86400 seconds",
        ));
    }
    seconds
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

async fn find(services: &Services, auth: &Auth, id: SiteId) -> Result<Site, Problem> {
    services
        .record(auth.0.id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("site {id} does not exist")))
}

/// The account's sites.
#[utoipa::path(tag = "sites", params(Paging),
    responses((status = 200, description = "OK", body = SiteList),
        (status = 204, description = "No site"), Refused))]
#[get("/sites")]
async fn list_sites(
    auth: Auth,
    req: HttpRequest,
    params: ListParams,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let paging = params.paging_only()?;
    let sites: Vec<Site> = services.records(auth.0.id).await?;
    Ok(page_of::<SiteList>(
        &req,
        paging,
        sites.iter().map(|s| SiteView::of(s, &services)).collect(),
    ))
}

/// One site.
#[utoipa::path(tag = "sites", params(("id" = u64, Path, description = "Site id")),
    responses((status = 200, description = "OK", body = SiteView), Refused))]
#[get("/sites/{id}")]
async fn get_site(
    auth: Auth,
    id: web::Path<u64>,
    services: web::Data<Services>,
) -> Result<HttpResponse, Problem> {
    let site = find(&services, &auth, SiteId(id.into_inner())).await?;
    Ok(HttpResponse::Ok().json(SiteView::of(&site, &services)))
}

/// Creates sites (all or none).
#[utoipa::path(tag = "sites", request_body = Vec<NewSite>,
    responses((status = 200, description = "OK", body = SiteBatch), Refused))]
#[post("/sites")]
async fn create_sites(
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
        let idle = check_idle(s.visit_idle_seconds, &mut errors);
        let consent_days = check_consent_days(s.consent_days, &mut errors);
        let privacy = (
            s.respect_opt_out,
            s.consent.unwrap_or_default(),
            consent_days,
        );
        if errors.is_empty() {
            Ok((name, s.url.trim().to_owned(), hosts, privacy, idle))
        } else {
            Err(errors)
        }
    })?;
    let mut created = Vec::new();
    for (name, url, hosts, (respect_opt_out, consent, consent_days), visit_idle_seconds) in checked
    {
        let site = Site {
            id: SiteId(services.next_id(Sequence::Site).await?),
            account_id: auth.0.id,
            key: SiteKey::generate(),
            name,
            url,
            hosts,
            respect_opt_out,
            consent,
            consent_days,
            visit_idle_seconds,
            created_at: now_ms(),
        };
        services.save(&site).await?;
        created.push(SiteView::of(&site, &services));
    }
    Ok(HttpResponse::Ok().json(SiteBatch::of(created)))
}

/// Changes a site's name, hosts, opt-out policy, consent policy or visit gap.
#[utoipa::path(tag = "sites", params(("id" = u64, Path, description = "Site id")), request_body = SitePatch,
    responses((status = 200, description = "OK", body = SiteView), Refused))]
#[patch("/sites/{id}")]
async fn update_site(
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
    if let Some(idle) = check_idle(patch.visit_idle_seconds, &mut errors) {
        site.visit_idle_seconds = Some(idle);
    }
    if let Some(days) = check_consent_days(patch.consent_days, &mut errors) {
        site.consent_days = Some(days);
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    if let Some(respect) = patch.respect_opt_out {
        site.respect_opt_out = respect;
    }
    if let Some(consent) = patch.consent {
        site.consent = consent;
    }
    services.save(&site).await?;
    Ok(HttpResponse::Ok().json(SiteView::of(&site, &services)))
}

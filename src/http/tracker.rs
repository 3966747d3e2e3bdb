//! The public endpoints a site's pages talk to: the tracker script, page-view beacons and
//! form submissions. CORS is answered for the site's own hosts only; the beacon does the
//! least work it can (one parse, one signature check, one store round trip).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError, web};
use serde::Deserialize;

use super::body::{media_type, parse_json, read_body};
use super::client::{Client, ProxyTrust};
use super::limits::RateLimits;
use super::problem::Problem;
use crate::config::CookieSettings;
use crate::domain::bots;
use crate::domain::ids::{FormId, is_token_like};
use crate::domain::memo::Memo;
use crate::service::Services;
use crate::service::collect::{Beacon, CollectOutcome};
use crate::service::submissions::{Submission, SubmitOutcome};

/// Each worker's bot verdicts by user agent: the same few come back page view after page
/// view, and a lookup costs a fraction of a scan.
static BOT_VERDICTS: Memo<bool> = Memo::new();

fn is_bot(user_agent: &str) -> bool {
    BOT_VERDICTS.get_or(user_agent, bots::is_bot, |_| true)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/collect")
            .route(web::post().to(collect))
            .route(web::method(Method::OPTIONS).to(preflight)),
    )
    .service(
        web::resource("/v1/forms/{form_id}/submit")
            .route(web::post().to(submit))
            .route(web::method(Method::OPTIONS).to(preflight)),
    )
    .service(
        web::resource("/v1/forget")
            .route(web::post().to(forget))
            .route(web::method(Method::OPTIONS).to(preflight)),
    );
}

/// The beacon's body (the product's minimum contract, `POST /v1/collect`); sent as
/// `text/plain` so that no preflight happens.
#[derive(Deserialize)]
struct BeaconBody<'a> {
    #[serde(borrow)]
    site: Cow<'a, str>,
    #[serde(default, borrow)]
    vid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(default, borrow)]
    referrer: Cow<'a, str>,
    #[serde(default, borrow)]
    title: Cow<'a, str>,
}

fn client<'a>(req: &'a HttpRequest, services: &Services) -> Client<'a> {
    static NO_TRUST: std::sync::LazyLock<ProxyTrust> = std::sync::LazyLock::new(Default::default);
    let trust = req.app_data::<ProxyTrust>().unwrap_or_else(|| &NO_TRUST);
    Client::of(req, &services.settings.cookies.name, trust)
}

/// Lets the page send beacons and form posts with credentials; each request is then
/// checked against its site's hosts.
async fn preflight(req: HttpRequest, mut payload: web::Payload) -> HttpResponse {
    let _ = read_body(&req, &mut payload, 0).await;
    let mut response = HttpResponse::NoContent();
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
            .insert_header((header::VARY, "Origin"));
    }
    response.finish()
}

/// Adds CORS headers for an origin the service has already checked against the site.
fn allow_origin(response: &mut HttpResponseBuilder, origin: Option<&str>) {
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, value))
            .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
            .insert_header((header::VARY, "Origin"));
    }
}

/// The server-set visitor cookie (first-party when footfall runs on the site's domain).
fn visitor_cookie(settings: &CookieSettings, signed: &str) -> String {
    server_cookie(settings, signed, settings.max_age_days as i64)
}

/// The server-set cookie with `value`, kept `days` (0: expired at once).
fn server_cookie(settings: &CookieSettings, value: &str, days: i64) -> String {
    let mut c = cookie::Cookie::build((settings.name.clone(), value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(settings.secure)
        .max_age(cookie::time::Duration::days(days))
        .same_site(match settings.same_site.as_str() {
            "Strict" => cookie::SameSite::Strict,
            "None" => cookie::SameSite::None,
            _ => cookie::SameSite::Lax,
        });
    if !settings.domain.is_empty() {
        c = c.domain(settings.domain.clone());
    }
    c.build().to_string()
}

/// A visitor withdrew consent (t.js's `footfall('consent', false)`): the server-set
/// cookie, which t.js cannot remove (it is HttpOnly), expires. Nothing is stored or
/// erased: erasing what footfall holds of a browser is the site owner's
/// (`DELETE /api/v4/visitors/{uid}`).
async fn forget(
    req: HttpRequest,
    mut payload: web::Payload,
    services: web::Data<Services>,
) -> HttpResponse {
    let _ = read_body(&req, &mut payload, 64).await;
    let mut response = HttpResponse::NoContent();
    allow_origin(&mut response, client(&req, &services).origin);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::SET_COOKIE,
            server_cookie(&services.settings.cookies, "", 0),
        ));
    response.finish()
}

async fn collect(
    req: HttpRequest,
    mut payload: web::Payload,
    services: web::Data<Services>,
    limits: web::Data<Arc<RateLimits>>,
) -> Result<HttpResponse, Problem> {
    let body = read_body(
        &req,
        &mut payload,
        services.settings.limits.public_body_bytes,
    )
    .await?;
    let client = client(&req, &services);
    limits.check_ip(client.ip)?;
    let beacon: BeaconBody = parse_json(&body)?;
    if !is_token_like(&beacon.site) {
        return Err(Problem::not_found("no site has this key"));
    }
    let site = services.site_for_beacon(&beacon.site).await?;
    limits.check_site(site.id)?;
    let mut response = HttpResponse::NoContent();
    if is_bot(client.user_agent) {
        metrics::counter!("footfall_beacons_total", "outcome" => "bot").increment(1);
        // Answered like a recorded beacon, so that pages under headless tools log no
        // CORS error; the origin is checked all the same.
        if Services::check_origin(&site, client.origin).is_ok() {
            allow_origin(&mut response, client.origin);
        }
        return Ok(response.finish());
    }
    let outcome = services
        .collect(
            Beacon {
                vid: beacon.vid.as_deref(),
                cookie_vid: client.cookie_vid,
                url: &beacon.url,
                referrer: &beacon.referrer,
                title: &beacon.title,
                origin: client.origin,
                do_not_track: client.do_not_track,
                client: super::client::limit_key(client.ip),
            },
            &site,
        )
        .await?;
    allow_origin(&mut response, client.origin);
    let CollectOutcome::Recorded { visitor, minted } = outcome else {
        return Ok(response.finish());
    };
    // Same-site deployments (footfall on a subdomain of the site) also keep the visitor
    // in a server-set first-party cookie, which Safari does not cap at 7 days.
    let cookies = &services.settings.cookies;
    let server_cookie_stale = !cookies.domain.is_empty()
        && client
            .cookie_vid
            .and_then(|c| services.signer.verify(site.account_id, c))
            != Some(visitor);
    if !minted && !server_cookie_stale {
        return Ok(response.finish());
    }
    let signed = services.signer.sign(site.account_id, visitor);
    if server_cookie_stale {
        response.insert_header((header::SET_COOKIE, visitor_cookie(cookies, &signed)));
    }
    if !minted {
        return Ok(response.finish());
    }
    Ok(response
        .status(StatusCode::OK)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "vid": signed })))
}

/// The JSON form body t.js sends.
#[derive(Deserialize)]
struct FormBody {
    #[serde(default)]
    vid: Option<String>,
    #[serde(default)]
    page: String,
    fields: HashMap<String, serde_json::Value>,
    /// t.js says whether the visitor consented: `true`, sent without consent (link no
    /// browser); `false`, with it. Absent: not said.
    #[serde(default)]
    nc: Option<bool>,
}

/// Field values as text: numbers and booleans as written, anything else refused.
fn text_fields(
    raw: HashMap<String, serde_json::Value>,
) -> Result<HashMap<String, String>, Problem> {
    raw.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            serde_json::Value::Null => Ok((k, String::new())),
            _ => Err(Problem::field(&format!("fields.{k}"), "must be text")),
        })
        .collect()
}

async fn submit(
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    services: web::Data<Services>,
    limits: web::Data<Arc<RateLimits>>,
) -> HttpResponse {
    let client = client(&req, &services);
    let html_form = media_type(&req).as_deref() == Some("application/x-www-form-urlencoded");
    // A person's browser that navigated here with a plain HTML form reads a page; any
    // other client of the urlencoded form gets the contract's JSON and problems.
    let person = html_form && accepts_html(&req);
    let form_id = FormId(path.into_inner());
    // Every refusal, the body's and the flood guard's included, is answered below, where
    // the page can read it; one made before the form is looked up costs the store nothing.
    let mut looked_up = false;
    let result = async {
        let body = read_body(
            &req,
            &mut payload,
            services.settings.limits.public_body_bytes,
        )
        .await?;
        limits.check_ip(client.ip)?;
        if !is_token_like(&form_id.0) {
            return Err(Problem::not_found("no form has this id"));
        }
        looked_up = true;
        let response = submit_parsed(
            &services,
            &limits,
            &client,
            form_id.clone(),
            &body,
            html_form,
            person,
        )
        .await?;
        // A write no replica confirmed answers 503 here, as a refusal does (with the CORS
        // headers t.js needs to read it), rather than by `observe`'s rewrite.
        if crate::store::durability::noted() {
            return Err(Problem::unconfirmed());
        }
        Ok(response)
    }
    .await;
    match result {
        Ok(response) => response,
        // A plain HTML form navigated here: answer a page a person can read.
        Err(problem) if person => error_page(&problem, crate::store::durability::noted()),
        // t.js reads the problem (its `footfall:error` event) only with the CORS headers,
        // given when the page is on one of the form's site's hosts.
        Err(problem) => {
            let mut response = problem.error_response();
            // (A store that failed is not asked again: only what this instance has cached.)
            let may_read_store = looked_up && !problem.status.is_server_error();
            if services
                .form_allows_origin(&form_id, client.origin, may_read_store)
                .await
                && let Some(origin) = client.origin.and_then(|o| HeaderValue::from_str(o).ok())
            {
                let headers = response.headers_mut();
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
                headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            response
        }
    }
}

async fn submit_parsed(
    services: &Services,
    limits: &RateLimits,
    client: &Client<'_>,
    form_id: FormId,
    body: &[u8],
    html_form: bool,
    person: bool,
) -> Result<HttpResponse, Problem> {
    let (fields, vid, page, consent) = if html_form {
        let mut fields: HashMap<String, String> = serde_urlencoded::from_bytes(body)
            .map_err(|e| Problem::bad_request(format!("the form body could not be read: {e}")))?;
        let vid = fields.remove("ff_vid").filter(|v| !v.is_empty());
        let page = fields
            .remove("ff_page")
            .unwrap_or_else(|| client.referer.to_owned());
        // t.js's fallback post says whether the browser consented ("1": not); a form
        // posted without t.js says nothing.
        let consent = fields.remove("ff_nc").map(|v| v != "1");
        (fields, vid, page, consent)
    } else {
        let form: FormBody = parse_json(body)?;
        let consent = form.nc.map(|nc| !nc);
        (text_fields(form.fields)?, form.vid, form.page, consent)
    };
    let form = services.form_for_submission(&form_id).await?;
    limits.check_site(form.site_id)?;
    let outcome = services
        .submit_form(
            &form,
            Submission {
                fields,
                vid: vid.as_deref(),
                cookie_vid: client.cookie_vid,
                page: &page,
                referer: client.referer,
                ip: &client.ip.to_string(),
                origin: client.origin,
                consent,
                opted_out: client.do_not_track,
                client: super::client::limit_key(client.ip),
            },
        )
        .await?;
    let (success_url, created) = match outcome {
        SubmitOutcome::Created {
            lead_id,
            uid,
            visitor,
            success_url,
        } => (success_url, Some((lead_id, uid, visitor))),
        SubmitOutcome::Discarded { success_url } => (success_url, None),
    };
    let mut response = if html_form && success_url.is_some() {
        let mut r = HttpResponse::SeeOther();
        r.insert_header((header::LOCATION, success_url.clone().unwrap_or_default()));
        r
    } else {
        HttpResponse::Created()
    };
    allow_origin(&mut response, client.origin);
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some((_, _, Some(visitor))) = &created {
        response.insert_header((
            header::SET_COOKIE,
            visitor_cookie(&services.settings.cookies, visitor),
        ));
    }
    if html_form && success_url.is_some() {
        return Ok(response.finish());
    }
    if person {
        return Ok(response
            .content_type("text/html; charset=utf-8")
            .body(page_html("Thank you", "<p>Your request has been sent.</p>")));
    }
    Ok(response.json(match created {
        Some((lead_id, uid, visitor)) => serde_json::json!({
            "lead_id": lead_id, "uid": uid, "vid": visitor, "redirect": success_url,
        }),
        None => serde_json::json!({ "redirect": success_url }),
    }))
}

/// Whether the client reads HTML (a browser's navigation says so in `Accept`).
fn accepts_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page_html(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{t}</title><body style=\"font:16px system-ui;max-width:32em;margin:3em auto\">\
         <h1>{t}</h1>{body}</body>",
        t = escape(title)
    )
}

/// The page a person reads when a plain HTML form was refused, or was `received` but no
/// replica confirmed it (then it says so: the form is not lost, and sending it again is
/// safe).
fn error_page(problem: &Problem, received: bool) -> HttpResponse {
    let (title, items) = if received {
        (
            "Your request was received",
            "<p>It is recorded, but not yet confirmed. If you send the form again, it will \
             not be counted twice.</p>"
                .to_owned(),
        )
    } else {
        ("The form could not be sent", refusal_items(problem))
    };
    let mut response = HttpResponse::build(problem.status);
    if let Some(secs) = problem.retry_after {
        response.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    response
        .content_type("text/html; charset=utf-8")
        .body(page_html(
            title,
            &format!("{items}<p><a href=\"javascript:history.back()\">Back to the form</a></p>"),
        ))
}

/// What refused a form, as HTML: its fields' errors, or the problem's detail.
fn refusal_items(problem: &Problem) -> String {
    if problem.errors.is_empty() {
        format!("<p>{}</p>", escape(&problem.detail))
    } else {
        let list: String = problem
            .errors
            .iter()
            .map(|e| {
                format!(
                    "<li><b>{}</b> {}</li>",
                    escape(&e.field),
                    escape(&e.message)
                )
            })
            .collect();
        format!("<ul>{list}</ul>")
    }
}

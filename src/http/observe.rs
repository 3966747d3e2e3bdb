//! Every request gets an id (`x-request-id`, taken from the client when it is a sane
//! token, made up otherwise), a `tracing` span carrying it, and Prometheus figures by route
//! pattern and status, with the store round trips it made. Server errors are logged with the id; the rest only at debug level,
//! so that page views do not flood the logs.

use std::cell::RefCell;
use std::time::Instant;

use actix_web::ResponseError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use metrics::{Counter, Histogram};
use tracing::Instrument;

use super::problem::Problem;
use crate::domain::ids::{is_token_like, random_token};
use crate::store::{durability, round_trips};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The labels of one request's figures: method, route pattern and status.
type Labels = (&'static str, String, u16);

/// The beacon's durations are sampled, one in this many per worker: each sample is kept
/// until it is folded into the buckets, and keeping every one cost the beacon about a
/// seventh of its throughput. Its request count stays exact.
const BEACON_SAMPLE_EVERY: u32 = 16;

/// One worker's handles for one set of labels.
struct Figures {
    requests: Counter,
    /// Store round trips made by the route's requests.
    round_trips: Counter,
    duration: Histogram,
    sample_every: u32,
    seen: u32,
}

thread_local! {
    /// Each worker's metric handles by labels: the set is bounded by the routes, and a
    /// handle saves building and looking up labelled keys per request.
    static FIGURES: RefCell<foldhash::HashMap<Labels, Figures>> = RefCell::default();
}

/// A method as a label: the standard ones by name, any other as `OTHER`, so that a client
/// cannot add label series by making up methods.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", Method::as_str)
}

fn record(method: &Method, route: String, status: u16, seconds: f64, round_trips: u32) {
    FIGURES.with(|figures| {
        let mut figures = figures.borrow_mut();
        let f = figures.entry((method_label(method), route, status)).or_insert_with_key(|(m, r, s)| Figures {
            requests: metrics::counter!("footfall_http_requests_total",
                "method" => *m, "route" => r.clone(), "status" => s.to_string()),
            duration: metrics::histogram!("footfall_http_request_duration_seconds", "route" => r.clone()),
            round_trips: metrics::counter!("footfall_store_round_trips_total", "route" => r.clone()),
            sample_every: if r == "/v1/collect" { BEACON_SAMPLE_EVERY } else { 1 },
            seen: 0,
        });
        f.requests.increment(1);
        f.round_trips.increment(u64::from(round_trips));
        // The first of every `sample_every`: a quiet worker or a rare status records too.
        if f.seen.is_multiple_of(f.sample_every) {
            f.duration.record(seconds);
        }
        f.seen = f.seen.wrapping_add(1);
    });
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_token_like(v))
        .map_or_else(|| random_token(16), str::to_owned);
    let method = req.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, path = %req.path());
    let started = Instant::now();
    let work = crate::store::budget::from_now(durability::tracked(
        next.call(req).instrument(span.clone()),
    ));
    let ((res, unconfirmed), round_trips) = round_trips::counted(work).await;
    let res = res?;
    // A write no replica confirmed: what the request did stands, and it answers 503.
    let mut res =
        if unconfirmed && !res.status().is_client_error() && !res.status().is_server_error() {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, Problem::unconfirmed().error_response()).map_into_right_body()
        } else {
            res.map_into_left_body()
        };
    let elapsed = started.elapsed().as_secs_f64();
    let status = res.status();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    if status.is_server_error() {
        tracing::error!(parent: &span, status = status.as_u16(), route = %route, "request failed");
    } else {
        tracing::debug!(parent: &span, status = status.as_u16(), route = %route, elapsed_ms = elapsed * 1000.0, "request");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    record(&method, route, status.as_u16(), elapsed, round_trips);
    Ok(res)
}

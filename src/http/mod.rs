//! The HTTP surfaces, one file each: the tracker's public endpoints, the management API,
//! operations endpoints and the static files (t.js, console). Errors of every surface are
//! problem+json (`problem.rs`); bodies are read one way (`body.rs`).

pub mod api;
pub mod body;
pub mod client;
pub mod demo;
pub mod limits;
pub mod observe;
pub mod ops;
pub mod problem;
pub mod tracker;

use std::path::Path;

use actix_files::{Files, NamedFile};
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{HttpRequest, web};

use problem::Problem;

/// The console runs only its own scripts and styles, in no one's frame, and its address
/// (which names leads) goes to no other site.
fn console_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
        ))
        .add((X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .add((REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
}

/// Every route of the service but the management API (`api::scope`).
pub fn configure(cfg: &mut web::ServiceConfig, static_dir: &Path) {
    let tracker_js = static_dir.join("t.js");
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| Problem::bad_request(format!("bad query string: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| Problem::not_found(format!("no such resource: {e}")).into()),
    )
    .configure(tracker::routes)
    .configure(ops::routes)
    .configure(demo::routes)
    .service(
        web::resource("/t.js")
            .wrap(Compress::default())
            .wrap(DefaultHeaders::new().add((
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600, stale-while-revalidate=86400"),
            )))
            .route(web::get().to(move |req: HttpRequest| {
                let path = tracker_js.clone();
                async move {
                    NamedFile::open(path)
                        .map(|f| f.use_last_modified(true).into_response(&req))
                        .map_err(|_| Problem::not_found("t.js is missing from the static folder"))
                }
            })),
    )
    // The API reference: the OpenAPI document in RapiDoc, served from static/api-docs/.
    .service(
        web::scope("/api/docs")
            .wrap(Compress::default())
            .service(Files::new("", static_dir.join("api-docs")).index_file("index.html")),
    )
    .service(
        web::scope("/console")
            .wrap(Compress::default())
            .wrap(console_headers())
            .service(Files::new("", static_dir.join("console")).index_file("index.html")),
    );
}

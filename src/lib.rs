//! footfall: site-visit tracking and digital-pipeline triggers.
//!
//! A visitor who submits a site's form becomes an Unsorted lead, and the browser stays
//! linked to it. When a marketer moves the lead into a stage with a site-visit action,
//! each later visit of that browser fires a `site_visit` webhook in amoCRM's shape.
//!
//! Layers, from the inside out: `domain` (pure rules), `store` (Redis or in memory),
//! `service` (use cases), `delivery` (signed webhooks, retries, the scheduler), `http`
//! (tracker endpoints, management API, ops) and `app` (wiring).

pub mod app;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod http;
pub mod service;
pub mod store;
pub mod telemetry;

/// The one way to build an HTTP client in footfall's processes (the webhook sender, the
/// tests, the benchmarks): reqwest's TLS is rustls with ring, installed here as the
/// process's provider first, since reqwest panics when it builds a client without one.
pub fn http_client() -> reqwest::ClientBuilder {
    // Installed once per process; a second call finds it there.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

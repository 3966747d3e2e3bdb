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

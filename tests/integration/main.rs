//! footfall's black-box tests, in one test binary (one build of the harness, one link):
//! each module tests one surface through HTTP, against the real app or the real binary, on
//! a real Redis, with real webhook receivers. Tests that start processes or keep both
//! cores busy take `common::HEAVY`, so that they run one at a time.

mod common;

mod abuse;
mod account_webhooks;
mod amocrm;
mod api;
mod atomic_steps;
mod bad_input;
mod bounds;
mod cluster;
mod contact_writes;
mod delivery;
mod deploy;
mod exposure;
mod fail_fast;
mod failover;
mod fair_delivery;
mod faults;
mod forms;
mod lead_source;
mod leads_by_api;
mod leads_export;
mod page_view_storage;
mod pipeline_events;
mod privacy;
mod privacy_notices;
mod privacy_stats;
mod processes;
mod quotas;
mod safe_defaults;
mod site_stats;
mod site_visit_flow;
mod store_conformance;
mod store_conformance_erasure;
mod store_conformance_expiry;
mod store_conformance_marketing;
mod store_conformance_quotas;
mod store_writes_conformance;
mod tenants;
mod tls;
mod tracking;
mod trigger_conditions;

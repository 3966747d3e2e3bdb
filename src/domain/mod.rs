//! The product's pure types and rules: ids, visitors, sites, pipelines, leads, actions,
//! events, the webhook body and its macros. No I/O here; every rule is unit-tested.

pub mod account_event;
pub mod account_webhook;
pub mod action;
pub mod bots;
pub mod conditions;
pub mod event;
pub mod event_record;
pub mod export;
pub mod form;
pub mod handler;
pub mod ids;
pub mod lead;
pub mod macros;
pub mod memo;
pub mod pipeline;
pub mod privacy;
pub mod quota;
pub mod site;
pub mod source;
pub mod stats;
pub mod time;
pub mod timeline;
pub mod tracking;
pub mod validation;
pub mod visitor;
pub mod webhook;

use ids::AccountId;

/// A tenant: the `account_id` and `subdomain` of every webhook it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub subdomain: String,
}

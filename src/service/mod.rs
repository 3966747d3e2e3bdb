//! The use cases: what happens when a page view arrives, a form is submitted, a lead is
//! moved, a trigger fires, a resource is managed. Each takes parsed domain values from
//! the HTTP edge and works on the store; the HTTP layer only translates — every handler
//! under `http` parses, calls one function here, and answers.

pub mod account_webhooks;
pub mod accounts;
pub mod api_leads;
pub mod api_submissions;
pub mod catalog_cache;
pub mod collect;
pub mod conditions;
pub mod contact_writes;
pub mod contacts;
pub mod demo;
mod erasure_traces;
pub mod events;
pub mod export;
pub mod lead_changes;
pub mod leads;
pub mod live;
pub mod manage;
pub mod notes;
pub mod privacy;
pub mod quotas;
pub mod sources;
pub mod stats;
pub mod submissions;
pub mod triggers;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::form::Form;
use crate::domain::site::Site;
use crate::domain::validation::FieldError;
use crate::domain::visitor::VisitorSigner;
use crate::store::{Store, StoreError};

pub use accounts::Accounts;
pub use catalog_cache::{KeyCache, Snapshots};
pub use live::Live;

/// What the use cases share: the store and what was built from the configuration.
pub struct Services {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub signer: VisitorSigner,
    pub accounts: Accounts,
    /// Sites by public key and forms by id, for the public endpoints.
    pub sites: KeyCache<Site>,
    pub forms: KeyCache<Form>,
    /// Each account's catalog as of its version, for triggers and submissions.
    pub snapshots: Snapshots,
    /// Wakes this instance's scheduler when an event is due sooner than it planned.
    pub scheduler_wake: Arc<Notify>,
    pub live: Live,
    /// Shared quotas the store found full, refused here until they refill.
    pub quota_gate: quotas::QuotaGate,
    /// Client addresses as the quotas count them.
    pub address_tags: crate::domain::quota::AddressTags,
    /// The sample site and inbox, when `demo.enabled`.
    pub demo: Option<demo::Demo>,
    /// Cancelled when the service is asked to stop: live streams end, the scheduler
    /// stops claiming.
    pub shutdown: CancellationToken,
}

/// Why a use case refused or failed; the HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("some fields are invalid")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// A quota refused the request (`service::quotas`).
    #[error("over the {} quota of the {}", .0.kind().code(), .0.scope())]
    OverQuota(crate::domain::quota::OverQuota),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

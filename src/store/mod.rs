//! All state of footfall, in the domain's terms, behind one trait per aggregate:
//!
//! - [`Catalog`]: account-scoped metadata (sites, forms, pipelines, handlers, actions) as
//!   JSON records, typed by `catalog.rs`, and the id sequences;
//! - [`Leads`]: leads, their contacts, timelines, browser links and Unsorted entries;
//! - [`Visitors`]: browsers' page views and visits (the hot path);
//! - [`Schedule`]: fired events, their delivery schedule and handler health;
//! - [`Live`]: the console's live updates;
//! - [`LeadWrites`], [`ContactWrites`]: leads and contacts written through the API;
//! - [`Privacy`]: a subject's erasure and its audit;
//! - [`Watches`], [`Stats`]: visits watched for conditional actions, per-site statistics;
//! - [`Quotas`]: the public endpoints' shared counters and growth bounds.
//!
//! Two backends implement them all — Redis (`redis/`, production) and an embedded
//! in-memory store (`memory/`, the zero-setup default) — one file per trait in each, and
//! both pass the same conformance suite (`tests/integration/store_conformance.rs`):
//! same answers, same order (creation order), same expiry.
//!
//! A change that touches several keys is one operation here, atomic on Redis (one Lua
//! script on one hash slot): a form submission, a move, an accept. A crash can never cut
//! it in half.
//!
//! **What an instance crash can lose.** Acknowledged form submissions, moves, events and
//! deliveries are in Redis before the request is answered. Page views are too, with one
//! exception: a Redis page-view writer skips refreshing a browser's last sighting for a
//! short while after refreshing it (`redis/sightings.rs`), and a crash (or a stop)
//! forgets the skipped refreshes — the page views themselves are kept, but the visit
//! they belong to may then end up to that short while early. Statistics counters (of page views, visits, forms
//! and firings) wait for the next flush (a second at most, `stats.rs`): a crash loses
//! those, never a page view, a form or an event; a graceful stop writes them.

pub mod budget;
pub mod catalog;
pub mod contact_writes;
pub mod durability;
pub mod lead_writes;
pub mod leads;
pub mod memory;
pub mod privacy;
pub mod quotas;
pub mod redis;
pub mod round_trips;
pub mod stats;
pub mod watches;

pub use stats::Stats;
pub use watches::Watches;

pub use quotas::{Charge, Charged, LinkOutcome, Quotas};

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use crate::domain::event_record::EventRecord;
use crate::domain::ids::{AccountId, EventId, HandlerId, LeadId};
use crate::domain::lead::Lead;
use crate::domain::time::Millis;
use crate::domain::tracking::PageView;
use crate::domain::visitor::VisitorId;
pub use privacy::{ErasedLead, ErasureScope, Privacy};

pub use contact_writes::{ContactRecordData, ContactWrite, ContactWrites};
pub use lead_writes::{LeadCreated, LeadWrites, NewLead};
pub use leads::{
    Fingerprints, LeadMove, Leads, MoveOutcome, NewSubmission, RECENT_PAGE_VIEWS, Reserved,
    SubmissionOutcome,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or did not answer in time; the request may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be read back (a bug or a foreign writer).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// A value as stored JSON; a value that cannot be written is an error, never `""`.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(corrupt)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(corrupt)
}

/// Counters that hand out integer ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sequence {
    Site,
    Pipeline,
    Status,
    Lead,
    Contact,
    Handler,
    Action,
    Note,
    Webhook,
}

impl Sequence {
    pub fn name(self) -> &'static str {
        match self {
            Self::Site => "site",
            Self::Pipeline => "pipeline",
            Self::Status => "status",
            Self::Lead => "lead",
            Self::Contact => "contact",
            Self::Handler => "handler",
            Self::Action => "action",
            Self::Note => "note",
            Self::Webhook => "webhook",
        }
    }

    /// Status ids start above 1000 so that they never meet the shared 142 and 143.
    pub fn base(self) -> u64 {
        match self {
            Self::Status => 1000,
            _ => 0,
        }
    }
}

/// Kinds of account-scoped records in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Site,
    Form,
    Pipeline,
    Handler,
    Action,
    Webhook,
}

impl RecordKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Site => "sites",
            Self::Form => "forms",
            Self::Pipeline => "pipelines",
            Self::Handler => "handlers",
            Self::Action => "actions",
            Self::Webhook => "webhooks",
        }
    }
}

/// All of a store: every aggregate and the store's own health.
#[async_trait]
pub trait Store:
    Catalog
    + Leads
    + LeadWrites
    + ContactWrites
    + Visitors
    + Schedule
    + Live
    + Privacy
    + Watches
    + Stats
    + Quotas
    + Send
    + Sync
    + 'static
{
    /// A short description for logs: `redis://host:port` or `embedded (in memory)`.
    fn describe(&self) -> String;

    /// Answers when the store is reachable.
    async fn ping(&self) -> StoreResult<()>;
}

// --- catalog --------------------------------------------------------------------------

#[async_trait]
pub trait Catalog: Send + Sync {
    /// The next id of a sequence (starting after `Sequence::base`).
    async fn next_id(&self, seq: Sequence) -> StoreResult<u64>;
    /// The next id of each sequence, and the account's catalog version, in one round trip.
    async fn next_ids(&self, account: AccountId, seqs: &[Sequence])
    -> StoreResult<(Vec<u64>, u64)>;

    /// True for exactly one caller ever per key (bootstrap steps that must run once).
    async fn claim_once(&self, key: &str) -> StoreResult<bool>;

    /// Stores a record (replacing one of the same id) and counts a change of the account's
    /// catalog.
    async fn put_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
        json: &str,
    ) -> StoreResult<()>;
    async fn get_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<Option<String>>;
    /// An account's records of a kind, in creation order.
    async fn list_records(&self, account: AccountId, kind: RecordKind) -> StoreResult<Vec<String>>;
    async fn delete_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<bool>;
    /// How many times the account's catalog has changed: a cache of it is good while this
    /// has not moved.
    async fn catalog_version(&self, account: AccountId) -> StoreResult<u64>;
    /// A global name for a record (a site key, a form id) → `target` (`account/id`).
    async fn put_alias(&self, kind: RecordKind, alias: &str, target: &str) -> StoreResult<()>;
    async fn get_alias(&self, kind: RecordKind, alias: &str) -> StoreResult<Option<String>>;
}

// --- visitors -------------------------------------------------------------------------

/// A browser's last sighting on a site is kept this much longer than the visit gap: the
/// visit rule itself compares the times.
pub const SIGHTING_MARGIN_MS: i64 = 1000;

/// How long past the visit gap a history that no visit's start has given an expiry yet
/// is kept (the start gives it one at once; this is for a start that failed), on both
/// stores.
const PROVISIONAL_TTL_SECS: i64 = 3600;

/// The provisional expiry (s) of a history whose page views have the visit gap `idle_ms`.
pub fn provisional_ttl_secs(idle_ms: i64) -> i64 {
    idle_ms / 1000 + PROVISIONAL_TTL_SECS
}

/// One page view to record.
#[derive(Debug, Clone)]
pub struct PageViewWrite {
    /// The site's account: a browser has a history of its own in each account.
    pub account: AccountId,
    pub visitor: VisitorId,
    pub page_view: PageView,
    /// The visit idle gap: the last sighting on a site is only kept this long, since after
    /// it the next page view starts a new visit anyway.
    pub visit_idle_ms: i64,
    /// Read (and count this page view in) the visit's watch, if it has one (`watches.rs`):
    /// only for accounts with conditional site-visit actions.
    pub watch: bool,
}

/// What recording a page view tells about the visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageViewOutcome {
    /// When this visitor was last seen on this site before this page view, if that is
    /// within the idle gap (older sightings may be forgotten).
    pub last_seen: Option<Millis>,
    /// How many page views the visitor's history holds now.
    pub history_len: u64,
    /// The visit's watch with this page view counted, when asked (`PageViewWrite::watch`)
    /// and there is one.
    pub watch: Option<crate::domain::conditions::VisitWatch>,
}

/// What the store keeps about a browser besides its page views: how many visits it has
/// made, and the lead it is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VisitorState {
    pub visits: u32,
    pub lead: Option<LeadId>,
}

/// A visit just counted: its number, and the browser's lead as it stands now with the
/// version of the account's catalog (so that the caller's cached actions can be checked).
#[derive(Debug, Clone, PartialEq)]
pub struct VisitStart {
    pub number: u32,
    pub lead: Option<Lead>,
    pub catalog_version: u64,
}

#[async_trait]
pub trait Visitors: Send + Sync {
    /// Records a page view and returns when the visitor was last seen on the site: one
    /// round trip, the only store work of a page view inside a running visit.
    async fn record_page_view(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome>;
    /// Counts a new visit (the page view that starts it is already recorded), keeps the
    /// history within `max_page_views`, refreshes the retention, and reads the browser's
    /// lead — one round trip. A first visit keeps the history `anonymous_secs` only,
    /// unless a link to a lead gave it longer (`NewSubmission::visitor_retention_secs`);
    /// a returning browser's history is kept `retention_secs`.
    async fn start_visit(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
        anonymous_secs: u64,
        max_page_views: u64,
    ) -> StoreResult<VisitStart>;
    /// The lead the browser is linked to now, as it stands (its link kept another
    /// `retention_secs`, as a visit's start keeps it).
    async fn browser_lead(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
    ) -> StoreResult<Option<Lead>>;
    async fn visitor(&self, account: AccountId, visitor: VisitorId) -> StoreResult<VisitorState>;
    /// The visitor's page views, oldest first.
    async fn page_views(
        &self,
        account: AccountId,
        visitor: VisitorId,
    ) -> StoreResult<Vec<PageView>>;
    /// Keeps the newest `keep` page views.
    async fn trim_page_views(
        &self,
        account: AccountId,
        visitor: VisitorId,
        keep: u64,
    ) -> StoreResult<()>;
}

// --- schedule -------------------------------------------------------------------------

#[async_trait]
pub trait Schedule: Send + Sync {
    /// Stores fired events, puts them in the schedule and each on its lead's timeline
    /// (`EventFired`): one round trip for any number of events.
    async fn add_events(&self, events: &[EventRecord]) -> StoreResult<()>;
    /// Stores an event's new state; a pending one is put in the schedule at its next time,
    /// a finished one kept for the event retention.
    async fn save_event(&self, event: &EventRecord) -> StoreResult<()>;
    /// Stores the new state of an event already stored, as `save_event` — nothing when its
    /// record is gone (an erasure took it while it was being delivered: a save must not
    /// bring it back).
    async fn update_event(&self, event: &EventRecord) -> StoreResult<()>;
    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>>;
    /// The events among `ids` that still exist, in the order asked (one round trip).
    async fn get_events(&self, ids: &[EventId]) -> StoreResult<Vec<EventRecord>>;
    /// Claims up to `max` events due at `now`, each leased until `lease_until`: an event
    /// whose claimer dies becomes due again when the lease ends.
    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        max: usize,
    ) -> StoreResult<Vec<EventRecord>>;
    /// The earliest time anything in the schedule becomes due (including lease ends).
    async fn next_due(&self) -> StoreResult<Option<Millis>>;
    /// Ids of an account's events within the retention, newest first.
    async fn event_ids(&self, account: AccountId) -> StoreResult<Vec<EventId>>;
    /// Ids of a handler's dead-lettered events.
    async fn dead_event_ids(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Vec<EventId>>;
    /// Records a failed attempt; the first failure of a run is kept.
    async fn note_handler_failure(
        &self,
        account: AccountId,
        handler: HandlerId,
        at: Millis,
    ) -> StoreResult<()>;
    /// Records a success: the handler is healthy again.
    async fn note_handler_success(&self, account: AccountId, handler: HandlerId)
    -> StoreResult<()>;
    /// When the current run of failures began, if the handler is failing.
    async fn handler_failing_since(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Option<Millis>>;
}

// --- live -----------------------------------------------------------------------------

#[async_trait]
pub trait Live: Send + Sync {
    /// Sends a message to the subscribers of every instance.
    async fn publish_live(&self, message: String) -> StoreResult<()>;
    /// The messages published from now on, by any instance; the stream ends when the
    /// connection is lost (subscribe again).
    async fn subscribe_live(&self) -> StoreResult<BoxStream<'static, String>>;
}

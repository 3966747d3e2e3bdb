//! The `Store`: all state of footfall, in the domain's terms, behind one trait with two
//! implementations — Redis (production) and an embedded in-memory store (the zero-setup
//! default). Both pass the same conformance suite (`tests/store_conformance.rs`).
//!
//! The trait is deliberately small: account-scoped metadata (sites, forms, pipelines,
//! handlers, actions) goes through one generic "catalog" of JSON records, typed by
//! `catalog.rs`; leads, visitors and the delivery schedule, which are hot or need atomic
//! steps, have operations of their own.

pub mod catalog;
pub mod memory;
pub mod redis;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use crate::domain::event_record::EventRecord;
use crate::domain::ids::{AccountId, EventId, HandlerId, LeadId, UnsortedUid};
use crate::domain::lead::{Lead, Unsorted, VisitorLink};
use crate::domain::pipeline::Stage;
use crate::domain::time::Millis;
use crate::domain::timeline::TimelineEntry;
use crate::domain::tracking::PageView;
use crate::domain::visitor::VisitorId;

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
}

impl RecordKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Site => "sites",
            Self::Form => "forms",
            Self::Pipeline => "pipelines",
            Self::Handler => "handlers",
            Self::Action => "actions",
        }
    }
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
}

/// What recording a page view tells about the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageViewOutcome {
    /// When this visitor was last seen on this site before this page view, if that is
    /// within the idle gap (older sightings may be forgotten).
    pub last_seen: Option<Millis>,
    /// How many page views the visitor's history holds now.
    pub history_len: u64,
}

/// What the store keeps about a visitor besides its page views: how many visits it has
/// made, and the lead it is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VisitorState {
    pub visits: u32,
    pub lead: Option<LeadId>,
}

/// The result of a conditional move of a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    Moved {
        from: Stage,
    },
    NotFound,
    /// The lead was not where the caller expected (someone moved it first).
    Conflict {
        current: Stage,
    },
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short description for logs: `redis://host:port` or `embedded (in memory)`.
    fn describe(&self) -> String;

    /// Answers when the store is reachable.
    async fn ping(&self) -> StoreResult<()>;

    /// The next id of a sequence (starting after `Sequence::base`).
    async fn next_id(&self, seq: Sequence) -> StoreResult<u64>;

    /// True for exactly one caller ever per key (bootstrap steps that must run once).
    async fn claim_once(&self, key: &str) -> StoreResult<bool>;

    // --- catalog: account-scoped JSON records -------------------------------------------
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
    async fn list_records(&self, account: AccountId, kind: RecordKind) -> StoreResult<Vec<String>>;
    async fn delete_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<bool>;
    /// A global name for a record (a site key, a form id) → `target` (`account/id`).
    async fn put_alias(&self, kind: RecordKind, alias: &str, target: &str) -> StoreResult<()>;
    async fn get_alias(&self, kind: RecordKind, alias: &str) -> StoreResult<Option<String>>;

    // --- leads ---------------------------------------------------------------------------
    /// Stores a new lead with the first entry of its timeline.
    async fn insert_lead(&self, lead: &Lead, first: &TimelineEntry) -> StoreResult<()>;
    async fn get_leads(&self, ids: &[LeadId]) -> StoreResult<Vec<Lead>>;
    /// Ids of an account's leads, newest first.
    async fn lead_ids(&self, account: AccountId) -> StoreResult<Vec<LeadId>>;
    /// Moves a lead atomically, only if it stands at `expect` when given.
    async fn move_lead(
        &self,
        id: LeadId,
        to: Stage,
        at: Millis,
        expect: Option<Stage>,
    ) -> StoreResult<MoveOutcome>;
    async fn rename_lead(&self, id: LeadId, name: &str, at: Millis) -> StoreResult<bool>;
    async fn append_timeline(&self, lead: LeadId, entry: &TimelineEntry) -> StoreResult<()>;
    /// The lead's timeline in the order it was written.
    async fn timeline(&self, lead: LeadId) -> StoreResult<Vec<TimelineEntry>>;
    /// Adds or replaces (by visitor) a visitor link of a lead.
    async fn put_lead_visitor(&self, lead: LeadId, link: &VisitorLink) -> StoreResult<()>;
    async fn lead_visitors(&self, lead: LeadId) -> StoreResult<Vec<VisitorLink>>;

    // --- unsorted ------------------------------------------------------------------------
    async fn put_unsorted(&self, entry: &Unsorted) -> StoreResult<()>;
    async fn get_unsorted(
        &self,
        account: AccountId,
        uid: &UnsortedUid,
    ) -> StoreResult<Option<Unsorted>>;
    async fn list_unsorted(&self, account: AccountId) -> StoreResult<Vec<Unsorted>>;
    /// Removes an entry; true for the one caller that removed it.
    async fn remove_unsorted(&self, account: AccountId, uid: &UnsortedUid) -> StoreResult<bool>;

    // --- visitors (the hot path) ---------------------------------------------------------
    // A browser's data is kept per account: one browser on two tenants' sites is two
    // visitors that know nothing of each other.
    /// Records a page view and returns when the visitor was last seen on the site: one
    /// round trip, the only store work of a page view inside a running visit.
    async fn record_page_view(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome>;
    /// Counts a new visit (the page view that starts it is already recorded), keeps the
    /// history within `max_page_views`, refreshes the retention, and tells the visit's
    /// number and the visitor's lead.
    async fn start_visit(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
        max_page_views: u64,
    ) -> StoreResult<VisitorState>;
    /// Links a visitor to a lead of the account; returns the account's lead it belonged
    /// to before. Another account's link to the same browser is another matter.
    async fn link_visitor(
        &self,
        account: AccountId,
        visitor: VisitorId,
        lead: LeadId,
        at: Millis,
        retention_secs: u64,
    ) -> StoreResult<Option<LeadId>>;
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

    // --- events and the delivery schedule ------------------------------------------------
    /// Stores an event; a pending one is put in the schedule at its next time.
    async fn save_event(&self, event: &EventRecord) -> StoreResult<()>;
    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>>;
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
    /// Ids of an account's events, newest first.
    async fn event_ids(&self, account: AccountId) -> StoreResult<Vec<EventId>>;
    /// Ids of a handler's dead-lettered events.
    async fn dead_event_ids(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Vec<EventId>>;

    // --- handler health ------------------------------------------------------------------
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

    // --- short-lived facts and contact lookup -------------------------------------------
    /// Keeps `value` under `key` for `ttl_secs` unless a value is already there; returns the
    /// value that was there (duplicate submissions fold into the first).
    async fn remember(&self, key: &str, value: &str, ttl_secs: u64) -> StoreResult<Option<String>>;
    /// What is remembered under `key`, if anything.
    async fn recall(&self, key: &str) -> StoreResult<Option<String>>;
    /// Replaces a remembered value, keeping its expiry; nothing when it has expired.
    async fn settle(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Points a contact key of an account (`email:…`, `phone:…`) at a lead.
    async fn index_contact(&self, account: AccountId, key: &str, lead: LeadId) -> StoreResult<()>;
    async fn find_contact(&self, account: AccountId, key: &str) -> StoreResult<Option<LeadId>>;

    // --- live updates (the console) ------------------------------------------------------
    /// Sends a message to the subscribers of every instance.
    async fn publish_live(&self, message: String) -> StoreResult<()>;
    /// The messages published from now on, by any instance; the stream ends when the
    /// connection is lost (subscribe again).
    async fn subscribe_live(&self) -> StoreResult<BoxStream<'static, String>>;
}

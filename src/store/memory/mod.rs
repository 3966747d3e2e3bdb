//! The embedded in-memory store: the zero-setup default when no Redis URL is configured.
//! Same contract as the Redis store, expiry included (the conformance suite runs against
//! both); nothing is kept when the process ends.
//!
//! One lock over the whole state makes every operation atomic, as the Redis store's
//! scripts are. One file per aggregate holds its trait's implementation.

mod catalog;
mod contact_writes;
mod expiry;
mod lead_writes;
mod leads;
mod live;
mod privacy;
mod quotas;
mod schedule;
mod stats;
mod visitors;
mod watches;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{RecordKind, Sequence, Store, StoreResult};
use crate::domain::event_record::EventRecord;
use crate::domain::ids::{AccountId, EventId, HandlerId, LeadId, SiteId, UnsortedUid};
use crate::domain::lead::{Lead, Unsorted, VisitorLink};
use crate::domain::time::Millis;
use crate::domain::timeline::TimelineEntry;
use crate::domain::tracking::PageView;
use crate::domain::visitor::VisitorId;

/// How long finished events are kept when no retention is given (the configuration's
/// default, `delivery.event_retention_days`).
const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(30 * crate::domain::time::DAY_SECS);

#[derive(Debug, Default)]
struct State {
    sequences: HashMap<Sequence, u64>,
    once: HashSet<String>,
    /// Each account's records of a kind, in creation order.
    records: HashMap<(AccountId, RecordKind), Vec<(String, String)>>,
    catalog_versions: HashMap<AccountId, u64>,
    aliases: HashMap<(RecordKind, String), String>,
    leads: HashMap<LeadId, Lead>,
    account_leads: HashMap<AccountId, Vec<LeadId>>,
    timelines: HashMap<LeadId, Vec<TimelineEntry>>,
    lead_visitors: HashMap<LeadId, Vec<VisitorLink>>,
    /// Which lead each browser of an account belongs to, until when.
    browsers: HashMap<(AccountId, VisitorId), (LeadId, Instant)>,
    unsorted: HashMap<AccountId, Vec<Unsorted>>,
    /// Submissions' fingerprints → the first one's lead and Unsorted entry, until expiry.
    submissions: HashMap<(AccountId, String), (LeadId, Option<UnsortedUid>, Instant)>,
    contacts: HashMap<(AccountId, String), LeadId>,
    /// Contacts' own records (`contact_writes.rs`).
    contact_records: HashMap<(AccountId, crate::domain::ids::ContactId), super::ContactRecordData>,
    visitors: HashMap<(AccountId, VisitorId), Visitor>,
    /// When each browser was last seen on each site, until when that is kept: apart from
    /// its history, as Redis keeps them, so that neither's expiry takes the other.
    sightings: HashMap<(VisitorId, SiteId), (Millis, Instant)>,
    /// Statistics by site and day (`stats.rs`).
    stats: HashMap<(SiteId, u32), stats::Day>,
    /// Watched visits (`watches.rs`), until when each is kept.
    watches: HashMap<(VisitorId, SiteId), (crate::domain::conditions::VisitWatch, Instant)>,
    /// Events, with the time a finished one expires.
    events: HashMap<EventId, (EventRecord, Option<Instant>)>,
    account_events: HashMap<AccountId, Vec<EventId>>,
    /// (eligible at, event id): due time, or lease end while claimed.
    schedule: BTreeSet<(Millis, EventId)>,
    eligible_at: HashMap<EventId, Millis>,
    handler_failing: HashMap<(AccountId, HandlerId), Millis>,
    /// Each account's erasure audit, newest first.
    audit: HashMap<AccountId, std::collections::VecDeque<crate::domain::privacy::AuditRecord>>,
    /// When expired entries were last dropped (`expiry.rs`).
    forgotten_at: Option<Instant>,
    /// Quota counters (`domain::quota`) by account and key, their TAT in microseconds.
    quotas: HashMap<(AccountId, String), i64>,
}

#[derive(Debug, Default)]
struct Visitor {
    page_views: Vec<PageView>,
    visits: u32,
    /// Whether the history holds what Redis's meta element holds: a visit count, set when
    /// a visit is counted or a link keeps the history (`KEEP_HISTORY`). Without one, the
    /// history's page views alone made it, and its expiry is the provisional one.
    meta: bool,
    /// The history's expiry (as Redis's EXPIRE): provisional when its first page view
    /// makes it, set when a visit is counted or a link keeps it.
    expires: Option<Instant>,
}

impl Visitor {
    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

pub struct MemoryStore {
    state: Mutex<State>,
    live: tokio::sync::broadcast::Sender<String>,
    event_retention: Duration,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_event_retention(DEFAULT_EVENT_RETENTION)
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that keeps finished events for `retention` (as the Redis store does).
    pub fn with_event_retention(retention: Duration) -> Self {
        Self {
            state: Mutex::default(),
            live: tokio::sync::broadcast::channel(1024).0,
            event_retention: retention,
        }
    }
}

impl MemoryStore {
    /// Everything the store holds, as debug text: what a test searches to prove that an
    /// erasure left nothing of a subject behind (the embedded store has no keys to SCAN).
    pub fn debug_dump(&self) -> String {
        format!("{:?}", self.state.lock())
    }
}

impl MemoryStore {
    /// How much longer a browser's history is kept, as Redis's TTL tells it: `None` when
    /// there is none, `Some(None)` when it never expires. What a test compares with the
    /// Redis store's key (the embedded store has no TTL to read).
    pub fn history_expires_in(
        &self,
        account: AccountId,
        visitor: VisitorId,
    ) -> Option<Option<Duration>> {
        let now = Instant::now();
        let state = self.state.lock();
        let v = state.visitor(account, visitor)?;
        Some(v.expires.map(|e| e.saturating_duration_since(now)))
    }
}

impl State {
    fn unschedule(&mut self, id: &EventId) {
        if let Some(at) = self.eligible_at.remove(id) {
            self.schedule.remove(&(at, id.clone()));
        }
    }

    fn schedule_at(&mut self, id: &EventId, at: Millis) {
        self.unschedule(id);
        self.schedule.insert((at, id.clone()));
        self.eligible_at.insert(id.clone(), at);
    }

    /// A live (unexpired) event.
    fn event(&self, id: &EventId, now: Instant) -> Option<&EventRecord> {
        self.events
            .get(id)
            .filter(|(_, expires)| expires.is_none_or(|e| e > now))
            .map(|(e, _)| e)
    }

    /// The visitor's state, forgetting an expired one first.
    fn visitor_mut(&mut self, account: AccountId, visitor: VisitorId) -> &mut Visitor {
        let now = Instant::now();
        let v = self.visitors.entry((account, visitor)).or_default();
        if v.expired(now) {
            *v = Visitor::default();
        }
        v
    }

    /// The lead a browser belongs to, while its link is kept.
    fn browser_lead(&self, account: AccountId, visitor: VisitorId) -> Option<LeadId> {
        self.browsers
            .get(&(account, visitor))
            .filter(|(_, until)| *until > Instant::now())
            .map(|(lead, _)| *lead)
    }

    /// The lead a browser belongs to, as it stands, its link kept another
    /// `retention_secs` (as Redis's LEAD_OF_BROWSER keeps it).
    fn kept_browser_lead(
        &mut self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
    ) -> Option<Lead> {
        let lead = self.browser_lead(account, visitor)?;
        let keep = Instant::now() + Duration::from_secs(retention_secs);
        self.browsers.insert((account, visitor), (lead, keep));
        self.lead(account, lead).cloned()
    }

    fn visitor(&self, account: AccountId, visitor: VisitorId) -> Option<&Visitor> {
        self.visitors
            .get(&(account, visitor))
            .filter(|v| !v.expired(Instant::now()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> String {
        "embedded (in memory)".to_owned()
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

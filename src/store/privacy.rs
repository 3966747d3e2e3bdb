//! The [`Privacy`] aggregate: erasing a data subject's lead or browser from every place the
//! store keeps it, and the audit of erasures.
//!
//! An erasure reaches keys of several hash slots on Redis — the account's (lead, timeline,
//! Unsorted entries, contact index, browser links, submission fingerprints, event index,
//! dead letters), each browser's (history, last sightings, watched visits) and each schedule shard's (the
//! event record and its place in the schedule). Each slot's part is one atomic script;
//! the parts run in an order that a crash cannot turn into a webhook about an erased lead,
//! nor into an erasure that cannot be found again: the scheduled events go first, then
//! the browsers, and the lead's own keys last — until they go, the lead is there and
//! repeating the erasure finishes it. The embedded store does it all under its one lock.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::ids::{AccountId, ContactId, EventId, HandlerId, LeadId, SiteId};
use crate::domain::privacy::{AuditRecord, Erased};
use crate::domain::visitor::VisitorId;

/// Audit records kept per account (the newest): enough to answer for years of requests,
/// bounded so that a loop of erasures cannot grow a key without end.
pub const AUDIT_KEPT: usize = 10_000;

/// The account's catalog an erasure needs: a browser's last sighting is kept per site,
/// dead letters per handler.
#[derive(Debug, Clone)]
pub struct ErasureScope {
    pub account: AccountId,
    pub sites: Vec<SiteId>,
    pub handlers: Vec<HandlerId>,
}

/// What a lead's erasure removed: the counts, and the lead's contacts that went with it
/// (no other lead holds them), which the account's webhooks are told of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedLead {
    pub erased: Erased,
    pub contacts_gone: Vec<ContactId>,
}

#[async_trait]
pub trait Privacy: Send + Sync {
    /// Erases a lead: its hash (contacts included), the contact records of its contacts
    /// that no other lead has, timeline, Unsorted entries, the contact
    /// index entries that point at it, its submission fingerprint, its events (records,
    /// schedule, index, dead letters — a delayed one never fires), and every browser linked
    /// to it as [`Privacy::erase_visitor`] erases one. `None` when there is no such lead.
    async fn erase_lead(
        &self,
        scope: &ErasureScope,
        lead: LeadId,
    ) -> StoreResult<Option<ErasedLead>>;
    /// Erases account-webhook notices (event records with a `notice`, whose bodies may
    /// hold a lead's name or a contact's phone and email): records, places in the
    /// schedule, the account's event index and dead letters. Returns how many were there.
    async fn erase_notices(&self, scope: &ErasureScope, ids: &[EventId]) -> StoreResult<u64>;
    /// Erases a browser's traces in the account: its history, last sightings and watched
    /// visits, its link
    /// key, its link on every lead, the timeline entries that name it, and its id in
    /// Unsorted entries' metadata (set to null). The leads themselves stay.
    async fn erase_visitor(&self, scope: &ErasureScope, visitor: VisitorId) -> StoreResult<Erased>;
    /// Keeps an audit record (the newest [`AUDIT_KEPT`]).
    async fn add_audit(&self, account: AccountId, record: &AuditRecord) -> StoreResult<()>;
    /// The account's audit records, newest first.
    async fn audit(&self, account: AccountId) -> StoreResult<Vec<AuditRecord>>;
}

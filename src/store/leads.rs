//! The [`Leads`] aggregate: leads, their contacts, timelines, browser links and Unsorted
//! entries, and the atomic steps that change several of them at once (a submission, a
//! move, an accept or a decline).

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::ids::{AccountId, LeadId, UnsortedUid};
use crate::domain::lead::{Lead, Unsorted, VisitorLink};
use crate::domain::pipeline::Stage;
use crate::domain::time::Millis;
use crate::domain::timeline::{MoveOrigin, TimelineEntry};
use crate::domain::tracking::PageView;
use crate::domain::visitor::VisitorId;

/// What makes a submission the same as an earlier one: the form, the browser and the
/// contact, hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    /// Looked up, and kept for the window. For a post that brought no browser id it names
    /// no browser, so that a repeat without an id (a double click, a retry) folds.
    pub looked_up: String,
    /// For a post that brought no browser id, the one naming the browser minted for it,
    /// kept too: a repeat carrying the id the first answer gave out folds as well.
    pub minted_browser: Option<String>,
}

/// A form submission to record, with its ids allocated: one atomic step that either finds
/// it a duplicate, gives it to the open lead of a known contact, or creates the lead, its
/// contact, the contact index, the Unsorted entry and the timeline — and links the browser.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub account: AccountId,
    /// The same browser sending the same contact through the same form within
    /// `duplicate_window_secs` folds into the first submission.
    pub fingerprints: Fingerprints,
    pub duplicate_window_secs: u64,
    /// The keys the contact is found by (`email:…`, `phone:…`).
    pub contact_keys: Vec<String>,
    /// The lead to create (in the pipeline's Unsorted stage, its contact main).
    pub lead: Lead,
    pub unsorted: Unsorted,
    /// The submitting browser, linked to the lead; none for a form sent without the
    /// visitor's consent or a backend's without a visitor id (recorded, linked to no
    /// browser).
    pub browser: Option<VisitorId>,
    pub at: Millis,
    /// The browser's history and its link to the lead are kept this long from now on,
    /// whatever shorter expiry an anonymous first visit gave the history.
    pub link_retention_secs: u64,
}

/// What became of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmissionOutcome {
    /// The lead and its Unsorted entry were created; the browser left `previous_lead`.
    /// When the contact already had an open lead in the pipeline, the entry is marked as
    /// its possible duplicate (`duplicate_of`); that lead is left as it was, and the
    /// contact keeps pointing at it.
    Created {
        previous_lead: Option<LeadId>,
        duplicate_of: Option<LeadId>,
    },
    /// A double submission: the first one's lead, and its Unsorted entry while it is
    /// still there to accept.
    Duplicate {
        lead: LeadId,
        uid: Option<UnsortedUid>,
    },
}

/// A move of a lead to a stage: atomic with its timeline entry and, for an accept or a
/// decline, the removal of the Unsorted entry.
#[derive(Debug, Clone)]
pub struct LeadMove {
    pub account: AccountId,
    pub lead: LeadId,
    pub to: Stage,
    pub at: Millis,
    /// Move only if the lead stands here (accepting from Unsorted races other accepts).
    pub expect: Option<Stage>,
    pub by: MoveOrigin,
    /// The Unsorted entry that the move settles; the move happens only while it exists.
    pub unsorted: Option<UnsortedUid>,
}

/// The result of a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    Moved {
        from: Stage,
    },
    /// No such lead, or no such Unsorted entry when the move settles one.
    NotFound,
    /// The lead was not where the caller expected (someone moved it first).
    Conflict {
        current: Stage,
    },
}

/// What a submission takes before its atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub lead: LeadId,
    pub contact: crate::domain::ids::ContactId,
    /// The account's catalog version, to check the caller's snapshot against.
    pub catalog_version: u64,
    /// The browser's newest page views (at most [`RECENT_PAGE_VIEWS`], oldest first): where
    /// the visit of the form came from (`domain::source`).
    pub recent: Vec<PageView>,
}

/// How many of a browser's newest page views a submission reads for its visit's source.
pub const RECENT_PAGE_VIEWS: usize = 100;

#[async_trait]
pub trait Leads: Send + Sync {
    /// Before a submission's atomic step, in one round trip: the ids of its lead and
    /// contact, the catalog version, and, when it has a browser, the browser's recent page
    /// views and its history kept for `retention_secs` (it is about to belong to a lead,
    /// whatever shorter expiry an anonymous first visit gave it).
    async fn reserve_submission(
        &self,
        account: AccountId,
        browser: Option<VisitorId>,
        retention_secs: u64,
    ) -> StoreResult<Reserved>;
    /// Records a form submission (see [`NewSubmission`]).
    async fn create_lead_from_submission(
        &self,
        submission: &NewSubmission,
    ) -> StoreResult<SubmissionOutcome>;
    /// The account's leads among `ids`, in the order asked.
    async fn get_leads(&self, account: AccountId, ids: &[LeadId]) -> StoreResult<Vec<Lead>>;
    /// Ids of an account's leads, newest first.
    async fn lead_ids(&self, account: AccountId) -> StoreResult<Vec<LeadId>>;
    async fn move_lead(&self, m: &LeadMove) -> StoreResult<MoveOutcome>;
    /// Declines an Unsorted entry: it goes, its lead is closed as lost (`lost`), and the
    /// lead's timeline records both. `NotFound` (nothing written) when the entry or its
    /// lead is gone.
    async fn decline(&self, entry: &Unsorted, lost: Stage, at: Millis) -> StoreResult<MoveOutcome>;
    async fn rename_lead(
        &self,
        account: AccountId,
        id: LeadId,
        name: &str,
        at: Millis,
    ) -> StoreResult<bool>;
    /// Links a browser to an existing lead of the account, exactly as a submission links
    /// it (its page views before joining the lead, the lead it left told): one atomic
    /// step; the link kept `retention_secs`. `None` when the lead does not exist; else the
    /// lead the browser left.
    async fn link_visitor(
        &self,
        account: AccountId,
        lead: LeadId,
        visitor: VisitorId,
        at: Millis,
        retention_secs: u64,
    ) -> StoreResult<Option<Option<LeadId>>>;
    async fn append_timeline(
        &self,
        account: AccountId,
        lead: LeadId,
        entry: &TimelineEntry,
    ) -> StoreResult<()>;
    /// The lead's timeline in the order it was written.
    async fn timeline(&self, account: AccountId, lead: LeadId) -> StoreResult<Vec<TimelineEntry>>;
    /// The browsers linked to a lead, by the time they were linked.
    async fn lead_visitors(
        &self,
        account: AccountId,
        lead: LeadId,
    ) -> StoreResult<Vec<VisitorLink>>;
    async fn get_unsorted(
        &self,
        account: AccountId,
        uid: &UnsortedUid,
    ) -> StoreResult<Option<Unsorted>>;
    /// The account's Unsorted entries, oldest first.
    async fn list_unsorted(&self, account: AccountId) -> StoreResult<Vec<Unsorted>>;
}

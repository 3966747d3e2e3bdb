//! One behaviour, two stores: every test here runs against the Redis store (on a real
//! Redis, under a key prefix of its own) and the embedded store, and both must give the
//! same answers — the same lists in the same order, the same expiry.

pub(crate) use crate::common::stores::{Shared, conformance};

use std::time::Duration;

use footfall::domain::event::EventType;
use footfall::domain::event_record::{DeliveryState, EventRecord};
use footfall::domain::ids::*;
use footfall::domain::lead::{Contact, Lead, Unsorted, UnsortedMetadata, VisitorLink};
use footfall::domain::pipeline::Stage;
use footfall::domain::site::Site;
use footfall::domain::time::now_ms;
use footfall::domain::timeline::{MoveOrigin, TimelineEntry};
use footfall::domain::tracking::PageView;
use footfall::domain::visitor::VisitorId;
use footfall::store::{
    Fingerprints, LeadMove, MoveOutcome, NewSubmission, PageViewWrite, RecordKind, Sequence,
    SubmissionOutcome, VisitStart, VisitorState, catalog,
};

/// How long finished events are kept by the stores of the expiry tests.
const SHORT_RETENTION_SECS: u64 = 1;

conformance!(
    on_redis, on_memory, retention 3600;
    sequences_count_up_from_their_base,
    claim_once_is_true_exactly_once,
    catalog_records_are_scoped_to_their_account,
    catalog_versions_count_changes,
    aliases_find_records_without_an_account,
    leads_are_stored_listed_newest_first_and_renamed,
    conditional_moves_report_where_the_lead_was,
    timelines_keep_their_order,
    timelines_are_kept_only_for_leads_of_the_account,
    lead_visitor_links_are_replaced_per_visitor,
    a_browser_is_linked_to_an_existing_lead_as_a_submission_links_it,
    unsorted_entries_are_removed_once,
    a_submission_creates_lead_contact_entry_timeline_and_link,
    a_known_contacts_open_lead_is_left_alone_by_the_submission,
    duplicate_submissions_answer_the_first_lead_and_its_entry,
    duplicate_submissions_fold_until_the_window_ends,
    contacts_point_at_their_latest_lead_per_account,
    a_browser_submitting_for_another_lead_moves_to_it,
    moves_settle_an_unsorted_entry_only_when_they_move,
    declining_removes_the_entry_and_closes_the_lead,
    page_views_report_the_previous_sighting_per_site,
    page_view_history_is_kept_in_order_and_trimmed,
    visits_are_numbered_and_tell_the_linked_lead,
    visits_tell_the_catalog_version,
    linking_a_visitor_returns_its_previous_lead,
    a_submission_without_a_browser_links_none,
    trimming_the_history_keeps_the_visitors_lead_and_visits,
    one_browser_in_two_accounts_is_two_visitors,
    histories_expire_with_the_retention_of_their_last_visit,
    a_browsers_link_expires_with_the_retention_unless_a_visit_refreshes_it,
    an_anonymous_first_visit_keeps_its_history_briefly,
    due_events_are_claimed_with_a_lease,
    a_claim_takes_every_shards_due_events_in_one_round_trip,
    finished_events_leave_the_schedule,
    fired_events_go_on_their_leads_timelines,
    events_fired_together_are_listed_newest_first,
    dead_events_are_listed_per_handler_until_replayed,
    handler_failures_keep_the_first_time_until_a_success,
);

conformance!(
    on_redis_short_retention, on_memory_short_retention, retention super::SHORT_RETENTION_SECS;
    finished_events_expire_after_the_retention,
    dead_letters_are_listed_while_their_events_are_kept,
);

pub(crate) const ACCOUNT: AccountId = AccountId(7);
const OTHER: AccountId = AccountId(8);
const PIPELINE: PipelineId = PipelineId(1);
const UNSORTED: u64 = 1001;
const WON: u64 = 142;
const LOST: u64 = 143;

fn stage(status: u64) -> Stage {
    Stage {
        pipeline_id: PIPELINE,
        status_id: StatusId(status),
    }
}

fn lead_in(account: AccountId, id: u64, created_at: i64) -> Lead {
    Lead {
        id: LeadId(id),
        account_id: account,
        name: format!("Lead {id}"),
        pipeline_id: PIPELINE,
        status_id: StatusId(UNSORTED),
        created_at,
        updated_at: created_at,
        contacts: vec![Contact {
            id: ContactId(id),
            name: "Anna".into(),
            phone: Some("+7 900".into()),
            email: Some(format!("anna{id}@b.co")),
            is_main: true,
        }],
    }
}

pub(crate) fn lead(id: u64, created_at: i64) -> Lead {
    lead_in(ACCOUNT, id, created_at)
}

fn uid(lead: u64) -> UnsortedUid {
    UnsortedUid(format!("u{lead}"))
}

fn form() -> FormId {
    FormId("f1".into())
}

fn entry_in(account: AccountId, lead: u64, created_at: i64) -> Unsorted {
    Unsorted {
        uid: uid(lead),
        account_id: account,
        category: "forms".into(),
        pipeline_id: PIPELINE,
        created_at,
        metadata: UnsortedMetadata {
            duplicate_of_lead_id: None,
            form_id: form(),
            form_name: "Contact".into(),
            form_page: "https://shop.example/".into(),
            ip: "1.2.3.4".into(),
            referer: String::new(),
            visitor_uid: None,
            form_sent_at: 0,
            utm: None,
        },
        lead_id: LeadId(lead),
        contact_id: ContactId(lead),
    }
}

/// A submission of `email` from `visitor` at `at` that would create lead `lead` (uid
/// `u<lead>`) in `account`. Its fingerprint is the browser, the contact and the time, so
/// that only the very same submission is a duplicate.
fn submission_in(
    account: AccountId,
    lead: u64,
    email: &str,
    visitor: VisitorId,
    at: i64,
) -> NewSubmission {
    NewSubmission {
        account,
        fingerprints: Fingerprints {
            looked_up: format!("{}:{email}:{at}", visitor.encode()),
            minted_browser: None,
        },
        duplicate_window_secs: 3600,
        contact_keys: vec![format!("email:{email}"), format!("phone:{lead}")],
        lead: lead_in(account, lead, at),
        unsorted: entry_in(account, lead, at),
        browser: Some(visitor),
        at,
        link_retention_secs: 3600,
    }
}

pub(crate) fn submission(lead: u64, email: &str, visitor: VisitorId, at: i64) -> NewSubmission {
    submission_in(ACCOUNT, lead, email, visitor, at)
}

/// A submission as the service makes it: reserved (the browser's history kept), then
/// recorded.
pub(crate) async fn submit(store: &Shared, s: &NewSubmission) -> SubmissionOutcome {
    store
        .reserve_submission(s.account, s.browser, s.link_retention_secs)
        .await
        .unwrap();
    store.create_lead_from_submission(s).await.unwrap()
}

/// Submits a new contact's form: creates lead `id` at `at`, from a browser of its own.
async fn new_lead(store: &Shared, id: u64, at: i64) -> VisitorId {
    let v = VisitorId::mint();
    let outcome = submit(store, &submission(id, &format!("c{id}@b.co"), v, at)).await;
    assert_eq!(
        outcome,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    v
}

fn created(at: i64, lead: u64) -> TimelineEntry {
    TimelineEntry::LeadCreated {
        at,
        form_id: form(),
        unsorted_uid: uid(lead),
    }
}

fn linked(at: i64, visitor: VisitorId, previous_lead: Option<u64>) -> TimelineEntry {
    TimelineEntry::VisitorLinked {
        at,
        visitor,
        previous_lead: previous_lead.map(LeadId),
    }
}

fn moved(at: i64, from: u64, to: u64, by: MoveOrigin) -> TimelineEntry {
    TimelineEntry::Moved {
        at,
        from: Some(stage(from)),
        to: stage(to),
        by,
    }
}

fn link(visitor: VisitorId, linked_at: i64, since: Option<i64>, until: Option<i64>) -> VisitorLink {
    VisitorLink {
        visitor,
        linked_at,
        since,
        until,
    }
}

fn lead_move(lead: u64, to: u64, at: i64) -> LeadMove {
    LeadMove {
        account: ACCOUNT,
        lead: LeadId(lead),
        to: stage(to),
        at,
        expect: None,
        by: MoveOrigin::Api,
        unsorted: None,
    }
}

fn accept(lead: u64, to: u64, at: i64) -> LeadMove {
    LeadMove {
        expect: Some(stage(UNSORTED)),
        by: MoveOrigin::Accept,
        unsorted: Some(uid(lead)),
        ..lead_move(lead, to, at)
    }
}

async fn stored_lead(store: &Shared, id: u64) -> Option<Lead> {
    store.get_leads(ACCOUNT, &[LeadId(id)]).await.unwrap().pop()
}

pub(crate) fn page_view(at: i64, site: u64, path: &str) -> PageView {
    PageView {
        at,
        site_id: SiteId(site),
        url: format!("https://shop.example{path}"),
        title: "T".into(),
        referrer: String::new(),
    }
}

pub(crate) fn write(visitor: VisitorId, pv: PageView) -> PageViewWrite {
    PageViewWrite {
        account: ACCOUNT,
        visitor,
        page_view: pv,
        visit_idle_ms: 3_600_000,
        watch: false,
    }
}

fn urls(pvs: Vec<PageView>) -> Vec<String> {
    pvs.into_iter()
        .map(|p| p.url.replace("https://shop.example", ""))
        .collect()
}

pub(crate) fn event(due_at: i64, handler: u64) -> EventRecord {
    EventRecord {
        id: EventId::generate(),
        account_id: ACCOUNT,
        lead_id: LeadId(1),
        action_id: ActionId(1),
        handler_id: HandlerId(handler),
        event_type: EventType::SiteVisit,
        direction: None,
        stage: stage(1002),
        visit: None,
        delayed_by: 0,
        created_at: due_at,
        due_at,
        state: DeliveryState::Scheduled,
        body: None,
        attempts: vec![],
        failures: 0,
        next_attempt_at: None,
        reason: None,
        notice: None,
    }
}

fn site(id: u64, account: AccountId) -> Site {
    Site {
        id: SiteId(id),
        account_id: account,
        key: SiteKey(format!("key{id}")),
        name: format!("Site {id}"),
        url: "https://shop.example".into(),
        hosts: vec!["shop.example".into()],
        respect_opt_out: false,
        consent: Default::default(),
        consent_days: None,
        visit_idle_seconds: None,
        created_at: 0,
    }
}

// --- catalog --------------------------------------------------------------------------

async fn sequences_count_up_from_their_base(store: Shared) {
    assert_eq!(store.next_id(Sequence::Lead).await.unwrap(), 1);
    assert_eq!(store.next_id(Sequence::Lead).await.unwrap(), 2);
    assert_eq!(store.next_id(Sequence::Status).await.unwrap(), 1001);
    assert_eq!(store.next_id(Sequence::Site).await.unwrap(), 1);
    assert_eq!(
        store
            .next_ids(
                ACCOUNT,
                &[Sequence::Lead, Sequence::Status, Sequence::Contact]
            )
            .await
            .unwrap(),
        (vec![3, 1002, 1], 0)
    );
    assert_eq!(store.next_ids(ACCOUNT, &[]).await.unwrap(), (vec![], 0));
    assert_eq!(store.next_id(Sequence::Contact).await.unwrap(), 2);
}

async fn claim_once_is_true_exactly_once(store: Shared) {
    assert!(store.claim_once("bootstrap:1").await.unwrap());
    assert!(!store.claim_once("bootstrap:1").await.unwrap());
    assert!(store.claim_once("bootstrap:2").await.unwrap());
}

async fn catalog_records_are_scoped_to_their_account(store: Shared) {
    let s = &*store;
    let ids = |sites: Vec<Site>| sites.iter().map(|x| x.id.0).collect::<Vec<_>>();
    catalog::put(s, &site(2, ACCOUNT)).await.unwrap();
    catalog::put(s, &site(1, ACCOUNT)).await.unwrap();
    catalog::put(s, &site(3, OTHER)).await.unwrap();
    // Creation order, not the order of ids.
    assert_eq!(ids(catalog::list(s, ACCOUNT).await.unwrap()), [2, 1]);
    assert_eq!(ids(catalog::list(s, OTHER).await.unwrap()), [3]);
    assert!(catalog::get::<Site>(s, ACCOUNT, 3).await.unwrap().is_none());
    let mut changed = site(1, ACCOUNT);
    changed.name = "Renamed".into();
    catalog::put(s, &changed).await.unwrap();
    assert_eq!(
        catalog::get::<Site>(s, ACCOUNT, 1).await.unwrap(),
        Some(changed.clone())
    );
    // Replacing a record keeps its place.
    let listed: Vec<Site> = catalog::list(s, ACCOUNT).await.unwrap();
    assert_eq!(listed, [site(2, ACCOUNT), changed]);
    assert!(catalog::delete::<Site>(s, ACCOUNT, 1).await.unwrap());
    assert!(!catalog::delete::<Site>(s, ACCOUNT, 1).await.unwrap());
    assert!(!catalog::delete::<Site>(s, ACCOUNT, 3).await.unwrap());
    assert_eq!(ids(catalog::list(s, ACCOUNT).await.unwrap()), [2]);
    // A record put again after its deletion is the newest.
    catalog::put(s, &site(1, ACCOUNT)).await.unwrap();
    assert_eq!(ids(catalog::list(s, ACCOUNT).await.unwrap()), [2, 1]);
    assert_eq!(
        s.list_records(OTHER, RecordKind::Site).await.unwrap().len(),
        1
    );
    assert!(
        s.list_records(ACCOUNT, RecordKind::Form)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn catalog_versions_count_changes(store: Shared) {
    let s = &*store;
    assert_eq!(s.catalog_version(ACCOUNT).await.unwrap(), 0);
    s.put_record(ACCOUNT, RecordKind::Handler, "1", "{}")
        .await
        .unwrap();
    assert_eq!(s.catalog_version(ACCOUNT).await.unwrap(), 1);
    s.put_record(ACCOUNT, RecordKind::Handler, "1", "{\"a\":1}")
        .await
        .unwrap();
    s.put_record(ACCOUNT, RecordKind::Action, "1", "{}")
        .await
        .unwrap();
    assert_eq!(s.catalog_version(ACCOUNT).await.unwrap(), 3);
    // Reads, aliases and deletions of nothing change nothing.
    s.get_record(ACCOUNT, RecordKind::Handler, "1")
        .await
        .unwrap();
    s.list_records(ACCOUNT, RecordKind::Handler).await.unwrap();
    s.put_alias(RecordKind::Site, "key9", "7/9").await.unwrap();
    assert!(
        !s.delete_record(ACCOUNT, RecordKind::Handler, "2")
            .await
            .unwrap()
    );
    assert_eq!(s.catalog_version(ACCOUNT).await.unwrap(), 3);
    assert!(
        s.delete_record(ACCOUNT, RecordKind::Handler, "1")
            .await
            .unwrap()
    );
    assert_eq!(s.catalog_version(ACCOUNT).await.unwrap(), 4);
    assert_eq!(s.catalog_version(OTHER).await.unwrap(), 0);
}

async fn aliases_find_records_without_an_account(store: Shared) {
    let s = &*store;
    catalog::put(s, &site(5, AccountId(9))).await.unwrap();
    let found = catalog::site_by_key(s, &SiteKey("key5".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.account_id), (SiteId(5), AccountId(9)));
    assert!(
        catalog::site_by_key(s, &SiteKey("nope".into()))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.get_alias(RecordKind::Site, "key5").await.unwrap(),
        Some("9/5".to_owned())
    );
    assert_eq!(s.get_alias(RecordKind::Form, "key5").await.unwrap(), None);
}

// --- leads ----------------------------------------------------------------------------

async fn leads_are_stored_listed_newest_first_and_renamed(store: Shared) {
    for id in [1, 2, 3] {
        new_lead(&store, id, id as i64 * 10).await;
    }
    let ids = store.lead_ids(ACCOUNT).await.unwrap();
    assert_eq!(ids, [LeadId(3), LeadId(2), LeadId(1)]);
    assert!(store.lead_ids(AccountId(99)).await.unwrap().is_empty());
    let got = store
        .get_leads(ACCOUNT, &[LeadId(2), LeadId(42), LeadId(1)])
        .await
        .unwrap();
    assert_eq!(got, [lead(2, 20), lead(1, 10)]);
    // Another account sees none of them.
    assert!(
        store
            .get_leads(OTHER, &[LeadId(1), LeadId(2)])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.get_leads(ACCOUNT, &[]).await.unwrap().is_empty());
    assert!(
        store
            .rename_lead(ACCOUNT, LeadId(2), "New name", 99)
            .await
            .unwrap()
    );
    assert!(
        !store
            .rename_lead(ACCOUNT, LeadId(42), "x", 99)
            .await
            .unwrap()
    );
    assert!(!store.rename_lead(OTHER, LeadId(1), "x", 99).await.unwrap());
    let renamed = stored_lead(&store, 2).await.unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.updated_at),
        ("New name", 99)
    );
    assert_eq!(stored_lead(&store, 1).await.unwrap(), lead(1, 10));
}

async fn conditional_moves_report_where_the_lead_was(store: Shared) {
    let v = new_lead(&store, 1, 0).await;
    let expecting = |to, at, expect| LeadMove {
        expect: Some(stage(expect)),
        ..lead_move(1, to, at)
    };
    assert_eq!(
        store
            .move_lead(&expecting(1002, 5, UNSORTED))
            .await
            .unwrap(),
        MoveOutcome::Moved {
            from: stage(UNSORTED)
        }
    );
    assert_eq!(
        store
            .move_lead(&expecting(1003, 6, UNSORTED))
            .await
            .unwrap(),
        MoveOutcome::Conflict {
            current: stage(1002)
        }
    );
    assert_eq!(
        store.move_lead(&lead_move(1, WON, 7)).await.unwrap(),
        MoveOutcome::Moved { from: stage(1002) }
    );
    assert_eq!(
        store.move_lead(&lead_move(9, WON, 7)).await.unwrap(),
        MoveOutcome::NotFound
    );
    // A lead of another account is not found there.
    let elsewhere = LeadMove {
        account: OTHER,
        ..lead_move(1, 1003, 8)
    };
    assert_eq!(
        store.move_lead(&elsewhere).await.unwrap(),
        MoveOutcome::NotFound
    );
    let l = stored_lead(&store, 1).await.unwrap();
    assert_eq!((l.stage(), l.updated_at), (stage(WON), 7));
    // Each move wrote its Moved entry with it; the conflict and the misses wrote nothing.
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [
            created(0, 1),
            linked(0, v, None),
            moved(5, UNSORTED, 1002, MoveOrigin::Api),
            moved(7, 1002, WON, MoveOrigin::Api),
        ]
    );
    // A move to where the lead stands is a move (it touches the lead) but not an entry.
    assert_eq!(
        store.move_lead(&lead_move(1, WON, 9)).await.unwrap(),
        MoveOutcome::Moved { from: stage(WON) }
    );
    assert_eq!(stored_lead(&store, 1).await.unwrap().updated_at, 9);
    assert_eq!(store.timeline(ACCOUNT, LeadId(1)).await.unwrap().len(), 4);
}

async fn timelines_keep_their_order(store: Shared) {
    let v = new_lead(&store, 1, 1).await;
    let moved = moved(2, UNSORTED, 1002, MoveOrigin::Api);
    let declined = TimelineEntry::Declined { at: 3 };
    let note = TimelineEntry::Note {
        at: 3,
        id: 1,
        note_type: 4,
        params: serde_json::json!({"text": "hi"}),
    };
    for entry in [&moved, &declined, &note] {
        store
            .append_timeline(ACCOUNT, LeadId(1), entry)
            .await
            .unwrap();
    }
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [created(1, 1), linked(1, v, None), moved, declined, note]
    );
    assert!(store.timeline(ACCOUNT, LeadId(2)).await.unwrap().is_empty());
}

/// A timeline is a lead's: appending to a lead the account does not have keeps nothing
/// (an event of a lead that went away, a lead id of another account).
async fn timelines_are_kept_only_for_leads_of_the_account(store: Shared) {
    new_lead(&store, 1, 1).await;
    let note = TimelineEntry::Declined { at: 2 };
    store
        .append_timeline(OTHER, LeadId(1), &note)
        .await
        .unwrap();
    store
        .append_timeline(ACCOUNT, LeadId(5), &note)
        .await
        .unwrap();
    // The same for the EventFired entry of an event whose lead is not there.
    let mut orphan = event(now_ms(), 1);
    orphan.lead_id = LeadId(6);
    store.add_events(&[orphan]).await.unwrap();
    assert_eq!(store.timeline(ACCOUNT, LeadId(1)).await.unwrap().len(), 2);
    let kept = (
        store.timeline(OTHER, LeadId(1)).await.unwrap(),
        store.timeline(ACCOUNT, LeadId(5)).await.unwrap(),
        store.timeline(ACCOUNT, LeadId(6)).await.unwrap(),
    );
    assert_eq!(kept, (vec![], vec![], vec![]));
}

/// A submission that names a known contact's open lead: a lead of its own, marked.
fn possible_duplicate(previous: Option<u64>, of: u64) -> SubmissionOutcome {
    SubmissionOutcome::Created {
        previous_lead: previous.map(LeadId),
        duplicate_of: Some(LeadId(of)),
    }
}

async fn lead_visitor_links_are_replaced_per_visitor(store: Shared) {
    let a = VisitorId::mint();
    submit(&store, &submission(1, "a@b.co", a, 1)).await;
    // Browser a sends another contact's form: its link to lead 1 ends.
    submit(&store, &submission(3, "other@b.co", a, 9)).await;
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(a, 1, None, Some(9))]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(3)).await.unwrap(),
        [link(a, 9, Some(9), None)]
    );
    // … and lead 1's contact again: a lead of its own (lead 1's possible duplicate); lead
    // 1 does not take the browser back (changed from "the open lead takes it": anyone
    // can type a known email).
    assert_eq!(
        submit(&store, &submission(4, "a@b.co", a, 12)).await,
        possible_duplicate(Some(3), 1)
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(a, 1, None, Some(9))]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(3)).await.unwrap(),
        [link(a, 9, Some(9), Some(12))]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(4)).await.unwrap(),
        [link(a, 12, Some(12), None)]
    );
    assert!(
        store
            .lead_visitors(OTHER, LeadId(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .lead_visitors(ACCOUNT, LeadId(42))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn unsorted_entries_are_removed_once(store: Shared) {
    // Entry b is created before entry a but is dated later: oldest first is by date.
    submit(&store, &submission(2, "b@b.co", VisitorId::mint(), 2)).await;
    submit(&store, &submission(1, "a@b.co", VisitorId::mint(), 1)).await;
    let list = store.list_unsorted(ACCOUNT).await.unwrap();
    assert_eq!(list, [entry_in(ACCOUNT, 1, 1), entry_in(ACCOUNT, 2, 2)]);
    assert_eq!(
        store.get_unsorted(ACCOUNT, &uid(2)).await.unwrap(),
        Some(entry_in(ACCOUNT, 2, 2))
    );
    assert!(store.get_unsorted(OTHER, &uid(2)).await.unwrap().is_none());
    assert!(store.list_unsorted(OTHER).await.unwrap().is_empty());
    assert_eq!(
        store.move_lead(&accept(1, 1002, 5)).await.unwrap(),
        MoveOutcome::Moved {
            from: stage(UNSORTED)
        }
    );
    // A second accept finds the lead moved on (as a racing accept does).
    assert_eq!(
        store.move_lead(&accept(1, 1002, 6)).await.unwrap(),
        MoveOutcome::Conflict {
            current: stage(1002)
        }
    );
    assert_eq!(
        store
            .decline(&entry_in(ACCOUNT, 1, 1), stage(LOST), 7)
            .await
            .unwrap(),
        MoveOutcome::NotFound
    );
    assert_eq!(
        store.list_unsorted(ACCOUNT).await.unwrap(),
        [entry_in(ACCOUNT, 2, 2)]
    );
    assert!(
        store
            .get_unsorted(ACCOUNT, &uid(1))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_submission_creates_lead_contact_entry_timeline_and_link(store: Shared) {
    let v = VisitorId::mint();
    let s = submission(1, "anna@b.co", v, 100);
    assert_eq!(
        submit(&store, &s).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    assert_eq!(store.lead_ids(ACCOUNT).await.unwrap(), [LeadId(1)]);
    assert_eq!(stored_lead(&store, 1).await.unwrap(), lead(1, 100));
    assert_eq!(
        store.list_unsorted(ACCOUNT).await.unwrap(),
        [entry_in(ACCOUNT, 1, 100)]
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [created(100, 1), linked(100, v, None)]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(v, 100, None, None)]
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap(),
        VisitorState {
            visits: 0,
            lead: Some(LeadId(1))
        }
    );
    // The contact index: the same email from another browser finds the open lead, and
    // the submission becomes a lead of its own marked as its possible duplicate.
    let w = VisitorId::mint();
    let mut again = submission(2, "anna@b.co", w, 200);
    again.contact_keys = vec!["email:anna@b.co".into()];
    assert_eq!(submit(&store, &again).await, possible_duplicate(None, 1));
    // And by any of its keys: the phone alone finds it too.
    let x = VisitorId::mint();
    let mut by_phone = submission(3, "new@b.co", x, 300);
    by_phone.contact_keys = vec!["email:new@b.co".into(), "phone:1".into()];
    assert_eq!(submit(&store, &by_phone).await, possible_duplicate(None, 1));
    assert_eq!(
        store.lead_ids(ACCOUNT).await.unwrap(),
        [LeadId(3), LeadId(2), LeadId(1)]
    );
    let marked = |lead, at| Unsorted {
        metadata: UnsortedMetadata {
            duplicate_of_lead_id: Some(LeadId(1)),
            ..entry_in(ACCOUNT, lead, at).metadata
        },
        ..entry_in(ACCOUNT, lead, at)
    };
    assert_eq!(
        store.list_unsorted(ACCOUNT).await.unwrap(),
        [entry_in(ACCOUNT, 1, 100), marked(2, 200), marked(3, 300)]
    );
    // Lead 1 keeps its one browser; each new browser is its own lead's.
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(v, 100, None, None)]
    );
    assert_eq!(
        store.visitor(ACCOUNT, w).await.unwrap().lead,
        Some(LeadId(2))
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [created(100, 1), linked(100, v, None)]
    );
}

async fn a_known_contacts_open_lead_is_left_alone_by_the_submission(store: Shared) {
    let v = new_lead(&store, 1, 10).await;
    let w = VisitorId::mint();
    assert_eq!(
        submit(&store, &submission(2, "c1@b.co", w, 20)).await,
        possible_duplicate(None, 1)
    );
    // Lead 1, its timeline and its browsers are as they were; lead 2 has browser w.
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [created(10, 1), linked(10, v, None)]
    );
    assert_eq!(stored_lead(&store, 1).await.unwrap(), lead(1, 10));
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(v, 10, None, None)]
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(2)).await.unwrap(),
        [created(20, 2), linked(20, w, None)]
    );
    // The contact still points at lead 1: the next submission is marked for it too.
    assert_eq!(
        submit(&store, &submission(4, "c1@b.co", VisitorId::mint(), 25)).await,
        possible_duplicate(None, 1)
    );
    // A lead in another pipeline is not the contact's open lead in this one.
    let mut elsewhere = submission(3, "c1@b.co", VisitorId::mint(), 30);
    elsewhere.lead.pipeline_id = PipelineId(2);
    elsewhere.unsorted.pipeline_id = PipelineId(2);
    assert_eq!(
        submit(&store, &elsewhere).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    assert_eq!(
        store.lead_ids(ACCOUNT).await.unwrap(),
        [LeadId(4), LeadId(3), LeadId(2), LeadId(1)]
    );
}

async fn duplicate_submissions_answer_the_first_lead_and_its_entry(store: Shared) {
    let v = VisitorId::mint();
    let s = submission(1, "anna@b.co", v, 100);
    submit(&store, &s).await;
    // The double submission (its ids were allocated anew) folds into the first.
    let double = NewSubmission {
        lead: lead(2, 101),
        unsorted: entry_in(ACCOUNT, 2, 101),
        at: 101,
        ..s.clone()
    };
    assert_eq!(
        submit(&store, &double).await,
        SubmissionOutcome::Duplicate {
            lead: LeadId(1),
            uid: Some(uid(1))
        }
    );
    assert_eq!(store.lead_ids(ACCOUNT).await.unwrap(), [LeadId(1)]);
    assert_eq!(
        store.list_unsorted(ACCOUNT).await.unwrap(),
        [entry_in(ACCOUNT, 1, 100)]
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [created(100, 1), linked(100, v, None)]
    );
    // The same fingerprint in another account is not a duplicate.
    assert_eq!(
        submit(&store, &submission_in(OTHER, 5, "anna@b.co", v, 100)).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    // Once the entry is accepted, a duplicate still names the lead, but no entry.
    store.move_lead(&accept(1, 1002, 150)).await.unwrap();
    assert_eq!(
        submit(&store, &double).await,
        SubmissionOutcome::Duplicate {
            lead: LeadId(1),
            uid: None
        }
    );
    // A known contact's submission has an entry of its own, which its double names.
    let w = VisitorId::mint();
    let known = submission(3, "anna@b.co", w, 200);
    assert_eq!(submit(&store, &known).await, possible_duplicate(None, 1));
    assert_eq!(
        submit(&store, &known).await,
        SubmissionOutcome::Duplicate {
            lead: LeadId(3),
            uid: Some(uid(3))
        }
    );
    assert_eq!(store.timeline(ACCOUNT, LeadId(1)).await.unwrap().len(), 3);
}

async fn duplicate_submissions_fold_until_the_window_ends(store: Shared) {
    let v = VisitorId::mint();
    let s = NewSubmission {
        duplicate_window_secs: 1,
        ..submission(1, "anna@b.co", v, 100)
    };
    submit(&store, &s).await;
    assert_eq!(
        submit(&store, &s).await,
        SubmissionOutcome::Duplicate {
            lead: LeadId(1),
            uid: Some(uid(1))
        }
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // No longer a duplicate: a lead of its own (its ids were allocated anew), marked as
    // the contact's open lead's possible duplicate.
    let later = NewSubmission {
        lead: lead(2, 101),
        unsorted: entry_in(ACCOUNT, 2, 101),
        ..s.clone()
    };
    assert_eq!(submit(&store, &later).await, possible_duplicate(Some(1), 1));
    assert_eq!(
        submit(&store, &later).await,
        SubmissionOutcome::Duplicate {
            lead: LeadId(2),
            uid: Some(uid(2))
        }
    );
}

async fn contacts_point_at_their_latest_lead_per_account(store: Shared) {
    submit(&store, &submission(1, "a@b.co", VisitorId::mint(), 1)).await;
    // Won: no longer open, so the contact's next submission makes a new lead …
    store.move_lead(&lead_move(1, WON, 2)).await.unwrap();
    assert_eq!(
        submit(&store, &submission(2, "a@b.co", VisitorId::mint(), 3)).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    // … which the contact points at from then on.
    assert_eq!(
        submit(&store, &submission(3, "a@b.co", VisitorId::mint(), 4)).await,
        possible_duplicate(None, 2)
    );
    // Lost closes it too.
    store.move_lead(&lead_move(2, LOST, 5)).await.unwrap();
    assert_eq!(
        submit(&store, &submission(4, "a@b.co", VisitorId::mint(), 6)).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    // Another account does not know the contact.
    assert_eq!(
        submit(
            &store,
            &submission_in(OTHER, 5, "a@b.co", VisitorId::mint(), 7)
        )
        .await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    assert_eq!(
        store.lead_ids(ACCOUNT).await.unwrap(),
        [LeadId(4), LeadId(3), LeadId(2), LeadId(1)]
    );
    assert_eq!(store.lead_ids(OTHER).await.unwrap(), [LeadId(5)]);
}

async fn a_browser_submitting_for_another_lead_moves_to_it(store: Shared) {
    let v = VisitorId::mint();
    submit(&store, &submission(1, "a@b.co", v, 10)).await;
    assert_eq!(
        submit(&store, &submission(2, "b@b.co", v, 20)).await,
        SubmissionOutcome::Created {
            previous_lead: Some(LeadId(1)),
            duplicate_of: None
        }
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(v, 10, None, Some(20))]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(2)).await.unwrap(),
        [link(v, 20, Some(20), None)]
    );
    let visitor_moved = |at, to| TimelineEntry::VisitorMoved {
        at,
        visitor: v,
        to_lead: LeadId(to),
    };
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [created(10, 1), linked(10, v, None), visitor_moved(20, 2)]
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(2)).await.unwrap(),
        [created(20, 2), linked(20, v, Some(1))]
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap().lead,
        Some(LeadId(2))
    );
    // Back to the first contact, whose lead is open: a lead of its own marked as lead
    // 1's possible duplicate (lead 1 used to take the browser back), and a move.
    assert_eq!(
        submit(&store, &submission(3, "a@b.co", v, 30)).await,
        possible_duplicate(Some(2), 1)
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(2)).await.unwrap(),
        [created(20, 2), linked(20, v, Some(1)), visitor_moved(30, 3)]
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [created(10, 1), linked(10, v, None), visitor_moved(20, 2)]
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(3)).await.unwrap(),
        [created(30, 3), linked(30, v, Some(2))]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(2)).await.unwrap(),
        [link(v, 20, Some(20), Some(30))]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(v, 10, None, Some(20))]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(3)).await.unwrap(),
        [link(v, 30, Some(30), None)]
    );
}

async fn moves_settle_an_unsorted_entry_only_when_they_move(store: Shared) {
    let v = new_lead(&store, 1, 1).await;
    // The lead is not where the accept expects it (someone moved it first): no settling.
    store.move_lead(&lead_move(1, 1002, 2)).await.unwrap();
    assert_eq!(
        store.move_lead(&accept(1, 1003, 3)).await.unwrap(),
        MoveOutcome::Conflict {
            current: stage(1002)
        }
    );
    assert_eq!(
        store.list_unsorted(ACCOUNT).await.unwrap(),
        [entry_in(ACCOUNT, 1, 1)]
    );
    // An entry that is not there: no move.
    let unknown = LeadMove {
        unsorted: Some(UnsortedUid("nope".into())),
        expect: None,
        ..lead_move(1, 1003, 4)
    };
    assert_eq!(
        store.move_lead(&unknown).await.unwrap(),
        MoveOutcome::NotFound
    );
    assert_eq!(stored_lead(&store, 1).await.unwrap().stage(), stage(1002));
    // The move happens and settles the entry.
    let settle = LeadMove {
        expect: Some(stage(1002)),
        ..accept(1, 1003, 5)
    };
    assert_eq!(
        store.move_lead(&settle).await.unwrap(),
        MoveOutcome::Moved { from: stage(1002) }
    );
    assert!(store.list_unsorted(ACCOUNT).await.unwrap().is_empty());
    assert_eq!(
        store.move_lead(&settle).await.unwrap(),
        MoveOutcome::Conflict {
            current: stage(1003)
        }
    );
    let l = stored_lead(&store, 1).await.unwrap();
    assert_eq!((l.stage(), l.updated_at), (stage(1003), 5));
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [
            created(1, 1),
            linked(1, v, None),
            moved(2, UNSORTED, 1002, MoveOrigin::Api),
            moved(5, 1002, 1003, MoveOrigin::Accept),
        ]
    );
    // A plain accept straight from Unsorted.
    new_lead(&store, 2, 6).await;
    assert_eq!(
        store.move_lead(&accept(2, 1002, 7)).await.unwrap(),
        MoveOutcome::Moved {
            from: stage(UNSORTED)
        }
    );
    assert!(store.list_unsorted(ACCOUNT).await.unwrap().is_empty());
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(2)).await.unwrap()[2],
        moved(7, UNSORTED, 1002, MoveOrigin::Accept)
    );
}

async fn declining_removes_the_entry_and_closes_the_lead(store: Shared) {
    let v = new_lead(&store, 1, 1).await;
    new_lead(&store, 2, 2).await;
    assert_eq!(
        store
            .decline(&entry_in(ACCOUNT, 1, 1), stage(LOST), 5)
            .await
            .unwrap(),
        MoveOutcome::Moved {
            from: stage(UNSORTED)
        }
    );
    let l = stored_lead(&store, 1).await.unwrap();
    assert_eq!((l.stage(), l.updated_at), (stage(LOST), 5));
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [
            created(1, 1),
            linked(1, v, None),
            TimelineEntry::Declined { at: 5 },
            moved(5, UNSORTED, LOST, MoveOrigin::Decline),
        ]
    );
    assert_eq!(
        store.list_unsorted(ACCOUNT).await.unwrap(),
        [entry_in(ACCOUNT, 2, 2)]
    );
    assert_eq!(
        store
            .decline(&entry_in(ACCOUNT, 1, 1), stage(LOST), 6)
            .await
            .unwrap(),
        MoveOutcome::NotFound
    );
    assert_eq!(
        store
            .decline(&entry_in(OTHER, 2, 2), stage(LOST), 6)
            .await
            .unwrap(),
        MoveOutcome::NotFound
    );
    let mut stranger = entry_in(ACCOUNT, 1, 1);
    stranger.uid = UnsortedUid("nope".into());
    assert_eq!(
        store.decline(&stranger, stage(LOST), 6).await.unwrap(),
        MoveOutcome::NotFound
    );
    assert_eq!(store.timeline(ACCOUNT, LeadId(1)).await.unwrap().len(), 4);
    assert_eq!(stored_lead(&store, 2).await.unwrap(), lead(2, 2));
    // The declined contact is closed: its next submission is a new lead.
    assert_eq!(
        submit(&store, &submission(3, "c1@b.co", VisitorId::mint(), 9)).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
}

// --- visitors -------------------------------------------------------------------------

async fn page_views_report_the_previous_sighting_per_site(store: Shared) {
    let v = VisitorId::mint();
    let first = store
        .record_page_view(write(v, page_view(100, 1, "/")))
        .await
        .unwrap();
    assert_eq!((first.last_seen, first.history_len), (None, 1));
    let second = store
        .record_page_view(write(v, page_view(200, 1, "/a")))
        .await
        .unwrap();
    assert_eq!((second.last_seen, second.history_len), (Some(100), 2));
    let other_site = store
        .record_page_view(write(v, page_view(300, 2, "/")))
        .await
        .unwrap();
    assert_eq!((other_site.last_seen, other_site.history_len), (None, 3));
    let back = store
        .record_page_view(write(v, page_view(400, 1, "/b")))
        .await
        .unwrap();
    assert_eq!((back.last_seen, back.history_len), (Some(200), 4));
}

async fn page_view_history_is_kept_in_order_and_trimmed(store: Shared) {
    let v = VisitorId::mint();
    for (i, path) in ["/1", "/2", "/3", "/4"].iter().enumerate() {
        store
            .record_page_view(write(v, page_view(i as i64, 1, path)))
            .await
            .unwrap();
    }
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/1", "/2", "/3", "/4"]
    );
    store.trim_page_views(ACCOUNT, v, 2).await.unwrap();
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/3", "/4"]
    );
    store.trim_page_views(ACCOUNT, v, 5).await.unwrap();
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/3", "/4"]
    );
    assert!(
        store
            .page_views(ACCOUNT, VisitorId::mint())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn visits_are_numbered_and_tell_the_linked_lead(store: Shared) {
    let v = VisitorId::mint();
    for i in 0..3 {
        store
            .record_page_view(write(v, page_view(i, 1, &format!("/{i}"))))
            .await
            .unwrap();
    }
    let first = store.start_visit(ACCOUNT, v, 3600, 3600, 2).await.unwrap();
    assert_eq!(
        first,
        VisitStart {
            number: 1,
            lead: None,
            catalog_version: 0
        }
    );
    // Starting a visit also keeps the history within its cap.
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/1", "/2"]
    );
    submit(&store, &submission(5, "a@b.co", v, 15)).await;
    let second = store.start_visit(ACCOUNT, v, 3600, 3600, 2).await.unwrap();
    assert_eq!(
        second,
        VisitStart {
            number: 2,
            lead: Some(lead(5, 15)),
            catalog_version: 0
        }
    );
    // The lead as it stands now.
    store.move_lead(&lead_move(5, 1002, 20)).await.unwrap();
    let third = store.start_visit(ACCOUNT, v, 3600, 3600, 2).await.unwrap();
    let mut now = lead(5, 15);
    now.status_id = StatusId(1002);
    now.updated_at = 20;
    assert_eq!(third.lead, Some(now));
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap(),
        VisitorState {
            visits: 3,
            lead: Some(LeadId(5))
        }
    );
    assert_eq!(
        store.visitor(ACCOUNT, VisitorId::mint()).await.unwrap(),
        VisitorState::default()
    );
}

async fn visits_tell_the_catalog_version(store: Shared) {
    let v = VisitorId::mint();
    store
        .record_page_view(write(v, page_view(1, 1, "/")))
        .await
        .unwrap();
    let version = async |store: &Shared| {
        store
            .start_visit(ACCOUNT, v, 3600, 3600, 100)
            .await
            .unwrap()
            .catalog_version
    };
    assert_eq!(version(&store).await, 0);
    store
        .put_record(ACCOUNT, RecordKind::Action, "1", "{}")
        .await
        .unwrap();
    assert_eq!(version(&store).await, 1);
    store
        .put_record(ACCOUNT, RecordKind::Action, "1", "{\"b\":2}")
        .await
        .unwrap();
    // Another account's changes are not this account's.
    store
        .put_record(OTHER, RecordKind::Action, "1", "{}")
        .await
        .unwrap();
    assert_eq!(version(&store).await, 2);
    store
        .delete_record(ACCOUNT, RecordKind::Action, "1")
        .await
        .unwrap();
    assert_eq!(version(&store).await, 3);
    store
        .delete_record(ACCOUNT, RecordKind::Action, "1")
        .await
        .unwrap();
    assert_eq!(version(&store).await, 3);
    assert_eq!(store.catalog_version(ACCOUNT).await.unwrap(), 3);
    assert_eq!(store.visitor(ACCOUNT, v).await.unwrap().visits, 5);
}

async fn linking_a_visitor_returns_its_previous_lead(store: Shared) {
    let v = VisitorId::mint();
    assert_eq!(
        submit(&store, &submission(1, "a@b.co", v, 1)).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    assert_eq!(
        submit(&store, &submission(2, "b@b.co", v, 2)).await,
        SubmissionOutcome::Created {
            previous_lead: Some(LeadId(1)),
            duplicate_of: None
        }
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap().lead,
        Some(LeadId(2))
    );
    // A browser linked before its first page view (minted by the form) has no history yet.
    assert!(store.page_views(ACCOUNT, v).await.unwrap().is_empty());
    assert_eq!(store.visitor(ACCOUNT, v).await.unwrap().visits, 0);
}

async fn a_submission_without_a_browser_links_none(store: Shared) {
    let s = NewSubmission {
        browser: None,
        ..submission(1, "a@b.co", VisitorId::mint(), 1)
    };
    assert_eq!(
        submit(&store, &s).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    assert_eq!(store.lead_ids(ACCOUNT).await.unwrap(), [LeadId(1)]);
    assert!(
        store
            .lead_visitors(ACCOUNT, LeadId(1))
            .await
            .unwrap()
            .is_empty()
    );
    let timeline = store.timeline(ACCOUNT, LeadId(1)).await.unwrap();
    assert!(
        !timeline
            .iter()
            .any(|e| matches!(e, TimelineEntry::VisitorLinked { .. })),
        "{timeline:?}"
    );
}

async fn trimming_the_history_keeps_the_visitors_lead_and_visits(store: Shared) {
    let v = VisitorId::mint();
    store
        .record_page_view(write(v, page_view(0, 1, "/0")))
        .await
        .unwrap();
    store
        .start_visit(ACCOUNT, v, 3600, 3600, 100)
        .await
        .unwrap();
    submit(&store, &submission(9, "a@b.co", v, 1)).await;
    for i in 1..10 {
        store
            .record_page_view(write(v, page_view(i, 1, &format!("/{i}"))))
            .await
            .unwrap();
    }
    store.trim_page_views(ACCOUNT, v, 3).await.unwrap();
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/7", "/8", "/9"]
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap(),
        VisitorState {
            visits: 1,
            lead: Some(LeadId(9))
        }
    );
    let again = store.start_visit(ACCOUNT, v, 3600, 3600, 2).await.unwrap();
    assert_eq!(
        again,
        VisitStart {
            number: 2,
            lead: Some(lead(9, 1)),
            catalog_version: 0
        }
    );
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/8", "/9"]
    );
}

async fn one_browser_in_two_accounts_is_two_visitors(store: Shared) {
    let v = VisitorId::mint();
    store
        .record_page_view(write(v, page_view(1, 1, "/mine")))
        .await
        .unwrap();
    submit(&store, &submission(1, "a@b.co", v, 1)).await;
    // The same browser on another account's site, linked there by that account's form.
    let theirs = PageViewWrite {
        account: OTHER,
        ..write(v, page_view(2, 2, "/theirs"))
    };
    let seen = store.record_page_view(theirs).await.unwrap();
    assert_eq!((seen.last_seen, seen.history_len), (None, 1));
    assert_eq!(
        submit(&store, &submission_in(OTHER, 2, "a@b.co", v, 2)).await,
        SubmissionOutcome::Created {
            previous_lead: None,
            duplicate_of: None
        }
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap().lead,
        Some(LeadId(1))
    );
    assert_eq!(store.visitor(OTHER, v).await.unwrap().lead, Some(LeadId(2)));
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(v, 1, None, None)]
    );
    assert_eq!(urls(store.page_views(ACCOUNT, v).await.unwrap()), ["/mine"]);
    assert_eq!(urls(store.page_views(OTHER, v).await.unwrap()), ["/theirs"]);
    let visit = store.start_visit(OTHER, v, 3600, 3600, 10).await.unwrap();
    assert_eq!((visit.number, visit.lead), (1, Some(lead_in(OTHER, 2, 2))));
    assert_eq!(store.visitor(ACCOUNT, v).await.unwrap().visits, 0);
}

/// A first visit of a browser that no lead knows keeps its history the anonymous
/// retention only; a browser that comes back, or is linked to a lead, keeps it the full one.
async fn an_anonymous_first_visit_keeps_its_history_briefly(store: Shared) {
    let (junk, linked, returning) = (VisitorId::mint(), VisitorId::mint(), VisitorId::mint());
    for v in [junk, linked, returning] {
        store
            .record_page_view(write(v, page_view(1, 1, "/")))
            .await
            .unwrap();
        store.start_visit(ACCOUNT, v, 3600, 1, 100).await.unwrap();
    }
    submit(&store, &submission(1, "a@b.co", linked, 1)).await;
    let second = store
        .start_visit(ACCOUNT, returning, 3600, 1, 100)
        .await
        .unwrap();
    assert_eq!(second.number, 2);
    // A linked browser's next first visit does not shorten it either.
    let fresh = VisitorId::mint();
    submit(&store, &submission(2, "b@b.co", fresh, 2)).await;
    store
        .record_page_view(write(fresh, page_view(1, 3, "/after")))
        .await
        .unwrap();
    store
        .start_visit(ACCOUNT, fresh, 3600, 1, 100)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(store.page_views(ACCOUNT, junk).await.unwrap().is_empty());
    for v in [linked, returning, fresh] {
        assert_eq!(store.page_views(ACCOUNT, v).await.unwrap().len(), 1);
    }
}

/// A history lives for the retention its last visit set, and so does the browser's link
/// to its lead (the visit refreshed both).
async fn histories_expire_with_the_retention_of_their_last_visit(store: Shared) {
    let v = VisitorId::mint();
    store
        .record_page_view(write(v, page_view(1, 1, "/")))
        .await
        .unwrap();
    let linked_briefly = NewSubmission {
        link_retention_secs: 1,
        ..submission(1, "a@b.co", v, 1)
    };
    submit(&store, &linked_briefly).await;
    store.start_visit(ACCOUNT, v, 1, 1, 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(store.page_views(ACCOUNT, v).await.unwrap().is_empty());
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap(),
        VisitorState {
            visits: 0,
            lead: None
        }
    );
    // A new history starts from scratch, anonymous.
    let pv = store
        .record_page_view(write(v, page_view(2, 2, "/again")))
        .await
        .unwrap();
    assert_eq!(pv.history_len, 1);
    let visit = store
        .start_visit(ACCOUNT, v, 3600, 3600, 100)
        .await
        .unwrap();
    assert_eq!((visit.number, visit.lead), (1, None));
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/again"]
    );
}

// --- schedule -------------------------------------------------------------------------

async fn due_events_are_claimed_with_a_lease(store: Shared) {
    let now = 1_000_000;
    let due = event(now - 10, 1);
    let later = event(now + 5_000, 1);
    store.save_event(&due).await.unwrap();
    store.save_event(&later).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(now - 10));
    let claimed = store.claim_due(now, now + 1_000, 10).await.unwrap();
    assert_eq!(claimed, std::slice::from_ref(&due));
    // Leased: nobody else gets it before the lease ends …
    assert!(
        store
            .claim_due(now + 999, now + 2_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due().await.unwrap(), Some(now + 1_000));
    // … and after it, the event is claimed again (its claimer died).
    let again = store.claim_due(now + 1_000, now + 3_000, 10).await.unwrap();
    assert_eq!(again, std::slice::from_ref(&due));
    // `max` bounds a claim; claims go on until every eligible event is taken, each once.
    // (The contract orders no claim: the Redis store starts at a random shard.)
    let first = store
        .claim_due(now + 10_000, now + 20_000, 1)
        .await
        .unwrap();
    let second = store
        .claim_due(now + 10_000, now + 20_000, 1)
        .await
        .unwrap();
    let third = store
        .claim_due(now + 10_000, now + 20_000, 1)
        .await
        .unwrap();
    assert_eq!((first.len(), second.len(), third.len()), (1, 1, 0));
    let mut ids = vec![first[0].id.clone(), second[0].id.clone()];
    ids.sort();
    let mut expected = vec![due.id, later.id];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(store.next_due().await.unwrap(), Some(now + 20_000));
}

async fn a_claim_takes_every_shards_due_events_in_one_round_trip(store: Shared) {
    let now = 1_000_000;
    let events: Vec<EventRecord> = (0..40).map(|_| event(now - 5, 1)).collect();
    for e in &events {
        store.save_event(e).await.unwrap();
    }
    // Forty random ids fill every shard of the Redis store (4 in these tests); one server
    // takes them all in one script, however many shards (the embedded store makes none).
    let (first, trips) =
        footfall::store::round_trips::counted(store.claim_due(now, now + 1_000, 25)).await;
    let first = first.unwrap();
    assert!(trips <= 1, "a claim made {trips} round trips");
    assert_eq!(
        first.len(),
        25,
        "a claim takes exactly `max` when more are due"
    );
    let second = store.claim_due(now, now + 1_000, 25).await.unwrap();
    assert_eq!(second.len(), 15);
    let mut ids: Vec<&EventId> = first.iter().chain(&second).map(|e| &e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "each event claimed once");
    assert!(
        store
            .claim_due(now, now + 1_000, 25)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn finished_events_leave_the_schedule(store: Shared) {
    let now = now_ms();
    let mut e = event(now, 1);
    store.save_event(&e).await.unwrap();
    assert_eq!(
        store
            .claim_due(now + 10, now + 1_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    e.state = DeliveryState::Retrying;
    e.failures = 1;
    e.next_attempt_at = Some(now + 500);
    store.save_event(&e).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(now + 500));
    e.state = DeliveryState::Delivered;
    e.next_attempt_at = None;
    store.save_event(&e).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), None);
    assert!(
        store
            .claim_due(i64::MAX / 2, i64::MAX / 2, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.get_event(&e.id).await.unwrap(), Some(e.clone()));
    assert_eq!(
        store.get_events(std::slice::from_ref(&e.id)).await.unwrap(),
        [e.clone()]
    );
    assert_eq!(store.event_ids(ACCOUNT).await.unwrap(), [e.id]);
    assert!(store.event_ids(OTHER).await.unwrap().is_empty());
}

async fn fired_events_go_on_their_leads_timelines(store: Shared) {
    let v = new_lead(&store, 1, 1).await;
    let now = now_ms();
    let a = event(now, 1);
    let mut b = event(now + 1, 2);
    b.due_at = now + 60_000;
    b.delayed_by = 60;
    store.add_events(&[a.clone(), b.clone()]).await.unwrap();
    store.add_events(&[]).await.unwrap();
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [
            created(1, 1),
            linked(1, v, None),
            a.fired_entry(),
            b.fired_entry(),
        ]
    );
    assert!(matches!(
        a.fired_entry(),
        TimelineEntry::EventFired { at, .. } if at == now
    ));
    // Stored and scheduled as `save_event` would.
    let missing = EventId::generate();
    assert_eq!(
        store
            .get_events(&[b.id.clone(), missing.clone(), a.id.clone()])
            .await
            .unwrap(),
        [b.clone(), a.clone()]
    );
    assert!(store.get_events(&[]).await.unwrap().is_empty());
    assert_eq!(store.get_event(&missing).await.unwrap(), None);
    assert_eq!(
        store.event_ids(ACCOUNT).await.unwrap(),
        [b.id.clone(), a.id.clone()]
    );
    assert_eq!(store.next_due().await.unwrap(), Some(now));
    assert_eq!(
        store.claim_due(now, now + 120_000, 10).await.unwrap(),
        std::slice::from_ref(&a)
    );
    assert_eq!(
        store
            .claim_due(now + 60_000, now + 61_000, 10)
            .await
            .unwrap(),
        [b]
    );
}

/// Events fired by one page view share their creation time: both stores then list them by
/// id (newest first: the greater id first), whatever the order they were stored in.
async fn events_fired_together_are_listed_newest_first(store: Shared) {
    new_lead(&store, 1, 1).await;
    let now = now_ms();
    // Ids against their order of firing, so that no order of ids can pass for it.
    let mut first = event(now, 1);
    first.id = EventId("evt_b".into());
    let mut second = event(now, 2);
    second.id = EventId("evt_a".into());
    store
        .add_events(&[first.clone(), second.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.event_ids(ACCOUNT).await.unwrap(),
        [first.id.clone(), second.id.clone()]
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap()[2..],
        [first.fired_entry(), second.fired_entry()]
    );
}

async fn dead_events_are_listed_per_handler_until_replayed(store: Shared) {
    let now = now_ms();
    let mut a = event(now, 1);
    let mut b = event(now + 1, 2);
    let mut c = event(now + 2, 1);
    for e in [&mut a, &mut b, &mut c] {
        e.state = DeliveryState::Dead;
        store.save_event(e).await.unwrap();
    }
    assert_eq!(
        store.dead_event_ids(ACCOUNT, HandlerId(1)).await.unwrap(),
        [a.id.clone(), c.id.clone()]
    );
    assert_eq!(
        store.dead_event_ids(ACCOUNT, HandlerId(2)).await.unwrap(),
        [b.id.clone()]
    );
    assert!(
        store
            .dead_event_ids(OTHER, HandlerId(1))
            .await
            .unwrap()
            .is_empty()
    );
    a.state = DeliveryState::Retrying;
    a.next_attempt_at = Some(now);
    store.save_event(&a).await.unwrap();
    assert_eq!(
        store.dead_event_ids(ACCOUNT, HandlerId(1)).await.unwrap(),
        [c.id.clone()]
    );
    assert_eq!(store.event_ids(ACCOUNT).await.unwrap(), [c.id, b.id, a.id]);
}

async fn handler_failures_keep_the_first_time_until_a_success(store: Shared) {
    let h = HandlerId(3);
    assert_eq!(store.handler_failing_since(ACCOUNT, h).await.unwrap(), None);
    store.note_handler_failure(ACCOUNT, h, 100).await.unwrap();
    store.note_handler_failure(ACCOUNT, h, 200).await.unwrap();
    assert_eq!(
        store.handler_failing_since(ACCOUNT, h).await.unwrap(),
        Some(100)
    );
    assert_eq!(store.handler_failing_since(OTHER, h).await.unwrap(), None);
    store.note_handler_success(ACCOUNT, h).await.unwrap();
    assert_eq!(store.handler_failing_since(ACCOUNT, h).await.unwrap(), None);
    store.note_handler_failure(ACCOUNT, h, 300).await.unwrap();
    assert_eq!(
        store.handler_failing_since(ACCOUNT, h).await.unwrap(),
        Some(300)
    );
}

/// Finished events are kept for the retention (here one second), pending ones until they
/// finish; the account's index and dead letters forget what is older than the retention.
async fn finished_events_expire_after_the_retention(store: Shared) {
    new_lead(&store, 1, 1).await;
    let now = now_ms();
    let mut delivered = event(now, 1);
    delivered.state = DeliveryState::Delivered;
    let mut dead = event(now, 2);
    dead.state = DeliveryState::Dead;
    let pending = event(now, 1);
    store
        .add_events(&[delivered.clone(), dead.clone(), pending.clone()])
        .await
        .unwrap();
    let ids = [delivered.id.clone(), dead.id.clone(), pending.id.clone()];
    assert_eq!(store.get_events(&ids).await.unwrap().len(), 3);
    assert_eq!(
        store.dead_event_ids(ACCOUNT, HandlerId(2)).await.unwrap(),
        [dead.id.clone()]
    );
    tokio::time::sleep(Duration::from_millis(SHORT_RETENTION_SECS * 1000 + 800)).await;
    assert_eq!(store.get_event(&delivered.id).await.unwrap(), None);
    assert_eq!(store.get_event(&dead.id).await.unwrap(), None);
    assert_eq!(
        store.get_events(&ids).await.unwrap(),
        std::slice::from_ref(&pending)
    );
    assert!(
        store
            .dead_event_ids(ACCOUNT, HandlerId(2))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.event_ids(ACCOUNT).await.unwrap().is_empty());
    // The pending event is still there to deliver …
    assert_eq!(
        store.claim_due(now, now + 1_000, 10).await.unwrap(),
        std::slice::from_ref(&pending)
    );
    // … and once it finishes, it too is kept for the retention from then on.
    let mut done = pending.clone();
    done.state = DeliveryState::Delivered;
    store.save_event(&done).await.unwrap();
    assert_eq!(store.get_event(&done.id).await.unwrap(), Some(done.clone()));
    assert_eq!(store.next_due().await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(SHORT_RETENTION_SECS * 1000 + 800)).await;
    assert_eq!(store.get_event(&done.id).await.unwrap(), None);
    // The timeline keeps what fired.
    assert_eq!(store.timeline(ACCOUNT, LeadId(1)).await.unwrap().len(), 5);
}

/// A dead letter is listed while its event is kept (the retention from its death), even
/// when the event was created longer than the retention ago (retries, a delayed action).
async fn dead_letters_are_listed_while_their_events_are_kept(store: Shared) {
    let now = now_ms();
    let mut old = event(now - 5_000, 1);
    store.save_event(&old).await.unwrap();
    old.state = DeliveryState::Dead;
    old.failures = 3;
    store.save_event(&old).await.unwrap();
    assert_eq!(store.get_event(&old.id).await.unwrap(), Some(old.clone()));
    assert_eq!(
        store.dead_event_ids(ACCOUNT, HandlerId(1)).await.unwrap(),
        [old.id.clone()]
    );
    tokio::time::sleep(Duration::from_millis(SHORT_RETENTION_SECS * 1000 + 800)).await;
    assert_eq!(store.get_event(&old.id).await.unwrap(), None);
    assert!(
        store
            .dead_event_ids(ACCOUNT, HandlerId(1))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A browser's link to its lead is kept for the retention after the form or the latest
/// visit, as its history is.
async fn a_browsers_link_expires_with_the_retention_unless_a_visit_refreshes_it(store: Shared) {
    let (quiet, returning) = (VisitorId::mint(), VisitorId::mint());
    for (lead, visitor) in [(1, quiet), (2, returning)] {
        let mut s = submission(lead, &format!("l{lead}@b.co"), visitor, 1);
        s.link_retention_secs = 2;
        submit(&store, &s).await;
    }
    // Well inside the retention (a loaded machine's store calls too), then well past it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = store
        .start_visit(ACCOUNT, returning, 3600, 3600, 10)
        .await
        .unwrap();
    assert_eq!(start.lead.map(|l| l.id), Some(LeadId(2)));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(store.visitor(ACCOUNT, quiet).await.unwrap().lead, None);
    assert_eq!(
        store.visitor(ACCOUNT, returning).await.unwrap().lead,
        Some(LeadId(2))
    );
}

async fn a_browser_is_linked_to_an_existing_lead_as_a_submission_links_it(store: Shared) {
    let a = new_lead(&store, 1, 1).await;
    let b = new_lead(&store, 2, 2).await;
    let stranger = VisitorId::mint();
    // A browser with no lead: linked with its whole history.
    assert_eq!(
        store
            .link_visitor(ACCOUNT, LeadId(2), stranger, 5, 3600)
            .await
            .unwrap(),
        Some(None)
    );
    // Lead 1's browser moves to lead 2: lead 1's link ends, lead 2's starts now.
    assert_eq!(
        store
            .link_visitor(ACCOUNT, LeadId(2), a, 7, 3600)
            .await
            .unwrap(),
        Some(Some(LeadId(1)))
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(2)).await.unwrap(),
        [
            link(b, 2, None, None),
            link(stranger, 5, None, None),
            link(a, 7, Some(7), None)
        ]
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(1)).await.unwrap(),
        [link(a, 1, None, Some(7))]
    );
    let timeline = store.timeline(ACCOUNT, LeadId(1)).await.unwrap();
    assert_eq!(
        timeline.last(),
        Some(&TimelineEntry::VisitorMoved {
            at: 7,
            visitor: a,
            to_lead: LeadId(2)
        })
    );
    // No lead, or another account's lead: nothing is linked.
    assert_eq!(
        store
            .link_visitor(ACCOUNT, LeadId(42), a, 9, 3600)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .link_visitor(OTHER, LeadId(2), a, 9, 3600)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.lead_visitors(ACCOUNT, LeadId(2)).await.unwrap().len(),
        3
    );
}

/// Redis only (the embedded store keeps records, not their text): a record this build
/// cannot read (a newer build's, during a rolling deploy) is left to its lease, and the
/// events claimed with it are delivered; the whole claim used to fail, every lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_event_record_does_not_hold_up_the_others_claimed_with_it() {
    let prefix = crate::common::unique_prefix();
    let _keys = crate::common::KeysGuard::new(&crate::common::redis_url(), &prefix);
    let store = crate::common::stores::redis_store_on(&prefix, 3600).await;
    let now = 1_000_000;
    let (good, bad) = (event(now - 10, 1), event(now - 20, 1));
    store.save_event(&good).await.unwrap();
    store.save_event(&bad).await.unwrap();
    let client = redis::Client::open(crate::common::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*:e:{}", bad.id))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    redis::cmd("SET")
        .arg(&keys[0])
        .arg(r#"{"id":"x","state":"from_a_newer_build"}"#)
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let claimed = store.claim_due(now, now + 1_000, 10).await.unwrap();
    assert_eq!(claimed, std::slice::from_ref(&good));
}

/// Redis only (the embedded store drops them every few seconds): an account's event
/// index loses ids past the retention when an event ends, not only when someone reads
/// the list — an account whose lists nobody opened kept every id it ever fired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_index_is_pruned_when_events_end() {
    let prefix = crate::common::unique_prefix();
    let _keys = crate::common::KeysGuard::new(&crate::common::redis_url(), &prefix);
    let store = crate::common::stores::redis_store_on(&prefix, 3600).await;
    let now = now_ms();
    let old = event(now - 2 * 3_600_000, 1);
    store.save_event(&old).await.unwrap();
    let client = redis::Client::open(crate::common::redis_url()).unwrap();
    let con = client.get_multiplexed_async_connection().await.unwrap();
    let index = format!("{prefix}:{{a{}}}:events", ACCOUNT.0);
    let ids = |mut con: redis::aio::MultiplexedConnection| {
        let index = index.clone();
        async move {
            redis::cmd("ZRANGE")
                .arg(&index)
                .arg(0)
                .arg(-1)
                .query_async::<Vec<String>>(&mut con)
                .await
                .unwrap()
        }
    };
    assert_eq!(ids(con.clone()).await, std::slice::from_ref(&old.id.0));
    let done = EventRecord {
        state: DeliveryState::Delivered,
        ..event(now, 1)
    };
    store.save_event(&done).await.unwrap();
    assert_eq!(ids(con).await, std::slice::from_ref(&done.id.0));
}

//! One behaviour, two stores: every test here runs against the Redis store (on a real
//! Redis, under a key prefix of its own) and the embedded store.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use footfall::domain::event::EventType;
use footfall::domain::event_record::{DeliveryState, EventRecord};
use footfall::domain::ids::*;
use footfall::domain::lead::{Contact, Lead, Unsorted, UnsortedMetadata, VisitorLink};
use footfall::domain::pipeline::Stage;
use footfall::domain::site::Site;
use footfall::domain::timeline::TimelineEntry;
use footfall::domain::tracking::PageView;
use footfall::domain::visitor::VisitorId;
use footfall::store::memory::MemoryStore;
use footfall::store::redis::{RedisOptions, RedisStore};
use footfall::store::{
    MoveOutcome, PageViewWrite, RecordKind, Sequence, Store, VisitorState, catalog,
};

type Shared = Arc<dyn Store>;

async fn redis_store() -> (Shared, String) {
    let prefix = common::unique_prefix();
    let store = RedisStore::connect(
        &common::redis_url(),
        RedisOptions {
            key_prefix: prefix.clone(),
            schedule_shards: 4,
            event_retention_secs: 3600,
            response_timeout: Duration::from_secs(2),
        },
    )
    .await
    .expect("Redis is reachable");
    (Arc::new(store), prefix)
}

/// Runs each named test against both stores.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, prefix) = super::redis_store().await;
                    super::$name(store).await;
                    super::common::delete_prefix(&super::common::redis_url(), &prefix).await;
                }
            )*
        }
        mod on_memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryStore::new())).await;
                }
            )*
        }
    };
}

conformance!(
    sequences_count_up_from_their_base,
    claim_once_is_true_exactly_once,
    catalog_records_are_scoped_to_their_account,
    aliases_find_records_without_an_account,
    leads_are_stored_listed_newest_first_and_renamed,
    conditional_moves_report_where_the_lead_was,
    timelines_keep_their_order,
    lead_visitor_links_are_replaced_per_visitor,
    unsorted_entries_are_removed_once,
    page_views_report_the_previous_sighting_per_site,
    page_view_history_is_kept_in_order_and_trimmed,
    visits_are_numbered_and_tell_the_linked_lead,
    linking_a_visitor_returns_its_previous_lead,
    trimming_the_history_keeps_the_visitors_lead_and_visits,
    one_browser_in_two_accounts_is_two_visitors,
    due_events_are_claimed_with_a_lease,
    finished_events_leave_the_schedule,
    dead_events_are_listed_per_handler_until_replayed,
    handler_failures_keep_the_first_time_until_a_success,
    remembered_values_fold_later_ones_until_they_expire,
    contacts_point_at_their_latest_lead_per_account,
);

const ACCOUNT: AccountId = AccountId(7);

fn lead(id: u64, created_at: i64) -> Lead {
    Lead {
        id: LeadId(id),
        account_id: ACCOUNT,
        name: format!("Lead {id}"),
        pipeline_id: PipelineId(1),
        status_id: StatusId(1001),
        created_at,
        updated_at: created_at,
        contacts: vec![Contact {
            id: ContactId(id),
            name: "Anna".into(),
            phone: Some("+7 900".into()),
            email: None,
            is_main: true,
        }],
    }
}

fn created(at: i64) -> TimelineEntry {
    TimelineEntry::LeadCreated {
        at,
        form_id: FormId("f1".into()),
        unsorted_uid: UnsortedUid("u1".into()),
    }
}

fn stage(status: u64) -> Stage {
    Stage {
        pipeline_id: PipelineId(1),
        status_id: StatusId(status),
    }
}

fn page_view(at: i64, site: u64, path: &str) -> PageView {
    PageView {
        at,
        site_id: SiteId(site),
        url: format!("https://shop.example{path}"),
        title: "T".into(),
        referrer: String::new(),
    }
}

fn write(visitor: VisitorId, pv: PageView) -> PageViewWrite {
    PageViewWrite {
        account: ACCOUNT,
        visitor,
        page_view: pv,
        visit_idle_ms: 3_600_000,
    }
}

fn event(due_at: i64, handler: u64) -> EventRecord {
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
    }
}

async fn sequences_count_up_from_their_base(store: Shared) {
    assert_eq!(store.next_id(Sequence::Lead).await.unwrap(), 1);
    assert_eq!(store.next_id(Sequence::Lead).await.unwrap(), 2);
    assert_eq!(store.next_id(Sequence::Status).await.unwrap(), 1001);
    assert_eq!(store.next_id(Sequence::Site).await.unwrap(), 1);
}

async fn claim_once_is_true_exactly_once(store: Shared) {
    assert!(store.claim_once("bootstrap:1").await.unwrap());
    assert!(!store.claim_once("bootstrap:1").await.unwrap());
    assert!(store.claim_once("bootstrap:2").await.unwrap());
}

fn site(id: u64, account: AccountId) -> Site {
    Site {
        id: SiteId(id),
        account_id: account,
        key: SiteKey(format!("key{id}")),
        name: format!("Site {id}"),
        url: "https://shop.example".into(),
        hosts: vec!["shop.example".into()],
        respect_dnt: false,
        visit_idle_seconds: None,
        created_at: 0,
    }
}

async fn catalog_records_are_scoped_to_their_account(store: Shared) {
    let s = &*store;
    catalog::put(s, &site(2, ACCOUNT)).await.unwrap();
    catalog::put(s, &site(1, ACCOUNT)).await.unwrap();
    catalog::put(s, &site(3, AccountId(8))).await.unwrap();
    let mine: Vec<Site> = catalog::list(s, ACCOUNT).await.unwrap();
    let ids: Vec<u64> = mine.iter().map(|x| x.id.0).collect();
    assert!(ids == [1, 2] || ids == [2, 1], "{ids:?}");
    assert!(catalog::get::<Site>(s, ACCOUNT, 3).await.unwrap().is_none());
    let mut changed = site(1, ACCOUNT);
    changed.name = "Renamed".into();
    catalog::put(s, &changed).await.unwrap();
    assert_eq!(
        catalog::get::<Site>(s, ACCOUNT, 1)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Renamed"
    );
    assert!(catalog::delete::<Site>(s, ACCOUNT, 1).await.unwrap());
    assert!(!catalog::delete::<Site>(s, ACCOUNT, 1).await.unwrap());
    assert_eq!(
        s.list_records(ACCOUNT, RecordKind::Site)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn aliases_find_records_without_an_account(store: Shared) {
    let s = &*store;
    catalog::put_site(s, &site(5, AccountId(9))).await.unwrap();
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
}

async fn leads_are_stored_listed_newest_first_and_renamed(store: Shared) {
    for id in [1, 2, 3] {
        store
            .insert_lead(&lead(id, id as i64 * 10), &created(0))
            .await
            .unwrap();
    }
    let ids = store.lead_ids(ACCOUNT).await.unwrap();
    assert_eq!(ids, [LeadId(3), LeadId(2), LeadId(1)]);
    assert!(store.lead_ids(AccountId(99)).await.unwrap().is_empty());
    let got = store
        .get_leads(&[LeadId(2), LeadId(42), LeadId(1)])
        .await
        .unwrap();
    assert_eq!(got, [lead(2, 20), lead(1, 10)]);
    assert!(store.rename_lead(LeadId(2), "New name", 99).await.unwrap());
    assert!(!store.rename_lead(LeadId(42), "x", 99).await.unwrap());
    let renamed = store.get_leads(&[LeadId(2)]).await.unwrap().pop().unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.updated_at),
        ("New name", 99)
    );
}

async fn conditional_moves_report_where_the_lead_was(store: Shared) {
    store.insert_lead(&lead(1, 0), &created(0)).await.unwrap();
    assert_eq!(
        store
            .move_lead(LeadId(1), stage(1002), 5, Some(stage(1001)))
            .await
            .unwrap(),
        MoveOutcome::Moved { from: stage(1001) }
    );
    assert_eq!(
        store
            .move_lead(LeadId(1), stage(1003), 6, Some(stage(1001)))
            .await
            .unwrap(),
        MoveOutcome::Conflict {
            current: stage(1002)
        }
    );
    assert_eq!(
        store
            .move_lead(LeadId(1), stage(142), 7, None)
            .await
            .unwrap(),
        MoveOutcome::Moved { from: stage(1002) }
    );
    assert_eq!(
        store
            .move_lead(LeadId(9), stage(142), 7, None)
            .await
            .unwrap(),
        MoveOutcome::NotFound
    );
    let l = store.get_leads(&[LeadId(1)]).await.unwrap().pop().unwrap();
    assert_eq!((l.stage(), l.updated_at), (stage(142), 7));
}

async fn timelines_keep_their_order(store: Shared) {
    store.insert_lead(&lead(1, 0), &created(1)).await.unwrap();
    let moved = TimelineEntry::Moved {
        at: 2,
        from: Some(stage(1001)),
        to: stage(1002),
        by: "api".into(),
    };
    let declined = TimelineEntry::Declined { at: 3 };
    store.append_timeline(LeadId(1), &moved).await.unwrap();
    store.append_timeline(LeadId(1), &declined).await.unwrap();
    assert_eq!(
        store.timeline(LeadId(1)).await.unwrap(),
        [created(1), moved, declined]
    );
}

async fn lead_visitor_links_are_replaced_per_visitor(store: Shared) {
    let (a, b) = (VisitorId::mint(), VisitorId::mint());
    let link = |v, linked_at, until| VisitorLink {
        visitor: v,
        linked_at,
        since: None,
        until,
    };
    store
        .put_lead_visitor(LeadId(1), &link(a, 1, None))
        .await
        .unwrap();
    store
        .put_lead_visitor(LeadId(1), &link(b, 2, None))
        .await
        .unwrap();
    store
        .put_lead_visitor(LeadId(1), &link(a, 1, Some(9)))
        .await
        .unwrap();
    let links = store.lead_visitors(LeadId(1)).await.unwrap();
    assert_eq!(links, [link(a, 1, Some(9)), link(b, 2, None)]);
}

async fn unsorted_entries_are_removed_once(store: Shared) {
    let entry = |uid: &str, at| Unsorted {
        uid: UnsortedUid(uid.into()),
        account_id: ACCOUNT,
        category: "forms".into(),
        pipeline_id: PipelineId(1),
        created_at: at,
        metadata: UnsortedMetadata {
            form_id: FormId("f1".into()),
            form_name: "Contact".into(),
            form_page: "https://shop.example/".into(),
            ip: "1.2.3.4".into(),
            referer: String::new(),
            visitor_uid: None,
            form_sent_at: 0,
        },
        lead_id: LeadId(1),
        contact_id: ContactId(1),
    };
    store.put_unsorted(&entry("b", 2)).await.unwrap();
    store.put_unsorted(&entry("a", 1)).await.unwrap();
    let list = store.list_unsorted(ACCOUNT).await.unwrap();
    assert_eq!(list, [entry("a", 1), entry("b", 2)]);
    assert_eq!(
        store
            .get_unsorted(ACCOUNT, &UnsortedUid("b".into()))
            .await
            .unwrap(),
        Some(entry("b", 2))
    );
    assert!(
        store
            .get_unsorted(AccountId(8), &UnsortedUid("b".into()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .remove_unsorted(ACCOUNT, &UnsortedUid("a".into()))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_unsorted(ACCOUNT, &UnsortedUid("a".into()))
            .await
            .unwrap()
    );
    assert_eq!(store.list_unsorted(ACCOUNT).await.unwrap().len(), 1);
}

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
    assert_eq!(other_site.last_seen, None);
}

async fn page_view_history_is_kept_in_order_and_trimmed(store: Shared) {
    let v = VisitorId::mint();
    for (i, path) in ["/1", "/2", "/3", "/4"].iter().enumerate() {
        store
            .record_page_view(write(v, page_view(i as i64, 1, path)))
            .await
            .unwrap();
    }
    let urls = |pvs: Vec<PageView>| pvs.into_iter().map(|p| p.url).collect::<Vec<_>>();
    assert_eq!(urls(store.page_views(ACCOUNT, v).await.unwrap()).len(), 4);
    store.trim_page_views(ACCOUNT, v, 2).await.unwrap();
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["https://shop.example/3", "https://shop.example/4"]
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
            .record_page_view(write(v, page_view(i, 1, "/")))
            .await
            .unwrap();
    }
    let first = store.start_visit(ACCOUNT, v, 3600, 2).await.unwrap();
    assert_eq!(
        first,
        VisitorState {
            visits: 1,
            lead: None
        }
    );
    // Starting a visit also keeps the history within its cap.
    assert_eq!(store.page_views(ACCOUNT, v).await.unwrap().len(), 2);
    store
        .link_visitor(ACCOUNT, v, LeadId(5), 15, 3600)
        .await
        .unwrap();
    let second = store.start_visit(ACCOUNT, v, 3600, 2).await.unwrap();
    assert_eq!(
        second,
        VisitorState {
            visits: 2,
            lead: Some(LeadId(5))
        }
    );
    assert_eq!(store.visitor(ACCOUNT, v).await.unwrap(), second);
    assert_eq!(
        store.visitor(ACCOUNT, VisitorId::mint()).await.unwrap(),
        VisitorState::default()
    );
}

async fn linking_a_visitor_returns_its_previous_lead(store: Shared) {
    let v = VisitorId::mint();
    assert_eq!(
        store
            .link_visitor(ACCOUNT, v, LeadId(1), 1, 3600)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .link_visitor(ACCOUNT, v, LeadId(2), 2, 3600)
            .await
            .unwrap(),
        Some(LeadId(1))
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap().lead,
        Some(LeadId(2))
    );
    // A browser linked before its first page view (minted by the form) has no history yet.
    assert!(store.page_views(ACCOUNT, v).await.unwrap().is_empty());
}

async fn trimming_the_history_keeps_the_visitors_lead_and_visits(store: Shared) {
    let v = VisitorId::mint();
    store
        .record_page_view(write(v, page_view(0, 1, "/0")))
        .await
        .unwrap();
    store.start_visit(ACCOUNT, v, 3600, 100).await.unwrap();
    store
        .link_visitor(ACCOUNT, v, LeadId(9), 1, 3600)
        .await
        .unwrap();
    for i in 1..10 {
        store
            .record_page_view(write(v, page_view(i, 1, &format!("/{i}"))))
            .await
            .unwrap();
    }
    store.trim_page_views(ACCOUNT, v, 3).await.unwrap();
    let urls: Vec<String> = store
        .page_views(ACCOUNT, v)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.url)
        .collect();
    assert_eq!(
        urls,
        [
            "https://shop.example/7",
            "https://shop.example/8",
            "https://shop.example/9"
        ]
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap(),
        VisitorState {
            visits: 1,
            lead: Some(LeadId(9))
        }
    );
    let again = store.start_visit(ACCOUNT, v, 3600, 2).await.unwrap();
    assert_eq!(
        again,
        VisitorState {
            visits: 2,
            lead: Some(LeadId(9))
        }
    );
    assert_eq!(store.page_views(ACCOUNT, v).await.unwrap().len(), 2);
}

async fn due_events_are_claimed_with_a_lease(store: Shared) {
    let now = 1_000_000;
    let due = event(now - 10, 1);
    let later = event(now + 5_000, 1);
    store.save_event(&due).await.unwrap();
    store.save_event(&later).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(now - 10));
    let claimed = store.claim_due(now, now + 1_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0], due);
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
    assert_eq!(again.len(), 1);
    assert_eq!(again[0], due);
    // `max` bounds a claim; claims go on until every eligible event is taken, each once
    // (across the Redis store's shards the order is not global).
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
}

async fn finished_events_leave_the_schedule(store: Shared) {
    let now = footfall::domain::time::now_ms();
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
    assert_eq!(store.event_ids(ACCOUNT).await.unwrap(), [e.id]);
}

async fn dead_events_are_listed_per_handler_until_replayed(store: Shared) {
    let now = footfall::domain::time::now_ms();
    let mut a = event(now, 1);
    let mut b = event(now + 1, 2);
    a.state = DeliveryState::Dead;
    b.state = DeliveryState::Dead;
    store.save_event(&a).await.unwrap();
    store.save_event(&b).await.unwrap();
    assert_eq!(
        store.dead_event_ids(ACCOUNT, HandlerId(1)).await.unwrap(),
        [a.id.clone()]
    );
    a.state = DeliveryState::Retrying;
    a.next_attempt_at = Some(now);
    store.save_event(&a).await.unwrap();
    assert!(
        store
            .dead_event_ids(ACCOUNT, HandlerId(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.event_ids(ACCOUNT).await.unwrap(), [b.id, a.id]);
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
    store.note_handler_success(ACCOUNT, h).await.unwrap();
    assert_eq!(store.handler_failing_since(ACCOUNT, h).await.unwrap(), None);
}

async fn remembered_values_fold_later_ones_until_they_expire(store: Shared) {
    assert_eq!(store.remember("dup:1", "first", 1).await.unwrap(), None);
    assert_eq!(
        store
            .remember("dup:1", "second", 1)
            .await
            .unwrap()
            .as_deref(),
        Some("first")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(store.remember("dup:1", "third", 1).await.unwrap(), None);
}

async fn contacts_point_at_their_latest_lead_per_account(store: Shared) {
    store
        .index_contact(ACCOUNT, "email:a@b.co", LeadId(1))
        .await
        .unwrap();
    store
        .index_contact(ACCOUNT, "email:a@b.co", LeadId(2))
        .await
        .unwrap();
    assert_eq!(
        store.find_contact(ACCOUNT, "email:a@b.co").await.unwrap(),
        Some(LeadId(2))
    );
    assert_eq!(
        store
            .find_contact(AccountId(8), "email:a@b.co")
            .await
            .unwrap(),
        None
    );
}

async fn one_browser_in_two_accounts_is_two_visitors(store: Shared) {
    let (v, other) = (VisitorId::mint(), AccountId(8));
    store
        .record_page_view(write(v, page_view(1, 1, "/mine")))
        .await
        .unwrap();
    store
        .link_visitor(ACCOUNT, v, LeadId(1), 1, 3600)
        .await
        .unwrap();
    // The same browser on another account's site, linked there by that account's form.
    let theirs = PageViewWrite {
        account: other,
        ..write(v, page_view(2, 2, "/theirs"))
    };
    let seen = store.record_page_view(theirs).await.unwrap();
    assert_eq!(seen.last_seen, None);
    assert_eq!(
        store
            .link_visitor(other, v, LeadId(2), 2, 3600)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap().lead,
        Some(LeadId(1))
    );
    assert_eq!(store.visitor(other, v).await.unwrap().lead, Some(LeadId(2)));
    let urls = |pvs: Vec<PageView>| pvs.into_iter().map(|p| p.url).collect::<Vec<_>>();
    assert_eq!(
        urls(store.page_views(ACCOUNT, v).await.unwrap()),
        ["https://shop.example/mine"]
    );
    assert_eq!(
        urls(store.page_views(other, v).await.unwrap()),
        ["https://shop.example/theirs"]
    );
}

/// Histories written before page views were appended oldest first hold them newest first
/// with the meta at the tail, and page views recorded since the upgrade follow that meta.
/// They read in order, and the first script that reads the meta puts them in order.
#[tokio::test]
async fn a_history_in_the_old_order_reads_in_order_and_is_put_in_order() {
    let (store, prefix) = redis_store().await;
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let v = VisitorId::mint();
    let key = format!("{prefix}:{{{v}}}:p{}", ACCOUNT.0);
    let old = [(3_000, "/c"), (2_000, "/b"), (1_000, "/a")]
        .map(|(at, path)| page_view(at, 1, path).encode());
    let () = redis::cmd("RPUSH")
        .arg(&key)
        .arg(&old)
        .arg("~2|7|500")
        .query_async(&mut con)
        .await
        .unwrap();
    let () = redis::cmd("EXPIRE")
        .arg(&key)
        .arg(3600)
        .query_async(&mut con)
        .await
        .unwrap();
    store
        .record_page_view(write(v, page_view(4_000, 1, "/d")))
        .await
        .unwrap();

    let paths = |views: Vec<PageView>| -> Vec<String> {
        views
            .into_iter()
            .map(|pv| pv.url.replace("https://shop.example", ""))
            .collect()
    };
    assert_eq!(
        paths(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/a", "/b", "/c", "/d"]
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap(),
        VisitorState {
            visits: 2,
            lead: Some(LeadId(7))
        }
    );
    let stored: Vec<String> = redis::cmd("LRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    let mut in_order = vec!["~2|7|500".to_owned()];
    in_order.extend(old.iter().rev().cloned());
    in_order.push(page_view(4_000, 1, "/d").encode());
    assert_eq!(stored, in_order, "put in order once");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(ttl > 3500, "the expiry is kept: {ttl} s");

    // From then on, as any history: a new visit keeps the newest page views.
    let third = store.start_visit(ACCOUNT, v, 3600, 2).await.unwrap();
    assert_eq!(third.visits, 3);
    assert_eq!(
        paths(store.page_views(ACCOUNT, v).await.unwrap()),
        ["/c", "/d"]
    );
    common::delete_prefix(&common::redis_url(), &prefix).await;
}

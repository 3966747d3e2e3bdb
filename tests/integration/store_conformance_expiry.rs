//! One behaviour, two stores, for what expires: nothing is listed, counted or kept past
//! its expiry, and nothing is dropped before it — on a real Redis under a prefix of its
//! own and on the embedded store, whose expired entries go only with the clean-up that
//! the scheduler's polling (`claim_due`) runs, so every read must see past them.

use std::sync::Arc;
use std::time::Duration;

use footfall::domain::event_record::DeliveryState;
use footfall::domain::ids::*;
use footfall::domain::privacy::Erased;
use footfall::domain::time::now_ms;
use footfall::domain::visitor::VisitorId;
use footfall::store::memory::MemoryStore;
use footfall::store::redis::Keys;
use footfall::store::{ErasureScope, NewSubmission, PageViewWrite};

use crate::common::stores::{Shared, conformance};
use crate::store_conformance::{ACCOUNT, event, page_view, submission, submit, write};

conformance!(
    on_redis, on_memory, retention 1;
    a_dead_letter_outlives_the_event_index_clean_up,
    an_erasure_counts_nothing_that_has_expired,
    a_sighting_outlives_its_browsers_history,
);

probed!(
    probed_on_redis, probed_on_memory;
    a_history_of_page_views_alone_expires_provisionally,
    trimming_an_erased_browsers_history_makes_none,
);

/// What the trait does not tell: how much longer each store keeps a browser's history
/// (Redis's TTL of the key; the embedded store's own account of it).
enum Expiry {
    Redis(Keys),
    Memory(Arc<MemoryStore>),
}

impl Expiry {
    /// `None` when there is no history, `Some(None)` when it never expires, else the
    /// seconds left (as Redis's TTL rounds them).
    async fn of_history(&self, visitor: VisitorId) -> Option<Option<u64>> {
        match self {
            Expiry::Redis(keys) => {
                let client = redis::Client::open(crate::common::redis_url()).unwrap();
                let mut con = client.get_multiplexed_async_connection().await.unwrap();
                let ttl: i64 = redis::cmd("TTL")
                    .arg(keys.visitor_history(ACCOUNT, visitor))
                    .query_async(&mut con)
                    .await
                    .unwrap();
                match ttl {
                    -2 => None,
                    -1 => Some(None),
                    secs => Some(Some(secs as u64)),
                }
            }
            Expiry::Memory(store) => store
                .history_expires_in(ACCOUNT, visitor)
                .map(|left| left.map(|d| (d.as_millis() as u64 + 500) / 1000)),
        }
    }
}

/// As `conformance!`, each test also given its store's [`Expiry`].
macro_rules! probed {
    ($redis:ident, $memory:ident; $($name:ident),* $(,)?) => {
        mod $redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, prefix) = crate::common::stores::redis_store(1).await;
                    let _keys = crate::common::KeysGuard::new(&crate::common::redis_url(), &prefix);
                    let keys = footfall::store::redis::Keys::new(&prefix, 4);
                    super::$name(store, super::Expiry::Redis(keys)).await;
                }
            )*
        }
        mod $memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = std::sync::Arc::new(
                        footfall::store::memory::MemoryStore::with_event_retention(
                            std::time::Duration::from_secs(1),
                        ),
                    );
                    super::$name(store.clone(), super::Expiry::Memory(store)).await;
                }
            )*
        }
    };
}
use probed;

fn scope() -> ErasureScope {
    ErasureScope {
        account: ACCOUNT,
        sites: vec![SiteId(1)],
        handlers: vec![HandlerId(1)],
    }
}

/// A history its page views alone made (the visit's start is a step of its own, which
/// may fail) is kept the visit gap and an hour, not for ever; further page views leave
/// that expiry as it is, and the visit's start replaces it with its own — here a shorter
/// anonymous one.
async fn a_history_of_page_views_alone_expires_provisionally(store: Shared, expiry: Expiry) {
    let v = VisitorId::mint();
    // A visit gap of an hour: two hours in all.
    for (at, path) in [(1, "/"), (2, "/a")] {
        store
            .record_page_view(write(v, page_view(at, 1, path)))
            .await
            .unwrap();
    }
    let left = expiry.of_history(v).await;
    assert!(
        matches!(left, Some(Some(s)) if (7_190..=7_200).contains(&s)),
        "{left:?}"
    );
    store.start_visit(ACCOUNT, v, 3600, 1, 100).await.unwrap();
    let left = expiry.of_history(v).await;
    assert!(matches!(left, Some(Some(s)) if s <= 1), "{left:?}");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(store.page_views(ACCOUNT, v).await.unwrap().is_empty());
    assert_eq!(expiry.of_history(v).await, None);
    // A page view within a visit leaves the visit's expiry as it is.
    let w = VisitorId::mint();
    store
        .record_page_view(write(w, page_view(3, 1, "/")))
        .await
        .unwrap();
    store.start_visit(ACCOUNT, w, 3600, 60, 100).await.unwrap();
    store
        .record_page_view(write(w, page_view(4, 1, "/b")))
        .await
        .unwrap();
    let left = expiry.of_history(w).await;
    assert!(
        matches!(left, Some(Some(s)) if (55..=60).contains(&s)),
        "{left:?}"
    );
}

/// Trimming the history of a browser that has none (erased, here, while its page view
/// was being recorded) makes none: nothing is kept of it, nor found by a later erasure.
async fn trimming_an_erased_browsers_history_makes_none(store: Shared, expiry: Expiry) {
    let v = VisitorId::mint();
    for at in 1..=3 {
        store
            .record_page_view(write(v, page_view(at, 1, "/")))
            .await
            .unwrap();
    }
    store
        .start_visit(ACCOUNT, v, 3600, 3600, 100)
        .await
        .unwrap();
    let erased = store.erase_visitor(&scope(), v).await.unwrap();
    assert_eq!((erased.visitors, erased.page_views), (1, 3));
    store.trim_page_views(ACCOUNT, v, 2).await.unwrap();
    assert_eq!(expiry.of_history(v).await, None);
    assert!(store.page_views(ACCOUNT, v).await.unwrap().is_empty());
    let again = store.erase_visitor(&scope(), v).await.unwrap();
    assert_eq!((again.visitors, again.page_views), (0, 0));
}

/// A dead letter is listed while its record is kept (the retention from its death), even
/// when its event was created longer than the retention ago — also after the clean-up
/// that forgets such an event in the account's index (the embedded store's runs when
/// events are claimed; Redis's when an event ends). Oldest first by creation time.
async fn a_dead_letter_outlives_the_event_index_clean_up(store: Shared) {
    let now = now_ms();
    let mut dead = Vec::new();
    for created_at in [now - 5_000, now - 8_000, now] {
        let mut e = event(created_at, 1);
        e.state = DeliveryState::Dead;
        e.failures = 3;
        store.save_event(&e).await.unwrap();
        dead.push(e);
    }
    // Nothing is due: the claim only runs the clean-up.
    assert!(
        store
            .claim_due(now, now + 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let index = store.event_ids(ACCOUNT).await.unwrap();
    assert!(
        !index.contains(&dead[0].id) && !index.contains(&dead[1].id),
        "the index forgets what was created before the retention: {index:?}"
    );
    assert_eq!(
        store.dead_event_ids(ACCOUNT, HandlerId(1)).await.unwrap(),
        [dead[1].id.clone(), dead[0].id.clone(), dead[2].id.clone()]
    );
    assert_eq!(
        store.get_event(&dead[1].id).await.unwrap(),
        Some(dead[1].clone())
    );
    // Past the retention from their death, they go.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    assert!(
        store
            .claim_due(now, now + 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .dead_event_ids(ACCOUNT, HandlerId(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.get_event(&dead[1].id).await.unwrap(), None);
}

/// A page view whose sighting is kept a second only (a visit gap of 0), so that nothing
/// of the browser outlives a test's wait but what the test means to keep.
fn briefly_seen(visitor: VisitorId, at: i64) -> PageViewWrite {
    PageViewWrite {
        visit_idle_ms: 0,
        ..write(visitor, page_view(at, 1, "/"))
    }
}

/// An erasure counts only what was still kept: a browser's history and link, and finished
/// events, past their expiry are gone — on the embedded store too, whether or not its
/// clean-up has run (here it has not: nothing was claimed).
async fn an_erasure_counts_nothing_that_has_expired(store: Shared) {
    let now = now_ms();
    let (linked, anonymous) = (VisitorId::mint(), VisitorId::mint());
    for v in [linked, anonymous] {
        store.record_page_view(briefly_seen(v, 1)).await.unwrap();
    }
    // An anonymous first visit keeps its history a second; so does a link of a second.
    store
        .start_visit(ACCOUNT, anonymous, 3600, 1, 100)
        .await
        .unwrap();
    let s = NewSubmission {
        link_retention_secs: 1,
        ..submission(1, "a@b.co", linked, 1)
    };
    submit(&store, &s).await;
    // Finished events are kept a second: one fired on the lead, one notice.
    let mut fired = event(now, 1);
    fired.state = DeliveryState::Delivered;
    store
        .add_events(std::slice::from_ref(&fired))
        .await
        .unwrap();
    let mut notice = event(now, 1);
    notice.state = DeliveryState::Delivered;
    store.save_event(&notice).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let erased = store.erase_visitor(&scope(), anonymous).await.unwrap();
    assert_eq!(erased, Erased::default());
    assert_eq!(
        store
            .erase_notices(&scope(), std::slice::from_ref(&notice.id))
            .await
            .unwrap(),
        0
    );
    // The lead, its contacts, its entry and its link on the lead do not expire.
    let erased = store
        .erase_lead(&scope(), LeadId(1))
        .await
        .unwrap()
        .expect("the lead was there");
    // Its contacts, on no other lead, go with it: their ids, in order, on both stores.
    let mut contacts: Vec<ContactId> = s.lead.contacts.iter().map(|c| c.id).collect();
    contacts.sort();
    assert_eq!(erased.contacts_gone, contacts);
    assert_eq!(
        Some(erased.erased),
        Some(Erased {
            leads: 1,
            contacts: s.lead.contacts.len() as u64,
            unsorted: 1,
            visitors: 1,
            page_views: 0,
            events: 0,
        })
    );
}

/// A browser's last sighting on a site is kept the visit gap (and a second) whatever
/// becomes of its history: when an anonymous first visit's history expires while the
/// visit runs, its next page view still finds the visit running, and an erasure still
/// finds the browser (by its sighting only).
async fn a_sighting_outlives_its_browsers_history(store: Shared) {
    let (v, w) = (VisitorId::mint(), VisitorId::mint());
    let at = now_ms();
    // A visit gap of an hour; histories kept a second.
    for visitor in [v, w] {
        store
            .record_page_view(write(visitor, page_view(at, 1, "/")))
            .await
            .unwrap();
        store
            .start_visit(ACCOUNT, visitor, 3600, 1, 100)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    // The embedded store's clean-up runs with the claims.
    assert!(
        store
            .claim_due(at, at + 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.page_views(ACCOUNT, v).await.unwrap().is_empty());
    let next = store
        .record_page_view(write(v, page_view(at + 1, 1, "/a")))
        .await
        .unwrap();
    assert_eq!((next.last_seen, next.history_len), (Some(at), 1));
    let erased = store.erase_visitor(&scope(), w).await.unwrap();
    assert_eq!((erased.visitors, erased.page_views), (1, 0));
}

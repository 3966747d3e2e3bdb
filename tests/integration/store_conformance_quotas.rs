//! One behaviour, two stores, for the quotas: page views charged at the same moment (on
//! Redis the page-view writer sends them in one script, each counter read and written
//! once) are admitted exactly as if charged one by one — up to each counter's burst,
//! each all-or-nothing: a page view one counter refuses takes nothing from the others and
//! stores nothing.

use futures_util::future::join_all;

use footfall::domain::ids::*;
use footfall::domain::quota::{AddressTag, Limit, Quota, QuotaKind, Scope};
use footfall::domain::time::now_ms;
use footfall::domain::tracking::PageView;
use footfall::domain::visitor::VisitorId;
use footfall::store::{Charge, PageViewWrite};

use crate::common::stores::{Shared, conformance};
use crate::store_conformance::submission;

conformance!(
    on_redis, on_memory, retention 60;
    page_views_charged_together_are_admitted_up_to_each_burst_all_or_nothing,
    a_charged_submission_keeps_its_browsers_history_past_an_anonymous_first_visit,
);

const ACCOUNT: AccountId = AccountId(1);
const SITE: SiteId = SiteId(7);

fn quota(scope: Scope, burst: u64) -> Quota {
    Quota {
        kind: QuotaKind::PageViews,
        scope,
        // One more an hour: nothing refills while the test runs.
        limit: Limit::new(1, 3600, burst).unwrap(),
    }
}

async fn page_views_charged_together_are_admitted_up_to_each_burst_all_or_nothing(store: Shared) {
    // Three addresses of two page views each at once, a site of five: ten page views
    // from each address in turn, all sent at the same moment. Were a refused page view
    // charged to the site, the first address's eight refusals would spend it.
    let address = |i: usize| AddressTag((i / 10) as u64 + 1);
    let visitors: Vec<VisitorId> = (0..30).map(|_| VisitorId::mint()).collect();
    let now = now_ms();
    let answers = join_all(visitors.iter().enumerate().map(|(i, v)| {
        let write = PageViewWrite {
            account: ACCOUNT,
            visitor: *v,
            page_view: PageView {
                at: now,
                site_id: SITE,
                url: format!("https://shop.example/p{i}"),
                title: "T".into(),
                referrer: String::new(),
            },
            visit_idle_ms: 60_000,
            watch: false,
        };
        let charge = Charge {
            account: ACCOUNT,
            quotas: vec![
                quota(Scope::Address(address(i)), 2),
                quota(Scope::Site(SITE), 5),
            ],
        };
        store.record_page_view_charged(write, charge)
    }))
    .await;
    let mut admitted_per_address = [0; 3];
    for (i, (answer, v)) in answers.into_iter().zip(&visitors).enumerate() {
        let stored = store.page_views(ACCOUNT, *v).await.unwrap();
        match answer.unwrap() {
            Ok(outcome) => {
                admitted_per_address[i / 10] += 1;
                assert_eq!(outcome.history_len, 1, "page view {i}");
                assert_eq!(stored.len(), 1, "page view {i} admitted and stored");
            }
            Err(refused) => {
                assert!(refused.wait_us > 0, "page view {i}: {refused:?}");
                assert!(
                    ["address", "site"].contains(&refused.scope()),
                    "page view {i}: {refused:?}"
                );
                assert!(stored.is_empty(), "page view {i} refused, yet stored");
            }
        }
    }
    assert_eq!(
        admitted_per_address,
        [2, 2, 1],
        "two per address until the site's five are spent"
    );
}

/// A charged submission keeps its browser's history as an uncharged one does: a browser
/// whose page views came before its first visit was counted (the visit's start is a step
/// of its own) keeps its history the full retention, not the anonymous one, once that
/// visit starts.
async fn a_charged_submission_keeps_its_browsers_history_past_an_anonymous_first_visit(
    store: Shared,
) {
    let v = VisitorId::mint();
    let account = crate::store_conformance::ACCOUNT;
    let write = PageViewWrite {
        account,
        visitor: v,
        page_view: PageView {
            at: now_ms(),
            site_id: SITE,
            url: "https://shop.example/".into(),
            title: "T".into(),
            referrer: String::new(),
        },
        visit_idle_ms: 60_000,
        watch: false,
    };
    store.record_page_view(write).await.unwrap();
    let charge = Charge {
        account,
        quotas: vec![Quota {
            kind: QuotaKind::FormPosts,
            ..quota(Scope::Site(SITE), 5)
        }],
    };
    let s = submission(1, "a@b.co", v, 1);
    store
        .reserve_submission_charged(account, Some(v), s.link_retention_secs, charge, 0)
        .await
        .unwrap()
        .expect("admitted");
    store.create_lead_from_submission(&s).await.unwrap();
    // The first visit starts with an anonymous retention of one second.
    store.start_visit(account, v, 3600, 1, 100).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(store.page_views(account, v).await.unwrap().len(), 1);
}

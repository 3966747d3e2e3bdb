//! One behaviour, two stores, for what issue 15 added: watched visits (conditional
//! site-visit actions) and per-site statistics — on a real Redis under a prefix of its own
//! and on the embedded store, with the same answers.

use std::time::Duration;

use footfall::domain::conditions::VisitWatch;
use footfall::domain::ids::*;
use footfall::domain::stats::{Counts, StatsDelta, day_of};
use footfall::domain::tracking::{PageView, Visit};
use footfall::domain::visitor::VisitorId;
use footfall::store::PageViewWrite;

use crate::common::stores::{Shared, conformance};

conformance!(
    on_redis, on_memory, retention 3600;

    a_watched_visit_counts_its_page_views_and_each_action_is_claimed_once,
    statistics_add_up_per_day_with_unique_browsers_of_the_period,
);

fn write(visitor: VisitorId, at: i64, path: &str, watch: bool) -> PageViewWrite {
    PageViewWrite {
        account: AccountId(1),
        visitor,
        page_view: PageView {
            at,
            site_id: SiteId(7),
            url: format!("https://shop.example{path}"),
            title: "T".into(),
            referrer: String::new(),
        },
        visit_idle_ms: 60_000,
        watch,
    }
}

async fn a_watched_visit_counts_its_page_views_and_each_action_is_claimed_once(store: Shared) {
    let v = VisitorId::mint();
    let now = footfall::domain::time::now_ms();
    // Not watched yet: nothing to read.
    let seen = store
        .record_page_view(write(v, now, "/", true))
        .await
        .unwrap();
    assert_eq!(seen.watch, None);
    let watch = VisitWatch {
        lead: LeadId(3),
        number: 2,
        started_at: now,
        referrer: "https://g.example/".into(),
        landing: "https://shop.example/?utm_source=news".into(),
        pages: 1,
        fired: vec![ActionId(5)],
    };
    store
        .watch_visit(v, SiteId(7), &watch, 60_000)
        .await
        .unwrap();
    // A page view that does not ask does not count.
    let seen = store
        .record_page_view(write(v, now + 1, "/a", false))
        .await
        .unwrap();
    assert_eq!(seen.watch, None);
    let seen = store
        .record_page_view(write(v, now + 2, "/b", true))
        .await
        .unwrap();
    assert_eq!(
        seen.watch,
        Some(VisitWatch {
            pages: 2,
            ..watch.clone()
        })
    );
    // Each action once per visit; an action fired at the start is claimed already; another
    // visit's start claims nothing.
    let claim = |a, started| store.claim_in_visit(v, SiteId(7), started, ActionId(a));
    assert!(claim(6, now).await.unwrap());
    assert!(!claim(6, now).await.unwrap());
    assert!(!claim(5, now).await.unwrap());
    assert!(!claim(7, now - 1).await.unwrap());
    let seen = store
        .record_page_view(write(v, now + 3, "/c", true))
        .await
        .unwrap();
    let seen = seen.watch.unwrap();
    assert_eq!(
        (seen.pages, seen.fired),
        (3, vec![ActionId(5), ActionId(6)])
    );
    // Another site's visit is not watched.
    let other = PageViewWrite {
        page_view: PageView {
            site_id: SiteId(8),
            ..write(v, now + 4, "/", true).page_view
        },
        ..write(v, now + 4, "/", true)
    };
    assert_eq!(store.record_page_view(other).await.unwrap().watch, None);
    // A new watch replaces the old one.
    store
        .watch_visit(
            v,
            SiteId(7),
            &VisitWatch {
                started_at: now + 10,
                fired: vec![],
                ..watch.clone()
            },
            60_000,
        )
        .await
        .unwrap();
    assert!(claim(6, now + 10).await.unwrap());
}

async fn statistics_add_up_per_day_with_unique_browsers_of_the_period(store: Shared) {
    let (a, b) = (VisitorId::mint(), VisitorId::mint());
    // Yesterday and today: days older than 400 days are gone on both stores.
    let day = day_of(footfall::domain::time::now_ms()) - 1;
    let at = |d: u32| d as i64 * 86_400_000 + 3_600_000;
    let mut delta = StatsDelta::default();
    let visit = |number, d: u32, url: &str| Visit {
        number,
        site_id: SiteId(7),
        started_at: at(d),
        url: url.into(),
        title: String::new(),
        referrer: String::new(),
    };
    delta.visit(&visit(1, day, "https://s.example/?utm_source=news"), false);
    delta.visit(&visit(2, day + 1, "https://s.example/"), true);
    delta.form_submission(SiteId(7), at(day));
    delta.site_visit_events(SiteId(7), at(day + 1), 2);
    store.add_stats(delta).await.unwrap();
    // Page views are counted with the page views themselves.
    for (v, d, path) in [
        (a, day, "/"),
        (b, day, "/p"),
        (a, day + 1, "/p"),
        (a, day + 1, "/p"),
    ] {
        store
            .record_page_view(PageViewWrite {
                page_view: PageView {
                    at: at(d),
                    ..write(v, 0, path, false).page_view
                },
                ..write(v, 0, path, false)
            })
            .await
            .unwrap();
    }
    // Redis gets the buffered counters with the next pipeline (or within a second).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let stats = store.site_stats(SiteId(7), day - 1, day + 2).await.unwrap();
        if stats.days.len() == 2 && stats.days[1].1.site_visit_events == 2
            || std::time::Instant::now() > deadline
        {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        stats.days,
        [
            (
                day,
                Counts {
                    page_views: 2,
                    visits: 1,
                    new_browsers: 1,
                    linked_browsers: 0,
                    form_submissions: 1,
                    site_visit_events: 0
                },
                2
            ),
            (
                day + 1,
                Counts {
                    page_views: 2,
                    visits: 1,
                    new_browsers: 0,
                    linked_browsers: 1,
                    form_submissions: 0,
                    site_visit_events: 2
                },
                1
            ),
        ]
    );
    assert_eq!(stats.unique_browsers, 2);
    assert_eq!(stats.pages.get("/p"), Some(&3));
    assert_eq!(stats.pages.get("/"), Some(&1));
    assert_eq!(stats.sources.get("news"), Some(&1));
    assert_eq!(stats.sources.get("(direct)"), Some(&1));
    // Another site has nothing; a day outside the period is left out.
    assert!(
        store
            .site_stats(SiteId(8), day, day)
            .await
            .unwrap()
            .days
            .is_empty()
    );
    assert_eq!(
        store
            .site_stats(SiteId(7), day + 1, day + 1)
            .await
            .unwrap()
            .unique_browsers,
        1
    );
    let gone = day - 401;
    let mut old = StatsDelta::default();
    old.form_submission(SiteId(7), at(gone));
    store.add_stats(old).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        store
            .site_stats(SiteId(7), gone, gone)
            .await
            .unwrap()
            .days
            .is_empty()
    );
}

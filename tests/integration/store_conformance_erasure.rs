//! One behaviour, two stores, for what an erasure must reach of issue 15's data: a
//! browser's share of the top pages and sources taken out (shared entries keep the rest,
//! entries at 0 go, buffered counters cannot add them back) and its watched visit gone —
//! on a real Redis under a prefix of its own and on the embedded store, same answers.

use std::collections::HashMap;
use std::time::Duration;

use footfall::domain::conditions::VisitWatch;
use footfall::domain::ids::*;
use footfall::domain::stats::{StatsDelta, day_of};
use footfall::domain::time::now_ms;
use footfall::domain::tracking::{PageView, Visit};
use footfall::domain::visitor::VisitorId;
use footfall::store::{ErasureScope, PageViewWrite};

use crate::common::stores::{Shared, conformance};
use crate::store_conformance::{ACCOUNT, submission, submit};
use footfall::store::{Fingerprints, NewSubmission, SubmissionOutcome};

conformance!(
    on_redis, on_memory, retention 3600;
    an_erased_browser_leaves_the_top_lists_and_its_watch_goes,
    an_erased_leads_fingerprint_taken_over_by_a_later_lead_still_folds_into_it,
    a_submission_kept_under_two_fingerprints_folds_either_until_its_lead_is_erased);

const SITE: SiteId = SiteId(7);

/// The scope of an erasure of `ACCOUNT`'s leads.
fn scope() -> ErasureScope {
    ErasureScope {
        account: ACCOUNT,
        sites: vec![SITE],
        handlers: Vec::new(),
    }
}

/// `s`, with `fingerprint` its only one.
fn fingerprinted(s: NewSubmission, fingerprint: &str) -> NewSubmission {
    NewSubmission {
        fingerprints: Fingerprints {
            looked_up: fingerprint.into(),
            minted_browser: None,
        },
        ..s
    }
}

fn write(visitor: VisitorId, at: i64, path: &str, watch: bool) -> PageViewWrite {
    PageViewWrite {
        account: AccountId(1),
        visitor,
        page_view: PageView {
            at,
            site_id: SITE,
            url: format!("https://shop.example{path}"),
            title: "T".into(),
            referrer: String::new(),
        },
        visit_idle_ms: 60_000,
        watch,
    }
}

fn visit(at: i64, url: &str) -> Visit {
    Visit {
        number: 1,
        site_id: SITE,
        started_at: at,
        url: url.into(),
        title: String::new(),
        referrer: String::new(),
    }
}

async fn an_erased_browser_leaves_the_top_lists_and_its_watch_goes(store: Shared) {
    let (subject, other) = (VisitorId::mint(), VisitorId::mint());
    let now = now_ms();
    let day = day_of(now);
    // Both came from the newsletter to /p; the subject also saw /only, and came back
    // from its own campaign.
    let mut subject_views = Vec::new();
    for (v, path) in [(other, "/p"), (subject, "/p"), (subject, "/only")] {
        let w = write(v, now, path, false);
        if v == subject {
            subject_views.push(w.page_view.clone());
        }
        store.record_page_view(w).await.unwrap();
    }
    // The visits' counters after the page views: Redis's writer runs, so they wait in
    // its buffer.
    let mut delta = StatsDelta::default();
    let visits = [
        visit(now, "https://shop.example/p?utm_source=news"),
        visit(now + 1, "https://shop.example/p?utm_source=mine"),
    ];
    delta.visit(&visit(now, "https://shop.example/p?utm_source=news"), false);
    for v in &visits {
        delta.visit(v, false);
    }
    store.add_stats(delta).await.unwrap();
    let watch = VisitWatch {
        lead: LeadId(3),
        number: 1,
        started_at: now,
        referrer: String::new(),
        landing: "https://shop.example/p?utm_source=mine".into(),
        pages: 1,
        fired: Vec::new(),
    };
    store
        .watch_visit(subject, SITE, &watch, 60_000)
        .await
        .unwrap();

    // At once: on Redis the visits' sources may still wait in the buffer.
    store
        .remove_tops(StatsDelta::tops_of(&subject_views, &visits))
        .await
        .unwrap();
    let scope = ErasureScope {
        account: AccountId(1),
        sites: vec![SITE],
        handlers: Vec::new(),
    };
    let erased = store.erase_visitor(&scope, subject).await.unwrap();
    assert_eq!((erased.visitors, erased.page_views), (1, 2));

    // Past the buffer's flush (a second): the other browser's share only.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = store.site_stats(SITE, day, day).await.unwrap();
    assert_eq!(stats.pages, HashMap::from([("/p".to_owned(), 1)]));
    assert_eq!(stats.sources, HashMap::from([("news".to_owned(), 1)]));
    assert_eq!(stats.days[0].1.page_views, 3, "the counters stay");

    // The watched visit is gone with the browser.
    let seen = store
        .record_page_view(write(subject, now + 2, "/", true))
        .await
        .unwrap();
    assert_eq!(seen.watch, None);
}

/// A lead's erasure takes its submission fingerprint only while the fingerprint is still
/// its own: once its window has passed and the same submission made a later lead, a
/// double of that later submission still folds into the later lead.
async fn an_erased_leads_fingerprint_taken_over_by_a_later_lead_still_folds_into_it(store: Shared) {
    let v = VisitorId::mint();
    // Its double-submission window is one second.
    let first = NewSubmission {
        duplicate_window_secs: 1,
        ..submission(1, "a@b.co", v, 1)
    };
    assert!(matches!(
        submit(&store, &first).await,
        SubmissionOutcome::Created { .. }
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = submission(2, "a@b.co", v, 1);
    assert_eq!(again.fingerprints, first.fingerprints);
    assert!(matches!(
        submit(&store, &again).await,
        SubmissionOutcome::Created { .. }
    ));
    let scope = scope();
    assert!(store.erase_lead(&scope, LeadId(1)).await.unwrap().is_some());
    let double = submission(3, "a@b.co", v, 1);
    assert!(
        matches!(
            submit(&store, &double).await,
            SubmissionOutcome::Duplicate {
                lead: LeadId(2),
                ..
            }
        ),
        "the later lead's fingerprint went with the erased lead"
    );
}

/// A submission with a browser minted for it is kept under two fingerprints (without the
/// browser, and with it): a repeat with either folds into it, and its erasure drops both.
async fn a_submission_kept_under_two_fingerprints_folds_either_until_its_lead_is_erased(
    store: Shared,
) {
    let v = VisitorId::mint();
    let first = NewSubmission {
        fingerprints: Fingerprints {
            looked_up: "no-browser".into(),
            minted_browser: Some("minted".into()),
        },
        ..submission(1, "a@b.co", v, 1)
    };
    assert!(matches!(
        submit(&store, &first).await,
        SubmissionOutcome::Created { .. }
    ));
    for (lead, fingerprint) in [(2, "no-browser"), (3, "minted")] {
        let repeat = fingerprinted(submission(lead, "a@b.co", v, 1), fingerprint);
        assert!(
            matches!(
                submit(&store, &repeat).await,
                SubmissionOutcome::Duplicate {
                    lead: LeadId(1),
                    ..
                }
            ),
            "{fingerprint}"
        );
    }
    let scope = scope();
    assert!(store.erase_lead(&scope, LeadId(1)).await.unwrap().is_some());
    for (lead, fingerprint) in [(4, "no-browser"), (5, "minted")] {
        let after = fingerprinted(
            submission(lead, "a@b.co", VisitorId::mint(), 1),
            fingerprint,
        );
        assert!(
            matches!(
                submit(&store, &after).await,
                SubmissionOutcome::Created { .. }
            ),
            "{fingerprint} went with the erased lead"
        );
    }
}

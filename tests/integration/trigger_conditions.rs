//! Conditions on site-visit actions, as a table: each row names what it checks, places an
//! action with its conditions on "First contact", links a browser to a lead in that
//! stage (after the row's visits before the form), then walks through page views and
//! visits, counting the lead's site-visit events after each step. Every row runs on Redis
//! and on the embedded store, each in an app of its own, with a real webhook receiver.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Receiver, Setup, TestApp, items, setup, submit_form, test_settings};

/// A step of a row, and the number of the lead's events expected after it (`None`: not
/// checked, where the answer would depend on the machine's speed).
enum Step {
    /// Waits out the visit gap, then a page view: a new visit.
    NewVisit(&'static str),
    /// A page view inside the running visit.
    View(&'static str),
    /// Waits (less than the visit gap), then a page view inside the running visit.
    Later(u64, &'static str),
    /// Moves the lead to the pipeline's "Negotiation" stage.
    LeaveStage,
}

struct Row {
    checks: &'static str,
    conditions: Value,
    /// Visits of the browser before the form.
    visits_before_form: usize,
    idle_seconds: u64,
    steps: Vec<(Step, Option<usize>)>,
}

fn row(checks: &'static str, conditions: Value, steps: Vec<(Step, Option<usize>)>) -> Row {
    Row {
        checks,
        conditions,
        visits_before_form: 1,
        idle_seconds: crate::common::VISIT_GAP_SECS,
        steps,
    }
}

fn rows() -> Vec<Row> {
    use Step::*;
    let page = |kind: &str, value: &str| json!({"page": {"match": kind, "value": value}});
    vec![
        row(
            "page is: the exact path fires, a longer one does not",
            page("is", "/pricing"),
            vec![
                (NewVisit("/pricing/team"), Some(0)),
                (View("/pricing"), Some(1)),
            ],
        ),
        row(
            "page starts_with: fires at the first page under the prefix",
            page("starts_with", "/pricing"),
            vec![(NewVisit("/"), Some(0)), (View("/pricing/team"), Some(1))],
        ),
        row(
            "page contains: the query counts",
            page("contains", "plan=pro"),
            vec![
                (NewVisit("/p?plan=basic"), Some(0)),
                (View("/p?plan=pro#top"), Some(1)),
            ],
        ),
        row(
            "page glob: * spans path segments, the end is anchored",
            page("glob", "/blog/*/pricing"),
            vec![
                (NewVisit("/blog/a/pricing/x"), Some(0)),
                (View("/blog/a/b/pricing"), Some(1)),
            ],
        ),
        Row {
            visits_before_form: 2,
            ..row(
                "min_visit_number 3: the first visit after two visits before the form fires",
                json!({"min_visit_number": 3}),
                vec![(NewVisit("/"), Some(1))],
            )
        },
        Row {
            visits_before_form: 2,
            ..row(
                "min_visit_number 4: the first visit after the form is the third, too early",
                json!({"min_visit_number": 4}),
                vec![(NewVisit("/"), Some(0)), (NewVisit("/"), Some(1))],
            )
        },
        row(
            "min_pages_in_visit 3: fires at the third page of the visit, once",
            json!({"min_pages_in_visit": 3}),
            vec![
                (NewVisit("/"), Some(0)),
                (View("/a"), Some(0)),
                (View("/b"), Some(1)),
                (View("/c"), Some(1)),
            ],
        ),
        Row {
            idle_seconds: 5,
            ..row(
                "min_seconds_in_stage 8: not at the first visit, later in the same visit",
                json!({"min_seconds_in_stage": 8}),
                vec![
                    (NewVisit("/"), Some(0)),
                    (Later(2000, "/a"), None),
                    (Later(2000, "/b"), Some(1)),
                ],
            )
        },
        row(
            "cooldown_seconds 3600: fired once, quiet at the next visit",
            json!({"cooldown_seconds": 3600}),
            vec![(NewVisit("/"), Some(1)), (NewVisit("/"), Some(1))],
        ),
        row(
            "cooldown_seconds 1: quiet for a second only, the next visit fires again",
            json!({"cooldown_seconds": 1}),
            vec![(NewVisit("/"), Some(1)), (NewVisit("/"), Some(2))],
        ),
        row(
            "once per visit: a page condition that becomes true mid-visit fires once, the next visit again",
            page("starts_with", "/pricing"),
            vec![
                (NewVisit("/"), Some(0)),
                (View("/pricing"), Some(1)),
                (View("/pricing/team"), Some(1)),
                (View("/"), Some(1)),
                (NewVisit("/pricing"), Some(2)),
            ],
        ),
        row(
            "page and min_pages_in_visit: both must hold at the same page view",
            json!({"page": {"match": "starts_with", "value": "/pricing"}, "min_pages_in_visit": 2}),
            vec![
                (NewVisit("/pricing"), Some(0)),
                (View("/"), Some(0)),
                (View("/pricing"), Some(1)),
            ],
        ),
        row(
            "min_visit_number and page is: the second visit, on the home page",
            json!({"min_visit_number": 2, "page": {"match": "is", "value": "/"}}),
            vec![(NewVisit("/about"), Some(0)), (View("/"), Some(1))],
        ),
        row(
            "a lead that left the stage mid-visit: the waiting action stays quiet",
            page("starts_with", "/pricing"),
            vec![
                (NewVisit("/"), Some(0)),
                (LeaveStage, Some(0)),
                (View("/pricing"), Some(0)),
            ],
        ),
        row(
            "no conditions: fires at the visit's first page view as always, once",
            Value::Null,
            vec![(NewVisit("/"), Some(1)), (View("/pricing"), Some(1))],
        ),
    ]
}

async fn run_row(backend: Backend, row: Row) {
    let what = format!("{backend:?}: {}", row.checks);
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = row.idle_seconds;
    let idle = Duration::from_millis(row.idle_seconds * 1000 + 100);
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    if !row.conditions.is_null() {
        let (status, body) = app
            .patch(
                &format!("/api/v4/actions/{}", s.action_id),
                json!({"conditions": row.conditions}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
        assert_eq!(body["conditions"], row.conditions, "{what}");
    }
    let url = |path: &str| format!("https://shop.example{path}");
    // The visits before the form: the first mints the browser's id.
    let (_, vid) = app.beacon(&s.site_key, None, &url("/")).await;
    let vid = vid.expect("a minted id");
    for _ in 1..row.visits_before_form {
        tokio::time::sleep(idle).await;
        app.beacon(&s.site_key, Some(&vid), &url("/")).await;
    }
    let (lead, uid, vid) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    let (status, body) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{what}: {body}");
    let mut fired = 0;
    for (i, (step, expected)) in row.steps.iter().enumerate() {
        let view = |path: &'static str| {
            let (app, key, vid, url) = (&app, &s.site_key, &vid, url(path));
            async move {
                let (status, _) = app.beacon(key, Some(vid), &url).await;
                assert_eq!(status, StatusCode::NO_CONTENT, "{url}");
            }
        };
        match step {
            Step::NewVisit(path) => {
                tokio::time::sleep(idle).await;
                view(path).await;
            }
            Step::View(path) => view(path).await,
            Step::Later(ms, path) => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                view(path).await;
            }
            Step::LeaveStage => {
                let (status, body) = app
                    .patch(
                        &format!("/api/v4/leads/{lead}"),
                        json!({"status_id": s.pipeline.negotiation}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{what}: {body}");
            }
        }
        let events = app.events_of(lead).await;
        fired = events.len();
        if let Some(expected) = expected {
            assert_eq!(fired, *expected, "{what}: after step {}", i + 1);
        }
    }
    // The receiver gets exactly the events fired, each for this lead and action.
    let received = receiver.wait_for(fired, Duration::from_secs(10)).await;
    assert_eq!(received.len(), fired, "{what}: webhooks received");
    for hook in &received {
        let body = hook.json();
        assert_eq!(body["event"]["type_code"], "site_visit", "{what}");
        assert_eq!(body["event"]["data"]["id"], lead, "{what}");
    }
}

async fn conditions_table(backend: Backend) {
    join_all(rows().into_iter().map(|row| run_row(backend, row))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_table_on_redis() {
    conditions_table(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_table_on_the_embedded_store() {
    conditions_table(Backend::Memory).await;
}

/// The webhook of an action that fired mid-visit reports the page it fired at and the
/// visit it belongs to.
/// The setup's action waits for a page under /pricing.
async fn wait_for_pricing(app: &TestApp, s: &Setup) {
    let (status, body) = app
        .patch(
            &format!("/api/v4/actions/{}", s.action_id),
            json!({"conditions": {"page": {"match": "starts_with", "value": "/pricing"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn mid_visit_webhook_reports_the_page_and_the_visit(backend: Backend) {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = 1;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    wait_for_pricing(&app, &s).await;
    let (lead, vid) = crate::common::linked_lead(&app, &s, "Anna").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    // The page's title is reported as the timeline stores it: control characters as
    // spaces, cut to 300 characters.
    let title = format!("Plans\n{}", "p".repeat(400));
    app.beacon_from(
        &s.site_key,
        Some(&vid),
        "https://shop.example/pricing?x=1",
        "https://shop.example/",
        &title,
    )
    .await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    let body = received[0].json();
    assert_eq!(body["event"]["data"]["id"], lead);
    let visit = &body["meta"]["visit"];
    assert_eq!(visit["url"], "https://shop.example/pricing?x=1");
    assert_eq!(visit["referrer"], "https://www.google.com/");
    assert_eq!(visit["number"], 1);
    let cleaned: String = format!("Plans {}", "p".repeat(400))
        .chars()
        .take(300)
        .collect();
    assert_eq!(visit["title"], cleaned.as_str());
    // Conditions are shown on the action; removing them restores the plain trigger.
    let (status, body) = app
        .patch(
            &format!("/api/v4/actions/{}", s.action_id),
            json!({"conditions": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("conditions").is_none(), "{body}");
}

/// A browser that sends a form for someone else in the middle of a watched visit leaves
/// the watched lead: a page that meets the action's conditions afterwards fires nothing
/// for that lead (its contact is not the one browsing).
async fn a_browser_that_left_the_watched_lead_fires_nothing_for_it(backend: Backend) {
    // The default visit gap (30 minutes): the page views below are one visit however slow
    // the machine.
    let app = TestApp::spawn_with(test_settings(backend)).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    wait_for_pricing(&app, &s).await;
    // A fresh browser linked to Anna's lead: its first page view starts the watched visit.
    let (anna, vid) = crate::common::linked_lead(&app, &s, "Anna").await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    let (boris, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Boris").await;
    assert_ne!(boris, anna);
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/pricing")
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        app.events_of(anna).await.is_empty(),
        "fired for Anna's lead"
    );
    assert_eq!(receiver.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_left_the_watched_lead_on_redis() {
    a_browser_that_left_the_watched_lead_fires_nothing_for_it(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_left_the_watched_lead_on_the_embedded_store() {
    a_browser_that_left_the_watched_lead_fires_nothing_for_it(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_visit_webhook_on_redis() {
    mid_visit_webhook_reports_the_page_and_the_visit(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_visit_webhook_on_the_embedded_store() {
    mid_visit_webhook_reports_the_page_and_the_visit(Backend::Memory).await;
}

/// Bad conditions are refused naming each field, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_conditions_are_refused_field_by_field() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (status, body) = app
        .post(
            "/api/v4/actions",
            json!([{"pipeline_id": s.pipeline.id, "status_ids": [s.pipeline.first_contact],
                    "event": "site_visit", "handler": "notify", "site_url": "https://shop.example",
                    "settings": {"message": "x"},
                    "conditions": {"page": {"match": "regex", "value": "/p"},
                                   "min_pages_in_visit": 0, "cooldown_seconds": "soon"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let text = body.to_string();
    for field in [
        "[0].conditions.page.match",
        "[0].conditions.min_pages_in_visit",
        "[0].conditions.cooldown_seconds",
    ] {
        assert!(text.contains(field), "{field} not named in {text}");
    }
    let (status, body) = app
        .post(
            "/api/v4/actions",
            json!([{"pipeline_id": s.pipeline.id, "status_ids": [s.pipeline.negotiation],
                    "event": "lead_status_changed", "handler": "notify",
                    "settings": {"message": "x"}, "conditions": {"min_visit_number": 2}}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("[0].conditions"), "{body}");
    let (status, body) = app
        .patch(
            &format!("/api/v4/actions/{}", s.action_id),
            json!({"conditions": {"page": {"match": "is"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("conditions.page.value"), "{body}");
    let (_, actions) = app.get("/api/v4/actions").await;
    assert_eq!(items(&actions, "actions").len(), 1);
    assert!(items(&actions, "actions")[0].get("conditions").is_none());
}

/// Round trips of a watched visit (counted by footfall itself): a page view whose page
/// does not meet the waiting action's conditions stays at one round trip; only the page
/// view that fires reads the lead and stores the event.
#[tokio::test]
async fn a_watched_visit_costs_extra_round_trips_only_where_an_action_may_fire() {
    use crate::atomic_steps::{counted, start};
    let (_process, app) = start(&crate::common::redis_url());
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    wait_for_pricing(&app, &s).await;
    let (lead, vid) = crate::common::linked_lead(&app, &s, "Anna").await;
    let (_, warm) = crate::common::linked_lead(&app, &s, "Boris").await;
    crate::common::wait_out_the_gap().await;
    // Another linked browser's visit reads the changed catalog into this instance first.
    app.beacon(&s.site_key, Some(&warm), "https://shop.example/")
        .await;
    let route = "/v1/collect";
    let (_, trips) = counted(
        &app,
        route,
        app.beacon(&s.site_key, Some(&vid), "https://shop.example/"),
    )
    .await;
    assert!(trips <= 3, "a watched visit's first page view took {trips}");
    let (_, trips) = counted(
        &app,
        route,
        app.beacon(&s.site_key, Some(&vid), "https://shop.example/about"),
    )
    .await;
    assert_eq!(trips, 1, "a page view of the watched visit off /pricing");
    assert!(app.events_of(lead).await.is_empty());
    let (_, trips) = counted(
        &app,
        route,
        app.beacon(&s.site_key, Some(&vid), "https://shop.example/pricing"),
    )
    .await;
    assert!(trips <= 5, "the page view that fires took {trips}");
    assert_eq!(app.events_of(lead).await.len(), 1);
    let (_, trips) = counted(
        &app,
        route,
        app.beacon(&s.site_key, Some(&vid), "https://shop.example/pricing/team"),
    )
    .await;
    assert_eq!(
        trips, 1,
        "once fired, the visit's page views are back to one"
    );
}

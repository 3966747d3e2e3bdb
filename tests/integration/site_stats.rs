//! `GET /api/v4/sites/{id}/stats`: the day's page views, visits, unique, new and linked
//! browsers, form submissions and site-visit events, with top pages and sources, counted
//! from real beacons, a form and a fired action — on Redis and on the embedded store —
//! and the period's bad input refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use footfall::domain::stats::{date_of, day_of};
use footfall::domain::time::now_ms;

use crate::common::{Backend, Receiver, TestApp, setup, stats_until, submit_form, test_settings};

async fn a_days_figures_count_what_browsers_did(backend: Backend) {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = 1;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    // Browser A: two pages; browser B: one page from a newsletter.
    let (_, a) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let a = a.unwrap();
    app.beacon(
        &s.site_key,
        Some(&a),
        "https://shop.example/pricing?plan=pro",
    )
    .await;
    app.beacon(&s.site_key, None, "https://shop.example/?utm_source=news")
        .await;
    // A sends the form, is accepted, and comes back: a linked visit that fires the action.
    let (lead, uid, a) = submit_form(&app, &s.form_id, Some(&a), "Anna").await;
    let (status, body) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.beacon(&s.site_key, Some(&a), "https://shop.example/")
        .await;
    assert_eq!(app.events_of(lead).await.len(), 1);

    let today = date_of(day_of(now_ms()));
    let path = format!(
        "/api/v4/sites/{}/stats?from={today}&to={today}&interval=day",
        s.site_id
    );
    let expected = json!({"date": today, "page_views": 4, "visits": 3, "unique_browsers": 2,
        "new_browsers": 2, "linked_browsers": 1, "form_submissions": 1, "site_visit_events": 1});
    let body = stats_until(&app, &path, |b| b["days"][0] == expected).await;
    assert_eq!(body["days"][0], expected, "{body}");
    assert_eq!(body["days"].as_array().unwrap().len(), 1);
    assert_eq!(body["total"]["unique_browsers"], 2);
    assert_eq!(body["total"]["page_views"], 4);
    assert_eq!(
        body["top_pages"],
        json!([{"name": "/", "count": 3}, {"name": "/pricing", "count": 1}])
    );
    assert_eq!(
        body["top_sources"],
        json!([{"name": "www.google.com", "count": 2}, {"name": "news", "count": 1}])
    );

    // A period with empty days lists them as zeros; by default the last 30 days.
    let (status, body) = app.get(&format!("/api/v4/sites/{}/stats", s.site_id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let days = body["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["date"], today.as_str());
    assert_eq!(days[0]["page_views"], 0);
    assert_eq!(body["total"]["visits"], 3);

    // Bad periods and unknown sites are refused, naming the field.
    for (query, field) in [
        ("from=2026-13-01", "from"),
        ("to=tomorrow", "to"),
        ("from=2020-01-01&to=2021-12-31", "from"),
        ("from=2026-12-02&to=2026-12-01", "from"),
        ("interval=week", "interval"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v4/sites/{}/stats?{query}", s.site_id))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body.to_string().contains(field), "{query}: {body}");
    }
    let (status, _) = app.get("/api/v4/sites/999999/stats").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_stats_on_redis() {
    a_days_figures_count_what_browsers_did(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_stats_on_the_embedded_store() {
    a_days_figures_count_what_browsers_did(Backend::Memory).await;
}

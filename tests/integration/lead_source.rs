//! Where a lead came from: the campaign parameters of each visit's landing page, the
//! lead's first and last touch, the Unsorted entry's `utm`, the webhook's
//! `meta.visit.source` and the source macros — on Redis and on the embedded store.

use std::time::Duration;

use footfall::domain::stats::{date_of, day_of};
use footfall::domain::time::now_ms;
use reqwest::StatusCode;
use serde_json::json;

use crate::common;
use crate::common::{Backend, Receiver, TestApp, setup, submit_form, test_settings};

async fn first_and_last_touch_reach_the_entry_the_lead_the_webhook_and_the_macros(
    backend: Backend,
) {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = 1;
    let idle = Duration::from_millis(1100);
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let message = "{{lead.utm_source}}/{{lead.utm_campaign}} {{visit.url}} #{{visit.number}} {{visit.utm_source}}";
    let (status, body) = app
        .patch(
            &format!("/api/v4/actions/{}", s.action_id),
            json!({"settings": {"message": message}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Visit 1 from a newsletter, visit 2 from an ad click, where the form is sent.
    let (_, vid) = app
        .beacon(
            &s.site_key,
            None,
            "https://shop.example/?utm_source=news&utm_campaign=dec&session=secret",
        )
        .await;
    let vid = vid.unwrap();
    tokio::time::sleep(idle).await;
    app.beacon(
        &s.site_key,
        Some(&vid),
        "https://shop.example/landing?utm_source=ads&gclid=abc",
    )
    .await;
    app.beacon(
        &s.site_key,
        Some(&vid),
        "https://shop.example/contact?utm_source=inner",
    )
    .await;
    let (lead, uid, vid) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;

    let (_, entry) = app.get(&format!("/api/v4/leads/unsorted/{uid}")).await;
    assert_eq!(
        entry["metadata"]["utm"],
        json!({"utm_source": "ads", "gclid": "abc"}),
        "{entry}"
    );
    assert!(entry["metadata"]["referer"].is_string(), "{entry}");

    let (status, body) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Visit 3 from a mailing fires the action.
    tokio::time::sleep(idle).await;
    app.beacon(
        &s.site_key,
        Some(&vid),
        "https://shop.example/?utm_source=mail",
    )
    .await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    let hook = received[0].json();
    let source = &hook["meta"]["visit"]["source"];
    assert_eq!(source["utm_source"], "mail", "{hook}");
    assert_eq!(source["url"], "https://shop.example/?utm_source=mail");
    assert_eq!(
        hook["action"]["settings"]["widget"]["settings"]["message"],
        "news/dec https://shop.example/?utm_source=mail #3 mail"
    );

    let (status, body) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = &body["source"]["first_touch"];
    let last = &body["source"]["last_touch"];
    assert_eq!(first["utm_source"], "news", "{body}");
    assert_eq!(first["utm_campaign"], "dec");
    assert!(first.get("session").is_none(), "{first}");
    assert_eq!(first["referrer"], "https://www.google.com/");
    assert_eq!(last["utm_source"], "ads", "{body}");
    assert_eq!(last["gclid"], "abc");
    assert_eq!(
        last["url"],
        "https://shop.example/landing?utm_source=ads&gclid=abc"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_source_on_redis() {
    first_and_last_touch_reach_the_entry_the_lead_the_webhook_and_the_macros(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_source_on_the_embedded_store() {
    first_and_last_touch_reach_the_entry_the_lead_the_webhook_and_the_macros(Backend::Memory).await;
}

/// A lead a site's backend sends with the page's visitor id gets the campaign of that
/// browser's visit too.
async fn an_api_submission_with_the_visitor_uid_keeps_the_visits_campaign(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app
        .beacon(
            &s.site_key,
            None,
            "https://shop.example/?utm_source=ads&utm_term=shoes",
        )
        .await;
    let vid = vid.unwrap();
    let (status, body) = app
        .post(
            "/api/v4/leads/unsorted/forms",
            json!([{"source_uid": "backend", "source_name": "Backend", "pipeline_id": s.pipeline.id,
                    "metadata": {"form_id": "backend", "form_name": "Backend", "form_page": "https://shop.example/",
                                 "ip": "203.0.113.7", "referer": "", "visitor_uid": vid},
                    "_embedded": {"contacts": [{"name": "Oleg"}]}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let uid = body["_embedded"]["unsorted"][0]["uid"].as_str().unwrap();
    let (_, entry) = app.get(&format!("/api/v4/leads/unsorted/{uid}")).await;
    assert_eq!(
        entry["metadata"]["utm"],
        json!({"utm_source": "ads", "utm_term": "shoes"}),
        "{entry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_submission_source_on_redis() {
    an_api_submission_with_the_visitor_uid_keeps_the_visits_campaign(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_submission_source_on_the_embedded_store() {
    an_api_submission_with_the_visitor_uid_keeps_the_visits_campaign(Backend::Memory).await;
}

/// A visit that starts from a page of the site itself (a tab left open past the visit
/// gap) came from nowhere else: the webhook, the lead's timeline and the site's sources
/// show the same visit, as its first page view was stored — no internal referrer, the
/// title cleaned and cut.
async fn a_visit_from_the_sites_own_page_is_direct_everywhere(backend: Backend) {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = 1;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, vid) = common::linked_lead(&app, &s, "Vera").await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let title = format!("Back\u{7}{}", "x".repeat(400));
    let (status, _) = app
        .beacon_from(
            &s.site_key,
            Some(&vid),
            "https://shop.example/cart",
            "https://shop.example/old-tab",
            &title,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let hook = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    let visit = &hook["meta"]["visit"];
    let cleaned: String = format!("Back {}", "x".repeat(400))
        .chars()
        .take(300)
        .collect();
    assert_eq!(visit["referrer"], "", "{hook}");
    assert_eq!(visit["title"], cleaned.as_str());
    assert_eq!(visit["source"]["referrer"], "");

    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    let stored = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "visit" && i["url"] == "https://shop.example/cart")
        .unwrap_or_else(|| panic!("no visit of the cart in {timeline}"))
        .clone();
    for field in ["referrer", "title"] {
        assert_eq!(stored[field], visit[field], "{field}: {stored} vs {visit}");
    }
    assert_eq!(stored["number"], visit["number"]);

    // The site's one visit of the day counted, from no source.
    let today = date_of(day_of(now_ms()));
    let path = format!("/api/v4/sites/{}/stats?from={today}&to={today}", s.site_id);
    let stats = common::stats_until(&app, &path, |b| b["days"][0]["visits"] == 1).await;
    assert_eq!(stats["days"][0]["visits"], 1, "{stats}");
    assert_eq!(
        stats["top_sources"],
        json!([{"name": "(direct)", "count": 1}]),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_from_the_sites_own_page_is_direct_on_redis() {
    a_visit_from_the_sites_own_page_is_direct_everywhere(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_from_the_sites_own_page_is_direct_on_the_embedded_store() {
    a_visit_from_the_sites_own_page_is_direct_everywhere(Backend::Memory).await;
}

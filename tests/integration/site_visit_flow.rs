//! The seed's five steps, end to end, through HTTP only: anonymous page views, a form
//! submission, accepting the lead into the stage with a site-visit action, and the visits
//! that follow — on real Redis and on the embedded store, with a real webhook receiver.

use crate::common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::redis_servers::RedisServer;
use crate::common::{Backend, Receiver, TestApp, setup, signature_verifies, test_settings};

async fn spawn(backend: Backend) -> TestApp {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = common::VISIT_GAP_SECS;
    TestApp::spawn_with(settings).await
}

async fn five_steps_fire_one_signed_site_visit_webhook_per_visit(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    // Steps 1–3: site, form, handler, and a site-visit action on "First contact".
    let s = setup(&app, &receiver, 0).await;

    // Anonymous page views: the first mints a visitor id, the next carries it.
    let (status, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    assert_eq!(status, StatusCode::OK);
    let vid = vid.expect("a new visitor gets an id");
    let (status, minted) = app
        .beacon(&s.site_key, Some(&vid), "https://shop.example/pricing")
        .await;
    assert_eq!((status, minted), (StatusCode::NO_CONTENT, None));

    // Step 4: the form links the browser to a new lead in Unsorted and sets the cookie.
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .json(&json!({"vid": vid, "page": "https://shop.example/contact",
                      "fields": {"name": "Anna", "phone": "+7 900 123-45-67", "email": "anna@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("Set-Cookie on submission")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with(&format!("ff_vid={vid}")), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure"),
        "{cookie}"
    );
    let submitted: Value = response.json().await.unwrap();
    let lead_id = submitted["lead_id"].as_u64().unwrap();
    let uid = submitted["uid"].as_str().unwrap().to_owned();
    assert_eq!(submitted["vid"], vid.as_str());

    let (_, unsorted) = app.get("/api/v4/leads/unsorted").await;
    let entry = &unsorted["_embedded"]["unsorted"][0];
    assert_eq!(entry["uid"], uid.as_str());
    assert_eq!(entry["category"], "forms");
    assert_eq!(entry["_embedded"]["leads"][0]["id"], lead_id);
    assert_eq!(
        entry["metadata"]["form_page"],
        "https://shop.example/contact"
    );

    // A lead still in Unsorted (another stage than the action's) fires nothing.
    common::wait_out_the_gap().await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    assert!(
        app.events_of(lead_id).await.is_empty(),
        "a lead outside the action's stage fired"
    );

    // Step 5: accept into the stage with the action.
    let (status, accepted) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status_id"], s.pipeline.first_contact);

    // A new visit fires exactly one webhook.
    common::wait_out_the_gap().await;
    let (status, _) = app
        .beacon(
            &s.site_key,
            Some(&vid),
            "https://shop.example/pricing?plan=pro",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    let hook = &received[0];
    assert!(
        signature_verifies(&s.handler_secret, hook),
        "signature does not verify"
    );
    assert_eq!(hook.header("content-type"), "application/json");
    let body = hook.json();
    let event_id = body["meta"]["event_id"].as_str().unwrap().to_owned();
    assert_eq!(hook.header("webhook-id"), event_id);
    let time = body["event"]["time"].as_i64().unwrap();
    assert!(
        (time - chrono_now()).abs() <= 5,
        "event.time {time} is not now"
    );
    let started_at = body["meta"]["visit"]["started_at"].as_i64().unwrap();
    assert_eq!(
        body,
        json!({
            "event": {"type": 18, "type_code": "site_visit",
                      "data": {"id": lead_id, "element_type": 2, "status_id": s.pipeline.first_contact,
                               "pipeline_id": s.pipeline.id},
                      "time": time},
            "action": {"settings": {"widget": {"settings": {
                "message": format!("Hi Anna, lead {lead_id} {{{{lead.unknown}}}}")}}}},
            "subdomain": common::SUBDOMAIN,
            "account_id": common::ACCOUNT,
            "meta": {"event_id": event_id,
                     "visit": {"url": "https://shop.example/pricing?plan=pro", "referrer": "https://www.google.com/",
                               "title": "Page", "number": 3, "started_at": started_at,
                               "source": {"url": "https://shop.example/pricing?plan=pro",
                                          "referrer": "https://www.google.com/",
                                          "started_at": started_at}},
                     "delayed_by": 0}
        })
    );

    // A second page view in the same visit fires nothing.
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/checkout")
        .await;
    assert_eq!(app.events_of(lead_id).await.len(), 1);

    // A page view after the idle gap is a new visit: it fires again.
    common::wait_out_the_gap().await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    assert_eq!(app.events_of(lead_id).await.len(), 2);
    assert_eq!(receiver.wait_for(2, Duration::from_secs(5)).await.len(), 2);

    // A page on another host of the site (not the action's site URL) fires nothing.
    common::wait_out_the_gap().await;
    app.beacon(&s.site_key, Some(&vid), "https://blog.example/post")
        .await;
    assert_eq!(app.events_of(lead_id).await.len(), 2);

    // A visitor not linked to any lead fires nothing.
    let (_, stranger) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    assert!(stranger.is_some());
    let (_, all_events) = app.get("/api/v4/webhook_events").await;
    assert_eq!(
        all_events["_embedded"]["events"].as_array().unwrap().len(),
        2
    );

    // Nothing else arrived at the receiver.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 2);

    // The lead's timeline shows the anonymous page views made before the form, in order.
    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead_id}/timeline")).await;
    let page_views: Vec<&str> = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "page_view")
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        &page_views[..2],
        ["https://shop.example/", "https://shop.example/pricing"]
    );
}

fn chrono_now() -> i64 {
    footfall::domain::time::to_secs(footfall::domain::time::now_ms())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_steps_on_redis() {
    five_steps_fire_one_signed_site_visit_webhook_per_visit(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_steps_on_the_embedded_store() {
    five_steps_fire_one_signed_site_visit_webhook_per_visit(Backend::Memory).await;
}

/// A plain HTML form (no JavaScript) is answered with a redirect to the success URL and
/// the visitor cookie; the hidden `ff_vid` links the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_html_form_redirects_to_the_success_url() {
    let app = spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .header("referer", "https://shop.example/contact")
        .form(&[
            ("name", "Boris"),
            ("email", "boris@example.com"),
            ("ff_vid", vid.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example/thanks"
    );
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with(&format!("ff_vid={vid}"))
    );
    let (_, unsorted) = app.get("/api/v4/leads/unsorted").await;
    let entry = &unsorted["_embedded"]["unsorted"][0];
    assert_eq!(
        entry["metadata"]["form_page"],
        "https://shop.example/contact"
    );
    assert_eq!(entry["metadata"]["visitor_uid"], &vid[44..]);
    // The same form without a name, posted by a browser (which reads HTML): a page
    // naming the field, nothing created.
    let response = app
        .post_form_as_browser(&s.form_id, &[("email", "x@example.com")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<b>name</b> is required")
    );
    let (_, unsorted) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(
        unsorted["_embedded"]["unsorted"].as_array().unwrap().len(),
        1
    );
}

/// The scripts go to Redis by hash; a server that has forgotten them gets them again, and
/// each step runs once: the visits are counted once, one webhook per visit, one timeline
/// entry per webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_holds_when_redis_has_forgotten_its_scripts() {
    let server = RedisServer::start(false);
    let mut settings = test_settings(Backend::Redis);
    settings.store.redis_url = server.url();
    settings.tracking.visit_idle_seconds = common::VISIT_GAP_SECS;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;

    let (status, vid) = server
        .with_scripts_forgotten(app.beacon(&s.site_key, None, "https://shop.example/"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let vid = vid.unwrap();
    let (lead_id, uid, _) = server
        .with_scripts_forgotten(common::submit_form(&app, &s.form_id, Some(&vid), "Anna"))
        .await;
    let (status, body) = server
        .with_scripts_forgotten(app.post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for visit in [2, 3] {
        common::wait_out_the_gap().await;
        let (status, _) = server
            .with_scripts_forgotten(app.beacon(
                &s.site_key,
                Some(&vid),
                "https://shop.example/pricing",
            ))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let received = receiver.wait_for(visit - 1, Duration::from_secs(5)).await;
        assert_eq!(received.len(), visit - 1);
        assert_eq!(received[visit - 2].json()["meta"]["visit"]["number"], visit);
    }
    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead_id}/timeline")).await;
    let fired = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "event_fired")
        .count();
    assert_eq!(fired, 2, "{timeline}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 2);
}

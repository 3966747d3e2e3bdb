//! Tracking, through HTTP: visits numbered per browser, anonymous history merged into the
//! lead, several browsers per lead, a browser moving to a newer lead, history caps and
//! retention, bots, Do-Not-Track / Global Privacy Control, and the server-set cookie.

use crate::common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Receiver, TestApp, items, setup, submit_form, test_settings};
use footfall::config::Settings;

/// Runs a test body once on Redis and once on the embedded store.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_redis() {
                super::$name(super::Backend::Redis).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_the_embedded_store() {
                super::$name(super::Backend::Memory).await;
            }
        }
    )*};
}

on_both_stores!(
    visits_are_numbered_per_browser,
    anonymous_page_views_join_the_lead_in_order,
    a_known_contact_s_email_from_another_browser_leaves_the_known_lead_untouched,
    a_browser_moving_to_a_newer_lead_is_recorded_on_both_timelines,
    page_view_history_is_capped_per_browser,
);

async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = 1;
    tweak(&mut settings);
    TestApp::spawn_with(settings).await
}

async fn idle() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

async fn timeline(app: &TestApp, lead: u64) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    items(&body, "timeline").clone()
}

fn of_type<'a>(timeline: &'a [Value], kind: &str) -> Vec<&'a Value> {
    timeline.iter().filter(|i| i["type"] == kind).collect()
}

async fn visits_are_numbered_per_browser(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app
        .beacon(&s.site_key, None, "https://shop.example/a")
        .await;
    let vid = vid.unwrap();
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/b")
        .await;
    idle().await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/c")
        .await;
    // Another browser counts its own visits.
    let (_, other) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    let (other_lead, _, _) = submit_form(&app, &s.form_id, other.as_deref(), "Boris").await;

    let (_, visits) = app.get(&format!("/api/v4/leads/{lead}/visits")).await;
    let numbers: Vec<(u64, &str)> = items(&visits, "visits")
        .iter()
        .map(|v| (v["number"].as_u64().unwrap(), v["url"].as_str().unwrap()))
        .collect();
    assert_eq!(
        numbers,
        [(1, "https://shop.example/a"), (2, "https://shop.example/c")]
    );
    let (_, visits) = app.get(&format!("/api/v4/leads/{other_lead}/visits")).await;
    assert_eq!(items(&visits, "visits")[0]["number"], 1);
    // Page views on the timeline carry the number of their visit.
    let tl = timeline(&app, lead).await;
    let pv: Vec<(u64, &str)> = of_type(&tl, "page_view")
        .iter()
        .map(|p| (p["visit"].as_u64().unwrap(), p["url"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pv,
        [
            (1, "https://shop.example/a"),
            (1, "https://shop.example/b"),
            (2, "https://shop.example/c")
        ]
    );
}

async fn anonymous_page_views_join_the_lead_in_order(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    for path in ["/pricing", "/features", "/contact"] {
        app.beacon(
            &s.site_key,
            Some(&vid),
            &format!("https://shop.example{path}"),
        )
        .await;
    }
    // The timeline's clock has millisecond resolution: on the embedded store the steps
    // can fall into one millisecond, and then nothing says which came first.
    let tick = || tokio::time::sleep(std::time::Duration::from_millis(2));
    tick().await;
    let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    tick().await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/thanks")
        .await;

    let tl = timeline(&app, lead).await;
    let kinds: Vec<&str> = tl.iter().map(|i| i["type"].as_str().unwrap()).collect();
    let urls: Vec<&str> = of_type(&tl, "page_view")
        .iter()
        .map(|p| p["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://shop.example/",
            "https://shop.example/pricing",
            "https://shop.example/features",
            "https://shop.example/contact",
            "https://shop.example/thanks"
        ]
    );
    // The anonymous page views come before the lead was created, the later one after.
    let created = kinds.iter().position(|k| *k == "lead_created").unwrap();
    let page_views: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "page_view")
        .map(|(i, _)| i)
        .collect();
    assert!(
        page_views[..4].iter().all(|i| *i < created) && page_views[4] > created,
        "{kinds:?}"
    );
    let times: Vec<i64> = tl.iter().map(|i| i["at"].as_i64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timeline out of order: {times:?}"
    );
}

/// Someone who knows a contact's email submits the form with it from their own browser.
/// That used to link their browser to the contact's open lead (their page views on its
/// timeline, their visits firing its webhooks); now it is a lead of its own in Unsorted,
/// marked as a possible duplicate, answered exactly as any new contact's submission.
async fn a_known_contact_s_email_from_another_browser_leaves_the_known_lead_untouched(
    backend: Backend,
) {
    let app = spawn(backend, |_| {}).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, uid, laptop) = submit_form(&app, &s.form_id, None, "Anna").await;
    app.post(
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        json!({"status_id": s.pipeline.first_contact}),
    )
    .await;
    let before = timeline(&app, lead).await;

    let submit = |vid: String, name: &str, email: String| {
        app.client
            .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
            .json(&json!({"vid": vid, "page": "https://shop.example/contact",
                          "fields": {"name": name, "email": email}}))
            .send()
    };
    let (_, intruder) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let intruder = intruder.unwrap();
    let known = submit(intruder.clone(), "Anna", common::email_of("Anna"))
        .await
        .unwrap();
    let known_status = known.status();
    let known: Value = known.json().await.unwrap();
    // A stranger's first submission, for comparison.
    let (_, stranger) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let fresh = submit(stranger.unwrap(), "Zoe", common::email_of("Zoe"))
        .await
        .unwrap();
    let fresh_status = fresh.status();
    let fresh: Value = fresh.json().await.unwrap();
    // The same status and the same members, each of the same kind.
    assert_eq!(known_status, fresh_status);
    let shape = |v: &Value| {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), std::mem::discriminant(v)))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&known), shape(&fresh), "{known} vs {fresh}");
    assert_ne!(known["lead_id"], lead, "{known}");

    // Its own Unsorted entry, marked as the known lead's possible duplicate.
    let (_, unsorted) = app.get("/api/v4/leads/unsorted").await;
    let entry = items(&unsorted, "unsorted")
        .iter()
        .find(|u| u["uid"] == known["uid"])
        .cloned()
        .unwrap_or_else(|| panic!("no entry {} in {unsorted}", known["uid"]));
    assert_eq!(entry["metadata"]["duplicate_of_lead_id"], lead, "{entry}");

    // The intruder's new visit changes nothing on the known lead; the owner's fires.
    idle().await;
    app.beacon(&s.site_key, Some(&intruder), "https://shop.example/secret")
        .await;
    let (_, l) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(
        l["_embedded"]["visitors"].as_array().unwrap().len(),
        1,
        "{l}"
    );
    assert_eq!(timeline(&app, lead).await, before);
    assert!(app.events_of(lead).await.is_empty());
    app.beacon(&s.site_key, Some(&laptop), "https://shop.example/")
        .await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    assert_eq!(app.events_of(lead).await.len(), 1);
}

async fn a_browser_moving_to_a_newer_lead_is_recorded_on_both_timelines(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app
        .beacon(&s.site_key, None, "https://shop.example/before")
        .await;
    let vid = vid.unwrap();
    let (first, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/as-anna")
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Someone else fills the form in the same browser: the latest submission wins.
    let (second, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Boris").await;
    assert_ne!(first, second);
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/as-boris")
        .await;

    let old = timeline(&app, first).await;
    let moved = of_type(&old, "visitor_moved");
    assert_eq!(moved.len(), 1, "{old:?}");
    assert_eq!(moved[0]["to_lead"], second);
    let new = timeline(&app, second).await;
    let linked = of_type(&new, "visitor_linked");
    assert_eq!(linked[0]["previous_lead"], first);
    // Each lead sees the page views of its own time.
    let urls = |tl: &[Value]| -> Vec<String> {
        of_type(tl, "page_view")
            .iter()
            .map(|p| p["url"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        urls(&old),
        [
            "https://shop.example/before",
            "https://shop.example/as-anna"
        ]
    );
    assert_eq!(urls(&new), ["https://shop.example/as-boris"]);
    let (_, lead) = app.get(&format!("/api/v4/leads/{first}")).await;
    assert!(lead["_embedded"]["visitors"][0]["until"].is_i64(), "{lead}");

    // Linking the browser again to the lead it belongs to changes nothing: Boris's lead
    // still sees only its own time, not Anna's page views.
    let (_, before) = app.get(&format!("/api/v4/leads/{second}")).await;
    let (status, body) = app
        .post(
            &format!("/api/v4/leads/{second}/visitors"),
            json!([{"visitor_uid": vid}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, after) = app.get(&format!("/api/v4/leads/{second}")).await;
    assert_eq!(
        after["_embedded"]["visitors"],
        before["_embedded"]["visitors"]
    );
    assert_eq!(
        urls(&timeline(&app, second).await),
        ["https://shop.example/as-boris"]
    );
}

async fn page_view_history_is_capped_per_browser(backend: Backend) {
    let app = spawn(backend, |s| s.tracking.max_page_views_per_visitor = 5).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app
        .beacon(&s.site_key, None, "https://shop.example/0")
        .await;
    let vid = vid.unwrap();
    for i in 1..12 {
        app.beacon(
            &s.site_key,
            Some(&vid),
            &format!("https://shop.example/{i}"),
        )
        .await;
    }
    let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    // Trimming runs off the request path: polled until it is done (the deadline only
    // stops a trim that never comes).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let tl = loop {
        let tl = timeline(&app, lead).await;
        if of_type(&tl, "page_view").len() <= 6 || std::time::Instant::now() > deadline {
            break tl;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let urls: Vec<&str> = of_type(&tl, "page_view")
        .iter()
        .map(|p| p["url"].as_str().unwrap())
        .collect();
    assert!(urls.len() <= 6, "{} page views kept: {urls:?}", urls.len());
    assert_eq!(
        urls.last(),
        Some(&"https://shop.example/11"),
        "the newest are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browsers_history_expires_after_the_retention_period_its_last_sighting_after_the_visit() {
    let app = spawn(Backend::Redis, |s| {
        s.tracking.retention_days = 2;
        s.tracking.visit_idle_seconds = common::VISIT_GAP_SECS;
    })
    .await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let visitor = &vid.unwrap()[44..];
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = &app.settings.store.key_prefix;
    let history = format!("{prefix}:{{{visitor}}}:p{}", common::ACCOUNT);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&history)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        (2 * 86_400 - 60..=2 * 86_400).contains(&ttl),
        "the history expires in {ttl} s"
    );
    // The last sighting on a site matters only for the visit gap (and a margin), then
    // goes.
    let seen = format!("{prefix}:{{{visitor}}}:s{}", s.site_id);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&seen)
        .query_async(&mut con)
        .await
        .unwrap();
    let lives = common::VISIT_GAP_SECS as i64 * 1000 + footfall::store::SIGHTING_MARGIN_MS;
    assert!(
        (1..=lives).contains(&pttl),
        "the last sighting expires in {pttl} ms"
    );
}

/// A worker that refreshed a browser's sighting moments ago records its next page view
/// without touching the sighting in Redis, and writes it back once it forgets the browser.
/// With a 30 s idle gap (fresh for 1 s, a generation of 7.5 s): page views a, b half a
/// second later (skipped), and c over 30 s after a, aimed 0.4 s inside 30 s after b: one
/// visit, and the lead's visits say so. What each step must show is decided by the times
/// footfall recorded (the timeline's): a slow machine that sends b or c late changes which
/// outcome is right, never whether the test passes; on time, a skipped page view that is
/// lost fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_view_that_skipped_the_sighting_still_keeps_the_visit_running() {
    const GAP_MS: i64 = 30_000;
    const FRESH_MS: i64 = GAP_MS / 30;
    let app = spawn(Backend::Redis, |s| s.tracking.visit_idle_seconds = 30).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let stored = async |con: &mut redis::aio::MultiplexedConnection, vid: &str| -> i64 {
        let seen = format!(
            "{}:{{{}}}:s{}",
            app.settings.store.key_prefix,
            &vid[44..],
            s.site_id
        );
        redis::cmd("GET").arg(seen).query_async(con).await.unwrap()
    };

    let (_, vid) = app
        .beacon(&s.site_key, None, "https://shop.example/a")
        .await;
    let start = tokio::time::Instant::now();
    let vid = vid.unwrap();
    let first = stored(&mut con, &vid).await;
    tokio::time::sleep_until(start + Duration::from_millis(500)).await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/b")
        .await;
    let skipped = tokio::time::Instant::now();
    let after_b = stored(&mut con, &vid).await;
    // The worker forgets the browser after two generations and writes its sighting back,
    // well before the sighting Redis holds could expire (30 s after a). Polled; the
    // deadline only stops a write-back that never comes.
    let mut written = after_b;
    while written == first && start.elapsed() < Duration::from_millis(29_000) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        written = stored(&mut con, &vid).await;
    }
    tokio::time::sleep_until(skipped + Duration::from_millis(29_600)).await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/c")
        .await;

    let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    let tl = timeline(&app, lead).await;
    let at = |url: &str| {
        of_type(&tl, "page_view")
            .iter()
            .find(|p| p["url"] == url)
            .and_then(|p| p["at"].as_i64())
            .unwrap_or_else(|| panic!("no page view of {url}: {tl:?}"))
    };
    let (a, b, c) = (
        at("https://shop.example/a"),
        at("https://shop.example/b"),
        at("https://shop.example/c"),
    );
    println!(
        "page views at +0, +{} and +{} ms; the sighting {first} → {after_b} → {written}",
        b - a,
        c - a
    );
    assert_eq!(first, a, "the first page view set the sighting");
    assert!(c - a > GAP_MS, "c comes over the gap after a: {a}, {c}");
    if b - a < FRESH_MS {
        assert_eq!(after_b, first, "the second page view skipped the sighting");
        assert_eq!(written, b, "the skipped page view is written back");
    } else {
        // Sent too late to be skipped: it refreshed the sighting itself.
        println!("b came too late to skip the sighting: the write-back went untested");
        assert_eq!(
            after_b, b,
            "a page view past the fresh time refreshes the sighting"
        );
    }
    let (_, visits) = app.get(&format!("/api/v4/leads/{lead}/visits")).await;
    let numbers: Vec<u64> = items(&visits, "visits")
        .iter()
        .map(|v| v["number"].as_u64().unwrap())
        .collect();
    if c - b <= GAP_MS {
        // Only b kept the visit running: without it, c is over the gap after a.
        assert_eq!(numbers, [1], "{visits}");
    } else {
        println!("c came over the gap after b too: the skipped page view's part went untested");
        assert_eq!(numbers.len(), 2, "{visits}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_are_dropped_by_user_agent() {
    let app = spawn(Backend::Redis, |_| {}).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    for ua in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/130.0 Safari/537.36",
        "",
    ] {
        let response = app
            .client
            .post(app.url("/v1/collect"))
            .header("user-agent", ua)
            .body(
                json!({"site": s.site_key, "vid": vid, "url": "https://shop.example/bot"})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{ua}");
    }
    let tl = timeline(&app, lead).await;
    assert!(
        of_type(&tl, "page_view")
            .iter()
            .all(|p| p["url"] != "https://shop.example/bot")
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("footfall_beacons_total{outcome=\"bot\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_track_and_gpc_are_honoured_when_the_site_opts_in() {
    let app = spawn(Backend::Redis, |_| {}).await;
    let private = app
        .create(
            "sites",
            json!({"name": "Private", "url": "https://private.example", "respect_dnt": true}),
        )
        .await;
    let public = app
        .create(
            "sites",
            json!({"name": "Public", "url": "https://public.example"}),
        )
        .await;
    let send = |key: Value, url: &'static str, header: (&'static str, &'static str)| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/collect"))
                .header(header.0, header.1)
                .body(json!({"site": key, "vid": null, "url": url}).to_string())
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Opted in: nothing recorded, no id minted.
    assert_eq!(
        send(
            private["key"].clone(),
            "https://private.example/",
            ("dnt", "1")
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(
            private["key"].clone(),
            "https://private.example/",
            ("sec-gpc", "1")
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(
            private["key"].clone(),
            "https://private.example/",
            ("dnt", "0")
        )
        .await,
        StatusCode::OK
    );
    // Not opted in: tracked as usual.
    assert_eq!(
        send(
            public["key"].clone(),
            "https://public.example/",
            ("dnt", "1")
        )
        .await,
        StatusCode::OK
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("footfall_beacons_total{outcome=\"not_tracked\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_site_deployment_gets_a_first_party_server_cookie() {
    let app = spawn(Backend::Redis, |s| {
        s.cookies.domain = "shop.example".into();
        s.cookies.same_site = "None".into();
    })
    .await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let response = app
        .client
        .post(app.url("/v1/collect"))
        .body(json!({"site": s.site_key, "url": "https://shop.example/"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let vid: Value = response.json().await.unwrap();
    let vid = vid["vid"].as_str().unwrap();
    for part in [
        format!("ff_vid={vid}"),
        "Domain=shop.example".into(),
        "SameSite=None".into(),
        "Secure".into(),
        "HttpOnly".into(),
        format!("Max-Age={}", 395 * 86_400),
    ] {
        assert!(cookie.contains(&part), "{part} missing from {cookie}");
    }
    // The cookie alone (no id in the body, as when localStorage was cleared) is recognised.
    let response = app
        .client
        .post(app.url("/v1/collect"))
        .header("cookie", format!("ff_vid={vid}"))
        .body(json!({"site": s.site_key, "url": "https://shop.example/again"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers().get("set-cookie").is_none());
    // A browser whose tracker knows the id but lacks the server cookie gets it.
    let response = app
        .client
        .post(app.url("/v1/collect"))
        .body(json!({"site": s.site_key, "vid": vid, "url": "https://shop.example/x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with(&format!("ff_vid={vid}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_beacon_is_answered_with_the_same_cors_headers_as_a_recorded_one() {
    let app = spawn(Backend::Redis, |_| {}).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let cors = async |ua: &str, origin: &str| {
        let response = app
            .client
            .post(app.url("/v1/collect"))
            .header("user-agent", ua)
            .header("origin", origin)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(
                json!({"site": s.site_key, "vid": null, "url": "https://shop.example/"})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers: Vec<(String, String)> = [
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "vary",
        ]
        .iter()
        .map(|h| {
            let value = response
                .headers()
                .get(*h)
                .map(|v| v.to_str().unwrap().to_owned());
            (h.to_string(), value.unwrap_or_default())
        })
        .collect();
        (status, headers)
    };
    let person = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/130.0 Safari/537.36";
    let (status, recorded) = cors(person, "https://shop.example").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a new browser is recorded and gets an id"
    );
    assert_eq!(recorded[0].1, "https://shop.example", "{recorded:?}");
    let (status, dropped) = cors(headless, "https://shop.example").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        dropped, recorded,
        "the bot's answer carries the same CORS headers"
    );
    // A foreign origin is not allowed for a bot either.
    let (_, foreign) = cors(headless, "https://evil.example").await;
    assert_eq!(foreign[0].1, "", "{foreign:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_with_its_own_visit_gap_starts_visits_by_it() {
    // The configuration's gap is half an hour; the quick site's is one second.
    let app = spawn(Backend::Redis, |s| s.tracking.visit_idle_seconds = 1800).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (status, site) = app.get(&format!("/api/v4/sites/{}", s.site_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        site["visit_idle_seconds"], 1800,
        "the default is the configuration's"
    );
    for bad in [json!(0), json!(86_401), json!("soon")] {
        let (status, body) = app
            .patch(
                &format!("/api/v4/sites/{}", s.site_id),
                json!({"visit_idle_seconds": bad}),
            )
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
    }
    let quick = app
        .create(
            "sites",
            json!({"name": "Quick", "url": "https://quick.example", "visit_idle_seconds": 1}),
        )
        .await;
    assert_eq!(quick["visit_idle_seconds"], 1);
    let quick_key = quick["key"].as_str().unwrap();

    let (_, vid) = app
        .beacon(&s.site_key, None, "https://shop.example/a")
        .await;
    let vid = vid.unwrap();
    app.beacon(quick_key, Some(&vid), "https://quick.example/a")
        .await;
    let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    idle().await;
    idle().await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/b")
        .await;
    app.beacon(quick_key, Some(&vid), "https://quick.example/b")
        .await;

    let (_, visits) = app.get(&format!("/api/v4/leads/{lead}/visits")).await;
    let urls: Vec<&str> = items(&visits, "visits")
        .iter()
        .map(|v| v["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://shop.example/a",
            "https://quick.example/a",
            "https://quick.example/b"
        ],
        "two seconds apart: a new visit on the quick site only"
    );
}

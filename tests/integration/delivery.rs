//! Delivery that loses nothing: delayed site-visit actions (fired on time, cancelled when
//! the lead leaves the stage), retries with a stable `webhook-id`, dead-lettering, replay,
//! the failing mark of a handler, and the SSRF guard — through HTTP, on real Redis, with
//! a real receiver.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::config_file::footfall_toml;
use crate::common::jobs::delivered_by;
use crate::common::process::FootfallProcess;
use crate::common::{
    Backend, KeysGuard, Receiver, Reply, TestApp, cookie_key, linked_lead, metric_in, redis_url,
    setup, test_settings, unique_prefix,
};
use footfall::config::Settings;

fn settings(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = test_settings(backend);
    tweak(&mut s);
    s
}

async fn event_of(app: &TestApp, lead_id: u64) -> Value {
    let events = app.events_of(lead_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (_, event) = app
        .get(&format!(
            "/api/v4/webhook_events/{}",
            events[0]["id"].as_str().unwrap()
        ))
        .await;
    event
}

/// Polls the event until its state is `state` (or 10 s pass).
async fn wait_for_state(app: &TestApp, lead_id: u64, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = event_of(app, lead_id).await;
        if event["state"] == state || Instant::now() > deadline {
            return event;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delayed_action_fires_after_its_delay_and_not_before(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 2).await;
    let (lead_id, vid) = linked_lead(&app, &s, "Anna").await;

    let started = Instant::now();
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    let event = event_of(&app, lead_id).await;
    // Scheduled while not due (a loaded machine may have taken the delay to ask).
    if started.elapsed() < Duration::from_secs(2) {
        assert_eq!(event["state"], "scheduled");
    } else {
        eprintln!("not checked: the event was read after its delay");
    }
    assert_eq!(event["delayed_by"], 2);

    let received = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 1);
    // Not before its delay (counted from before the visit was sent, so a slow machine
    // only makes the wait longer). How late it came is no test's business.
    let waited = received[0].at - started;
    println!("the delayed webhook came {waited:?} after the visit");
    assert!(
        waited >= Duration::from_millis(2000),
        "fired before its delay, after {waited:?}"
    );
    let body = received[0].json();
    assert_eq!(body["meta"]["delayed_by"], 2);
    assert_eq!(body["event"]["type_code"], "site_visit");
    assert_eq!(
        wait_for_state(&app, lead_id, "delivered").await["state"],
        "delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_action_fires_after_its_delay_on_redis() {
    delayed_action_fires_after_its_delay_and_not_before(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_action_fires_after_its_delay_on_the_embedded_store() {
    delayed_action_fires_after_its_delay_and_not_before(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_moved_out_before_the_delay_cancels_the_delayed_action() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    // Three seconds: the move comes well before, on a loaded machine too.
    let delay = Duration::from_secs(3);
    let s = setup(&app, &receiver, delay.as_secs()).await;
    let (lead_id, vid) = linked_lead(&app, &s, "Anna").await;
    let visited = tokio::time::Instant::now();
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    let (status, _) = app
        .patch(
            &format!("/api/v4/leads/{lead_id}"),
            json!({"status_id": s.pipeline.negotiation}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let event = wait_for_state(&app, lead_id, "cancelled").await;
    assert_eq!(event["state"], "cancelled", "{event}");
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .contains("left the action's stages"),
        "{event}"
    );
    assert!(event["attempts"].as_array().unwrap().is_empty());
    // Past the time it was due: it was never sent.
    tokio::time::sleep_until(visited + delay + Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 0);

    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead_id}/timeline")).await;
    let cancelled: Vec<&Value> = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "event_cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{timeline}");
    assert_eq!(cancelled[0]["event_id"], event["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_retries_with_the_same_webhook_id() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(500), Reply::Status(500)]);
    let s = setup(&app, &receiver, 0).await;
    let (lead_id, vid) = linked_lead(&app, &s, "Anna").await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;

    let received = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 3);
    let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0] && id.starts_with("evt_")),
        "{ids:?}"
    );
    assert!(
        received.iter().all(|r| r.body == received[0].body),
        "the body changed between retries"
    );
    // The schedule's first waits are 1 s each.
    for pair in received.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(950));
    }
    let event = wait_for_state(&app, lead_id, "delivered").await;
    let statuses: Vec<&Value> = event["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);
    assert_eq!(
        event["attempts"][0]["error"],
        "answered 500 Internal Server Error"
    );
    assert!(event["attempts"][2]["error"].is_null());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.count(), 3, "a delivered event was sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_receiver_ends_in_the_dead_letter_and_replay_delivers() {
    let app = TestApp::spawn_with(settings(Backend::Redis, |s| {
        s.delivery.timeout_ms = 400;
        s.delivery.retry_schedule_seconds = vec![1, 1];
        s.delivery.failing_after_seconds = 0;
    }))
    .await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::Slow(Duration::from_secs(2)); 3]);
    let s = setup(&app, &receiver, 0).await;
    let (lead_id, vid) = linked_lead(&app, &s, "Anna").await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;

    let event = wait_for_state(&app, lead_id, "dead").await;
    assert_eq!(event["state"], "dead", "{event}");
    let attempts = event["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|a| a["status"].is_null() && a["error"] == "no answer within 400 ms"),
        "{attempts:?}"
    );
    let (_, handlers) = app.get("/api/v4/handlers").await;
    let handler = &handlers["_embedded"]["handlers"][0];
    assert_eq!(handler["failing"], true, "{handler}");

    // The receiver is back (it answers 200 from now on): replay delivers the same event.
    let event_id = event["id"].as_str().unwrap();
    let (status, replayed) = app
        .post(
            &format!("/api/v4/webhook_events/{event_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    let delivered = wait_for_state(&app, lead_id, "delivered").await;
    assert_eq!(delivered["attempts"].as_array().unwrap().len(), 4);
    let received = receiver.received();
    assert_eq!(received.last().unwrap().header("webhook-id"), event_id);
    let (_, handlers) = app.get("/api/v4/handlers").await;
    assert_eq!(handlers["_embedded"]["handlers"][0]["failing"], false);

    // A delivered event is replayed on request too; a pending one is refused. (The
    // receiver fails the replayed attempt, so that the event is still pending, its next
    // attempt a second away, whether or not the scheduler has taken it yet.)
    receiver.script([Reply::Status(503)]);
    let (status, _) = app
        .post(
            &format!("/api/v4/webhook_events/{event_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = app
        .post(
            &format!("/api/v4/webhook_events/{event_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_handler_sends_all_its_dead_events() {
    let app = TestApp::spawn_with(settings(Backend::Redis, |s| {
        s.delivery.retry_schedule_seconds = vec![1];
    }))
    .await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(503); 4]);
    let s = setup(&app, &receiver, 0).await;
    let (lead_a, vid_a) = linked_lead(&app, &s, "Anna").await;
    let (lead_b, vid_b) = linked_lead(&app, &s, "Boris").await;
    app.beacon(&s.site_key, Some(&vid_a), "https://shop.example/")
        .await;
    app.beacon(&s.site_key, Some(&vid_b), "https://shop.example/")
        .await;
    assert_eq!(wait_for_state(&app, lead_a, "dead").await["state"], "dead");
    assert_eq!(wait_for_state(&app, lead_b, "dead").await["state"], "dead");

    let (_, handlers) = app.get("/api/v4/handlers").await;
    let handler_id = handlers["_embedded"]["handlers"][0]["id"].as_u64().unwrap();
    let (status, body) = app
        .post(&format!("/api/v4/handlers/{handler_id}/replay"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["_embedded"]["events"].as_array().unwrap().len(), 2);
    assert_eq!(
        wait_for_state(&app, lead_a, "delivered").await["state"],
        "delivered"
    );
    assert_eq!(
        wait_for_state(&app, lead_b, "delivered").await["state"],
        "delivered"
    );
    // Nothing is left to replay.
    let (_, body) = app
        .post(&format!("/api/v4/handlers/{handler_id}/replay"), json!({}))
        .await;
    assert_eq!(body["_embedded"]["events"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_410_gone_is_not_retried() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(410)]);
    let s = setup(&app, &receiver, 0).await;
    let (lead_id, vid) = linked_lead(&app, &s, "Anna").await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    let event = wait_for_state(&app, lead_id, "dead").await;
    assert_eq!(event["reason"], "the handler answered 410 Gone");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_on_private_addresses_are_refused_by_default() {
    let app = TestApp::spawn_with(settings(Backend::Memory, |s| {
        s.delivery.allow_private_targets = false
    }))
    .await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/hook",
        "http://localhost:9000/hook",
    ] {
        let (status, problem) = app
            .post(
                "/api/v4/handlers",
                json!([{"code": "h", "name": "H", "webhook_url": url}]),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {problem}");
        assert_eq!(
            problem["errors"][0]["field"], "[0].webhook_url",
            "{problem}"
        );
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not a public address"),
            "{problem}"
        );
    }
    let (status, _) = app.get("/api/v4/handlers").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "no handler was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_does_not_hold_back_another_handlers_webhooks() {
    // Eight delivery slots: one handler may hold two of them. The slow handler answers
    // after 60 s, far beyond the test: its first two webhooks hold their slots all along.
    let app = TestApp::spawn_with(settings(Backend::Redis, |s| {
        s.delivery.concurrency = 8;
        s.delivery.timeout_ms = 90_000;
        s.delivery.lease_seconds = 120;
    }))
    .await;
    let slow = Receiver::start().await;
    slow.script([Reply::Slow(Duration::from_secs(60)); 13]);
    let s = setup(&app, &slow, 0).await;
    // Twelve visits whose webhooks go to the slow handler: more than all the slots.
    for i in 0..12 {
        let (_, vid) = linked_lead(&app, &s, &format!("Slow {i}")).await;
        app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
            .await;
    }
    // The slow handler has its share of the slots in flight (else the fast one would get
    // a free slot whatever the shares, and the test would prove nothing).
    let held = slow.wait_for(2, Duration::from_secs(20)).await.len();
    assert_eq!(held, 2, "the slow handler holds its two slots");

    // Then a second handler on the same stage, and one visit.
    let fast = Receiver::start().await;
    app.create(
        "handlers",
        json!({"code": "fast", "name": "Fast", "webhook_url": fast.url()}),
    )
    .await;
    app.create("actions", json!({"pipeline_id": s.pipeline.id, "status_ids": [s.pipeline.first_contact],
                                  "event": "site_visit", "handler": "fast", "site_url": "https://shop.example"}))
        .await;
    let (_, vid) = linked_lead(&app, &s, "Fast").await;
    let visited = Instant::now();
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    // Waited for well short of the slow handler's answers: the fast webhook arrives while
    // both slow ones are still unanswered, or not at all if it queued behind them.
    let received = fast.wait_for(1, Duration::from_secs(30)).await;
    println!(
        "the fast handler's webhook came after {:?} while the slow handler had 11 waiting",
        visited.elapsed()
    );
    assert_eq!(
        received.len(),
        1,
        "the fast handler's webhook waits behind the slow handler's"
    );
    assert_eq!(
        slow.count(),
        2,
        "the slow handler's first two webhooks are still in flight, the rest waiting"
    );
}

/// Webhooks over a handler's share wait in this instance for its deliveries in flight:
/// none goes back to the schedule for a later claim (which would cost it a second or
/// more). Counted by the process itself: its `/metrics` are its own, not shared with the
/// other tests' apps as an in-process app's are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_handlers_webhooks_wait_for_its_deliveries_in_flight_not_for_the_schedule() {
    let _serial = crate::common::HEAVY.lock().await;
    let prefix = unique_prefix();
    let _keys = KeysGuard::new(&redis_url(), &prefix);
    // Eight delivery slots: one handler may have two in flight and two waiting. The long
    // lease leaves the waiting ones time enough, however slow the machine (the default
    // process lease leaves them none).
    let process = FootfallProcess::start_with_env(
        &footfall_toml(&redis_url(), &prefix, &cookie_key(), ""),
        &[
            ("FOOTFALL__DELIVERY__CONCURRENCY", "8"),
            ("FOOTFALL__DELIVERY__TIMEOUT_MS", "1000"),
            ("FOOTFALL__DELIVERY__LEASE_SECONDS", "30"),
        ],
    );
    let mut settings = test_settings(Backend::Redis);
    settings.store.key_prefix = prefix.clone();
    let app = TestApp::attach(process.base.clone(), settings);
    let receiver = Receiver::start().await;
    receiver.script([Reply::Slow(Duration::from_millis(200)); 4]);
    let s = setup(&app, &receiver, 0).await;
    let mut vids = Vec::new();
    for i in 0..4 {
        vids.push(linked_lead(&app, &s, &format!("Busy {i}")).await.1);
    }
    let visited = Instant::now();
    for vid in &vids {
        app.beacon(&s.site_key, Some(vid), "https://shop.example/")
            .await;
    }
    let received = receiver.wait_for(4, Duration::from_secs(20)).await;
    println!(
        "four webhooks to a handler that takes 200 ms each came within {:?}",
        visited.elapsed()
    );
    assert_eq!(received.len(), 4);
    // Sent as the first two ended, from the handler's queue in this instance. (The
    // delivered count, once the last answers are recorded, shows that the figures are
    // this process's.)
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut delivered = delivered_by(&app).await;
    while delivered < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        delivered = delivered_by(&app).await;
    }
    assert_eq!(delivered, 4);
    let metrics = app.metrics().await;
    let deferred = metric_in(&metrics, "footfall_scheduler_deferred_total");
    let expired = metric_in(&metrics, "footfall_scheduler_expired_total");
    assert_eq!(
        (deferred, expired),
        (0, 0),
        "webhooks went back to the schedule (deferred as full, expired in the queue) instead of waiting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_handlers_webhooks_beyond_its_share_arrive_in_the_order_of_their_visits() {
    // Four delivery slots: the handler may have one webhook in flight; the other seven
    // wait for it in order. (Sent back to the schedule for a while instead, they would
    // come back in whatever order their waits ended.)
    let app = TestApp::spawn_with(settings(Backend::Redis, |s| s.delivery.concurrency = 4)).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::Slow(Duration::from_millis(100)); 8]);
    let s = setup(&app, &receiver, 0).await;
    let mut leads = Vec::new();
    for i in 0..8 {
        leads.push(linked_lead(&app, &s, &format!("Queued {i}")).await);
    }
    for (_, vid) in &leads {
        app.beacon(&s.site_key, Some(vid), "https://shop.example/")
            .await;
        // One visit at a time, so that each event is due after the one before.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = receiver.wait_for(8, Duration::from_secs(20)).await;
    let order: Vec<u64> = received
        .iter()
        .filter_map(|r| r.json()["event"]["data"]["id"].as_u64())
        .collect();
    let visited: Vec<u64> = leads.iter().map(|(lead, _)| *lead).collect();
    assert_eq!(order, visited);
}

/// A lead erased while its webhook is on its way: the attempt's outcome, saved when it
/// ends, does not bring the erased event back, so it is neither listed nor sent again.
/// (The save after a failed attempt used to write the record back as `retrying`: its
/// body, with the erased lead's data, went out again and stayed for 30 days.)
async fn an_event_in_flight_when_its_lead_is_erased_is_not_brought_back(backend: Backend) {
    let app = TestApp::spawn_with(settings(backend, |s| {
        s.delivery.timeout_ms = 800;
        s.delivery.retry_schedule_seconds = vec![1, 1];
    }))
    .await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::Slow(Duration::from_secs(2))]);
    let s = setup(&app, &receiver, 0).await;
    let (lead_id, vid) = linked_lead(&app, &s, "Anna").await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    let event_id = app.events_of(lead_id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    let (status, body) = app.delete(&format!("/api/v4/leads/{lead_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // The attempt times out (0.8 s), its retry would be a second later.
    tokio::time::sleep(Duration::from_millis(2800)).await;
    let (status, event) = app.get(&format!("/api/v4/webhook_events/{event_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{event}");
    assert_eq!(receiver.count(), 1, "sent again after its lead was erased");
    if backend == Backend::Redis {
        // Nor is its id back in the account's event index.
        let client = redis::Client::open(app.settings.store.redis_url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let index = format!(
            "{}:{{a{}}}:events",
            app.settings.store.key_prefix,
            crate::common::ACCOUNT
        );
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(&index)
            .arg(&event_id)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(score, None, "{index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_in_flight_when_its_lead_is_erased_is_not_brought_back_on_redis() {
    an_event_in_flight_when_its_lead_is_erased_is_not_brought_back(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_in_flight_when_its_lead_is_erased_is_not_brought_back_on_the_embedded_store() {
    an_event_in_flight_when_its_lead_is_erased_is_not_brought_back(Backend::Memory).await;
}

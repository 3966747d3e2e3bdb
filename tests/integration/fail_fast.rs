//! A hung Redis (SIGSTOP: connections open, no answers) holds no request for long: every
//! request that needs the store answers 503 within 1.5 × `store.response_timeout_ms` —
//! one time budget per request, a breaker that opens on the first timeout, and page views
//! queued behind a stuck batch refused with it — also right after a burst, when the
//! page-view writers have full queues. `/readyz` says the store is unreachable.
//! (The finding: 6.5 s for such a beacon, with Redis under AOF and two accounts.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::accounts::{ACCOUNT_B, SUBDOMAIN_B, TOKEN_B};
use crate::common::config_file::footfall_toml;
use crate::common::process::FootfallProcess;
use crate::common::redis_servers::RedisServer;
use crate::common::{self, Backend, Receiver, TestApp, setup, submit_form, test_settings};

/// The response timeout of the test (the shipped default).
const TIMEOUT_MS: u64 = 1000;

/// How long a request took, and its status (`None`: no answer at all).
async fn timed(request: reqwest::RequestBuilder) -> (Duration, Option<StatusCode>) {
    let sent = Instant::now();
    let status = request.send().await.ok().map(|r| r.status());
    (sent.elapsed(), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_the_beacon_the_form_and_the_api_answer_503_within_one_and_a_half_timeouts()
 {
    let _serial = common::HEAVY.lock().await;
    let redis = RedisServer::start(true);
    let prefix = common::unique_prefix();
    let toml = footfall_toml(
        &redis.url(),
        &prefix,
        &common::cookie_key(),
        &format!(
            "[tracking]\nvisit_idle_seconds = 1\n\n[[accounts]]\naccount_id = {ACCOUNT_B}\nsubdomain = \"{SUBDOMAIN_B}\"\ntoken = \"{TOKEN_B}\"\n"
        ),
    );
    let process = FootfallProcess::start(&toml);
    let mut settings = test_settings(Backend::Redis);
    settings.store.redis_url = redis.url();
    settings.store.key_prefix = prefix;
    let app = TestApp::attach(process.base.clone(), settings);
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;

    // A browser linked to a lead by its form post: its next visit's first page view does
    // the most store work (page view, visit start with its lead, the events).
    let (status, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    assert_eq!(status, StatusCode::OK);
    let vid = vid.unwrap();
    submit_form(&app, &s.form_id, Some(&vid), "Linked Browser").await;

    // A burst of 1 500 beacons; Redis stops while it is still being answered.
    let burst_client = footfall::http_client()
        .user_agent(common::BROWSER)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = app.base.clone();
    let key = s.site_key.clone();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let burst = {
        let answered = answered.clone();
        tokio::spawn(async move {
            futures_util::stream::iter(0..1500)
                .map(|i| {
                    let (client, base, key, answered) =
                        (burst_client.clone(), base.clone(), key.clone(), answered.clone());
                    async move {
                        let r = timed(
                            client
                                .post(format!("{base}/v1/collect"))
                                .header("content-type", "text/plain;charset=UTF-8")
                                .body(json!({"site": key, "url": format!("https://shop.example/{i}")}).to_string()),
                        )
                        .await;
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        r
                    }
                })
                .buffer_unordered(128)
                .collect::<Vec<_>>()
                .await
        })
    };
    // The linked browser's last page view is more than a visit gap old by then.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    while answered.load(std::sync::atomic::Ordering::Relaxed) < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let frozen = redis.frozen();
    let stopped = Instant::now();

    let beacon = timed(
        app.client
            .post(app.url("/v1/collect"))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(
                json!({"site": s.site_key, "vid": vid, "url": "https://shop.example/back"})
                    .to_string(),
            ),
    );
    let form = timed(
        app.client
            .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(
                json!({"vid": vid, "page": "https://shop.example/contact",
                         "fields": {"name": "Again", "email": "again@example.com"}})
                .to_string(),
            ),
    );
    let api = timed(
        app.client
            .get(app.url("/api/v4/leads"))
            .bearer_auth(common::TOKEN),
    );
    let other_account = timed(
        app.client
            .get(app.url("/api/v4/leads"))
            .bearer_auth(TOKEN_B),
    );
    let (beacon, form, api, other_account) = tokio::join!(beacon, form, api, other_account);
    let burst = burst.await.unwrap();
    let bound = Duration::from_millis(TIMEOUT_MS * 3 / 2);
    let slowest_burst = burst.iter().map(|(took, _)| *took).max().unwrap();
    println!(
        "after the stop: beacon {beacon:?}, form {form:?}, API {api:?}, other account {other_account:?}; \
         slowest of the burst {slowest_burst:?}"
    );
    for (what, (took, status)) in [
        ("beacon", beacon),
        ("form", form),
        ("API", api),
        ("the other account's API", other_account),
    ] {
        assert_eq!(status, Some(StatusCode::SERVICE_UNAVAILABLE), "{what}");
        assert!(took < bound, "the {what} took {took:?}");
    }
    // Every request of the burst was answered within the bound too, those queued in the
    // page-view writers at the stop included: none waited behind another batch's
    // timeout (the figures start when a request is sent, 128 at a time).
    let unanswered = burst.iter().filter(|(_, s)| s.is_none()).count();
    assert_eq!(unanswered, 0);
    assert!(
        slowest_burst < bound,
        "a beacon of the burst took {slowest_burst:?}"
    );

    // Readiness says so (answered at once: the breaker knows).
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.text().await.unwrap();
    assert!(body.contains("unreachable"), "{body}");

    // Still stopped, a while later: the same, at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (took, status) = timed(
        app.client
            .post(app.url("/v1/collect"))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(json!({"site": s.site_key, "url": "https://shop.example/"}).to_string()),
    )
    .await;
    assert_eq!(status, Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(took < bound, "{took:?}");
    assert!(stopped.elapsed() > Duration::from_millis(500));

    // Running again: ready, and the linked browser's page view goes in.
    drop(frozen);
    assert!(
        app.ready_within(Duration::from_secs(10)).await,
        "footfall did not become ready again"
    );
    let (status, _) = app
        .beacon(&s.site_key, Some(&vid), "https://shop.example/again")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// A client that takes longer to send its body than the store's response timeout is not
/// the store's failure: its own request is served, and the breaker that would answer
/// every other request 503 stays closed. (The budget used to start before the body was
/// read, so such a body used up the budget, its first round trip was cut off at once and
/// counted as Redis not answering.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_response_timeout_neither_fails_nor_opens_the_breaker() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut settings = test_settings(Backend::Redis);
    settings.store.response_timeout_ms = 300;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let body = json!({"site": s.site_key, "url": "https://shop.example/slow"}).to_string();
    let (first, rest) = body.split_at(10);
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /v1/collect HTTP/1.1\r\nhost: x\r\nuser-agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0\r\n\
         content-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{first}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // At once after it: the breaker is closed.
    let (status, _) = app
        .beacon(&s.site_key, None, "https://shop.example/next")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get("/api/v4/leads").await;
    assert!(status.is_success(), "{status}");
}

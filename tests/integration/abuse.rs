//! Abuse of the public endpoints and of the API: rate limits per address and per site
//! (429 with `Retry-After`), the origin allowlist, forged and foreign visitor ids, forms
//! posted twice, API tokens kept out of the logs, and what `/metrics` and `x-request-id`
//! tell an operator.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use parking_lot::Mutex;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::common::config_file::footfall_toml;
use crate::common::{
    Backend, Receiver, TOKEN, TestApp, linked_lead, setup, submit_form, test_settings,
};
use footfall::config::Settings;

fn settings(tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = test_settings(Backend::Redis);
    tweak(&mut s);
    s
}

/// A beacon with extra headers; returns the status, the headers and the body.
async fn beacon_with(
    app: &TestApp,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = app
        .client
        .post(app.url("/v1/collect"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = req.send().await.expect("beacon sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn page_view(site_key: &str, vid: Option<&str>, url: &str) -> Value {
    json!({"site": site_key, "vid": vid, "url": url, "referrer": "", "title": "T"})
}

/// A form post (JSON, as t.js sends it) with extra headers.
async fn submit_with(
    app: &TestApp,
    form_id: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/forms/{form_id}/submit")))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = req.send().await.expect("form sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Counts the answers of `n` page views sent one after the other.
async fn burst(
    app: &TestApp,
    site_key: &str,
    n: usize,
    forwarded_for: Option<&str>,
) -> (usize, Vec<HeaderMap>) {
    let mut accepted = 0;
    let mut refused = Vec::new();
    for i in 0..n {
        let headers: Vec<(&str, &str)> = forwarded_for
            .map(|ip| vec![("x-forwarded-for", ip)])
            .unwrap_or_default();
        let url = format!("https://shop.example/p{i}");
        let (status, headers, body) =
            beacon_with(app, &headers, page_view(site_key, None, &url)).await;
        match status {
            StatusCode::OK | StatusCode::NO_CONTENT => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(header(&headers, "content-type"), "application/problem+json");
                assert_eq!(body["status"], 429, "{body}");
                refused.push(headers);
            }
            other => panic!("beacon answered {other}: {body}"),
        }
    }
    (accepted, refused)
}

/// The burst is 4× the rate: a quick run of requests gets about that many through.
fn assert_burst(accepted: usize, refused: &[HeaderMap], burst: usize, took: Duration) {
    let refill = (took.as_secs_f64() * (burst / 4) as f64).ceil() as usize;
    assert!(
        accepted >= burst && accepted <= burst + refill + 1,
        "{accepted} accepted for a burst of {burst} in {took:?}"
    );
    assert!(!refused.is_empty());
    for h in refused {
        let wait: u64 = header(h, "retry-after").parse().expect("Retry-After");
        assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_requests_over_the_per_address_limit_get_429_with_retry_after() {
    let app = TestApp::spawn_with(settings(|s| s.limits.per_ip_per_second = 3)).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;

    let started = Instant::now();
    let (accepted, refused) = burst(&app, &s.site_key, 30, None).await;
    assert_burst(accepted, &refused, 12, started.elapsed());
    // Forms count against the same address. Ten at once: only the slots of the rate that
    // refilled since the burst (one each 333 ms, and one begun) let any through.
    let burst_ended = Instant::now();
    let forms = join_all((0..10).map(|i| {
        let fields = json!({"fields": {"name": format!("Flood {i}")}});
        submit_with(&app, &s.form_id, &[], fields)
    }))
    .await;
    let refilled = 1 + (burst_ended.elapsed().as_secs_f64() * 3.0) as usize;
    let taken = forms
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::CREATED)
        .count();
    assert!(
        taken <= refilled.min(9),
        "{refilled} slots refilled: {forms:?}"
    );
    let (status, headers, body) = forms
        .into_iter()
        .find(|(status, _, _)| *status != StatusCode::CREATED)
        .unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!header(&headers, "retry-after").is_empty());
    // The answer names the limit: this instance's flood guard, not a shared quota.
    assert!(
        body.to_string().contains("flood guard: per address"),
        "{body}"
    );
    // The management API is not a public endpoint: it still answers.
    let (status, _) = app.get("/api/v4/sites").await;
    assert_eq!(status, StatusCode::OK);

    // After the wait the address may send again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, _) = beacon_with(
        &app,
        &[],
        page_view(&s.site_key, None, "https://shop.example/later"),
    )
    .await;
    assert!(status.is_success(), "{status}");
    // Only a form that was let through made a lead.
    let (status, unsorted) = app.get("/api/v4/leads/unsorted").await;
    if taken == 0 {
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "Unsorted is empty: {unsorted}"
        );
    } else {
        let leads = unsorted["_embedded"]["unsorted"].as_array().map(Vec::len);
        assert_eq!(leads, Some(taken), "{unsorted}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_each_client_address_has_its_own_limit() {
    let app = TestApp::spawn_with(settings(|s| {
        s.limits.per_ip_per_second = 2;
        s.server.trust_proxy_headers = true;
    }))
    .await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let started = Instant::now();
    let (accepted, refused) = burst(&app, &s.site_key, 20, Some("203.0.113.7")).await;
    assert_burst(accepted, &refused, 8, started.elapsed());
    let (accepted, _) = burst(&app, &s.site_key, 5, Some("198.51.100.9, 10.0.0.1")).await;
    assert_eq!(accepted, 5, "another client was limited with the first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_over_its_limit_gets_429_whatever_the_address_and_other_sites_do_not() {
    let app = TestApp::spawn_with(settings(|s| {
        s.limits.per_site_per_second = 2;
        s.server.trust_proxy_headers = true;
    }))
    .await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let other = app
        .create(
            "sites",
            json!({"name": "Other", "url": "https://shop.example"}),
        )
        .await;
    let other_key = other["key"].as_str().unwrap();

    let started = Instant::now();
    let mut accepted = 0;
    let mut refused = Vec::new();
    for i in 0..20 {
        let ip = format!("192.0.2.{}", i + 1);
        let (a, r) = burst(&app, &s.site_key, 1, Some(&ip)).await;
        accepted += a;
        refused.extend(r);
    }
    assert_burst(accepted, &refused, 8, started.elapsed());
    let (accepted, refused) = burst(&app, other_key, 4, Some("192.0.2.200")).await;
    assert_eq!(
        (accepted, refused.len()),
        (4, 0),
        "another site was limited"
    );
}

async fn page_views_of(app: &TestApp, lead: u64) -> Vec<String> {
    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "page_view")
        .map(|i| i["url"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beacon_or_form_from_a_foreign_origin_is_refused_and_stores_nothing() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, vid) = linked_lead(&app, &s, "Anna").await;

    // Had one of these been let through, it would have started a visit of the lead's
    // browser (its first page view) and fired the action.
    for origin in [
        "https://evil.example",
        "https://shop.example.evil.example",
        "http://127.0.0.1:1",
        "garbage",
    ] {
        let (status, headers, body) = beacon_with(
            &app,
            &[("origin", origin)],
            page_view(&s.site_key, Some(&vid), "https://shop.example/from-evil"),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}: {body}");
        assert!(headers.get("access-control-allow-origin").is_none());
        let (status, headers, body) = submit_with(
            &app,
            &s.form_id,
            &[("origin", origin)],
            json!({"vid": vid, "fields": {"name": "Mallory", "email": "m@evil.example"}}),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}: {body}");
        assert!(headers.get("access-control-allow-origin").is_none());
        let response = app
            .client
            .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
            .header("origin", origin)
            .form(&[("name", "Mallory"), ("ff_vid", vid.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
    }
    // A page of another host, sent from an allowed origin, is refused too.
    let (status, _, _) = beacon_with(
        &app,
        &[("origin", "https://shop.example")],
        page_view(&s.site_key, Some(&vid), "https://evil.example/"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Nothing was stored: no page view, no visit, no event, no new lead.
    assert!(
        !page_views_of(&app, lead)
            .await
            .iter()
            .any(|u| u.contains("evil"))
    );
    assert!(app.events_of(lead).await.is_empty());
    let (_, leads) = app.get("/api/v4/leads").await;
    assert_eq!(leads["_embedded"]["leads"].as_array().unwrap().len(), 1);
    let (status, _) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "Unsorted is empty");
    assert_eq!(receiver.count(), 0);

    // The site's own hosts are let through, with CORS for credentials.
    for origin in [
        "https://shop.example",
        "https://blog.example",
        "https://www.shop.example",
    ] {
        let (status, headers, _) = beacon_with(
            &app,
            &[("origin", origin)],
            page_view(&s.site_key, Some(&vid), "https://shop.example/ok"),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{origin}");
        assert_eq!(header(&headers, "access-control-allow-origin"), origin);
        assert_eq!(header(&headers, "access-control-allow-credentials"), "true");
        assert!(header(&headers, "vary").contains("Origin"));
    }
    let (status, headers, _) = submit_with(
        &app,
        &s.form_id,
        &[("origin", "https://shop.example")],
        json!({"fields": {"name": "Nina"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        "https://shop.example"
    );
    assert_eq!(header(&headers, "access-control-allow-credentials"), "true");
    assert_eq!(
        app.events_of(lead).await.len(),
        1,
        "the allowed visit fires"
    );
}

/// Variants of a signed visitor id that must not verify.
fn forgeries(vid: &str, foreign: &str) -> Vec<(&'static str, String)> {
    let flip = |s: &str, at: usize| {
        let mut bytes = s.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let (mac, id) = vid.split_at(44);
    vec![
        ("a changed MAC", flip(vid, 3)),
        ("a changed id", flip(vid, 50)),
        ("the id alone", id.to_owned()),
        ("the MAC of another id", format!("{mac}{}", &foreign[44..])),
        ("signed with another key", foreign.to_owned()),
        ("a truncated value", vid[..65].to_owned()),
        ("an extended value", format!("{vid}A")),
        ("not base64", format!("{}!{}", &vid[..40], &vid[41..])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_visitor_ids_are_replaced_and_never_reach_the_linked_lead() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, vid) = linked_lead(&app, &s, "Anna").await;
    // A browser signed by another footfall (another cookie key): an expired key, say.
    let elsewhere = TestApp::spawn(Backend::Memory).await;
    let other_setup = setup(&elsewhere, &receiver, 0).await;
    let (_, foreign) = elsewhere
        .beacon(&other_setup.site_key, None, "https://shop.example/")
        .await;
    let foreign = foreign.unwrap();
    let forged = forgeries(&vid, &foreign);

    // Had one of these verified, its page view would have started a visit of the lead's
    // browser (which has none yet) and fired the action.
    for (what, value) in &forged {
        let (status, minted) = app
            .beacon(&s.site_key, Some(value), "https://shop.example/forged")
            .await;
        assert_eq!(status, StatusCode::OK, "{what}: a fresh id is minted");
        let minted = minted.unwrap();
        assert_ne!(&minted, value, "{what}");
        assert_ne!(minted, vid, "{what}");
        assert_eq!(minted.len(), 66);
        // In the cookie instead of the body.
        let (status, _, body) = beacon_with(
            &app,
            &[("cookie", &format!("ff_vid={value}"))],
            page_view(&s.site_key, None, "https://shop.example/forged-cookie"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
        assert_ne!(body["vid"], vid.as_str());
    }
    assert!(
        app.events_of(lead).await.is_empty(),
        "a forged id fired the lead's action"
    );
    assert!(
        !page_views_of(&app, lead)
            .await
            .iter()
            .any(|u| u.contains("forged")),
        "a forged id's page view reached the lead"
    );

    // A forged id in a form links the new lead to a fresh browser, not the lead's.
    let tampered = &forged[1].1;
    let (status, _, body) = submit_with(
        &app,
        &s.form_id,
        &[],
        json!({"vid": tampered, "fields": {"name": "Mallory", "email": "mallory@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(body["lead_id"], lead);
    assert_ne!(body["vid"], vid.as_str());
    assert_ne!(body["vid"], tampered.as_str());
    let (_, view) = app.get(&format!("/api/v4/leads/{lead}")).await;
    let visitors = view["_embedded"]["visitors"].as_array().unwrap();
    assert_eq!(visitors.len(), 1);
    assert!(visitors[0]["until"].is_null(), "{view}");

    // The genuine id still works: the test could have failed.
    let (status, minted) = app
        .beacon(&s.site_key, Some(&vid), "https://shop.example/genuine")
        .await;
    assert_eq!((status, minted), (StatusCode::NO_CONTENT, None));
    assert_eq!(app.events_of(lead).await.len(), 1);
    assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_twice_by_one_browser_makes_one_lead() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let body = json!({"vid": vid, "page": "https://shop.example/contact",
                      "fields": {"name": "Olga", "phone": "+7 900 555-00-11", "email": "olga@example.com"}});
    let (status, _, first) = submit_with(&app, &s.form_id, &[], body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, _, second) = submit_with(&app, &s.form_id, &[], body).await;
    assert!(
        status.is_success(),
        "the replay answered {status}: {second}"
    );
    assert_eq!(second["lead_id"], first["lead_id"], "{first} vs {second}");
    // The same as a plain HTML form (a double click on the submit button).
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
            .form(&[
                ("name", "Olga"),
                ("phone", "+7 900 555-00-11"),
                ("email", "olga@example.com"),
                ("ff_vid", vid.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let (_, leads) = app.get("/api/v4/leads").await;
    assert_eq!(
        leads["_embedded"]["leads"].as_array().unwrap().len(),
        1,
        "{leads}"
    );
    let (_, unsorted) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(
        unsorted["_embedded"]["unsorted"].as_array().unwrap().len(),
        1
    );
}

/// The footfall binary with every line it prints kept.
pub(crate) struct LoggedProcess {
    child: std::process::Child,
    pub(crate) base: String,
    lines: Arc<Mutex<Vec<String>>>,
    config: std::path::PathBuf,
}

impl LoggedProcess {
    pub(crate) fn start(config_toml: &str, log_filter: &str) -> Self {
        Self::start_with_env(config_toml, log_filter, &[])
    }

    /// The same, with extra environment variables.
    pub(crate) fn start_with_env(
        config_toml: &str,
        log_filter: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let config =
            std::env::temp_dir().join(format!("footfall-test-{}-logs.toml", rand::random::<u64>()));
        std::fs::write(&config, config_toml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_footfall"))
            .arg("--config")
            .arg(&config)
            .env("FOOTFALL__SERVER__JSON_LOGS", "true")
            .env("RUST_LOG", log_filter)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (lines, tx) = (lines.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("footfall is listening") {
                        let v: Value = serde_json::from_str(&line).unwrap_or_default();
                        let _ = tx.send(v["port"].as_u64().unwrap_or(0));
                    }
                    lines.lock().push(line);
                }
            });
        }
        let port = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            lines,
            config,
        }
    }

    /// SIGTERM, waits for the exit and for the last lines.
    pub(crate) fn stop(&mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        self.lines.lock().clone()
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_never_appear_in_the_logs_and_wrong_tokens_learn_nothing() {
    let prefix = common::unique_prefix();
    let toml = footfall_toml(&common::redis_url(), &prefix, &common::cookie_key(), "");
    let mut process = LoggedProcess::start(&toml, "debug");
    let mut settings = test_settings(Backend::Redis);
    settings.store.key_prefix = prefix.clone();
    let app = TestApp::attach(process.base.clone(), settings).owning_keys();
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    submit_form(&app, &s.form_id, None, "Anna").await;

    let near_misses = [
        format!("{TOKEN}x"),
        TOKEN[..TOKEN.len() - 1].to_owned(),
        TOKEN.to_uppercase(),
        "wrong-token-entirely".to_owned(),
    ];
    let mut refusals = Vec::new();
    for wrong in &near_misses {
        let answer = app
            .raw(
                reqwest::Method::GET,
                "/api/v4/leads",
                Some(wrong),
                None,
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        refusals.push(answer.body);
    }
    // The token where it does not belong: Basic auth, a header of its own, a bad scheme.
    for (name, value) in [
        ("authorization", format!("Basic {TOKEN}")),
        ("authorization", format!("Token {TOKEN}")),
        ("x-api-key", TOKEN.to_owned()),
    ] {
        let response = app
            .client
            .get(app.url("/api/v4/leads"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Every wrong token is told the same thing.
    assert!(refusals.windows(2).all(|w| w[0] == w[1]), "{refusals:?}");
    let (status, _) = app.get("/api/v4/leads").await;
    assert_eq!(status, StatusCode::OK);

    let lines = process.stop();
    assert!(
        lines.iter().any(|l| l.contains("/api/v4/leads")),
        "the debug logs carry requests: the check below can see what they print"
    );
    for secret in std::iter::once(TOKEN.to_owned()).chain(near_misses.iter().cloned()) {
        let leaked: Vec<&String> = lines.iter().filter(|l| l.contains(&secret)).collect();
        assert!(leaked.is_empty(), "a token was logged: {leaked:?}");
    }
    // Nor does checking the configuration print it.
    let config = std::env::temp_dir().join(format!("footfall-test-{prefix}.toml"));
    std::fs::write(&config, &toml).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&config);
    assert!(output.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!printed.contains(TOKEN), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_beacons_visits_events_deliveries_and_scheduler_lateness() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, vid) = linked_lead(&app, &s, "Anna").await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.events_of(lead).await[0]["state"] != "delivered" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = app.metrics().await;
    for name in [
        "footfall_beacons_total",
        "footfall_visits_total",
        "footfall_events_total",
        "footfall_webhook_attempts_total",
        "footfall_webhook_latency_seconds_bucket",
        "footfall_webhook_latency_seconds_count",
        "footfall_scheduler_lateness_seconds_bucket",
        "footfall_scheduler_lateness_seconds_count",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "/metrics lacks {name}:\n{text}"
        );
    }
    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(value("footfall_beacons_total{outcome=\"recorded\"}") >= 1.0);
    assert!(value("footfall_webhook_attempts_total{outcome=\"delivered\"}") >= 1.0);
    assert!(value("footfall_scheduler_lateness_seconds_count") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_http_requests_by_route_and_status() {
    let app = TestApp::spawn(Backend::Memory).await;
    // A site, so that the list answers 200 (an empty one is a 204): the counts are this
    // process's own only when the test runs alone (nextest), so it makes its own.
    app.create(
        "sites",
        json!({"name": "Shop", "url": "https://shop.example"}),
    )
    .await;
    app.get("/api/v4/sites").await;
    app.get("/api/v4/no-such-route").await;
    let text = app.metrics().await;
    let requests: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("footfall_http_requests_total{"))
        .collect();
    assert!(
        requests
            .iter()
            .any(|l| l.contains("/api/v4/sites") && l.contains("status=\"200\"")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|l| l.contains("status=\"404\"")),
        "{requests:?}"
    );
    assert!(
        text.contains("footfall_http_request_duration_seconds"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id_echoed_or_made_up() {
    let app = TestApp::spawn(Backend::Memory).await;
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut made_up = Vec::new();
    for path in [
        "/healthz",
        "/api/v4/sites",
        "/api/v4/nothing",
        "/v1/collect",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let id = id_of(&response).unwrap_or_else(|| panic!("{path}: no x-request-id"));
        assert!(
            (8..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{path}: {id}"
        );
        made_up.push(id);
    }
    made_up.sort();
    made_up.dedup();
    assert_eq!(made_up.len(), 4, "request ids repeat");

    let response = app
        .client
        .get(app.url("/api/v4/sites"))
        .bearer_auth(TOKEN)
        .header("x-request-id", "client-chosen-id_42")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&response).as_deref(), Some("client-chosen-id_42"));
    // A hostile id (spaces, a line break, too long) is replaced, not echoed.
    for hostile in ["a b", "x<script>", &"y".repeat(200)] {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", hostile)
            .send()
            .await
            .unwrap();
        let id = id_of(&response).unwrap();
        assert_ne!(id, hostile);
        assert!(id.len() <= 64);
    }
}

/// A contact who already has an open lead submits again from another browser: a lead of
/// its own (it used to join the open lead). Sending the same form again from that browser
/// is folded into that lead, which exists: a double click must not be held waiting for
/// a lead that is never made (a duplicate marker naming a lead never created made each
/// repeat wait 500 ms). How long the answers took is printed, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeating_a_known_contact_s_submission_is_folded_into_the_lead_it_made() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, _, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let (_, other_browser) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let body = json!({"vid": other_browser, "fields": {"name": "Anna", "email": common::email_of("Anna")}});
    let mut took = Duration::ZERO;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, _, answer) = submit_with(&app, &s.form_id, &[], body.clone()).await;
        took += started.elapsed();
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answers.push(answer);
    }
    println!("three submissions took {took:?}");
    let leads: Vec<&Value> = answers.iter().map(|a| &a["lead_id"]).collect();
    assert_ne!(leads[0], &json!(lead));
    assert!(leads.iter().all(|l| *l == leads[0]), "{answers:?}");
    assert!(
        answers.iter().all(|a| a["uid"] == answers[0]["uid"]),
        "one Unsorted entry for the three: {answers:?}"
    );
    // The lead the repeats name exists, and they made no other.
    let (status, made) = app.get(&format!("/api/v4/leads/{}", leads[0])).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let (_, all) = app.get("/api/v4/leads").await;
    assert_eq!(common::items(&all, "leads").len(), 2, "{all}");
}

/// A flood of form posts past the instance's per-address guard costs the store nothing,
/// even with made-up form ids from a page that names an origin (whose refusals are
/// answered with CORS only when this instance already knows the form).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_form_posts_past_the_guard_costs_the_store_nothing() {
    let redis = crate::common::redis_servers::RedisServer::start(false);
    let app = TestApp::spawn_with(settings(|s| {
        s.store.redis_url = redis.url();
        s.limits.per_ip_per_second = 1;
    }))
    .await;
    let post = async |form: String| {
        let origin = [("origin", "https://shop.example")];
        let flood = json!({"fields": {"name": "Flood"}});
        submit_with(&app, &form, &origin, flood).await.0
    };
    // The guard's burst goes first.
    for _ in 0..5 {
        post("aaaaaaaaaaaa".into()).await;
    }
    let (statuses, commands) = redis
        .commands_during(async {
            let mut statuses = Vec::new();
            for i in 0..30 {
                statuses.push(post(format!("flood{i:07}")).await);
            }
            statuses
        })
        .await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(refused >= 25, "{statuses:?}");
    let lookups = commands.lines().filter(|l| l.contains(":alias:")).count();
    assert!(
        lookups <= statuses.len() - refused,
        "{refused} refusals looked forms up {lookups} times:\n{commands}"
    );
}

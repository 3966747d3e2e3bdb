//! The test harness: the real footfall app on a random port (zero2prod's `spawn_app`),
//! on a real Redis (127.0.0.1:6379, or FOOTFALL_TEST_REDIS_URL) under a key prefix of its
//! own, or on the embedded store; and a real webhook receiver over HTTP.

#![allow(dead_code)]

pub mod accounts;
pub mod config_file;
pub mod jobs;
pub mod privacy;
pub mod process;
pub mod raw_receiver;
pub mod receiver;
pub mod redis_deployments;
pub mod redis_servers;
pub mod stores;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use footfall::app::Application;
use footfall::config::{AccountSettings, Settings};

#[allow(unused_imports)]
pub use receiver::{Received, Receiver, Reply};

/// Held by the tests that start processes or load both cores: one at a time.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const TOKEN: &str = "test-token-account-a";
pub const ACCOUNT: u64 = 30441694;
pub const SUBDOMAIN: &str = "acme";
/// A visit gap for tests whose page views of one visit have requests between them (a
/// webhook awaited, metrics or events read back): they fit in it on a loaded machine too.
pub const VISIT_GAP_SECS: u64 = 3;

/// Waits out [`VISIT_GAP_SECS`] (and a little): the next page view starts a new visit.
pub async fn wait_out_the_gap() {
    tokio::time::sleep(std::time::Duration::from_millis(
        VISIT_GAP_SECS * 1000 + 100,
    ))
    .await;
}

/// Sends a request again while it answers 503, as its Retry-After asks, `tries` times at
/// most with `pause` between: its last answer, and how many 503s came before it.
pub async fn resent_while_503<T, F: std::future::Future<Output = T>>(
    tries: usize,
    pause: std::time::Duration,
    status: impl Fn(&T) -> StatusCode,
    mut send: impl FnMut() -> F,
) -> (T, usize) {
    let mut answer = send().await;
    let mut refused = 0;
    while status(&answer) == StatusCode::SERVICE_UNAVAILABLE && refused < tries {
        refused += 1;
        tokio::time::sleep(pause).await;
        answer = send().await;
    }
    (answer, refused)
}

/// The `Accept` of a browser's navigation (t.js's fetch does not send it).
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// A browser's user agent: footfall drops beacons of bots and of empty user agents.
pub const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    Memory,
}

pub fn redis_url() -> String {
    std::env::var("FOOTFALL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh key prefix, so tests on one Redis never see each other's keys.
pub fn unique_prefix() -> String {
    format!("fftest{}", rand::rng().random::<u64>())
}

/// A random cookie key (base64 of 32 bytes).
pub fn cookie_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::rng().random::<[u8; 32]>())
}

/// Settings for tests: a free port, one account, fast retries, limits off, private
/// webhook targets allowed (the receiver is on loopback).
pub fn test_settings(backend: Backend) -> Settings {
    let mut s = Settings::default();
    s.server.bind = "127.0.0.1:0".into();
    s.server.workers = 1;
    s.server.static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/static").into();
    if backend == Backend::Redis {
        s.store.redis_url = redis_url();
        s.store.key_prefix = unique_prefix();
    }
    s.cookies.keys = vec![cookie_key().into()];
    s.delivery.allow_private_targets = true;
    s.delivery.retry_schedule_seconds = vec![1, 1, 1];
    s.delivery.jitter_ratio = 0.0;
    s.delivery.timeout_ms = 1000;
    s.delivery.lease_seconds = 5;
    s.delivery.poll_interval_ms = 100;
    s.limits.per_ip_per_second = 0;
    s.limits.per_site_per_second = 0;
    s.quotas = footfall::config::QuotaSettings::off();
    s.accounts = vec![AccountSettings {
        account_id: ACCOUNT,
        subdomain: SUBDOMAIN.into(),
        token: TOKEN.to_owned().into(),
    }];
    s
}

#[derive(Clone)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// Removes the app's keys from the shared Redis when the last clone goes, even when
    /// the test fails; none for a client of a store someone else owns.
    keys: Option<Arc<KeysGuard>>,
}

/// Deletes every key of a prefix from a Redis when dropped: a test's keys never outlive
/// it, whether it passes or panics.
pub struct KeysGuard {
    url: String,
    prefix: String,
}

impl KeysGuard {
    pub fn new(url: &str, prefix: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
        }
    }
}

impl Drop for KeysGuard {
    fn drop(&mut self) {
        let Ok(mut con) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let mut cursor: u64 = 0;
        loop {
            let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut con)
            else {
                return;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut con);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

/// What writes under a key prefix (processes of the test's own), then the guard of its
/// keys: fields drop in the order they are declared, so the keys are removed after the
/// writers have stopped. (A guard dropped first let a process write keys after it.)
pub struct WithKeys<T> {
    pub inner: T,
    _keys: KeysGuard,
}

impl<T> WithKeys<T> {
    pub fn new(keys: KeysGuard, inner: T) -> Self {
        Self { inner, _keys: keys }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(test_settings(backend)).await
    }

    pub async fn spawn_with(settings: Settings) -> Self {
        let app = Application::build(settings.clone())
            .await
            .expect("the app starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self::attach(base, settings).owning_keys()
    }

    /// The app's Redis keys go when it does (for an app whose store this test owns).
    pub fn owning_keys(mut self) -> Self {
        let store = &self.settings.store;
        if !store.redis_url.is_empty() {
            self.keys = Some(Arc::new(KeysGuard::new(
                &store.redis_url,
                &store.key_prefix,
            )));
        }
        self
    }

    /// Talks to a footfall that runs elsewhere (a process of the test's own).
    pub fn attach(base: String, settings: Settings) -> Self {
        let client = footfall::http_client()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(BROWSER)
            .timeout(Duration::from_secs(10))
            // Below actix's 5 s keep-alive: a connection the server is closing is never
            // picked for a request (hyper would report the request as an incomplete message).
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        Self {
            base,
            client,
            settings,
            keys: None,
        }
    }

    /// The address of `path`, or of an absolute link footfall answered (`_links` are
    /// built from `server.public_url`, which is not the test's random port).
    pub fn url(&self, path: &str) -> String {
        let public = self.settings.server.public_url.trim_end_matches('/');
        let path = path.strip_prefix(public).unwrap_or(path);
        format!("{}{path}", self.base)
    }

    /// Whether `/readyz` answers 200 within `within` (asked every 100 ms).
    pub async fn ready_within(&self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            let r = self.client.get(self.url("/readyz")).send().await.unwrap();
            if r.status() == StatusCode::OK {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// The absolute link footfall answers for `path` (`_links`).
    pub fn link(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.settings.server.public_url.trim_end_matches('/')
        )
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = req.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.get(self.url(path)).bearer_auth(TOKEN))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.client
                .post(self.url(path))
                .bearer_auth(TOKEN)
                .json(&body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.client
                .patch(self.url(path))
                .bearer_auth(TOKEN)
                .json(&body),
        )
        .await
    }

    pub async fn delete(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = self.client.delete(self.url(path)).bearer_auth(TOKEN);
        let req = match body {
            Some(body) => req.json(&body),
            None => req,
        };
        self.send(req).await
    }

    /// Creates one resource and returns it (`POST` of a one-item array).
    pub async fn create(&self, resource: &str, item: Value) -> Value {
        let (status, body) = self
            .post(&format!("/api/v4/{resource}"), json!([item]))
            .await;
        assert_eq!(status, StatusCode::OK, "creating {resource}: {body}");
        body["_embedded"][resource][0].clone()
    }

    /// A plain HTML form's post, as a browser navigating there sends it (urlencoded, with
    /// its `Accept`).
    pub async fn post_form_as_browser(
        &self,
        form_id: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/forms/{form_id}/submit")))
            .header("accept", BROWSER_ACCEPT)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// The process's own `/metrics` (each instance counts for itself).
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "/metrics");
        response.text().await.unwrap()
    }

    /// One series of the process's `/metrics`, `name{labels}` as printed (0 when it has
    /// not counted yet).
    pub async fn metric(&self, series: &str) -> u64 {
        metric_in(&self.metrics().await, series)
    }

    /// A page-view beacon as t.js sends it (text/plain JSON). Returns the status and the
    /// newly minted visitor id, if any.
    pub async fn beacon(
        &self,
        site_key: &str,
        vid: Option<&str>,
        url: &str,
    ) -> (StatusCode, Option<String>) {
        self.beacon_from(site_key, vid, url, "https://www.google.com/", "Page")
            .await
    }

    /// A beacon with its referrer and title; returns its status and the minted id.
    pub async fn beacon_from(
        &self,
        site_key: &str,
        vid: Option<&str>,
        url: &str,
        referrer: &str,
        title: &str,
    ) -> (StatusCode, Option<String>) {
        let body =
            json!({"site": site_key, "vid": vid, "url": url, "referrer": referrer, "title": title});
        let response = self
            .client
            .post(self.url("/v1/collect"))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body.to_string())
            .send()
            .await
            .expect("beacon sent");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let vid = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["vid"].as_str().map(str::to_owned));
        (status, vid)
    }

    /// The account's first pipeline and its stages by name.
    pub async fn pipeline(&self) -> Pipeline {
        let (status, body) = self.get("/api/v4/leads/pipelines").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let p = &body["_embedded"]["pipelines"][0];
        let stage = |name: &str| {
            p["_embedded"]["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| s["id"].as_u64().unwrap())
                .unwrap_or_else(|| panic!("no stage {name}"))
        };
        Pipeline {
            id: p["id"].as_u64().unwrap(),
            unsorted: stage("Unsorted"),
            first_contact: stage("First contact"),
            negotiation: stage("Negotiation"),
        }
    }

    /// The events of a lead, newest first.
    pub async fn events_of(&self, lead_id: u64) -> Vec<Value> {
        let (status, body) = self
            .get(&format!(
                "/api/v4/webhook_events?lead_id={lead_id}&limit=250"
            ))
            .await;
        if status == StatusCode::NO_CONTENT {
            return Vec::new(); // an empty list, as amoCRM answers it
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        body["_embedded"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

pub struct Pipeline {
    pub id: u64,
    pub unsorted: u64,
    pub first_contact: u64,
    pub negotiation: u64,
}

/// The site, form, handler and site-visit action of the seed's steps 1–3.
pub struct Setup {
    pub site_key: String,
    pub site_id: u64,
    pub form_id: String,
    pub handler_secret: String,
    pub action_id: u64,
    pub pipeline: Pipeline,
}

/// A site and a form of the token's account; returns (site key, form id).
pub async fn site_and_form(app: &TestApp, token: &str, host: &str) -> (String, String) {
    let pipelines = app.get_as(token, "/api/v4/leads/pipelines").await;
    let pipeline = pipelines.body["_embedded"]["pipelines"][0]["id"].clone();
    let site = app
        .create_as(
            token,
            "sites",
            json!({"name": host, "url": format!("https://{host}")}),
        )
        .await;
    let form = app
        .create_as(
            token,
            "forms",
            json!({"name": "Contact", "site_id": site["id"], "pipeline_id": pipeline}),
        )
        .await;
    (
        site["key"].as_str().unwrap().to_owned(),
        form["id"].as_str().unwrap().to_owned(),
    )
}

/// A handler `code` at `url`, with a `lead_added` action on the pipeline's Unsorted stage;
/// the handler as created (its secret shown once).
pub async fn handler_on_lead_added(
    app: &TestApp,
    pipeline: &Pipeline,
    code: &str,
    url: &str,
) -> Value {
    let handler = app
        .create(
            "handlers",
            json!({"code": code, "name": code, "webhook_url": url, "settings": {}}),
        )
        .await;
    app.create(
        "actions",
        json!({"pipeline_id": pipeline.id, "status_ids": [pipeline.unsorted],
               "event": "lead_added", "handler": code}),
    )
    .await;
    handler
}

/// The error of the first failed webhook attempt among the events of `events` (a
/// `/api/v4/webhook_events` query), waiting up to 10 s for one; panics naming `what`.
pub async fn first_attempt_error(app: &TestApp, events: &str, what: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = app.get(events).await;
        let error = body["_embedded"]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["attempts"].as_array().cloned().unwrap_or_default())
            .find_map(|a| a["error"].as_str().map(str::to_owned));
        if let Some(error) = error {
            return error;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {what} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Steps 1–3: a site (shop.example, also serving blog.example), a form, a handler at the
/// receiver and a site-visit action on "First contact" for https://shop.example.
pub async fn setup(app: &TestApp, receiver: &Receiver, delay_seconds: u64) -> Setup {
    let pipeline = app.pipeline().await;
    let site = app
        .create("sites", json!({"name": "Shop", "url": "https://shop.example", "hosts": ["shop.example", "blog.example"]}))
        .await;
    let form = app
        .create(
            "forms",
            json!({"name": "Contact", "site_id": site["id"], "pipeline_id": pipeline.id,
                                "success_url": "https://shop.example/thanks"}),
        )
        .await;
    let handler = app
        .create("handlers", json!({"code": "notify", "name": "Notify", "webhook_url": receiver.url(),
                                   "action_multiple": false,
                                   "settings": {"message": {"name": "Message", "type": "text", "required": true}}}))
        .await;
    let action = app
        .create("actions", json!({"pipeline_id": pipeline.id, "status_ids": [pipeline.first_contact],
                                  "event": "site_visit", "handler": "notify", "site_url": "https://shop.example",
                                  "delay_seconds": delay_seconds,
                                  "settings": {"message": "Hi {{contact.name}}, lead {{lead.id}} {{lead.unknown}}"}}))
        .await;
    Setup {
        site_key: site["key"].as_str().unwrap().to_owned(),
        site_id: site["id"].as_u64().unwrap(),
        form_id: form["id"].as_str().unwrap().to_owned(),
        handler_secret: handler["secret"].as_str().unwrap().to_owned(),
        action_id: action["id"].as_u64().unwrap(),
        pipeline,
    }
}

/// Submits the form as t.js does (JSON); returns (lead id, unsorted uid, signed visitor id).
pub async fn submit_form(
    app: &TestApp,
    form_id: &str,
    vid: Option<&str>,
    name: &str,
) -> (u64, String, String) {
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{form_id}/submit")))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(
            json!({"vid": vid, "page": "https://shop.example/contact",
                     "fields": {"name": name, "phone": phone_of(name), "email": email_of(name)}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    (
        body["lead_id"].as_u64().unwrap(),
        body["uid"].as_str().unwrap().to_owned(),
        body["vid"].as_str().unwrap().to_owned(),
    )
}

/// A lead of contact `name` linked to a fresh browser, accepted into the action's stage.
/// Returns the lead id and the browser's signed id.
pub async fn linked_lead(app: &TestApp, s: &Setup, name: &str) -> (u64, String) {
    let (lead_id, uid, vid) = submit_form(app, &s.form_id, None, name).await;
    let (status, body) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (lead_id, vid)
}

/// The items of a list answer (`_embedded.<name>`); an empty list is a 204 with no body,
/// as amoCRM answers it.
pub fn items<'a>(body: &'a Value, name: &str) -> &'a Vec<Value> {
    static EMPTY: Vec<Value> = Vec::new();
    if body == &Value::String(String::new()) {
        return &EMPTY;
    }
    body["_embedded"][name]
        .as_array()
        .unwrap_or_else(|| panic!("no _embedded.{name} in {body}"))
}

/// A distinct email per contact name (footfall joins submissions of one contact).
pub fn email_of(name: &str) -> String {
    let slug: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase();
    format!("{slug}@example.com")
}

/// A distinct phone number per contact name.
pub fn phone_of(name: &str) -> String {
    let n = name
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    format!("+7 900 {:07}", n % 10_000_000)
}

/// Verifies a Standard Webhooks signature independently of footfall's signer.
pub fn signature_verifies(secret: &str, received: &Received) -> bool {
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = received.header("webhook-id");
    let ts = received.header("webhook-timestamp");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", received.body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    received
        .header("webhook-signature")
        .split(' ')
        .any(|s| s == expected)
}

/// Redis gets the counters of visits, forms and firings with the next page-view pipeline
/// or within the writer's one-second tick: the figures are read until they settle.
pub async fn stats_until(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..50 {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

/// One series of a `/metrics` text, `name{labels}` as printed (0 when it is not there).
pub fn metric_in(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

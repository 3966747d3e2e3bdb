//! Fairness between accounts, through the real binary: one account's handlers that
//! accept a connection and never answer hold at most the account's share of the delivery
//! slots, and another account's webhook goes out at once; one account's page views go to
//! Redis through writers (connections) of their own, never queued with another's.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::accounts::{ACCOUNT_B, SUBDOMAIN_B, TOKEN_B};
use crate::common::config_file::footfall_toml;
use crate::common::process::FootfallProcess;
use crate::common::redis_servers::RedisServer;
use crate::common::{
    self, KeysGuard, Receiver, TOKEN, TestApp, cookie_key, redis_url, submit_form, test_settings,
    unique_prefix,
};

/// A webhook receiver that accepts connections and never answers: it keeps every
/// connection open and counts them.
struct BlackHole {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl BlackHole {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Self { port, accepted }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// One account's site, form and site-visit actions, one per webhook URL.
struct Tenant {
    token: &'static str,
    host: &'static str,
    site_key: String,
    form_id: String,
    first_contact: u64,
}

async fn tenant(
    app: &TestApp,
    token: &'static str,
    host: &'static str,
    hooks: &[String],
) -> Tenant {
    let pipelines = app.get_as(token, "/api/v4/leads/pipelines").await;
    assert_eq!(pipelines.status, StatusCode::OK, "{}", pipelines.text);
    let p = &pipelines.body["_embedded"]["pipelines"][0];
    let first_contact = p["_embedded"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "First contact")
        .and_then(|s| s["id"].as_u64())
        .unwrap();
    let site_url = format!("https://{host}");
    let site = app
        .create_as(token, "sites", json!({"name": host, "url": site_url}))
        .await;
    let form = app
        .create_as(
            token,
            "forms",
            json!({"name": "Contact", "site_id": site["id"], "pipeline_id": p["id"]}),
        )
        .await;
    for (i, hook) in hooks.iter().enumerate() {
        let code = format!("hook{i}");
        app.create_as(
            token,
            "handlers",
            json!({"code": code, "name": code, "webhook_url": hook}),
        )
        .await;
        app.create_as(token, "actions", json!({"pipeline_id": p["id"], "status_ids": [first_contact],
                                               "event": "site_visit", "handler": code, "site_url": site_url}))
            .await;
    }
    Tenant {
        token,
        host,
        site_key: site["key"].as_str().unwrap().to_owned(),
        form_id: form["id"].as_str().unwrap().to_owned(),
        first_contact,
    }
}

/// A lead of the tenant linked to a fresh browser, in the actions' stage: its browser's
/// signed id.
async fn linked(app: &TestApp, t: &Tenant, name: &str) -> String {
    let (_, uid, vid) = submit_form(app, &t.form_id, None, name).await;
    let answer = app
        .post_as(
            t.token,
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": t.first_contact}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    vid
}

async fn visit(app: &TestApp, t: &Tenant, vid: &str) {
    let (status, _) = app
        .beacon(&t.site_key, Some(vid), &format!("https://{}/", t.host))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_black_hole_handlers_do_not_delay_another_accounts_webhook() {
    let _serial = common::HEAVY.lock().await;
    let prefix = unique_prefix();
    let _keys = KeysGuard::new(&redis_url(), &prefix);
    let config = footfall_toml(
        &redis_url(),
        &prefix,
        &cookie_key(),
        &format!(
            "[[accounts]]\naccount_id = {ACCOUNT_B}\nsubdomain = \"{SUBDOMAIN_B}\"\ntoken = \"{TOKEN_B}\"\n"
        ),
    );
    let config_path = std::env::temp_dir().join(format!("{prefix}-fair.toml"));
    std::fs::write(&config_path, config).unwrap();
    // Sixteen slots: four per handler, eight per account (the default half). The black
    // holes keep theirs for the whole test (the timeout is far away).
    let process = FootfallProcess::start_file_with_env(
        &config_path,
        &[
            ("FOOTFALL__DELIVERY__CONCURRENCY", "16"),
            ("FOOTFALL__DELIVERY__TIMEOUT_MS", "60000"),
            ("FOOTFALL__DELIVERY__LEASE_SECONDS", "120"),
        ],
    );
    let _ = std::fs::remove_file(&config_path);
    let mut settings = test_settings(common::Backend::Redis);
    settings.store.key_prefix = prefix.clone();
    let app = TestApp::attach(process.base.clone(), settings);

    let holes = [
        BlackHole::start().await,
        BlackHole::start().await,
        BlackHole::start().await,
        BlackHole::start().await,
    ];
    let hole_urls: Vec<String> = holes.iter().map(BlackHole::url).collect();
    let a = tenant(&app, TOKEN, "a-shop.example", &hole_urls).await;
    let receiver = Receiver::start().await;
    let b = tenant(&app, TOKEN_B, "b-shop.example", &[receiver.url()]).await;
    let mut a_browsers = Vec::new();
    for i in 0..60 {
        a_browsers.push(linked(&app, &a, &format!("Flood {i}")).await);
    }
    let b_browser = linked(&app, &b, "Bea").await;

    // A's flood: 40 visits, four webhooks each, to handlers that never answer.
    let (first, rest) = a_browsers.split_at(40);
    for vid in first {
        visit(&app, &a, vid).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = || holes.iter().map(BlackHole::accepted).sum::<usize>();
    while held() < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        held(),
        8,
        "account A holds its share of the slots: eight of sixteen"
    );

    // More of A's events arrive while B's visit happens.
    let flood = {
        let (app, rest, a) = (app.clone(), rest.to_vec(), Arc::new(a));
        tokio::spawn(async move {
            for vid in &rest {
                visit(&app, &a, vid).await;
            }
        })
    };
    let visited = Instant::now();
    visit(&app, &b, &b_browser).await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    flood.await.unwrap();
    assert_eq!(received.len(), 1, "account B's webhook was not sent");
    let waited = received[0].at.duration_since(visited);
    println!(
        "account B's webhook came {waited:?} after its visit, with account A's four black holes holding {} slots",
        held()
    );
    assert!(
        waited <= Duration::from_millis(250),
        "account B's webhook waited {waited:?} behind account A's black holes"
    );
    let event: Value = received[0].json();
    assert_eq!(event["account_id"], ACCOUNT_B, "{event}");
    assert_eq!(
        held(),
        8,
        "account A never holds more than its share, even after more of its events came"
    );
}

/// The Redis clients (`address:port`) that appended page views to a history of `account`
/// in `commands`, lines of `redis-cli monitor`: `time [db address] "RPUSH" "key" …`.
fn page_view_writers(commands: &str, account: u64) -> BTreeSet<String> {
    let history = format!(":p{account}");
    commands
        .lines()
        .filter_map(|line| {
            let (client, command) = line.split_once('[')?.1.split_once(']')?;
            // A script's own commands show as the client `lua` (a form keeps a history).
            let client = client.split_whitespace().nth(1).filter(|c| *c != "lua")?;
            let key = command
                .trim()
                .strip_prefix("\"RPUSH\" \"")?
                .split('"')
                .next()?;
            key.ends_with(&history).then(|| client.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_page_views_go_to_redis_apart_from_another_accounts() {
    // A Redis of its own, whose every command the test reads.
    let redis = RedisServer::start(false);
    let prefix = unique_prefix();
    let config = footfall_toml(
        &redis.url(),
        &prefix,
        &cookie_key(),
        &format!(
            "[[accounts]]\naccount_id = {ACCOUNT_B}\nsubdomain = \"{SUBDOMAIN_B}\"\ntoken = \"{TOKEN_B}\"\n"
        ),
    );
    let process = FootfallProcess::start(&config);
    let mut settings = test_settings(common::Backend::Redis);
    settings.store.key_prefix = prefix.clone();
    settings.store.redis_url = redis.url();
    let app = TestApp::attach(process.base.clone(), settings);
    let a = tenant(&app, TOKEN, "a-shop.example", &[]).await;
    let b = tenant(&app, TOKEN_B, "b-shop.example", &[]).await;

    // Both accounts' new browsers at once, on the process's one HTTP worker.
    let browsers = |t: &Tenant| {
        let url = format!("https://{}/", t.host);
        let app = app.clone();
        let site_key = t.site_key.clone();
        async move {
            let beacons = (0..30).map(|_| app.beacon(&site_key, None, &url));
            futures_util::future::join_all(beacons).await
        }
    };
    let ((a_sent, b_sent), commands) = redis
        .commands_during(futures_util::future::join(browsers(&a), browsers(&b)))
        .await;
    for (status, vid) in a_sent.iter().chain(&b_sent) {
        assert_eq!(*status, StatusCode::OK);
        assert!(vid.is_some());
    }
    let (a_writers, b_writers) = (
        page_view_writers(&commands, common::ACCOUNT),
        page_view_writers(&commands, ACCOUNT_B),
    );
    assert!(
        !a_writers.is_empty() && !b_writers.is_empty(),
        "both accounts' page views were written:\n{commands}"
    );
    // One HTTP worker (the test config's `workers = 1`): one writer each, however many
    // page views came at once.
    assert_eq!(
        (a_writers.len(), b_writers.len()),
        (1, 1),
        "a burst of page views opened a connection each: {a_writers:?}, {b_writers:?}"
    );
    assert!(
        a_writers.is_disjoint(&b_writers),
        "account A's page views went to Redis from {a_writers:?}, B's from {b_writers:?}: \
         one account's batch holds up the other's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_requests_and_the_scheduler_go_to_redis_on_connections_of_their_own() {
    // A Redis of its own, whose every command the test reads.
    let redis = RedisServer::start(false);
    let prefix = unique_prefix();
    let process = FootfallProcess::start(&footfall_toml(&redis.url(), &prefix, &cookie_key(), ""));
    // The connections footfall opened before its first request: the store's shared one
    // among them.
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    let opened_at_start: BTreeSet<String> = list
        .lines()
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("addr=")))
        .map(str::to_owned)
        .collect();
    let mut settings = test_settings(common::Backend::Redis);
    settings.store.key_prefix = prefix.clone();
    settings.store.redis_url = redis.url();
    let app = TestApp::attach(process.base.clone(), settings);
    let a = tenant(&app, TOKEN, "a-shop.example", &[]).await;
    let url = format!("https://{}/", a.host);
    // The worker's first round trips open its connection.
    assert_eq!(app.beacon(&a.site_key, None, &url).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // New browsers (each starts a visit in a request) while the scheduler polls (every
    // 100 ms in the test config).
    let (sent, commands) = redis
        .commands_during(async {
            let beacons = (0..20).map(|_| app.beacon(&a.site_key, None, &url));
            let sent = futures_util::future::join_all(beacons).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
            sent
        })
        .await;
    assert!(sent.iter().all(|(status, _)| *status == StatusCode::OK));
    let clients = |wanted: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
        commands
            .lines()
            .filter_map(|line| {
                let (client, command) = line.split_once('[')?.1.split_once(']')?;
                let client = client.split_whitespace().nth(1).filter(|c| *c != "lua")?;
                wanted(command).then(|| client.to_owned())
            })
            .collect()
    };
    // A visit's start: the script on the browser's history of account A.
    let history = format!(":p{}\" ", common::ACCOUNT);
    let requests = clients(&|c| c.trim_start().starts_with("\"EVALSHA\"") && c.contains(&history));
    // The scheduler's claims and looks at the schedule.
    let scheduler = clients(&|c| c.contains("}:due\""));
    assert!(
        !requests.is_empty() && !scheduler.is_empty(),
        "visits started and the scheduler polled:\n{commands}"
    );
    assert!(
        requests.is_disjoint(&opened_at_start),
        "the worker's requests went to Redis from {requests:?}, among the connections \
         opened before any request ({opened_at_start:?}): not on one of the worker's own"
    );
    assert!(
        requests.is_disjoint(&scheduler),
        "the worker's requests went to Redis from {requests:?}, the scheduler's claims from \
         {scheduler:?}: every answer read on one thread and handed to the other"
    );
}

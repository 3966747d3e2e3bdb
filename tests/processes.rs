//! Scheduled webhooks across real processes: two footfall instances on one Redis share
//! the schedule without sending anything twice; a SIGKILLed instance's jobs are taken
//! over; jobs survive a restart of footfall, and of Redis with AOF.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Semaphore;

use common::process::{FootfallProcess, RedisServer};
use common::{Receiver, Reply, Setup, TestApp, setup, submit_form, test_settings, unique_prefix};
use footfall::config::Settings;

/// The configuration every process of one test shares (same Redis, prefix and keys).
fn config(redis_url: &str, prefix: &str, cookie_key: &str) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 1
static_dir = "{static_dir}"

[store]
redis_url = "{redis_url}"
key_prefix = "{prefix}"

[cookies]
keys = ["{cookie_key}"]

[delivery]
allow_private_targets = true
retry_schedule_seconds = [1, 1, 1]
jitter_ratio = 0.0
timeout_ms = 2000
lease_seconds = 3
poll_interval_ms = 100

[limits]
per_ip_per_second = 0
per_site_per_second = 0

[[accounts]]
account_id = {account}
subdomain = "{subdomain}"
token = "{token}"
"#,
        static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/static"),
        account = common::ACCOUNT,
        subdomain = common::SUBDOMAIN,
        token = common::TOKEN,
    )
}

struct Cluster {
    redis_url: String,
    prefix: String,
    config: String,
}

impl Cluster {
    fn on(redis_url: String) -> Self {
        let prefix = unique_prefix();
        let config = config(&redis_url, &prefix, &common::cookie_key());
        Self {
            redis_url,
            prefix,
            config,
        }
    }

    fn start(&self) -> FootfallProcess {
        FootfallProcess::start(&self.config)
    }

    fn client(&self, process: &FootfallProcess) -> TestApp {
        let mut settings: Settings = test_settings(common::Backend::Redis);
        settings.store.redis_url = self.redis_url.clone();
        settings.store.key_prefix = self.prefix.clone();
        TestApp::attach(process.base.clone(), settings)
    }
}

/// Creates `n` scheduled jobs: for each, a lead from a form (through the instances in
/// turn, as a load balancer would), accepted into the action's stage, and a visit of its
/// browser — which schedules the delayed site-visit action.
async fn schedule_jobs(apps: &[TestApp], s: &Setup, n: usize) {
    let started = std::time::Instant::now();
    let slots = Arc::new(Semaphore::new(32));
    let apps: Vec<Arc<TestApp>> = apps
        .iter()
        .map(|a| Arc::new(TestApp::attach(a.base.clone(), a.settings.clone())))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = apps[i % apps.len()].clone();
        let (form, first_contact, site_key) = (
            s.form_id.clone(),
            s.pipeline.first_contact,
            s.site_key.clone(),
        );
        let permit = slots.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let (_, uid, vid) = submit_form(&app, &form, None, &format!("Lead {i}")).await;
            let (status, body) = app
                .post(
                    &format!("/api/v4/leads/unsorted/{uid}/accept"),
                    json!({"status_id": first_contact}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let (status, _) = app
                .beacon(&site_key, Some(&vid), "https://shop.example/")
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT);
            drop(permit);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    println!("scheduled {n} jobs in {:?}", started.elapsed());
}

/// The tests of this file start several processes each; one at a time keeps their timing
/// apart on a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deliveries received, by event id.
fn by_event(receiver: &Receiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in receiver.received() {
        *counts.entry(r.header("webhook-id").to_owned()).or_insert(0) += 1;
    }
    counts
}

async fn wait_for_events(
    receiver: &Receiver,
    n: usize,
    timeout: Duration,
) -> HashMap<String, usize> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let counts = by_event(receiver);
        if counts.len() >= n || std::time::Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delivered_by(app: &TestApp) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("footfall_webhook_attempts_total{outcome=\"delivered\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_a_thousand_jobs_each_exactly_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::on(common::redis_url());
    let (a, b) = (cluster.start(), cluster.start());
    let apps = [cluster.client(&a), cluster.client(&b)];
    let receiver = Receiver::start().await;
    let s = setup(&apps[0], &receiver, 3).await;

    schedule_jobs(&apps, &s, 1000).await;
    let counts = wait_for_events(&receiver, 1000, Duration::from_secs(60)).await;
    // Give a second for anything sent twice to arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts_after = by_event(&receiver);
    let twice = counts_after.values().filter(|c| **c > 1).count();
    println!(
        "1000 jobs: {} delivered, {} sent twice; instance A delivered {}, B {}",
        counts.len(),
        twice,
        delivered_by(&apps[0]).await,
        delivered_by(&apps[1]).await
    );
    assert_eq!(counts_after.len(), 1000, "some jobs were not delivered");
    assert_eq!(twice, 0, "some jobs were delivered twice");
    assert_eq!(receiver.count(), 1000);
    apps[0].cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_leaves_its_jobs_to_the_other() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::on(common::redis_url());
    let (mut a, b) = (cluster.start(), cluster.start());
    let apps = [cluster.client(&a), cluster.client(&b)];
    let receiver = Receiver::start().await;
    // A slow receiver keeps many deliveries in flight at the moment of the kill.
    receiver.script([Reply::Slow(Duration::from_millis(300)); 1000]);
    // Due 10 s after each visit: every job is scheduled before the first one fires.
    let s = setup(&apps[0], &receiver, 10).await;

    schedule_jobs(&apps, &s, 1000).await;
    while receiver.count() < 150 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.kill();
    let killed_at = receiver.count();
    assert!(
        killed_at < 900,
        "the kill came after the deliveries ({killed_at} received)"
    );
    let counts = wait_for_events(&receiver, 1000, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = if counts.len() == 1000 {
        by_event(&receiver)
    } else {
        counts
    };
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    println!(
        "SIGKILL after {killed_at} deliveries: {} of 1000 jobs delivered, {duplicates} delivered twice \
         (only the deliveries in flight at the kill may be: at most 64, the instance's concurrency)",
        counts.len()
    );
    assert_eq!(
        counts.len(),
        1000,
        "jobs were lost with the killed instance"
    );
    assert!(
        duplicates <= 64,
        "{duplicates} duplicates: more than the killed instance had in flight"
    );
    apps[1].cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_jobs_fire_after_footfall_restarts() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::on(common::redis_url());
    let mut a = cluster.start();
    let app = cluster.client(&a);
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 5).await;
    schedule_jobs(std::slice::from_ref(&app), &s, 50).await;

    let stopped_in = a.terminate();
    assert_eq!(receiver.count(), 0, "jobs fired before their time");
    println!("SIGTERM with 50 jobs pending: stopped in {stopped_in:?}");
    let restarted = cluster.start();
    let counts = wait_for_events(&receiver, 50, Duration::from_secs(30)).await;
    assert_eq!(counts.len(), 50, "jobs were lost across the restart");
    assert!(counts.values().all(|c| *c == 1));
    cluster.client(&restarted).cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_redis_crash_with_aof() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut redis = RedisServer::start(true);
    let cluster = Cluster::on(redis.url());
    let a = cluster.start();
    let app = cluster.client(&a);
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 4).await;
    schedule_jobs(std::slice::from_ref(&app), &s, 50).await;

    // Redis dies without saving and comes back on the same port and AOF file.
    redis.crash_and_restart(Duration::from_millis(500));
    let counts = wait_for_events(&receiver, 50, Duration::from_secs(30)).await;
    assert_eq!(counts.len(), 50, "jobs were lost with Redis");
    let (status, leads) = app.get("/api/v4/leads?limit=250").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(leads["_embedded"]["leads"].as_array().unwrap().len(), 50);
}

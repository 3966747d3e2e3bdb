//! Several footfall processes sharing one store (a Redis, a Redis Cluster, or a primary
//! found through Redis Sentinel), and the delayed jobs the tests push through them:
//! scheduling them as a load balancer would, and counting deliveries by event id at the
//! receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Semaphore;

use super::config_file::footfall_toml_on;
use super::process::FootfallProcess;
use super::{Receiver, Setup, TestApp, submit_form, test_settings, unique_prefix};

/// The configuration every process of one deployment shares (store, prefix and keys).
pub struct Deployment {
    config: String,
    redis_url: String,
    prefix: String,
    /// The deployment's keys go with it (a Redis Cluster goes whole).
    _keys: Option<super::KeysGuard>,
}

impl Deployment {
    pub fn on_redis(redis_url: String) -> Self {
        let prefix = unique_prefix();
        let config = footfall_toml_on(
            &format!("redis_url = \"{redis_url}\""),
            &prefix,
            &super::cookie_key(),
            "",
        );
        Self {
            _keys: Some(super::KeysGuard::new(&redis_url, &prefix)),
            config,
            redis_url,
            prefix,
        }
    }

    pub fn on_cluster(urls: &[String]) -> Self {
        let prefix = unique_prefix();
        let list = urls
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = footfall_toml_on(
            &format!("redis_cluster_urls = [{list}]"),
            &prefix,
            &super::cookie_key(),
            "",
        );
        Self {
            config,
            redis_url: String::new(),
            prefix,
            _keys: None,
        }
    }

    /// On any store: `store` holds the `[store]` table's lines (the location, and any
    /// other setting of the store).
    pub fn on_store(store: &str) -> Self {
        let prefix = unique_prefix();
        let config = footfall_toml_on(store, &prefix, &super::cookie_key(), "");
        Self {
            config,
            redis_url: String::new(),
            prefix,
            // The test's own servers go whole.
            _keys: None,
        }
    }

    pub fn start(&self) -> FootfallProcess {
        FootfallProcess::start(&self.config)
    }

    /// An API client of one process (its cleanup removes the deployment's keys).
    pub fn client(&self, process: &FootfallProcess) -> TestApp {
        let mut settings = test_settings(super::Backend::Redis);
        settings.store.redis_url = self.redis_url.clone();
        settings.store.key_prefix = self.prefix.clone();
        TestApp::attach(process.base.clone(), settings)
    }
}

/// Creates `n` scheduled jobs: for each, a lead from a form (through the instances in
/// turn, as a load balancer would), accepted into the action's stage, and a visit of its
/// browser — which schedules the site-visit action.
pub async fn schedule_jobs(apps: &[TestApp], s: &Setup, n: usize) {
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(32));
    let apps: Vec<Arc<TestApp>> = apps.iter().map(|a| Arc::new(a.clone())).collect();
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
            // Sent again while it answers 503, as its Retry-After asks (a loaded machine's
            // store round trip may run out of its time); a 404 after a 503 means the first
            // was done.
            let accept = format!("/api/v4/leads/unsorted/{uid}/accept");
            let ((status, body), refused) = super::resent_while_503(
                10,
                Duration::from_secs(1),
                |(s, _)| *s,
                || app.post(&accept, json!({"status_id": first_contact})),
            )
            .await;
            let done_before = refused > 0 && status == StatusCode::NOT_FOUND;
            assert!(status == StatusCode::OK || done_before, "{status} {body}");
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

/// Deliveries received, by event id.
pub fn by_event(receiver: &Receiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in receiver.received() {
        *counts.entry(r.header("webhook-id").to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Waits until `n` distinct events arrived (or the timeout).
pub async fn wait_for_events(
    receiver: &Receiver,
    n: usize,
    timeout: Duration,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let counts = by_event(receiver);
        if counts.len() >= n || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many webhooks an instance delivered (from its /metrics).
pub async fn delivered_by(app: &TestApp) -> u64 {
    app.metric("footfall_webhook_attempts_total{outcome=\"delivered\"}")
        .await
}

//! Quotas shared by every instance (`[quotas]`): two footfall processes on one Redis admit
//! what one admits — the burst included — never twice as much; a refusal is a 429 with
//! `Retry-After` that stores nothing; refusals are counted in `/metrics`, and the account's
//! use is listed for the console. The embedded store keeps the same quotas.

use std::time::Instant;

use footfall::domain::quota::FULL_BUCKET_TRUSTED_US;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::config_file::footfall_toml;
use crate::common::process::FootfallProcess;
use crate::common::redis_servers::RedisServer;
use crate::common::{
    self, Backend, Receiver, Setup, TestApp, WithKeys, metric_in, setup, test_settings,
};

/// `n` footfall processes on the shared Redis with one key prefix and `quotas`.
fn instances(n: usize, quotas: &str) -> (WithKeys<Vec<FootfallProcess>>, Vec<TestApp>) {
    instances_on(&common::redis_url(), n, quotas)
}

/// The processes come with the guard of their keys, which removes them once the processes
/// have stopped (however the caller orders its locals).
fn instances_on(
    redis_url: &str,
    n: usize,
    quotas: &str,
) -> (WithKeys<Vec<FootfallProcess>>, Vec<TestApp>) {
    let prefix = common::unique_prefix();
    let keys = common::KeysGuard::new(redis_url, &prefix);
    let toml = footfall_toml(
        redis_url,
        &prefix,
        &common::cookie_key(),
        &format!("[quotas]\n{QUOTAS_OFF}{quotas}"),
    );
    let processes: Vec<_> = (0..n).map(|_| FootfallProcess::start(&toml)).collect();
    let apps = processes
        .iter()
        .map(|p| {
            let mut settings = test_settings(Backend::Redis);
            settings.store.key_prefix = prefix.clone();
            settings.store.redis_url = redis_url.to_owned();
            TestApp::attach(p.base.clone(), settings)
        })
        .collect();
    (WithKeys::new(keys, processes), apps)
}

/// Quotas off but the site's and the address's form posts; a test's own lines follow
/// (TOML refuses a key twice, so they name keys not listed here).
const QUOTAS_OFF: &str = "page_views_per_second_per_address = 0\n\
    page_views_per_second_per_account = 0\n\
    new_visitors_per_hour_per_address = 0\n\
    new_visitors_per_hour_per_account = 0\n\
    form_posts_per_hour_per_account = 0\n";

/// Sends `n` beacons at once, spread over `apps` in turn; answers the statuses.
async fn beacons(apps: &[TestApp], s: &Setup, n: usize, vid: Option<&str>) -> Vec<StatusCode> {
    join_all((0..n).map(|i| {
        let app = &apps[i % apps.len()];
        async move {
            app.beacon(&s.site_key, vid, "https://shop.example/")
                .await
                .0
        }
    }))
    .await
}

async fn form_posts(apps: &[TestApp], s: &Setup, n: usize) -> Vec<reqwest::Response> {
    join_all((0..n).map(|i| {
        let app = &apps[i % apps.len()];
        async move {
            app.client
                .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
                .header("content-type", "text/plain;charset=UTF-8")
                .body(json!({"page": "https://shop.example/contact",
                             "fields": {"name": format!("Junk {i}"), "email": format!("junk{i}@example.com")}})
                    .to_string())
                .send()
                .await
                .unwrap()
        }
    }))
    .await
}

fn admitted(statuses: &[StatusCode]) -> usize {
    statuses.iter().filter(|s| s.is_success()).count()
}

#[tokio::test]
async fn new_visitors_admitted_by_two_instances_are_what_one_admits() {
    let _serial = common::HEAVY.lock().await;
    // 12 new visitors an hour per site: an hour's worth at once, then one per 5 minutes.
    let quotas = "new_visitors_per_hour_per_site = 12\npage_views_per_second_per_site = 0\n";
    let receiver = Receiver::start().await;
    let mut counts = Vec::new();
    for n in [1, 2] {
        let (_processes, apps) = instances(n, quotas);
        let s = setup(&apps[0], &receiver, 0).await;
        let statuses = beacons(&apps, &s, 40, None).await;
        assert!(
            statuses
                .iter()
                .all(|s| [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS].contains(s)),
            "{statuses:?}"
        );
        counts.push(admitted(&statuses));
        // One more new browser is refused too, and gets no id.
        let (status, vid) = apps[0]
            .beacon(&s.site_key, None, "https://shop.example/")
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(vid.is_none());
        let text = apps[n - 1].metrics().await;
        assert!(
            metric_in(
                &text,
                "footfall_quota_refused_total{quota=\"new_visitors\",scope=\"site\"}"
            ) > 0,
            "refusals are counted on every instance that refused:\n{text}"
        );
    }
    assert_eq!(counts, [12, 12], "one instance, then two on one Redis");
}

#[tokio::test]
async fn a_page_view_burst_is_shared_by_two_instances() {
    let _serial = common::HEAVY.lock().await;
    // 2 page views a second per site, 5 seconds' worth (10) at once.
    let quotas = "page_views_per_second_per_site = 2\npage_view_burst_seconds = 5\n";
    let receiver = Receiver::start().await;
    let (_processes, apps) = instances(2, quotas);
    let s = setup(&apps[0], &receiver, 0).await;
    let started = Instant::now();
    let statuses = beacons(&apps, &s, 60, None).await;
    let refill = (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    let n = admitted(&statuses);
    // Ten at once, plus what the rate refilled while the 60 were answered; two separate
    // budgets would have admitted twenty.
    assert!(
        (10..=10 + refill).contains(&n),
        "{n} admitted (refill {refill})"
    );
    assert!(n < 20, "{n} admitted: the burst was not shared");
    eprintln!("admitted {n} of 60, refill {refill}");
}

/// The charge scripts sent to Redis that name a counter (not the commands they run).
fn charges_of(commands: &str, counter: &str) -> usize {
    commands
        .lines()
        .filter(|l| l.contains("\"EVALSHA\"") && l.contains(counter))
        .count()
}

#[tokio::test]
async fn a_site_found_full_is_refused_by_the_instance_without_asking_redis() {
    let _serial = common::HEAVY.lock().await;
    let redis = RedisServer::start(false);
    // 12 new visitors an hour per site, all at once; then one per 5 minutes.
    let quotas = "new_visitors_per_hour_per_site = 12\npage_views_per_second_per_site = 0\n";
    let receiver = Receiver::start().await;
    let (_processes, apps) = instances_on(&redis.url(), 1, quotas);
    let s = setup(&apps[0], &receiver, 0).await;
    let (_, vid) = apps[0]
        .beacon(&s.site_key, None, "https://shop.example/")
        .await;
    let vid = vid.expect("the first new browser is admitted");
    assert_eq!(admitted(&beacons(&apps, &s, 11, None).await), 11);
    // Redis refuses the next new browser, and the instance learns the site is full: it
    // trusts that word for FULL_BUCKET_TRUSTED_US, then asks Redis again.
    let learned = Instant::now();
    assert_eq!(
        beacons(&apps, &s, 1, None).await,
        [StatusCode::TOO_MANY_REQUESTS]
    );
    let (statuses, commands) = redis.commands_during(beacons(&apps, &s, 200, None)).await;
    let trusted = learned.elapsed().as_micros() < FULL_BUCKET_TRUSTED_US as u128;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let charges = charges_of(&commands, ":q:nv:site:");
    // Within the trust, not one; a loaded machine that took longer sees the word
    // renewed now and then, never asked for each refusal.
    let most = if trusted { 0 } else { 200 / 2 };
    eprintln!(
        "200 refusals in {:?}, {charges} asked Redis",
        learned.elapsed()
    );
    assert!(
        charges <= most,
        "200 refusals asked Redis {charges} times:\n{commands}"
    );
    // A browser seen before is not held back by the new-visitor quota.
    let known = apps[0]
        .beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    assert!(known.0.is_success(), "{known:?}");
    let text = apps[0].metrics().await;
    assert_eq!(
        metric_in(
            &text,
            "footfall_quota_refused_total{quota=\"new_visitors\",scope=\"site\"}"
        ),
        201,
        "every refusal is counted, whoever made it:\n{text}"
    );
    let refused_here = metric_in(&text, "footfall_quota_refused_here_total");
    assert!(
        (200 - most as u64..=200).contains(&refused_here),
        "the instance's own refusals are counted apart ({refused_here}):\n{text}"
    );
}

#[tokio::test]
async fn a_site_found_full_still_admits_its_rate() {
    let _serial = common::HEAVY.lock().await;
    let redis = RedisServer::start(false);
    // 20 page views a second per site, a second's worth at once; a beacon every ~5 ms for
    // three seconds from one instance: the burst, then every slot of the rate.
    let quotas = "page_views_per_second_per_site = 20\npage_view_burst_seconds = 1\n";
    let receiver = Receiver::start().await;
    let (_processes, apps) = instances_on(&redis.url(), 1, quotas);
    let s = setup(&apps[0], &receiver, 0).await;
    let started = Instant::now();
    let (_, vid) = apps[0]
        .beacon(&s.site_key, None, "https://shop.example/")
        .await;
    let vid = vid.expect("the first beacon is admitted");
    let send = async {
        let mut statuses = Vec::new();
        let first_sent = started.elapsed();
        let mut last_sent = first_sent;
        while started.elapsed() < std::time::Duration::from_secs(3) {
            last_sent = started.elapsed();
            let (status, _) = apps[0]
                .beacon(&s.site_key, Some(&vid), "https://shop.example/")
                .await;
            statuses.push(status);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        (statuses, last_sent - first_sent)
    };
    let ((statuses, sending), commands) = redis.commands_during(send).await;
    let sent = statuses.len() + 1;
    let n = admitted(&statuses) + 1;
    // The burst, and a slot of the rate each 50 ms: at least while the loop sent (the
    // bucket is full when it starts, and one slot may straddle its last beacon), at most
    // from the first beacon to the end. Slots of the pause before the loop (the monitor
    // starting) refill a full bucket: they are lost, not owed.
    let least = 20 + (20.0 * sending.as_secs_f64()).floor() as usize - 1;
    let most = 20 + (20.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    let charges = charges_of(&commands, ":q:pv:site:");
    eprintln!(
        "admitted {n} of {sent} (the bucket allows {least}..={most}), {charges} charges sent to Redis"
    );
    assert!(
        (least..=most).contains(&n),
        "{n} admitted, the bucket allows {least}..={most}"
    );
    // The instance passed on about one beacon a slot, not the ~10 a slot it received.
    assert!(charges < sent / 2, "{charges} charges for {sent} beacons");
}

#[tokio::test]
async fn a_refused_request_gets_429_with_retry_after_and_stores_nothing() {
    let _serial = common::HEAVY.lock().await;
    // Three form posts an hour per address.
    let quotas = "form_posts_per_hour_per_address = 3\npage_views_per_second_per_site = 0\nnew_visitors_per_hour_per_site = 0\n";
    let receiver = Receiver::start().await;
    let (_processes, apps) = instances(2, quotas);
    let s = setup(&apps[0], &receiver, 0).await;
    let responses = form_posts(&apps, &s, 8).await;
    let mut created = 0;
    for r in responses {
        match r.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=1200).contains(&wait), "Retry-After {wait}");
                assert_eq!(
                    r.headers()["content-type"].to_str().unwrap(),
                    "application/problem+json"
                );
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["status"], 429, "{body}");
                assert!(
                    body["detail"]
                        .as_str()
                        .unwrap()
                        .contains("quota: form_posts per address"),
                    "the answer names the quota: {body}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 3);
    // A plain HTML form over the quota gets a page a person can read, with the same wait.
    let anna = [("name", "Anna"), ("email", "anna@example.com")];
    let response = apps[0].post_form_as_browser(&s.form_id, &anna).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1200).contains(&wait), "Retry-After {wait}");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .starts_with("<!doctype html>")
    );
    let (_, list) = apps[1].get("/api/v4/leads/unsorted").await;
    let entries = list["_embedded"]["unsorted"].as_array().map_or(0, Vec::len);
    assert_eq!(entries, 3, "refused posts left no Unsorted entry");
    let (_, leads) = apps[0].get("/api/v4/leads").await;
    assert_eq!(
        leads["_embedded"]["leads"].as_array().map_or(0, Vec::len),
        3
    );
}

#[tokio::test]
async fn the_console_reads_the_accounts_use_of_its_quotas() {
    let _serial = common::HEAVY.lock().await;
    let quotas = "form_posts_per_hour_per_site = 50\nnew_visitors_per_hour_per_site = 100\n";
    let receiver = Receiver::start().await;
    let (_processes, apps) = instances(2, quotas);
    let s = setup(&apps[0], &receiver, 0).await;
    form_posts(&apps, &s, 4).await;
    beacons(&apps, &s, 7, None).await;
    let (status, body) = apps[1].get("/api/v4/quotas").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let line = |quota: &str, scope: &str| {
        body["quotas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["quota"] == quota && q["scope"] == scope)
            .cloned()
            .unwrap_or_else(|| panic!("no {quota}/{scope} in {body}"))
    };
    let posts = line("form_posts", "site");
    assert_eq!(posts["used"], 4, "{posts}");
    assert_eq!(posts["burst"], 50);
    assert_eq!(posts["rate"], 50);
    assert_eq!(posts["period_seconds"], 3600);
    assert_eq!(line("new_visitors", "site")["used"], 7);
    assert_eq!(posts["site_id"], s.site_id, "{posts}");
    // The account's page-view quota is off here: not listed.
    assert!(
        !body.to_string().contains("\"scope\":\"account\""),
        "{body}"
    );
    // Without a token: refused.
    let anonymous = apps[0]
        .client
        .get(apps[0].url("/api/v4/quotas"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_embedded_store_keeps_the_same_quotas() {
    let mut settings = test_settings(Backend::Memory);
    settings.quotas.new_visitors_per_hour_per_address = 5;
    settings.quotas.form_posts_per_hour_per_site = 2;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let apps = [app.clone()];
    assert_eq!(admitted(&beacons(&apps, &s, 9, None).await), 5);
    let posts = form_posts(&apps, &s, 4).await;
    let created = posts
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 2);
}

#[tokio::test]
async fn page_views_are_still_charged_after_redis_forgets_its_scripts() {
    let _serial = common::HEAVY.lock().await;
    // 2 page views a second per site, 3 at once; a restarted server or a promoted replica
    // has no scripts: the writer loads its charge script again. A Redis of the test's own:
    // on the shared one, another test could load the scripts again in between (and the
    // NOSCRIPT path might never run here), and a flush there disturbs the others.
    let server = RedisServer::start(false);
    let quotas = "page_views_per_second_per_site = 2\npage_view_burst_seconds = 1\n";
    let receiver = Receiver::start().await;
    let (_processes, apps) = instances_on(&server.url(), 1, quotas);
    let s = setup(&apps[0], &receiver, 0).await;
    let first = beacons(&apps, &s, 1, None).await;
    assert_eq!(first, [StatusCode::OK]);
    // The charges are answered NOSCRIPT, and the writer loads the script again.
    let statuses = server
        .with_scripts_forgotten(beacons(&apps, &s, 6, None))
        .await;
    // Two a second: of six at once, the bucket's two (and what refilled since the first).
    let n = admitted(&statuses);
    assert!((1..=3).contains(&n), "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS].contains(s)),
        "no 503: {statuses:?}"
    );
}

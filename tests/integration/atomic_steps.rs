//! The steps that touch many keys are single store operations: counted round trips (by
//! footfall itself, in `footfall_store_round_trips_total{route}` of a process of the
//! test's own), and all-or-nothing when the store refuses a submission's script.

use crate::common;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::config_file::footfall_toml;
use crate::common::process::FootfallProcess;
use crate::common::redis_servers::RedisServer;
use crate::common::{Backend, Receiver, TestApp, WithKeys, setup, submit_form, test_settings};

/// A footfall process on `redis_url` with a visit gap of [`common::VISIT_GAP_SECS`] (its
/// keys removed once it has stopped), and its API client.
pub(crate) fn start(redis_url: &str) -> (WithKeys<FootfallProcess>, TestApp) {
    let prefix = common::unique_prefix();
    let keys = common::KeysGuard::new(redis_url, &prefix);
    let process = FootfallProcess::start(&footfall_toml(
        redis_url,
        &prefix,
        &common::cookie_key(),
        // The shipped quotas on: their charge rides the same round trips.
        &format!(
            "[tracking]\nvisit_idle_seconds = {}\n[quotas]\n",
            common::VISIT_GAP_SECS
        ),
    ));
    let mut settings = test_settings(Backend::Redis);
    settings.store.redis_url = redis_url.to_owned();
    settings.store.key_prefix = prefix;
    let app = TestApp::attach(process.base.clone(), settings);
    (WithKeys::new(keys, process), app)
}

/// The round trips the route's requests have made so far.
async fn round_trips(app: &TestApp, route: &str) -> u64 {
    app.metric(&format!(
        "footfall_store_round_trips_total{{route=\"{route}\"}}"
    ))
    .await
}

/// The round trips of one request.
pub(crate) async fn counted<F: std::future::Future>(
    app: &TestApp,
    route: &str,
    request: F,
) -> (F::Output, u64) {
    let before = round_trips(app, route).await;
    let output = request.await;
    (output, round_trips(app, route).await - before)
}

#[tokio::test]
async fn a_submission_and_a_linked_visits_first_page_view_take_three_round_trips_each() {
    let (_process, app) = start(&common::redis_url());
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    // Two more site-visit actions on the same stage: the count must not grow with them.
    for message in ["second", "third"] {
        app.create("actions", json!({"pipeline_id": s.pipeline.id, "status_ids": [s.pipeline.first_contact],
                                     "event": "site_visit", "handler": "notify", "site_url": "https://shop.example",
                                     "delay_seconds": 0, "settings": {"message": message}}))
            .await;
    }
    // And a lead_added action on Unsorted: a submission stores its event too.
    app.create(
        "actions",
        json!({"pipeline_id": s.pipeline.id, "status_ids": [s.pipeline.unsorted],
                                 "event": "lead_added", "handler": "notify",
                                 "settings": {"message": "new lead"}}),
    )
    .await;
    let form_route = "/v1/forms/{form_id}/submit";
    // A first submission and page view read the catalog into this instance's caches.
    submit_form(&app, &s.form_id, None, "Warm Up").await;
    app.beacon(&s.site_key, None, "https://shop.example/").await;

    let ((lead, uid, vid), trips) = counted(
        &app,
        form_route,
        submit_form(&app, &s.form_id, None, "Anna"),
    )
    .await;
    assert!(trips <= 3, "a submission took {trips} round trips");
    assert_eq!(app.events_of(lead).await.len(), 1, "lead_added fired");
    let (status, _) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // A later visit of the linked browser: its first page view fires the three actions.
    common::wait_out_the_gap().await;
    let ((status, _), trips) = counted(
        &app,
        "/v1/collect",
        app.beacon(&s.site_key, Some(&vid), "https://shop.example/"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        trips <= 3,
        "the first page view of a visit took {trips} round trips"
    );
    assert_eq!(
        app.events_of(lead).await.len(),
        1 + 3,
        "each site-visit action fired"
    );
    // A page view inside the running visit: one round trip.
    let (_, trips) = counted(
        &app,
        "/v1/collect",
        app.beacon(&s.site_key, Some(&vid), "https://shop.example/pricing"),
    )
    .await;
    assert_eq!(trips, 1);
}

async fn redis(url: &str, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut con).await.unwrap()
}

async fn count(app: &TestApp, path: &str, embedded: &str) -> usize {
    let (status, body) = app.get(path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["_embedded"][embedded].as_array().map_or(0, Vec::len)
}

/// The store refuses footfall's scripts (EVAL and EVALSHA revoked) before a submission:
/// its writes, one script, are refused whole. (Not a failure in the middle of a script:
/// Redis runs a script whole or not at all.)
#[tokio::test]
async fn a_submission_whose_script_the_store_refuses_leaves_nothing_and_answers_503() {
    // A Redis of the test's own, where footfall's user may be refused scripts.
    let server = RedisServer::start(false);
    let admin = server.url();
    redis(
        &admin,
        &[
            "ACL",
            "SETUSER",
            "ff",
            "on",
            ">secret-pw",
            "~*",
            "&*",
            "+@all",
        ],
    )
    .await;
    let url = format!("redis://ff:secret-pw@127.0.0.1:{}", server.port);
    let (_process, app) = start(&url);
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    submit_form(&app, &s.form_id, None, "First").await;

    // From now on the store refuses footfall's scripts (plain commands still run).
    redis(&admin, &["ACL", "SETUSER", "ff", "-eval", "-evalsha"]).await;
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .json(&json!({"page": "https://shop.example/contact",
                      "fields": {"name": "Bob", "phone": "+7 900 765-43-21", "email": "bob@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));

    // Nothing of Bob: no lead, no Unsorted entry, no contact index.
    redis(&admin, &["ACL", "SETUSER", "ff", "+@all"]).await;
    assert_eq!(count(&app, "/api/v4/leads", "leads").await, 1);
    assert_eq!(count(&app, "/api/v4/leads/unsorted", "unsorted").await, 1);
    let (_, search) = app.get("/api/v4/leads?query=bob").await;
    assert!(
        search["_embedded"]["leads"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{search}"
    );
    let keys = redis(&admin, &["KEYS", "*"]).await;
    let mut con = redis::Client::open(admin.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for key in Vec::<String>::from_redis_value(keys).unwrap() {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        let dump: Value = match kind.as_str() {
            "hash" => json!(
                redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async::<Vec<String>>(&mut con)
                    .await
                    .unwrap()
            ),
            "list" => json!(
                redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async::<Vec<String>>(&mut con)
                    .await
                    .unwrap()
            ),
            "string" => json!(String::from_utf8_lossy(
                &redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Vec<u8>>(&mut con)
                    .await
                    .unwrap()
            )),
            "set" => json!(
                redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async::<Vec<String>>(&mut con)
                    .await
                    .unwrap()
            ),
            "zset" => json!(
                redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async::<Vec<String>>(&mut con)
                    .await
                    .unwrap()
            ),
            // A type this dump cannot read would hide what it holds.
            other => panic!("{key} is a {other}: the dump reads no such key"),
        };
        assert!(
            !dump.to_string().contains("bob@example.com"),
            "{key} holds Bob: {dump}"
        );
    }

    // The client's retry succeeds, once.
    let (lead, _, _) = submit_form(&app, &s.form_id, None, "Bob").await;
    assert!(lead > 0);
    assert_eq!(count(&app, "/api/v4/leads", "leads").await, 2);
    assert_eq!(count(&app, "/api/v4/leads/unsorted", "unsorted").await, 2);
}

use redis::FromRedisValue;

/// A form made after this instance cached the catalog is found at once: the cached
/// snapshot, older than the form, is read again.
#[tokio::test]
async fn a_new_forms_first_submission_is_taken_after_the_catalog_was_cached() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    submit_form(&app, &s.form_id, None, "First").await;
    let site = app
        .create(
            "sites",
            json!({"name": "Blog", "url": "https://blog2.example"}),
        )
        .await;
    let form = app
        .create(
            "forms",
            json!({"name": "Newsletter", "site_id": site["id"], "pipeline_id": s.pipeline.id}),
        )
        .await;
    let (lead, _, _) = submit_form(&app, form["id"].as_str().unwrap(), None, "Second").await;
    assert!(lead > 0);
}

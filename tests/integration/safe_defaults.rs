//! Safe defaults, zero setup kept (issue 17, finding 5): the shipped `config.toml` starts
//! with no edits and its demo lives in an account of its own; listening beyond loopback
//! with the demo's published token, a short token, or a token two accounts share is
//! refused with a message saying what to change; the demo inbox takes only webhooks
//! signed with the demo handler's secret.

use crate::common;

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::process::FootfallProcess;
use crate::common::{Backend, TestApp, test_settings};
use footfall::config::DEMO_TOKEN;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");

/// `footfall check-config` on the shipped file with `FOOTFALL__` overrides and an
/// `[[accounts]]` list of the test's own appended; returns (success, what it printed).
fn check(env: &[(&str, &str)], accounts: &[(u64, &str)]) -> (bool, String) {
    let mut toml = std::fs::read_to_string(SHIPPED).unwrap();
    for (id, token) in accounts {
        toml.push_str(&format!(
            "\n[[accounts]]\naccount_id = {id}\nsubdomain = \"s{id}\"\ntoken = \"{token}\"\n"
        ));
    }
    let path =
        std::env::temp_dir().join(format!("footfall-test-{}-safe.toml", rand::random::<u64>()));
    std::fs::write(&path, toml).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

const LONG_A: &str = "a-token-of-account-a-0123456789abcdef";
const LONG_B: &str = "a-token-of-account-b-0123456789abcdef";
const PUBLIC: (&str, &str) = ("FOOTFALL__SERVER__BIND", "0.0.0.0:8080");
const DEMO_OFF: (&str, &str) = ("FOOTFALL__DEMO__ENABLED", "false");

#[test]
fn each_unsafe_configuration_is_refused_with_what_to_change() {
    // As shipped, on loopback: valid.
    let (ok, printed) = check(&[], &[]);
    assert!(ok, "{printed}");
    // Beyond loopback with the demo (its published token).
    let (ok, printed) = check(&[PUBLIC], &[]);
    assert!(!ok);
    assert!(
        printed.contains("published demo token") && printed.contains("demo.enabled = false"),
        "{printed}"
    );
    // An account with the demo's token, the demo off.
    let (ok, printed) = check(&[PUBLIC, DEMO_OFF], &[(1, DEMO_TOKEN)]);
    assert!(!ok);
    assert!(printed.contains("published demo token"), "{printed}");
    // A short token.
    let (ok, printed) = check(&[PUBLIC, DEMO_OFF], &[(1, "short-but-8")]);
    assert!(!ok);
    assert!(
        printed.contains("11 characters") && printed.contains("at least 32 characters"),
        "{printed}"
    );
    // Two accounts with one token: refused wherever footfall listens.
    for env in [vec![PUBLIC, DEMO_OFF], vec![DEMO_OFF]] {
        let (ok, printed) = check(&env, &[(1, LONG_A), (2, LONG_A)]);
        assert!(!ok);
        assert!(printed.contains("the same token"), "{printed}");
    }
    // The demo's account is its own: an account with its id is refused.
    let (ok, printed) = check(&[], &[(30441694, LONG_A)]);
    assert!(!ok);
    assert!(printed.contains("demo.account_id"), "{printed}");
    // Long, distinct tokens and the demo off: valid beyond loopback.
    let (ok, printed) = check(&[PUBLIC, DEMO_OFF], &[(1, LONG_A), (2, LONG_B)]);
    assert!(ok, "{printed}");
    // Loopback keeps the zero-setup short tokens working.
    let (ok, printed) = check(&[DEMO_OFF], &[(1, "short-but-8")]);
    assert!(ok, "{printed}");
    // Listening on loopback behind a proxy that browsers reach at a public URL is
    // reaching beyond loopback too (a `*.localhost` name is not).
    let behind_proxy = ("FOOTFALL__SERVER__PUBLIC_URL", "https://t.shop.example");
    let (ok, printed) = check(&[behind_proxy], &[]);
    assert!(!ok);
    assert!(
        printed.contains("server.public_url") && printed.contains("published demo token"),
        "{printed}"
    );
    let (ok, printed) = check(&[behind_proxy, DEMO_OFF], &[(1, "short-but-8")]);
    assert!(!ok && printed.contains("11 characters"), "{printed}");
    let (ok, printed) = check(&[behind_proxy, DEMO_OFF], &[(1, LONG_A)]);
    assert!(ok, "{printed}");
    let local = (
        "FOOTFALL__SERVER__PUBLIC_URL",
        "http://t.shop.localhost:8080",
    );
    let (ok, printed) = check(&[local], &[]);
    assert!(ok, "{printed}");
    // A message reads as one sentence (no run of spaces from a broken line).
    let (_, printed) = check(&[DEMO_OFF], &[(1, LONG_A), (2, LONG_A)]);
    let message = printed
        .lines()
        .find(|l| l.contains("the same token"))
        .unwrap()
        .trim();
    assert!(!message.contains("  "), "{message}");
    // Finished events kept 0 days: a Redis record cannot expire in 0 s.
    let redis = ("FOOTFALL__STORE__REDIS_URL", "redis://127.0.0.1:6379");
    let key = (
        "FOOTFALL__COOKIES__KEYS",
        "c2VjcmV0LWtleS1vZi1hdC1sZWFzdC0zMi1ieXRlcy0wMTIz",
    );
    let zero = ("FOOTFALL__DELIVERY__EVENT_RETENTION_DAYS", "0");
    let (ok, printed) = check(&[redis, key, zero], &[]);
    assert!(!ok && printed.contains("event_retention_days"), "{printed}");
    let (ok, printed) = check(&[redis, key], &[]);
    assert!(ok, "{printed}");
}

/// What would only break once footfall runs is refused at start, saying what to set; a
/// one-item list and a number-like text given by the environment are read as such.
#[test]
fn settings_that_would_break_at_run_time_are_refused_at_start() {
    for (var, value, named) in [
        (
            "FOOTFALL__SERVER__PUBLIC_URL",
            "t.shop.example:443",
            "server.public_url",
        ),
        (
            "FOOTFALL__SERVER__PUBLIC_URL",
            "ftp://t.shop.example",
            "server.public_url",
        ),
        (
            "FOOTFALL__DELIVERY__POLL_INTERVAL_MS",
            "0",
            "delivery.poll_interval_ms",
        ),
        (
            "FOOTFALL__STORE__RESPONSE_TIMEOUT_MS",
            "0",
            "store.response_timeout_ms",
        ),
    ] {
        let (ok, printed) = check(&[(var, value)], &[]);
        assert!(!ok && printed.contains(named), "{var}={value}: {printed}");
    }
    let (ok, printed) = check(
        &[
            ("FOOTFALL__DELIVERY__RETRY_SCHEDULE_SECONDS", "60"),
            ("FOOTFALL__STORE__KEY_PREFIX", "007"),
        ],
        &[],
    );
    assert!(ok, "{printed}");
    // The demo's account in [[accounts]] too: one sentence, no run of spaces.
    let (ok, printed) = check(&[("FOOTFALL__DEMO__ACCOUNT_ID", "1")], &[(1, LONG_A)]);
    let message = printed
        .lines()
        .find(|l| l.contains("an account of its own"))
        .unwrap_or_else(|| panic!("{printed}"))
        .trim();
    assert!(!ok && !message.contains("  "), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_config_starts_with_no_edits_and_its_demo_has_an_account_of_its_own() {
    let _heavy = common::HEAVY.lock().await;
    // A copy of the shipped file (the process removes its file when it ends).
    let copy = std::env::temp_dir().join(format!(
        "footfall-test-{}-shipped.toml",
        rand::random::<u64>()
    ));
    std::fs::copy(SHIPPED, &copy).unwrap();
    let process =
        FootfallProcess::start_file_with_env(&copy, &[("FOOTFALL__SERVER__BIND", "127.0.0.1:0")]);
    let app = TestApp::attach(process.base.clone(), test_settings(Backend::Memory));
    let demo = app.get_as(DEMO_TOKEN, "/api/v4/demo").await;
    assert_eq!(demo.status, StatusCode::OK, "{}", demo.text);
    let sites = app.get_as(DEMO_TOKEN, "/api/v4/sites").await;
    assert_eq!(sites.status, StatusCode::OK, "{}", sites.text);
    let page = app.client.get(app.url("/demo")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_inbox_takes_only_webhooks_signed_with_the_demo_handler_s_secret() {
    let mut settings = test_settings(Backend::Memory);
    settings.demo.enabled = true;
    settings.demo.account_id = 30441000;
    let app = TestApp::spawn_with(settings).await;
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = app
            .client
            .post(app.url("/demo/inbox"))
            .header("content-type", "application/json")
            .body(json!({"event": {"data": {"id": 1}}}).to_string());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    for headers in [
        vec![],
        vec![
            ("webhook-id", "msg_1".to_owned()),
            ("webhook-timestamp", now.clone()),
            ("webhook-signature", "v1,AAAA".to_owned()),
        ],
    ] {
        let response = post(headers).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Signed with the handler's secret: taken while fresh, refused once five minutes
    // old (a captured webhook cannot be replayed into the inbox for ever).
    let handlers = app.get_as(DEMO_TOKEN, "/api/v4/handlers").await;
    let handler = handlers.body["_embedded"]["handlers"][0]["id"].clone();
    let rotated = app
        .patch_as(
            DEMO_TOKEN,
            &format!("/api/v4/handlers/{handler}"),
            json!({"rotate_secret": true}),
        )
        .await;
    let secret = rotated.body["secret"].as_str().unwrap().to_owned();
    let body = json!({"event": {"data": {"id": 1}}}).to_string();
    // Timestamps from the clock read just before each request: a second past the five
    // minutes, and ahead by 30 s more, which a loaded machine's time between that read
    // and the server's takes back. The last one is i64::MIN itself.
    for (id, offset, expected) in [
        ("msg_fresh", Some(0), StatusCode::OK),
        ("msg_stale", Some(-301), StatusCode::UNAUTHORIZED),
        ("msg_ahead", Some(330), StatusCode::UNAUTHORIZED),
        ("msg_extreme", None, StatusCode::UNAUTHORIZED),
    ] {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let at = offset.map_or(i64::MIN, |offset| now + offset);
        let signature = footfall::delivery::signature::sign(&secret, id, at, &body).unwrap();
        let response = post(vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", at.to_string()),
            ("webhook-signature", signature),
        ])
        .await
        .unwrap();
        assert_eq!(response.status(), expected, "{id}");
    }
    let inbox = app.get_as(DEMO_TOKEN, "/api/v4/demo/inbox").await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.text);
    assert!(!inbox.text.contains("msg_1"), "{}", inbox.text);
    assert!(inbox.text.contains("msg_fresh"), "{}", inbox.text);
    assert!(!inbox.text.contains("msg_stale"), "{}", inbox.text);
}

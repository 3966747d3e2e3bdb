//! Deployment: `footfall init` writes a production configuration that passes
//! `footfall check-config`, and the README's walk-through works against the binary started
//! with it on a real Redis, with the generated token.

use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common;
use crate::common::process::FootfallProcess;

fn footfall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(args)
        .env_remove("FOOTFALL__STORE__REDIS_URL")
        .stdin(Stdio::null())
        .output()
        .expect("the footfall binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_config_that_checks_and_serves_the_walk_through() {
    let _serial = common::HEAVY.lock().await;
    let dir = std::env::temp_dir().join(format!("footfall-init-{}", common::unique_prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    let config = path.to_str().unwrap();
    let redis = common::redis_url();
    let init = |extra: &[&str]| {
        let mut args = vec!["--config", config, "init", "--redis-url", &redis];
        args.extend_from_slice(&[
            "--public-url",
            "http://127.0.0.1:8080",
            "--bind",
            "127.0.0.1:0",
        ]);
        args.extend_from_slice(extra);
        footfall(&args)
    };

    let first = init(&[]);
    let printed = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        printed.contains(
            "<script async src=\"http://127.0.0.1:8080/t.js\" data-site=\"SITE_KEY\"></script>"
        ),
        "{printed}"
    );
    let written = std::fs::read_to_string(&path).unwrap();
    let token = written
        .lines()
        .find_map(|l| l.strip_prefix("token = \""))
        .and_then(|t| t.strip_suffix('"'))
        .expect("the config has a token")
        .to_owned();
    assert!(token.len() >= 32, "{token}");
    assert!(
        printed.contains(&token),
        "the printed steps use the generated token"
    );
    assert!(written.contains("enabled = false"), "the demo is off");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "only its owner may read the secrets: {mode:o}"
        );
    }

    // It refuses to overwrite, and --force does.
    let again = init(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        written,
        "the file was kept"
    );
    let forced = init(&["--force"]);
    assert!(forced.status.success());
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(!written.contains(&token), "--force wrote new secrets");
    let token = written
        .lines()
        .find_map(|l| l.strip_prefix("token = \""))
        .and_then(|t| t.strip_suffix('"'))
        .unwrap()
        .to_owned();

    let check = footfall(&["--config", config, "check-config"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Started on the real Redis (in a key space of its own), the README's five steps work
    // with the generated token; a wrong token is refused.
    let prefix = common::unique_prefix();
    // Before the process: the guard outlives it, and removes its keys when the test ends.
    let _keys = common::KeysGuard::new(&redis, &prefix);
    let process = FootfallProcess::start_file_with_env(
        &path,
        &[
            ("FOOTFALL__STORE__KEY_PREFIX", prefix.as_str()),
            ("FOOTFALL__DELIVERY__ALLOW_PRIVATE_TARGETS", "true"),
            ("FOOTFALL__TRACKING__VISIT_IDLE_SECONDS", "1"),
        ],
    );
    let client = footfall::http_client().build().unwrap();
    let base = process.base.clone();
    let call = async |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let (status, _) = call(
        reqwest::Method::GET,
        "/api/v4/sites",
        "demo-token-change-me",
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the shipped demo token is not accepted"
    );
    let (status, demo) = call(reqwest::Method::GET, "/demo", &token, None).await;
    assert_ne!(status, StatusCode::OK, "the demo is off: {demo}");

    let receiver = common::Receiver::start().await;
    let post = reqwest::Method::POST;
    let (status, sites) = call(
        post.clone(),
        "/api/v4/sites",
        &token,
        Some(json!([{"name": "Shop", "url": "https://shop.example"}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sites}");
    let site = &sites["_embedded"]["sites"][0];
    let (_, forms) = call(post.clone(), "/api/v4/forms", &token, Some(json!([{"name": "Contact", "site_id": site["id"], "pipeline_id": 1, "success_url": "https://shop.example/thanks"}]))).await;
    let form_id = forms["_embedded"]["forms"][0]["id"]
        .as_str()
        .expect("a form")
        .to_owned();
    let (status, handlers) = call(
        post.clone(),
        "/api/v4/handlers",
        &token,
        Some(
            json!([{"code": "notify", "name": "Notify", "webhook_url": receiver.url(),
        "settings": {"message": {"name": "Message", "type": "text", "required": true}}}]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{handlers}");
    let (status, actions) = call(post.clone(), "/api/v4/actions", &token, Some(json!([{"pipeline_id": 1, "status_ids": [1002], "event": "site_visit", "handler": "notify",
        "site_url": "https://shop.example", "delay_seconds": 0, "settings": {"message": "Hi {{contact.name}}"}}]))).await;
    assert_eq!(status, StatusCode::OK, "{actions}");

    let ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0";
    let beacon = async |vid: Value, url: &str| {
        client
            .post(format!("{base}/v1/collect"))
            .header("user-agent", ua)
            .body(json!({"site": site["key"], "vid": vid, "url": url, "title": "Page"}).to_string())
            .send()
            .await
            .unwrap()
    };
    let first: Value = beacon(Value::Null, "https://shop.example/")
        .await
        .json()
        .await
        .unwrap();
    let vid = first["vid"].clone();
    let submitted = client
        .post(format!("{base}/v1/forms/{form_id}/submit"))
        .header("user-agent", ua)
        .json(&json!({"vid": vid, "page": "https://shop.example/contact", "fields": {"name": "Anna", "phone": "+7 900 123-45-67", "email": "anna@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::CREATED);
    let (_, unsorted) = call(reqwest::Method::GET, "/api/v4/leads/unsorted", &token, None).await;
    let uid = unsorted["_embedded"]["unsorted"][0]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        post.clone(),
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        &token,
        Some(json!({"status_id": 1002})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    beacon(vid, "https://shop.example/pricing").await;
    let delivered = receiver
        .wait_for(1, std::time::Duration::from_secs(20))
        .await;
    let body: Value = serde_json::from_str(&delivered[0].body).unwrap();
    assert_eq!(body["event"]["type_code"], "site_visit");
    assert_eq!(
        body["action"]["settings"]["widget"]["settings"]["message"],
        "Hi Anna"
    );
    drop(process);
    let _ = std::fs::remove_dir_all(&dir);
}

//! What footfall shows and accepts on the open internet (issue 17, list 7): webhooks that
//! ignore proxy variables and keep their URLs and secrets out of the logs, refusals that
//! name no internal address, the console's security headers, `success_url` stored parsed,
//! bodies that trickle in, visitor ids valid on one account only, operations endpoints on
//! loopback or with the ops token, and live streams per account with a cap per token.

use crate::common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::abuse::LoggedProcess;
use crate::common::accounts::{TOKEN_B, two_accounts};
use crate::common::config_file::footfall_toml;
use crate::common::raw_receiver::RawReceiver;
use crate::common::{
    Backend, KeysGuard, Receiver, TOKEN, TestApp, cookie_key, first_attempt_error,
    handler_on_lead_added, redis_url, site_and_form, submit_form, test_settings, unique_prefix,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_ignore_proxy_variables_and_their_urls_and_secrets_stay_out_of_the_logs() {
    let _heavy = common::HEAVY.lock().await;
    // A "proxy" that would see every webhook sent through it.
    let proxy = RawReceiver::start().await;
    let proxy_url = proxy.url().trim_end_matches("/hook").to_owned();
    let prefix = unique_prefix();
    // Before the process: the guard outlives it, and removes its keys when the test ends.
    let _keys = KeysGuard::new(&redis_url(), &prefix);
    let toml = footfall_toml(&redis_url(), &prefix, &cookie_key(), "");
    let env: Vec<(&str, &str)> = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"]
        .into_iter()
        .map(|k| (k, proxy_url.as_str()))
        .collect();
    let mut process = LoggedProcess::start_with_env(&toml, "debug", &env);
    let mut settings = test_settings(Backend::Redis);
    settings.store.key_prefix = prefix;
    let app = TestApp::attach(process.base.clone(), settings);

    let receiver = Receiver::start().await;
    let pipeline = app.pipeline().await;
    let (_, form) = site_and_form(&app, TOKEN, "shop.example").await;
    let reachable = format!("{}?token=reachable-hook-t0ken", receiver.url());
    // Port 1: nothing listens there, and no test can take it (a free port released
    // could be bound by a parallel test meanwhile).
    let closed = "http://127.0.0.1:1/hooks/closed-hook-t0ken".to_owned();
    let mut secrets = Vec::new();
    for (code, url) in [("reachable", &reachable), ("closed", &closed)] {
        let handler = handler_on_lead_added(&app, &pipeline, code, url).await;
        secrets.push(handler["secret"].as_str().unwrap().to_owned());
    }
    submit_form(&app, &form, None, "Anna").await;

    // The reachable handler got its webhook directly; the proxy saw nothing.
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);
    // The closed one failed at least once (its error text is what reqwest reports).
    let error = first_attempt_error(
        &app,
        "/api/v4/webhook_events?limit=250",
        "the closed handler's failed attempt",
    )
    .await;
    assert!(proxy.received().is_empty(), "{:?}", proxy.received());
    assert!(!error.contains("closed-hook-t0ken"), "{error}");

    let lines = process.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("delivery") || l.contains("event")),
        "the debug logs carry deliveries: the check below can see what they print"
    );
    for needle in ["reachable-hook-t0ken", "closed-hook-t0ken"]
        .into_iter()
        .chain(secrets.iter().map(String::as_str))
    {
        let leaked: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
        assert!(leaked.is_empty(), "{needle} was logged: {leaked:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_webhook_url_says_only_that_it_is_not_a_public_address() {
    let mut settings = test_settings(Backend::Memory);
    settings.delivery.allow_private_targets = false;
    let app = TestApp::spawn_with(settings).await;
    for url in ["http://localhost:9/hook", "http://[::1]:9/hook"] {
        let answer = app
            .post_as(
                TOKEN,
                "/api/v4/handlers",
                json!([{"code": "x", "name": "X", "webhook_url": url, "settings": {}}]),
            )
            .await;
        assert!(answer.status.is_client_error(), "{url}: {}", answer.text);
        assert!(
            answer.text.contains("not a public address"),
            "{url}: {}",
            answer.text
        );
        // The resolved address is not named (localhost resolves to 127.0.0.1).
        assert!(!answer.text.contains("127.0.0.1"), "{}", answer.text);
        assert!(!answer.text.contains("::1)"), "{}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_content_security_policy_nosniff_and_a_referrer_policy() {
    let app = TestApp::spawn(Backend::Memory).await;
    for path in ["/console/", "/console/app.js", "/console/app.css"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(
            header("content-security-policy"),
            "default-src 'self'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_url_with_cr_or_lf_or_another_scheme_is_a_validation_error() {
    let app = TestApp::spawn(Backend::Memory).await;
    let pipeline = app.pipeline().await;
    let site = app
        .create(
            "sites",
            json!({"name": "Shop", "url": "https://shop.example"}),
        )
        .await;
    let form = |url: &str| {
        json!([{"name": "Contact", "site_id": site["id"], "pipeline_id": pipeline.id,
                "success_url": url}])
    };
    for bad in [
        "https://shop.example/thanks\r\nSet-Cookie: owned=1",
        "https://shop.example/th\nanks",
        "javascript:alert(1)",
        "data:text/html,hi",
    ] {
        let answer = app.post_as(TOKEN, "/api/v4/forms", form(bad)).await;
        assert!(answer.status.is_client_error(), "{bad:?}: {}", answer.text);
        assert_eq!(
            answer.body["errors"][0]["field"], "[0].success_url",
            "{bad:?}: {}",
            answer.text
        );
    }
    // A good one is stored as parsed, and a plain HTML post is redirected to it.
    let answer = app
        .post_as(
            TOKEN,
            "/api/v4/forms",
            form("HTTPS://Shop.Example/thanks?x=1"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let stored = &answer.body["_embedded"]["forms"][0];
    assert_eq!(stored["success_url"], "https://shop.example/thanks?x=1");
    let response = app
        .client
        .post(app.url(&format!(
            "/v1/forms/{}/submit",
            stored["id"].as_str().unwrap()
        )))
        .form(&[("name", "Anna")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example/thanks?x=1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_is_answered_408_after_the_body_timeout() {
    let mut settings = test_settings(Backend::Memory);
    settings.limits.body_timeout_ms = 500;
    let app = TestApp::spawn_with(settings).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/collect HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n\
              content-length: 200\r\n\r\n{",
        )
        .await
        .unwrap();
    // One byte every 100 ms: 200 bytes would take 20 s.
    let trickle = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        for _ in 0..200 {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    });
    let answer = tokio::time::timeout(Duration::from_secs(10), trickle)
        .await
        .expect("answered before the sender finished")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_id_signed_on_one_account_s_site_is_not_accepted_by_another_s() {
    let app = TestApp::spawn_with(two_accounts(Backend::Redis)).await;
    let (a_site, _) = site_and_form(&app, TOKEN, "a.example").await;
    let (b_site, b_form) = site_and_form(&app, TOKEN_B, "b.example").await;
    let (status, a_vid) = app.beacon(&a_site, None, "https://a.example/").await;
    assert_eq!(status, StatusCode::OK);
    let a_vid = a_vid.unwrap();
    // A's id is still A's.
    let (status, again) = app
        .beacon(&a_site, Some(&a_vid), "https://a.example/2")
        .await;
    assert_eq!((status, again), (StatusCode::NO_CONTENT, None));
    // On B's site it is as if there were none: a new visitor is minted.
    let (status, b_vid) = app
        .beacon(&b_site, Some(&a_vid), "https://b.example/")
        .await;
    assert_eq!(status, StatusCode::OK);
    let b_vid = b_vid.unwrap();
    assert_ne!(b_vid[44..], a_vid[44..], "B took A's visitor");
    // Nor does B's form link A's visitor.
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{b_form}/submit")))
        .header("content-type", "text/plain")
        .body(json!({"vid": a_vid, "fields": {"name": "Eve"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let linked = body["vid"].as_str().unwrap();
    assert_ne!(linked[44..], a_vid[44..], "B's lead took A's visitor");
}

/// A proxy on this machine that adds no header (a bare `proxy_pass`) is still a proxy:
/// with loopback in `server.trusted_proxies`, its requests do not count as local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness_refuse_a_trusted_local_proxy_that_adds_no_header() {
    let mut settings = test_settings(Backend::Memory);
    settings.server.trusted_proxies = vec!["127.0.0.1".into()];
    let app = TestApp::spawn_with(settings).await;
    for path in ["/metrics", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness_answer_loopback_or_the_ops_token_only() {
    let mut settings = test_settings(Backend::Redis);
    settings.server.ops_token = "ops-token-0123456789abcdef0123456789".to_owned().into();
    let app = TestApp::spawn_with(settings).await;
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut req = app.client.get(app.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    for path in ["/metrics", "/readyz"] {
        // Direct from loopback.
        assert_eq!(get(path, &[]).await.unwrap().status(), StatusCode::OK);
        // Through a proxy (the request names its client): refused, and says nothing.
        for forwarded in [
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=203.0.113.7"),
        ] {
            let response = get(path, &[forwarded]).await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
            let text = response.text().await.unwrap();
            assert!(!text.contains("redis") && !text.contains("6379"), "{text}");
            assert!(!text.contains("footfall_"), "{text}");
        }
        // A wrong token is no better; the ops token opens it.
        let wrong = get(
            path,
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("authorization", "Bearer ops-token-wrong"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
        let right = get(
            path,
            &[
                ("x-forwarded-for", "203.0.113.7"),
                (
                    "authorization",
                    "Bearer ops-token-0123456789abcdef0123456789",
                ),
            ],
        )
        .await
        .unwrap();
        assert_eq!(right.status(), StatusCode::OK, "{path}");
        // An account's API token is not an ops token.
        let api = get(
            path,
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("authorization", &format!("Bearer {TOKEN}")),
            ],
        )
        .await
        .unwrap();
        assert_eq!(api.status(), StatusCode::FORBIDDEN);
    }
    // Liveness tells nothing and stays open.
    let health = get("/healthz", &[("x-forwarded-for", "203.0.113.7")])
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_holds_a_capped_number_of_live_streams_and_another_account_is_not_held_back() {
    let app = TestApp::spawn_with(two_accounts(Backend::Memory)).await;
    let open = |token: &'static str| {
        app.client
            .get(app.url("/api/v4/stream"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(30))
            .send()
    };
    let mut held = Vec::new();
    for _ in 0..footfall::service::live::MAX_STREAMS_PER_ACCOUNT {
        let response = open(TOKEN).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        held.push(response);
    }
    let over = open(TOKEN).await.unwrap();
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    // B's cap is B's own.
    let b = open(TOKEN_B).await.unwrap();
    assert_eq!(b.status(), StatusCode::OK);
    // A closed stream frees its place: at the latest when the service next writes to it
    // (the heartbeat, every 15 s) and finds it gone.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let again = open(TOKEN).await.unwrap();
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed stream still counts against the cap"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Page views sent with these `X-Forwarded-For` values, one each; the number accepted.
async fn accepted_with(app: &TestApp, site_key: &str, forwarded: &[String]) -> usize {
    let mut accepted = 0;
    for (i, xff) in forwarded.iter().enumerate() {
        let response = app
            .client
            .post(app.url("/v1/collect"))
            .header("content-type", "text/plain")
            .header("x-forwarded-for", xff)
            .body(json!({"site": site_key, "url": format!("https://shop.example/{i}")}).to_string())
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::OK | StatusCode::NO_CONTENT => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("beacon answered {other}"),
        }
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_forwarded_for_does_not_move_the_client_address_and_ipv6_counts_per_64() {
    let mut settings = test_settings(Backend::Redis);
    settings.server.trusted_proxies = vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()];
    // The whole address, to see which hop was believed (`truncate` would hide the last byte).
    settings.privacy.ip_mode = footfall::domain::privacy::IpMode::Full;
    // 1 a second, burst 4: 20 quick requests of one client get about 4 through.
    settings.limits.per_ip_per_second = 1;
    let app = TestApp::spawn_with(settings).await;
    let (site, form) = site_and_form(&app, TOKEN, "shop.example").await;

    // A random left part per request, as a client would write it, before the address
    // the trusted proxies saw: one client.
    let spoofed: Vec<String> = (0..20)
        .map(|i| format!("{}.{}.7.{i}, 198.51.100.7, 10.0.0.2", 1 + i, 2 * i))
        .collect();
    let accepted = accepted_with(&app, &site, &spoofed).await;
    assert!((4..=6).contains(&accepted), "{accepted} accepted");
    // Addresses in one IPv6 /64 are one client; another /64 is another.
    let one_64: Vec<String> = (0..20).map(|i| format!("2001:db8:1:2::{i:x}")).collect();
    let accepted = accepted_with(&app, &site, &one_64).await;
    assert!(
        (4..=6).contains(&accepted),
        "{accepted} accepted in one /64"
    );
    let other_64 = vec!["2001:db8:1:3::1".to_owned()];
    assert_eq!(accepted_with(&app, &site, &other_64).await, 1);

    // The Unsorted entry's ip is the client the proxies saw, not the forged one.
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{form}/submit")))
        .header("content-type", "text/plain")
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.9")
        .body(json!({"fields": {"name": "Anna"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // The same when the client sent a header line of its own and the proxy added its
    // line after it (as HAProxy does), with the port (as Azure's gateway does).
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{form}/submit")))
        .header("content-type", "text/plain")
        .header("x-forwarded-for", "6.6.6.7")
        .header("x-forwarded-for", "203.0.113.10:4711")
        .body(json!({"fields": {"name": "Boris"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, unsorted) = app.get("/api/v4/leads/unsorted").await;
    let mut ips: Vec<&str> = unsorted["_embedded"]["unsorted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["ip"].as_str().unwrap())
        .collect();
    ips.sort_unstable();
    assert_eq!(ips, ["203.0.113.10", "203.0.113.9"], "{unsorted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_is_not_a_trusted_proxy_cannot_name_its_client() {
    let mut settings = test_settings(Backend::Memory);
    settings.server.trusted_proxies = vec!["10.0.0.0/8".into()];
    settings.privacy.ip_mode = footfall::domain::privacy::IpMode::Full;
    let app = TestApp::spawn_with(settings).await;
    let (_, form) = site_and_form(&app, TOKEN, "shop.example").await;
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{form}/submit")))
        .header("content-type", "text/plain")
        .header("x-forwarded-for", "203.0.113.9")
        .body(json!({"fields": {"name": "Anna"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, unsorted) = app.get("/api/v4/leads/unsorted").await;
    let ip = &unsorted["_embedded"]["unsorted"][0]["metadata"]["ip"];
    assert_eq!(ip, "127.0.0.1", "{unsorted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_page_longer_than_a_url_may_be_is_not_stored() {
    let app = TestApp::spawn(Backend::Memory).await;
    let (_, form) = site_and_form(&app, TOKEN, "shop.example").await;
    let long = format!("https://shop.example/{}", "x".repeat(3000));
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{form}/submit")))
        .header("content-type", "text/plain")
        .body(json!({"page": long, "fields": {"name": "Anna"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, unsorted) = app.get("/api/v4/leads/unsorted").await;
    let page = &unsorted["_embedded"]["unsorted"][0]["metadata"]["form_page"];
    assert_eq!(page, "", "{unsorted}");
}

/// The TTL (seconds; -1 none, -2 no key) of a key on the shared Redis.
async fn ttl_of(key: &str) -> i64 {
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("TTL")
        .arg(key)
        .query_async(&mut con)
        .await
        .unwrap()
}

/// The TTLs (seconds) of every Redis key of a browser.
async fn ttls_of(app: &TestApp, signed_vid: &str) -> Vec<(String, i64)> {
    let id = &signed_vid[signed_vid.len() - 22..];
    let client = redis::Client::open(app.settings.store.redis_url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*{id}*", app.settings.store.key_prefix))
        .query_async(&mut con)
        .await
        .unwrap();
    let mut ttls = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        ttls.push((key, ttl));
    }
    ttls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_visitors_keys_carry_the_short_expiry_until_linked_or_returning() {
    let mut settings = test_settings(Backend::Redis);
    settings.tracking.visit_idle_seconds = 1;
    let app = TestApp::spawn_with(settings).await;
    let (site, form) = site_and_form(&app, TOKEN, "shop.example").await;
    let short = 48 * 3600;
    let long = 395 * 24 * 3600;
    let beacon = |vid: Option<String>, path: &'static str| {
        let site = site.clone();
        let app = &app;
        async move {
            app.beacon(
                &site,
                vid.as_deref(),
                &format!("https://shop.example{path}"),
            )
            .await
        }
    };
    // A junk visitor: one beacon without an id. Every key it left expires within 48 h.
    let (_, junk) = beacon(None, "/").await;
    let junk = junk.unwrap();
    let ttls = ttls_of(&app, &junk).await;
    assert!(!ttls.is_empty());
    // The last sighting (`…:s<site>`) lives the 1 s gap and a second: it may be gone
    // already (-2).
    let sighting = |key: &str| {
        key.rsplit(':')
            .next()
            .and_then(|last| last.strip_prefix('s'))
            .is_some_and(|site| site.parse::<u64>().is_ok())
    };
    assert!(
        ttls.iter().all(|(key, t)| if sighting(key) {
            *t == -2 || (0..=2).contains(t)
        } else {
            (1..=short).contains(t)
        }),
        "{ttls:?}"
    );
    // A browser that comes back in a later visit gets the full retention.
    let (_, back) = beacon(None, "/").await;
    let back = back.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    beacon(Some(back.clone()), "/again").await;
    let ttls = ttls_of(&app, &back).await;
    assert!(
        ttls.iter().any(|(_, t)| *t > short && *t <= long),
        "{ttls:?}"
    );
    // So does a browser linked to a lead by a form.
    let (_, linked) = beacon(None, "/").await;
    let linked = linked.unwrap();
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{form}/submit")))
        .header("content-type", "text/plain")
        .body(json!({"vid": linked, "fields": {"name": "Anna"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let ttls = ttls_of(&app, &linked).await;
    assert!(
        ttls.iter().any(|(_, t)| *t > short && *t <= long),
        "{ttls:?}"
    );
}

/// A first page view's history has an expiry from the moment it is written, before its
/// visit's start (a second round trip) gives it the anonymous one: a start that never
/// came (a failure between the two) used to leave the history without any expiry.
// One thread: every page view goes to one page-view writer, whose memory of the browser's
// visit is what the erased case is about.
#[tokio::test]
async fn a_history_whose_visit_never_started_still_expires() {
    use footfall::domain::ids::{AccountId, SiteId};
    use footfall::domain::tracking::PageView;
    use footfall::domain::visitor::VisitorId;
    use footfall::store::PageViewWrite;
    let prefix = common::unique_prefix();
    let _keys = KeysGuard::new(&redis_url(), &prefix);
    let store = common::stores::redis_store_on(&prefix, 3600).await;
    let visitor = VisitorId::mint();
    let write = |path: &str| PageViewWrite {
        account: AccountId(7),
        visitor,
        page_view: PageView {
            at: footfall::domain::time::now_ms(),
            site_id: SiteId(1),
            url: format!("https://shop.example{path}"),
            title: "T".into(),
            referrer: String::new(),
        },
        visit_idle_ms: 1_800_000,
        watch: false,
    };
    let history = format!("{prefix}:{{{visitor}}}:p7");
    store.record_page_view(write("/")).await.unwrap();
    let first = ttl_of(&history).await;
    assert!((1800..=1800 + 3600).contains(&first), "{first}");
    // The start gives it the anonymous retention, even one shorter than the provisional
    // expiry; later page views of the visit leave that alone.
    store
        .start_visit(AccountId(7), visitor, 86_400, 1_000, 1_000)
        .await
        .unwrap();
    store.record_page_view(write("/next")).await.unwrap();
    let started = ttl_of(&history).await;
    assert!((998..=1_000).contains(&started), "{started}");
    // Erased in the middle of its visit (DEL, as the erasure's script does), the browser
    // goes on browsing: the history its next page view makes anew expires too. (The
    // writer knew the browser mid-visit, sent no expiry, and the history was kept for
    // ever.)
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("DEL")
        .arg(&history)
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    store.record_page_view(write("/after")).await.unwrap();
    let mut made_anew = -1;
    for _ in 0..50 {
        made_anew = ttl_of(&history).await;
        if made_anew > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!((1800..=1800 + 3600).contains(&made_anew), "{made_anew}");
}

/// A day's top pages that an erasure emptied (and so Redis deleted) and a later page
/// view made again still expire with their day: every flush gives the keys it touches
/// their expiry unless they have one. A page-view writer gave each key its expiry once,
/// so the key made again was kept for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statistics_key_made_again_after_an_erasure_still_expires() {
    use footfall::domain::ids::{AccountId, SiteId};
    use footfall::domain::stats::StatsDelta;
    use footfall::domain::tracking::PageView;
    use footfall::domain::visitor::VisitorId;
    use footfall::store::PageViewWrite;
    let prefix = common::unique_prefix();
    let _keys = KeysGuard::new(&redis_url(), &prefix);
    let store = common::stores::redis_store_on(&prefix, 3600).await;
    let site = SiteId(rand::random::<u32>() as u64);
    let visitor = VisitorId::mint();
    let at = footfall::domain::time::now_ms();
    let page_view = PageView {
        at,
        site_id: site,
        url: "https://shop.example/only-page".into(),
        title: "T".into(),
        referrer: String::new(),
    };
    let write = || PageViewWrite {
        account: AccountId(7),
        visitor,
        page_view: page_view.clone(),
        visit_idle_ms: 1_800_000,
        watch: false,
    };
    let day = (at / 86_400_000) as u64;
    let pages = format!("{prefix}:{{s{site}}}:st:p:{day}");
    // The page-view writer's own flush (once a second), as under load.
    store.record_page_view(write()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store.record_page_view(write()).await.unwrap();
    assert!(ttl_of(&pages).await > 0, "{}", ttl_of(&pages).await);
    // The browser's erasure takes its page out: the only entry, so the key goes.
    let mut delta = StatsDelta::default();
    delta.page_view(site, at, visitor, &page_view.url);
    store.remove_tops(delta.clone()).await.unwrap();
    store.remove_tops(delta).await.unwrap();
    assert_eq!(ttl_of(&pages).await, -2, "the key is gone");
    store.record_page_view(write()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store.record_page_view(write()).await.unwrap();
    assert!(
        ttl_of(&pages).await > 0,
        "made again without an expiry: {}",
        ttl_of(&pages).await
    );
}

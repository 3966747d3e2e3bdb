//! How page views sit in Redis, seen from outside: stored compact (the URL relative to its
//! site's origin, the time in base 62), read back whole on the timeline; page views
//! stored in the earlier form still read.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{self, Backend, Receiver, TestApp, items, setup, submit_form};

async fn history(app: &TestApp, vid: &str) -> (redis::aio::MultiplexedConnection, String) {
    let client = redis::Client::open(common::redis_url()).unwrap();
    let con = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = &app.settings.store.key_prefix;
    let visitor = &vid[44..];
    (con, format!("{prefix}:{{{visitor}}}:p{}", common::ACCOUNT))
}

async fn stored(con: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(con)
        .await
        .unwrap()
}

async fn page_views(app: &TestApp, lead: u64) -> Vec<(String, String, String)> {
    let (status, body) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    items(&body, "timeline")
        .iter()
        .filter(|i| i["type"] == "page_view")
        .map(|p: &Value| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("url"), s("title"), s("referrer"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_views_are_stored_relative_to_their_sites_origin_and_read_back_whole() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let (mut con, key) = history(&app, &vid).await;
    // The writer learns the site's origin after its first page view; from then on the
    // site's pages are stored relative to it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        app.beacon(&s.site_key, Some(&vid), "https://shop.example/wait")
            .await;
        let last = stored(&mut con, &key).await.pop().unwrap();
        if !last.contains("https://shop.example") || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pages = [
        "https://shop.example/catalog/product-1234?utm_source=newsletter",
        "https://shop.example?q=1",
        "https://blog.example/post",
    ];
    for url in pages {
        app.beacon(&s.site_key, Some(&vid), url).await;
    }
    let raw = stored(&mut con, &key).await;
    let raw = &raw[raw.len() - 3..];
    assert!(
        raw[0]
            .ends_with("catalog/product-1234?utm_source=newsletter\tPage\thttps://www.google.com/"),
        "a page of the site's origin is stored relative to it: {raw:?}"
    );
    // The earlier form: `<13-digit time>\t<site>\t<url>\t<title>\t<referrer>`.
    let earlier = 13 + 1 + s.site_id.to_string().len() + 1 + pages[0].len() + 1 + 4 + 1 + 23;
    assert!(
        raw[0].len() + 29 <= earlier,
        "the time in 7 digits, no tab after it or the site, no origin: {raw:?}"
    );
    assert!(raw[1].contains("https://shop.example?q=1\t"), "{raw:?}");
    assert!(raw[2].contains("https://blog.example/post\t"), "{raw:?}");

    let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    let views = page_views(&app, lead).await;
    let urls: Vec<&str> = views.iter().map(|(u, _, _)| u.as_str()).collect();
    assert_eq!(urls[0], "https://shop.example/");
    assert!(
        urls[1..urls.len() - 3]
            .iter()
            .all(|u| *u == "https://shop.example/wait")
    );
    assert_eq!(urls[urls.len() - 3..], pages);
    for (_, title, referrer) in &views {
        assert_eq!(
            (title.as_str(), referrer.as_str()),
            ("Page", "https://www.google.com/")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_views_stored_in_the_earlier_form_are_still_read() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let (mut con, key) = history(&app, &vid).await;
    // As the build before wrote it: decimal time, site, URL, title, referrer.
    let earlier = format!(
        "1764700123456\t{}\thttps://shop.example/earlier\tAn earlier page\thttps://t.co/x",
        s.site_id
    );
    let _: i64 = redis::cmd("RPUSH")
        .arg(&key)
        .arg(&earlier)
        .query_async(&mut con)
        .await
        .unwrap();
    let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vid), "Anna").await;
    let views = page_views(&app, lead).await;
    assert!(
        views.contains(&(
            "https://shop.example/earlier".into(),
            "An earlier page".into(),
            "https://t.co/x".into()
        )),
        "{views:?}"
    );
    let (status, body) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    assert_eq!(status, StatusCode::OK);
    let at = items(&body, "timeline")
        .iter()
        .find(|i| i["url"] == "https://shop.example/earlier")
        .map(|i| i["at"].clone());
    assert_eq!(at, Some(Value::from(1_764_700_123_456_i64)));
}

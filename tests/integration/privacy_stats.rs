//! A browser's erasure takes its share out of its site's top pages and sources: a path or
//! a campaign only it had is gone from the statistics and from the store, a shared path
//! keeps the other browsers' counts — even when the erasure comes before Redis's buffered
//! counters were sent. On both stores.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use footfall::domain::stats::{date_of, day_of};
use footfall::domain::time::now_ms;

use crate::common::privacy::{context, everything, spawn};
use crate::common::{Backend, Receiver, TestApp, setup};

macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() { super::$name(Backend::Redis).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() { super::$name(Backend::Memory).await }
            }
        )*
    };
}

both_stores!(erasing_a_browser_takes_its_pages_and_sources_out_of_the_statistics);

/// Today's top pages and sources of the site, once `done` holds (Redis sends some counters
/// within a second), or the last answer.
async fn tops_until(app: &TestApp, site: u64, done: impl Fn(&Value) -> bool) -> Value {
    let today = date_of(day_of(now_ms()));
    let path = format!("/api/v4/sites/{site}/stats?from={today}&to={today}");
    let mut last = Value::Null;
    for _ in 0..50 {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let tops = json!({"pages": body["top_pages"], "sources": body["top_sources"]});
        if done(&tops) {
            return tops;
        }
        last = tops;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

async fn erasing_a_browser_takes_its_pages_and_sources_out_of_the_statistics(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, 0).await;
    let tag = format!("m{:016x}", rand::rng().random::<u64>());
    // Another browser: /pricing from a newsletter.
    app.beacon(
        &s.site_key,
        None,
        "https://shop.example/pricing?utm_source=news",
    )
    .await;
    let others = json!({"pages": [{"name": "/pricing", "count": 1}],
                        "sources": [{"name": "news", "count": 1}]});
    assert_eq!(tops_until(app, s.site_id, |t| *t == others).await, others);

    // The subject: /pricing from its own campaign, then a page only it saw.
    let (status, vid) = app
        .beacon(
            &s.site_key,
            None,
            &format!("https://shop.example/pricing?utm_source={tag}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let vid = vid.unwrap();
    app.beacon(
        &s.site_key,
        Some(&vid),
        &format!("https://shop.example/{tag}-only"),
    )
    .await;
    let with_subject = |t: &Value| {
        t["pages"]
            == json!([{"name": "/pricing", "count": 2}, {"name": format!("/{tag}-only"), "count": 1}])
    };
    assert!(with_subject(
        &tops_until(app, s.site_id, with_subject).await
    ));

    // Erased at once: the visit's source may still wait in Redis's buffer.
    let (status, body) = app
        .delete(
            &format!("/api/v4/visitors/{}", &vid[vid.len() - 22..]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Past the buffer's flush: nothing comes back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tops = tops_until(app, s.site_id, |t| *t == others).await;
    assert_eq!(
        tops, others,
        "the subject's share is gone, the other's stays"
    );
    let dump = everything(&h).await;
    assert!(
        !dump.contains(&tag),
        "{tag} is still stored:\n{}",
        context(&dump, &tag)
    );
}

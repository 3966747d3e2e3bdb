//! Privacy by design, black-box on both stores: addresses kept to their network, erasure
//! that leaves nothing of the subject in the store, export of everything held about a
//! subject, an audit without personal data, and lead retention.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Receiver, TestApp, setup, test_settings};

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

both_stores!(ip_truncate_keeps_the_network_of_an_address);

/// The first Unsorted entry's metadata.
async fn first_unsorted_metadata(app: &TestApp) -> Value {
    let (status, body) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["_embedded"]["unsorted"][0]["metadata"].clone()
}

async fn ip_truncate_keeps_the_network_of_an_address(backend: Backend) {
    let mut settings = test_settings(backend);
    settings.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .header("content-type", "text/plain")
        .header("x-forwarded-for", "203.0.113.57")
        .body(json!({"fields": {"name": "Anna", "email": "anna@example.com"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let metadata = first_unsorted_metadata(&app).await;
    assert_eq!(metadata["ip"], "203.0.113.0", "{metadata}");
}

//! Growth an attacker cannot push without end: an account's Unsorted holds at most
//! `limits.max_unsorted_per_account` entries (a form post beyond gets 429 and stores
//! nothing, until someone sorts; so does the API's `POST /leads/unsorted/forms`), and a lead at most `tracking.max_browsers_per_lead`
//! browsers (the 21st by default is not linked). On both stores.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Receiver, Setup, TestApp, setup, submit_form, test_settings};

async fn post_form(app: &TestApp, s: &Setup, name: &str) -> (StatusCode, Option<String>, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(
            json!({"page": "https://shop.example/contact",
                   "fields": {"name": name, "email": format!("{}@example.com", name.to_lowercase())}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, response.json().await.unwrap_or(Value::Null))
}

async fn unsorted_count(app: &TestApp) -> usize {
    let (_, list) = app.get("/api/v4/leads/unsorted").await;
    list["_embedded"]["unsorted"].as_array().map_or(0, Vec::len)
}

/// An app whose accounts' Unsorted holds at most three entries, and its account set up.
async fn unsorted_of_three(backend: Backend) -> (TestApp, Receiver, Setup) {
    let mut settings = test_settings(backend);
    settings.limits.max_unsorted_per_account = 3;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    (app, receiver, s)
}

#[tokio::test]
async fn a_full_unsorted_refuses_form_posts_until_someone_sorts() {
    for backend in [Backend::Memory, Backend::Redis] {
        let (app, _receiver, s) = unsorted_of_three(backend).await;
        for name in ["Ann", "Bob", "Cid"] {
            assert_eq!(post_form(&app, &s, name).await.0, StatusCode::CREATED);
        }
        let (status, retry, body) = post_form(&app, &s, "Dan").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{backend:?}: {body}");
        assert!(retry.is_some(), "{backend:?}: Retry-After");
        assert_eq!(unsorted_count(&app).await, 3, "{backend:?}");
        let (_, leads) = app.get("/api/v4/leads").await;
        assert_eq!(
            leads["_embedded"]["leads"].as_array().map_or(0, Vec::len),
            3,
            "{backend:?}: the refused post made no lead"
        );
        // Accepting one makes room for one.
        let (_, list) = app.get("/api/v4/leads/unsorted").await;
        let uid = list["_embedded"]["unsorted"][0]["uid"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _) = app
            .post(
                &format!("/api/v4/leads/unsorted/{uid}/accept"),
                json!({"status_id": s.pipeline.first_contact}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(post_form(&app, &s, "Dan").await.0, StatusCode::CREATED);
        assert_eq!(
            post_form(&app, &s, "Eve").await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

/// `POST /leads/unsorted/forms` with one entry per name.
fn api_entries(pipeline: u64, names: &[&str]) -> Value {
    Value::Array(
        names
            .iter()
            .map(|name| {
                json!({
                    "source_uid": "backend", "source_name": "Backend", "pipeline_id": pipeline,
                    "created_at": 1_700_000_000,
                    "metadata": {"form_id": "backend", "form_name": "Backend",
                        "form_page": "https://shop.example/", "form_sent_at": 1_700_000_000},
                    "_embedded": {"leads": [{"name": format!("Order from {name}")}],
                        "contacts": [{"name": name, "custom_fields_values": [{"field_code": "EMAIL",
                            "values": [{"value": format!("{}@example.com", name.to_lowercase())}]}]}]}
                })
            })
            .collect(),
    )
}

#[tokio::test]
async fn the_api_cannot_overfill_unsorted_either_and_a_refused_request_adds_nothing() {
    for backend in [Backend::Memory, Backend::Redis] {
        let (app, _receiver, s) = unsorted_of_three(backend).await;
        let path = "/api/v4/leads/unsorted/forms";
        let (status, body) = app
            .post(path, api_entries(s.pipeline.id, &["Ann", "Bob"]))
            .await;
        assert!(status.is_success(), "{backend:?}: {body}");
        // Two more would make four: refused whole, before its first entry.
        let (status, body) = app
            .post(path, api_entries(s.pipeline.id, &["Cid", "Dan"]))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{backend:?}: {body}");
        assert_eq!(
            body["status"], 429,
            "{backend:?}: a problem document: {body}"
        );
        assert_eq!(unsorted_count(&app).await, 2, "{backend:?}");
        // More than the bound in one request never fits.
        let many = ["Eve", "Fay", "Gus", "Hal"];
        let (status, _) = app.post(path, api_entries(s.pipeline.id, &many)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
        let (status, body) = app.post(path, api_entries(s.pipeline.id, &["Cid"])).await;
        assert!(status.is_success(), "{backend:?}: {body}");
        assert_eq!(unsorted_count(&app).await, 3, "{backend:?}");
        // Full: the site's form is refused too.
        assert_eq!(
            post_form(&app, &s, "Ivy").await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[tokio::test]
async fn the_21st_browser_is_not_linked_to_a_lead_and_its_submission_is_still_recorded() {
    for backend in [Backend::Memory, Backend::Redis] {
        let app = TestApp::spawn_with(test_settings(backend)).await;
        assert_eq!(app.settings.tracking.max_browsers_per_lead, 20);
        let receiver = Receiver::start().await;
        let s = setup(&app, &receiver, 0).await;
        let mut vids = Vec::new();
        for _ in 0..21 {
            let (status, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
            assert_eq!(status, StatusCode::OK);
            vids.push(vid.unwrap());
        }
        let (lead, _, _) = submit_form(&app, &s.form_id, Some(&vids[0]), "Anna").await;
        let link = async |vids: &[String]| {
            let links: Vec<Value> = vids.iter().map(|v| json!({"visitor_uid": v})).collect();
            app.post(&format!("/api/v4/leads/{lead}/visitors"), json!(links))
                .await
        };
        let linked = async || {
            let (_, card) = app.get(&format!("/api/v4/leads/{lead}")).await;
            card["_embedded"]["visitors"].as_array().map_or(0, Vec::len)
        };
        let (status, body) = link(&vids[1..19]).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        assert_eq!(linked().await, 19);
        // Two more would pass the bound: neither is linked.
        let (status, body) = link(&vids[19..21]).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        assert_eq!(
            linked().await,
            19,
            "{backend:?}: a request over the bound linked some"
        );
        let (status, body) = link(&vids[19..20]).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        assert_eq!(body["_embedded"]["visitors"].as_array().unwrap().len(), 20);
        // The 21st: refused by name, nothing linked.
        let (status, body) = app
            .post(
                &format!("/api/v4/leads/{lead}/visitors"),
                json!([{"visitor_uid": vids[20]}]),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("max_browsers_per_lead"),
            "{body}"
        );
        // The 21st browser's own submission is recorded (a lead of its own).
        let (other, _, _) = submit_form(&app, &s.form_id, Some(&vids[20]), "Anna").await;
        assert_ne!(other, lead);
        // A browser already linked may be linked again; the known lead still has its
        // twenty.
        let (status, lead_body) = app
            .post(
                &format!("/api/v4/leads/{lead}/visitors"),
                json!([{"visitor_uid": vids[3]}]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{lead_body}");
        let count = lead_body["_embedded"]["visitors"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(count, 20, "{backend:?}: {lead_body}");
    }
}

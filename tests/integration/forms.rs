//! Forms and Unsorted, through HTTP: errors named per field, the honeypot, the metadata
//! amoCRM records, duplicate submissions folded, accepting once, declining.

use crate::common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Receiver, TestApp, setup, submit_form};

async fn post_form(app: &TestApp, form: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{form}/submit")))
        .header("referer", "https://www.google.com/search?q=shop")
        .header("origin", "https://shop.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn unsorted(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v4/leads/unsorted{query}")).await;
    if status == StatusCode::NO_CONTENT {
        return Vec::new(); // an empty list, as amoCRM answers it
    }
    assert_eq!(status, StatusCode::OK, "{body}");
    body["_embedded"]["unsorted"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_invalid_field_is_named_and_nothing_is_created() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (status, problem) = post_form(
        &app,
        &s.form_id,
        json!({"page": "https://shop.example/", "fields": {"phone": "call me", "email": "nope@", "name": " "}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "phone", "email"]);
    assert!(unsorted(&app, "").await.is_empty());
    let (status, _) = app.get("/api/v4/leads").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "no lead: an empty list");
    // Fields that are not text are refused by name too.
    let (status, problem) = post_form(
        &app,
        &s.form_id,
        json!({"fields": {"name": {"first": "A"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "fields.name");
    // An unknown form is a 404.
    let (status, _) = post_form(&app, "fNoSuchForm0", json!({"fields": {"name": "A"}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_filled_honeypot_is_answered_as_a_success_and_stored_nowhere() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (status, body) = post_form(
        &app,
        &s.form_id,
        json!({"fields": {"name": "Bot", "ff_hp": "http://spam.example"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["redirect"], "https://shop.example/thanks");
    assert!(body.get("lead_id").is_none());
    assert!(unsorted(&app, "").await.is_empty());
}

#[tokio::test]
async fn the_unsorted_entry_carries_amocrms_metadata() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let before = footfall::domain::time::to_secs(footfall::domain::time::now_ms());
    let (status, body) = post_form(
        &app,
        &s.form_id,
        json!({"vid": vid, "page": "https://shop.example/contact?x=1",
        "fields": {"name": "Anna", "email": "anna@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let entry = &unsorted(&app, "").await[0];
    let m = &entry["metadata"];
    assert_eq!(entry["category"], "forms");
    assert_eq!(m["form_id"], s.form_id.as_str());
    assert_eq!(m["form_name"], "Contact");
    assert_eq!(m["form_page"], "https://shop.example/contact?x=1");
    assert_eq!(
        m["ip"], "127.0.0.0",
        "the address is kept to its /24 by default"
    );
    assert_eq!(m["referer"], "https://www.google.com/search?q=shop");
    assert_eq!(m["visitor_uid"], &vid[44..]);
    let sent = m["form_sent_at"].as_i64().unwrap();
    assert!((before..=before + 5).contains(&sent));
    assert_eq!(entry["_embedded"]["leads"][0]["id"], body["lead_id"]);
    assert!(entry["_embedded"]["contacts"][0]["id"].is_u64());
    // The one entry can be read by its uid, and filtered by pipeline and form.
    let uid = entry["uid"].as_str().unwrap();
    let (status, one) = app.get(&format!("/api/v4/leads/unsorted/{uid}")).await;
    assert_eq!((status, &one["uid"]), (StatusCode::OK, &entry["uid"]));
    assert_eq!(
        unsorted(&app, &format!("?form_id={}", s.form_id))
            .await
            .len(),
        1
    );
    assert_eq!(unsorted(&app, "?form_id=fOther").await.len(), 0);
    assert_eq!(
        unsorted(&app, &format!("?pipeline_id={}", s.pipeline.id))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_double_submission_folds_into_the_first() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let body = json!({"vid": vid, "page": "https://shop.example/contact", "fields": {"name": "Anna", "phone": "+7 900 1"}});
    let (first, second) = tokio::join!(
        post_form(&app, &s.form_id, body.clone()),
        post_form(&app, &s.form_id, body.clone())
    );
    assert_eq!(
        (first.0, second.0),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(
        first.1["lead_id"], second.1["lead_id"],
        "{first:?} {second:?}"
    );
    let (third_status, third) = post_form(&app, &s.form_id, body).await;
    assert_eq!(third_status, StatusCode::CREATED);
    assert_eq!(third["lead_id"], first.1["lead_id"]);
    assert_eq!(unsorted(&app, "").await.len(), 1);
    let (_, leads) = app.get("/api/v4/leads").await;
    assert_eq!(leads["_embedded"]["leads"].as_array().unwrap().len(), 1);
    // The site's figures count one submission, as the lead is one.
    let path = format!("/api/v4/sites/{}/stats", s.site_id);
    let today = |b: &Value| b["days"][29]["form_submissions"].clone();
    common::stats_until(&app, &path, |b| today(b) != 0).await;
    // Past the next flush of the statistics, where a second count would land.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, stats) = app.get(&path).await;
    assert_eq!(today(&stats), 1, "{stats}");
}

/// A form posted without a browser id (no t.js: one is minted for each post) folds a
/// repeat all the same, as a double click or a retry after a 503 sends it: without an id,
/// or with the one the first answer gave out.
async fn a_double_submission_without_a_browser_id_folds_into_the_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let fields = json!({"name": "Anna", "phone": "+7 900 1"});
    let body = json!({"page": "https://shop.example/contact", "fields": fields});
    let first = post_form(&app, &s.form_id, body.clone()).await;
    let again = post_form(&app, &s.form_id, body).await;
    let vid = first.1["vid"].as_str().expect("the first post's browser");
    let body = json!({"vid": vid, "page": "https://shop.example/contact", "fields": fields});
    let with_its_id = post_form(&app, &s.form_id, body).await;
    for repeat in [&again, &with_its_id] {
        assert_eq!(
            (first.0, repeat.0),
            (StatusCode::CREATED, StatusCode::CREATED)
        );
        assert_eq!(first.1["lead_id"], repeat.1["lead_id"], "{repeat:?}");
    }
    // The repeat without an id is handed no browser of its own, linked to nothing; the
    // one with the first answer's id keeps it.
    assert_eq!(again.1["vid"], Value::Null, "{again:?}");
    assert_eq!(with_its_id.1["vid"], vid, "{with_its_id:?}");
    assert_eq!(unsorted(&app, "").await.len(), 1);
}

/// The same contact written otherwise (an email's case, a phone's format), as autofill
/// may the second time, is the same submission.
#[tokio::test]
async fn a_repeat_with_the_contact_written_otherwise_folds() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let post = |email: &str, phone: &str| {
        let fields = json!({"name": "Anna", "email": email, "phone": phone});
        post_form(&app, &s.form_id, json!({"vid": vid, "fields": fields}))
    };
    let first = post("anna@example.com", "+79001234567").await;
    let again = post("Anna@Example.COM", "+7 (900) 123-45-67").await;
    assert_eq!(first.0, StatusCode::CREATED, "{first:?}");
    assert_eq!(first.1["lead_id"], again.1["lead_id"], "{again:?}");
    assert_eq!(unsorted(&app, "").await.len(), 1);
}

#[tokio::test]
async fn a_double_submission_without_a_browser_id_folds_on_redis() {
    a_double_submission_without_a_browser_id_folds_into_the_first(Backend::Redis).await;
}

#[tokio::test]
async fn a_double_submission_without_a_browser_id_folds_on_the_embedded_store() {
    a_double_submission_without_a_browser_id_folds_into_the_first(Backend::Memory).await;
}

#[tokio::test]
async fn an_entry_is_accepted_once() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, uid, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let path = format!("/api/v4/leads/unsorted/{uid}/accept");
    let body = json!({"status_id": s.pipeline.negotiation});
    let (a, b) = tokio::join!(app.post(&path, body.clone()), app.post(&path, body.clone()));
    let statuses = [a.0, b.0];
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::NOT_FOUND) || statuses.contains(&StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let (_, l) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(l["status_id"], s.pipeline.negotiation);
    assert!(unsorted(&app, "").await.is_empty());
    // Accepting into Unsorted itself, or into a stage of no pipeline of its own, is refused.
    let (_, uid2, _) = submit_form(&app, &s.form_id, None, "Boris").await;
    let (status, problem) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid2}/accept"),
            json!({"status_id": s.pipeline.unsorted}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, _) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid2}/accept"),
            json!({"status_id": 999_999}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(unsorted(&app, "").await.len(), 1);
    // Without a body (or a status), the lead goes to the first working stage.
    let response = app
        .client
        .post(app.url(&format!("/api/v4/leads/unsorted/{uid2}/accept")))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status_id"], s.pipeline.first_contact);
    let (_, uid3, _) = submit_form(&app, &s.form_id, None, "Vera").await;
    let (status, accepted) = app
        .post(&format!("/api/v4/leads/unsorted/{uid3}/accept"), json!({}))
        .await;
    assert_eq!(
        (status, &accepted["status_id"]),
        (StatusCode::OK, &json!(s.pipeline.first_contact))
    );
}

#[tokio::test]
async fn declining_an_entry_closes_its_lead_as_lost() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, uid, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let (status, body) = app
        .post(&format!("/api/v4/leads/unsorted/{uid}/decline"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status_id"], 143);
    assert!(unsorted(&app, "").await.is_empty());
    let (_, l) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(l["status_id"], 143);
    let (_, tl) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    let kinds: Vec<&str> = tl["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"declined") && kinds.contains(&"moved"),
        "{kinds:?}"
    );
    let (status, _) = app
        .post(&format!("/api/v4/leads/unsorted/{uid}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing fired for the declined lead.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.count(), 0);
}

/// A form's refusal reaches t.js on a page of the form's site (its `footfall:error`
/// event reads the problem, which a cross-origin fetch sees only with the CORS headers),
/// and only there.
#[tokio::test]
async fn a_refused_form_is_readable_by_its_sites_pages_only() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let refused = async |origin: &str| {
        let response = app
            .client
            .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
            .header("origin", origin)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(
                json!({"vid": null, "page": "https://shop.example/contact",
                         "fields": {"name": "Anna", "email": "not an address"}})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        (
            response.status(),
            header("access-control-allow-origin"),
            header("access-control-allow-credentials"),
            header("content-type"),
        )
    };
    let (status, allow, credentials, kind) = refused("https://blog.example").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(allow.as_deref(), Some("https://blog.example"));
    assert_eq!(credentials.as_deref(), Some("true"));
    assert_eq!(kind.as_deref(), Some("application/problem+json"));
    let (status, allow, credentials, _) = refused("https://evil.example").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!((allow, credentials), (None, None));
    assert_eq!(unsorted(&app, "").await.len(), 0);
}

/// A refusal made before the form is read (a body over `limits.public_body_bytes`) is
/// answered like the form's own: readable by t.js on the site's pages (once this instance
/// knows the form: such a refusal costs the store nothing), and a page a person can read
/// after a plain HTML post.
#[tokio::test]
async fn a_forms_body_too_large_is_readable_by_its_sites_pages_and_a_page_for_html() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (status, _) = post_form(
        &app,
        &s.form_id,
        json!({"vid": null, "fields": {"name": "Known", "phone": "+7 900 2"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let big = "x".repeat(64 * 1024);
    let post = async |content_type: &str, body: String| {
        app.client
            .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
            .header("origin", "https://blog.example")
            .header("content-type", content_type)
            .header("accept", common::BROWSER_ACCEPT)
            .body(body)
            .send()
            .await
            .unwrap()
    };
    let json_body = json!({"vid": null, "fields": {"name": big}}).to_string();
    let answer = post("text/plain;charset=UTF-8", json_body).await;
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://blog.example"
    );
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    let answer = post("application/x-www-form-urlencoded", format!("name={big}")).await;
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        answer.headers()
    );
    // Only the first, accepted post made an entry.
    assert_eq!(unsorted(&app, "").await.len(), 1);
}

/// A urlencoded post to a form without a success URL answers the contract's JSON 201
/// (and a refusal problem+json) to a client that does not read HTML, and a page to a
/// browser that navigated there.
#[tokio::test]
async fn a_urlencoded_post_answers_json_unless_a_browser_navigated_there() {
    let app = TestApp::spawn(Backend::Memory).await;
    let (_, form_id) = common::site_and_form(&app, common::TOKEN, "shop.example").await;
    let post = async |accept: &str, body: &str| {
        let answer = app
            .client
            .post(app.url(&format!("/v1/forms/{form_id}/submit")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", accept)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let kind = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (status, kind, answer.text().await.unwrap())
    };
    let (status, kind, text) = post("*/*", "name=Anna&email=anna%40example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(kind, "application/json", "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert!(created["lead_id"].is_u64(), "{created}");
    let (status, kind, _) = post("*/*", "name=Bob&email=not-an-address").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(kind, "application/problem+json");
    let (status, kind, text) =
        post(common::BROWSER_ACCEPT, "name=Cleo&email=cleo%40example.com").await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(kind.starts_with("text/html"), "{kind}: {text}");
}

/// A form's page and referrer are kept to 2 048 bytes as stored: a page that percent-
/// encoding takes past it is dropped, a referrer cut at a character's boundary.
#[tokio::test]
async fn a_forms_page_and_referrer_are_kept_within_2048_bytes() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    // 2 021 bytes as typed, 6 021 percent-encoded.
    let page = format!("https://shop.example/{}", "я".repeat(1000));
    let body = json!({"vid": null, "page": page, "fields": {"name": "Anna", "phone": "+7 900 1"}});
    let (status, created) = post_form(&app, &s.form_id, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let entries = unsorted(&app, "").await;
    assert_eq!(entries[0]["metadata"]["form_page"], "", "{:?}", entries[0]);

    let referer = format!("https://www.google.com/search?q={}", "я".repeat(1500));
    let (status, added) = app
        .post(
            "/api/v4/leads/unsorted/forms",
            json!([{"source_uid": "x", "source_name": "x", "pipeline_id": s.pipeline.id,
                    "metadata": {"form_id": "f", "form_name": "F", "referer": referer,
                                 "form_page": referer},
                    "_embedded": {"contacts": [{"name": "Boris"}]}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let uid = added["_embedded"]["unsorted"][0]["uid"].as_str().unwrap();
    let (_, entry) = app.get(&format!("/api/v4/leads/unsorted/{uid}")).await;
    for field in ["referer", "form_page"] {
        let kept = entry["metadata"][field].as_str().unwrap();
        assert!(
            kept.len() <= 2048 && kept.len() > 2040,
            "{field}: {} bytes",
            kept.len()
        );
        assert!(referer.starts_with(kept), "{field}");
    }
}

//! Leads added through the API as amoCRM's `POST /leads` and `POST /leads/complex`: new
//! and existing contacts, the page's `visitor_uid` linking its browser as a form does (its
//! earlier page views on the lead, its next visit firing the stage's site-visit action),
//! and bad input refused by name with nothing stored — on both stores.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::amocrm::{ids, validation_paths};
use crate::common::{Backend, Receiver, TestApp, setup, test_settings};

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_redis() {
                super::$name(super::Backend::Redis).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_the_embedded_store() {
                super::$name(super::Backend::Memory).await;
            }
        }
    )*};
}

on_both_stores!(
    a_lead_added_with_a_contact_and_the_visitors_uid_links_its_browser,
    complex_leads_answer_a_bare_array_of_ids,
    bad_leads_are_refused_by_name_and_nothing_is_stored,
);

fn new_contact(name: &str) -> Value {
    json!({"first_name": name, "last_name": "Petrova", "custom_fields_values": [
        {"field_code": "PHONE", "values": [{"value": "+7 900 555-01-02", "enum_code": "WORK"}]},
        {"field_code": "EMAIL", "values": [{"value": format!("{}@example.com", name.to_lowercase()), "enum_code": "WORK"}]}
    ]})
}

async fn lead_count(app: &TestApp) -> usize {
    let (status, body) = app.get("/api/v4/leads?limit=250").await;
    if status == StatusCode::NO_CONTENT {
        return 0;
    }
    ids(&body, "leads").len()
}

async fn a_lead_added_with_a_contact_and_the_visitors_uid_links_its_browser(backend: Backend) {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = 1;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.expect("a new visitor gets an id");
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/pricing")
        .await;

    let (status, added) = app
        .post(
            "/api/v4/leads",
            json!([{"name": "Order #1024", "price": 5000, "status_id": s.pipeline.first_contact,
                    "responsible_user_id": 7, "request_id": "site-1", "visitor_uid": vid,
                    "_embedded": {"contacts": [new_contact("Anna")], "tags": [{"name": "shop"}]}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let item = &added["_embedded"]["leads"][0];
    let lead = item["id"].as_u64().unwrap();
    assert_eq!(item["request_id"], "site-1");
    assert_eq!(
        item["_links"]["self"]["href"],
        app.link(&format!("/api/v4/leads/{lead}"))
    );

    let (_, card) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(card["name"], "Order #1024");
    assert_eq!(card["status_id"], s.pipeline.first_contact);
    let contact = &card["_embedded"]["contacts"][0];
    assert_eq!(contact["name"], "Anna Petrova");
    assert_eq!(contact["phone"], "+7 900 555-01-02");
    assert_eq!(contact["email"], "anna@example.com");
    assert_eq!(contact["is_main"], true);
    assert_eq!(card["_embedded"]["visitors"].as_array().unwrap().len(), 1);
    let contact_id = contact["id"].as_u64().unwrap();

    // The browser's page views from before the API call are on the lead's timeline.
    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    let items = timeline["_embedded"]["timeline"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["type"] == "lead_added" && i["to"]["status_id"] == s.pipeline.first_contact),
        "{timeline}"
    );
    assert!(
        items
            .iter()
            .any(|i| i["type"] == "page_view" && i["url"] == "https://shop.example/pricing"),
        "the anonymous history joined the lead: {timeline}"
    );
    let (_, log) = app.get("/api/v4/events?filter[type]=lead_added").await;
    assert_eq!(log["_embedded"]["events"][0]["entity_id"], lead, "{log}");

    // The next visit fires the stage's site-visit action.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/pricing")
        .await;
    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1, "one site-visit webhook");
    assert!(
        received[0].body.contains(&lead.to_string()),
        "{}",
        received[0].body
    );

    // A second lead of the same contact, by id, in the pipeline's first working stage.
    let (status, again) = app
        .post(
            "/api/v4/leads",
            json!([{"pipeline_id": s.pipeline.id, "_embedded": {"contacts": [{"id": contact_id}]}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let second = again["_embedded"]["leads"][0]["id"].as_u64().unwrap();
    assert_eq!(again["_embedded"]["leads"][0]["request_id"], "0");
    let (_, card) = app.get(&format!("/api/v4/leads/{second}")).await;
    assert_eq!(card["status_id"], s.pipeline.first_contact);
    assert_eq!(card["name"], format!("Lead #{second}"));
    assert_eq!(card["_embedded"]["contacts"][0]["id"], contact_id);
    assert_eq!(card["_embedded"]["contacts"][0]["name"], "Anna Petrova");
    let (_, contact) = app
        .get(&format!("/api/v4/contacts/{contact_id}?with=leads"))
        .await;
    let mut leads: Vec<u64> = contact["_embedded"]["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    leads.sort_unstable();
    assert_eq!(leads, [lead, second]);
}

async fn complex_leads_answer_a_bare_array_of_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (status, added) = app
        .post(
            "/api/v4/leads/complex",
            json!([
                {"name": "Call back", "pipeline_id": s.pipeline.id, "status_id": s.pipeline.negotiation,
                 "_embedded": {"contacts": [new_contact("Boris")], "companies": [{"name": "Acme"}]}},
                {"name": "No contact", "request_id": 77}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let items = added.as_array().expect("a bare array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["request_id"], json!(["0"]));
    assert_eq!(items[0]["merged"], false);
    assert_eq!(items[0]["company_id"], Value::Null);
    assert_eq!(items[1]["request_id"], json!(["77"]));
    assert_eq!(items[1]["contact_id"], Value::Null);
    let lead = items[0]["id"].as_u64().unwrap();
    let (_, card) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(card["status_id"], s.pipeline.negotiation);
    assert_eq!(
        card["_embedded"]["contacts"][0]["id"],
        items[0]["contact_id"]
    );
    assert_eq!(
        card["_embedded"]["contacts"][0]["email"],
        "boris@example.com"
    );
}

async fn bad_leads_are_refused_by_name_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, stranger) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let mut tampered = stranger.unwrap();
    tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
    let before = lead_count(&app).await;
    for forged in ["not-a-visitor".to_owned(), tampered] {
        let (status, problem) = app
            .post(
                "/api/v4/leads",
                json!([{"name": "Fine"}, {"name": "Mallory", "visitor_uid": forged,
                         "_embedded": {"contacts": [new_contact("Mallory")]}}]),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(
            validation_paths(&problem),
            [("1".to_owned(), "visitor_uid".to_owned())],
            "{problem}"
        );
    }
    for (path, bad, field) in [
        (
            "/api/v4/leads",
            json!([{"pipeline_id": "one"}]),
            "[0].pipeline_id",
        ),
        (
            "/api/v4/leads",
            json!([{"pipeline_id": 4242}]),
            "[0].pipeline_id",
        ),
        (
            "/api/v4/leads",
            json!([{"status_id": 999_999}]),
            "[0].status_id",
        ),
        (
            "/api/v4/leads",
            json!([{"status_id": s.pipeline.unsorted}]),
            "[0].status_id",
        ),
        ("/api/v4/leads", json!([{"name": ""}]), "[0].name"),
        (
            "/api/v4/leads",
            json!([{"_embedded": {"contacts": [{"id": 987_654}]}}]),
            "[0]._embedded.contacts[0].id",
        ),
        (
            "/api/v4/leads",
            json!([{"_embedded": {"contacts": [{"name": "A", "custom_fields_values":
                [{"field_code": "EMAIL", "values": [{"value": "not-an-email"}]}]}]}}]),
            "[0]._embedded.contacts[0].email",
        ),
        (
            "/api/v4/leads/complex",
            json!([{"_embedded": {"contacts": [{"id": 1}]}}]),
            "[0]._embedded.contacts[0].id",
        ),
        (
            "/api/v4/leads/complex",
            json!([{"_embedded": {"contacts": [new_contact("A"), new_contact("B")]}}]),
            "[0]._embedded.contacts",
        ),
    ] {
        let (status, problem) = app.post(path, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{bad}: {problem}");
    }
    let (status, problem) = app
        .post("/api/v4/leads", json!([{"name": "A", "colour": "red"}]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown field: {problem}");
    let (status, _) = app.post("/api/v4/leads", json!({"name": "A"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not an array");
    assert_eq!(
        lead_count(&app).await,
        before,
        "refused leads created nothing"
    );
}

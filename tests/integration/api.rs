//! The management API, through HTTP: handler settings checked against the schema,
//! macros, notes, filters, paging with HAL links, events and deliveries, and an OpenAPI
//! document that lists every endpoint.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Receiver, TestApp, items, setup, submit_form};

#[tokio::test]
async fn action_settings_must_fit_the_handlers_schema() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    app.create(
        "handlers",
        json!({"code": "sms", "name": "SMS", "webhook_url": receiver.url(), "settings": {
        "message": {"name": "Message", "type": "textarea", "required": true},
        "only_main": {"name": "Main contact only", "type": "checkbox"},
        "sender": {"name": "Sender", "type": "select", "options": ["shop", "support"]},
        "limit": {"name": "Daily limit", "type": "number"}}}),
    )
    .await;
    let action = |settings: Value| {
        json!([{"pipeline_id": s.pipeline.id, "status_ids": [s.pipeline.first_contact],
        "event": "site_visit", "handler": "sms", "site_url": "shop.example", "settings": settings}])
    };
    let (status, problem) = app
        .post(
            "/api/v4/actions",
            action(json!({"only_main": "yes", "sender": "boss", "limit": "many", "colour": "red"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: BTreeSet<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "[0].settings.colour",
            "[0].settings.message",
            "[0].settings.only_main",
            "[0].settings.sender",
            "[0].settings.limit"
        ])
    );
    let (status, body) = app
        .post("/api/v4/actions", action(json!({"message": "Hi {{contact.name}}", "only_main": true, "sender": "shop", "limit": 5})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A number given as text is kept as the number the handler will receive.
    let (status, body) = app
        .post(
            "/api/v4/actions",
            action(json!({"message": "Hi", "limit": "7"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["_embedded"]["actions"][0]["settings"]["limit"],
        json!(7)
    );
    // A broken schema is refused when the handler is registered.
    let (status, problem) = app
        .post(
            "/api/v4/handlers",
            json!([{"code": "bad", "name": "Bad", "webhook_url": receiver.url(),
            "settings": {"x": {"name": "X", "type": "colour"}}}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "[0].settings.x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macros_are_substituted_with_the_main_contact_and_unknown_ones_kept() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    app.patch(&format!("/api/v4/actions/{}", s.action_id), json!({"settings": {"message":
        "{{lead.id}}|{{lead.name}}|{{contact.name}}|{{contact.phone}}|{{contact.email}}|{{deal.sum}}|{{ contact.name }}"}}))
        .await;
    let (lead, uid, vid) = submit_form(&app, &s.form_id, None, "Anna").await;
    app.post(
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        json!({"status_id": s.pipeline.first_contact}),
    )
    .await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    let message = received[0].json()["action"]["settings"]["widget"]["settings"]["message"].clone();
    assert_eq!(
        message,
        format!(
            "{lead}|Contact: Anna|Anna|{}|{}|{{{{deal.sum}}}}|Anna",
            common::phone_of("Anna"),
            common::email_of("Anna")
        )
    );
}

#[tokio::test]
async fn handlers_log_back_into_the_lead_with_service_messages() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, _, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let (status, created) = app
        .post(&format!("/api/v4/leads/{lead}/notes"), json!([{"note_type": 25, "params": {"text": "SMS sent", "service": "Notify"}},
            {"note_type": "service_message", "params": {"text": "<b>Read</b>", "service": "Notify"}}]))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (_, notes) = app.get(&format!("/api/v4/leads/{lead}/notes")).await;
    let notes = items(&notes, "notes");
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["note_type"], "service_message");
    assert_eq!(notes[0]["note_type_id"], 25);
    assert_eq!(notes[0]["entity_id"], lead);
    assert_eq!(
        notes[1]["params"],
        json!({"text": "<b>Read</b>", "service": "Notify"})
    );
    let (_, tl) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    assert_eq!(
        items(&tl, "timeline")
            .iter()
            .filter(|i| i["type"] == "note")
            .count(),
        2
    );
    // Other note types and empty texts are refused, naming the field; nothing is added.
    let (status, problem) = app
        .post(
            &format!("/api/v4/leads/{lead}/notes"),
            json!([{"note_type": 10, "params": {"text": "x", "service": "y"}},
            {"note_type": 25, "params": {"text": " ", "service": "y"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["[0].note_type", "[1].params.text"]);
    let (_, notes) = app.get(&format!("/api/v4/leads/{lead}/notes")).await;
    assert_eq!(items(&notes, "notes").len(), 2);
    let (status, _) = app.get("/api/v4/leads/999999/notes").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn leads_are_filtered_and_paged_with_hal_links() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let mut leads = Vec::new();
    for name in ["Anna", "Boris", "Vera", "Gleb", "Dasha"] {
        leads.push(submit_form(&app, &s.form_id, None, name).await);
    }
    for (lead, uid, _) in &leads[..2] {
        let (status, _) = app
            .post(
                &format!("/api/v4/leads/unsorted/{uid}/accept"),
                json!({"status_id": s.pipeline.negotiation}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "lead {lead}");
    }
    let names = |body: &Value| -> Vec<String> {
        items(body, "leads")
            .iter()
            .map(|l| l["name"].as_str().unwrap().replace("Contact: ", ""))
            .collect()
    };
    let (_, all) = app.get("/api/v4/leads").await;
    assert_eq!(
        names(&all),
        ["Dasha", "Gleb", "Vera", "Boris", "Anna"],
        "newest first"
    );
    let (_, negotiating) = app
        .get(&format!(
            "/api/v4/leads?status_id={}",
            s.pipeline.negotiation
        ))
        .await;
    assert_eq!(names(&negotiating), ["Boris", "Anna"]);
    let (_, found) = app
        .get(&format!("/api/v4/leads?query={}", common::email_of("Vera")))
        .await;
    assert_eq!(names(&found), ["Vera"]);
    let (_, found) = app.get("/api/v4/leads?query=GLEB").await;
    assert_eq!(names(&found), ["Gleb"]);
    let now = footfall::domain::time::to_secs(footfall::domain::time::now_ms());
    let (_, recent) = app
        .get(&format!(
            "/api/v4/leads?created_from={}&pipeline_id={}",
            now - 60,
            s.pipeline.id
        ))
        .await;
    assert_eq!(names(&recent).len(), 5);
    let (status, future) = app
        .get(&format!("/api/v4/leads?created_from={}", now + 60))
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "an empty list, as amoCRM answers it"
    );
    assert_eq!(future, Value::String(String::new()));

    let (_, page1) = app.get("/api/v4/leads?limit=2").await;
    assert_eq!(names(&page1), ["Dasha", "Gleb"]);
    assert_eq!(page1["_page"], 1);
    assert_eq!(
        page1["_links"]["self"]["href"],
        app.link("/api/v4/leads?page=1&limit=2")
    );
    assert!(page1["_links"].get("prev").is_none());
    let next = page1["_links"]["next"]["href"].as_str().unwrap();
    let (_, page2) = app.get(next).await;
    assert_eq!(names(&page2), ["Vera", "Boris"]);
    assert_eq!(
        page2["_links"]["prev"]["href"],
        app.link("/api/v4/leads?page=1&limit=2")
    );
    let (_, page3) = app
        .get(page2["_links"]["next"]["href"].as_str().unwrap())
        .await;
    assert_eq!(names(&page3), ["Anna"]);
    assert!(page3["_links"].get("next").is_none());
    // Filters survive in the links.
    let (_, filtered) = app
        .get(&format!(
            "/api/v4/leads?status_id={}&limit=1",
            s.pipeline.negotiation
        ))
        .await;
    let next = filtered["_links"]["next"]["href"].as_str().unwrap();
    assert!(
        next.contains(&format!("status_id={}", s.pipeline.negotiation)),
        "{next}"
    );

    for bad in [
        "limit=251",
        "limit=0",
        "page=0",
        "status_id=abc",
        "colour=red",
    ] {
        let (status, problem) = app.get(&format!("/api/v4/leads?{bad}")).await;
        assert!(
            status == StatusCode::BAD_REQUEST,
            "{bad}: {status} {problem}"
        );
        assert_eq!(problem["status"], status.as_u16());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_with_their_deliveries_and_filtered() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    receiver.script([common::Reply::Status(502)]);
    let s = setup(&app, &receiver, 0).await;
    let (lead, uid, vid) = submit_form(&app, &s.form_id, None, "Anna").await;
    app.post(
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        json!({"status_id": s.pipeline.first_contact}),
    )
    .await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    assert_eq!(receiver.wait_for(2, Duration::from_secs(10)).await.len(), 2);

    // Delivered once the receiver's answer is saved, a moment after it arrived.
    let site_visits = format!("/api/v4/webhook_events?lead_id={lead}&type=site_visit");
    let mut events = app.get(&site_visits).await.1;
    for _ in 0..100 {
        if items(&events, "events")[0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        events = app.get(&site_visits).await.1;
    }
    let event = &items(&events, "events")[0];
    assert_eq!(event["state"], "delivered");
    assert_eq!(event["type"], 18);
    let attempts = event["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status"], 502);
    assert!(attempts[0]["latency_ms"].is_u64());
    for (query, expected) in [
        ("state=delivered", 1),
        ("state=dead", 0),
        ("type=18", 1),
        ("type=lead_added", 0),
        ("handler_id=999", 0),
        ("lead_id=999999", 0),
    ] {
        let (_, list) = app.get(&format!("/api/v4/webhook_events?{query}")).await;
        assert_eq!(items(&list, "events").len(), expected, "{query}");
    }
    // One event shows the exact body it sends.
    let (_, one) = app
        .get(&format!(
            "/api/v4/webhook_events/{}",
            event["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one["body"]["meta"]["event_id"], event["id"]);
    let (status, _) = app.get("/api/v4/webhook_events/evt_doesnotexist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Every method of every path in the document answers (401 without a token: the route
/// exists and is protected), and the document names every endpoint of the API.
#[tokio::test]
async fn the_openapi_document_lists_every_management_endpoint() {
    let app = TestApp::spawn(Backend::Memory).await;
    let response = app
        .client
        .get(app.url("/api/v4/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut operations = BTreeSet::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            operations.insert(format!("{} {path}", method.to_uppercase()));
            // A paged list answers 204 for an empty page (as amoCRM's do): documented so.
            let listed = operation["responses"]["200"]["content"]["application/json"].is_object()
                && operation["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "page"));
            assert!(
                !listed || operation["responses"]["204"].is_object(),
                "{method} {path} lists, but its 204 is not documented"
            );
            let url = app.url(&path.replace("{id}", "1").replace("{uid}", "u1"));
            let request = match method.as_str() {
                "get" => app.client.get(url),
                "post" => app.client.post(url),
                "patch" => app.client.patch(url),
                "delete" => app.client.delete(url),
                other => panic!("unexpected method {other}"),
            };
            let status = request.send().await.unwrap().status();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }
    let expected = [
        "GET /api/v4/sites",
        "POST /api/v4/sites",
        "GET /api/v4/sites/{id}",
        "PATCH /api/v4/sites/{id}",
        "GET /api/v4/sites/{id}/stats",
        "GET /api/v4/forms",
        "POST /api/v4/forms",
        "GET /api/v4/forms/{id}",
        "GET /api/v4/leads/pipelines",
        "POST /api/v4/leads/pipelines",
        "GET /api/v4/leads/pipelines/{id}",
        "GET /api/v4/leads",
        "GET /api/v4/leads/export.csv",
        "GET /api/v4/leads/{id}",
        "PATCH /api/v4/leads/{id}",
        "GET /api/v4/leads/{id}/timeline",
        "GET /api/v4/leads/{id}/visits",
        "GET /api/v4/leads/{id}/notes",
        "POST /api/v4/leads/{id}/notes",
        "GET /api/v4/leads/unsorted",
        "GET /api/v4/leads/unsorted/{uid}",
        "POST /api/v4/leads/unsorted/{uid}/accept",
        "POST /api/v4/leads/unsorted/{uid}/decline",
        "DELETE /api/v4/leads/unsorted/{uid}/decline",
        "GET /api/v4/leads/unsorted/summary",
        "POST /api/v4/leads/unsorted/forms",
        "POST /api/v4/leads/{id}/visitors",
        "PATCH /api/v4/leads",
        "GET /api/v4/leads/notes",
        "POST /api/v4/leads/notes",
        "GET /api/v4/leads/pipelines/{id}/statuses",
        "GET /api/v4/leads/pipelines/{id}/statuses/{status_id}",
        "GET /api/v4/handlers",
        "POST /api/v4/handlers",
        "GET /api/v4/handlers/{id}",
        "PATCH /api/v4/handlers/{id}",
        "POST /api/v4/handlers/{id}/replay",
        "GET /api/v4/actions",
        "POST /api/v4/actions",
        "GET /api/v4/actions/{id}",
        "PATCH /api/v4/actions/{id}",
        "DELETE /api/v4/actions/{id}",
        "GET /api/v4/webhook_events",
        "GET /api/v4/events",
        "GET /api/v4/contacts",
        "GET /api/v4/contacts/{id}",
        "POST /api/v4/leads",
        "POST /api/v4/leads/complex",
        "POST /api/v4/contacts",
        "PATCH /api/v4/contacts",
        "PATCH /api/v4/contacts/{id}",
        "GET /api/v4/webhooks",
        "POST /api/v4/webhooks",
        "DELETE /api/v4/webhooks",
        "GET /api/v4/webhooks/{id}/deliveries",
        "GET /api/v4/webhook_events/{id}",
        "POST /api/v4/webhook_events/{id}/replay",
        "GET /api/v4/stream",
        "GET /api/v4/demo",
        "GET /api/v4/demo/inbox",
        "DELETE /api/v4/leads/{id}",
        "DELETE /api/v4/visitors/{visitor_uid}",
        "POST /api/v4/privacy/erase",
        "GET /api/v4/privacy/audit",
        "GET /api/v4/privacy/export",
        "GET /api/v4/quotas",
    ];
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(operations, expected);
}

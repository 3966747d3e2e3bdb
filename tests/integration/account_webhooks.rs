//! Account webhooks as amoCRM has them (`/api/v4/webhooks`): a real local subscriber gets
//! `add_lead`, `status_lead` and `note_lead` notices as form-encoded bodies that a
//! PHP-style bracket parser (`querystring-parser` from PyPI) decodes to amoCRM's keys,
//! signed and verified with the `standardwebhooks` package; the account's cap, unknown
//! settings, wrong types and private destinations refused — on both stores.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Received, Receiver, Reply, TestApp, test_settings};

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
    a_subscriber_gets_amocrm_bodies_signed_and_bracket_encoded,
    webhooks_are_capped_checked_and_unsubscribed,
    a_private_destination_is_refused,
    a_failing_subscriber_gets_retries_then_a_dead_letter_and_a_replay,
    contact_unsorted_and_rename_notices_reach_only_their_subscribers,
    a_note_on_one_leads_route_is_told_as_on_the_batch_route,
);

/// The deliveries decoded by the Python subscriber's libraries (verifying each signature).
fn decode(secret: &str, received: &[Received]) -> Vec<Value> {
    let deliveries: Vec<Value> = received
        .iter()
        .map(|r| {
            let headers: serde_json::Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_lowercase(), Value::String(v.clone())))
                .collect();
            json!({"headers": headers, "body": r.body})
        })
        .collect();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/client/amocrm_webhooks.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            json!({"secret": secret, "deliveries": deliveries})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the subscriber refused a delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn a_subscriber_gets_amocrm_bodies_signed_and_bracket_encoded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let subscriber = Receiver::start().await;
    let (status, hook) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": subscriber.url(), "sort": 10,
                   "settings": ["add_lead", "status_lead", "note_lead", "delete_lead"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    let secret = hook["secret"]
        .as_str()
        .expect("the secret, shown once")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    let (_, listed) = app.get("/api/v4/webhooks").await;
    assert_eq!(listed["_total_items"], 1);
    let shown = &listed["_embedded"]["webhooks"][0];
    assert_eq!(shown["destination"], subscriber.url());
    assert_eq!(
        shown["settings"],
        json!(["add_lead", "status_lead", "note_lead", "delete_lead"])
    );
    assert!(
        shown.get("secret").is_none(),
        "the secret is not shown again"
    );
    // Sent again, typed another way (the scheme in capitals): the same subscription,
    // whose secret the answer does not show again; the filter finds it as typed.
    let typed = subscriber.url().replacen("http://", "HTTP://", 1);
    let (status, again) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": typed, "sort": 10,
                   "settings": ["add_lead", "status_lead", "note_lead", "delete_lead"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], hook["id"]);
    assert!(again.get("secret").is_none(), "{again}");
    let query: String = url::form_urlencoded::byte_serialize(typed.as_bytes()).collect();
    let (status, found) = app
        .get(&format!("/api/v4/webhooks?filter[destination]={query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["_total_items"], 1);
    let (status, problem) = app.get("/api/v4/webhooks/999999/deliveries").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    let pipeline = app.pipeline().await;
    let (status, added) = app
        .post(
            "/api/v4/leads",
            json!([{"name": "Order & co", "pipeline_id": pipeline.id}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let lead = added["_embedded"]["leads"][0]["id"].as_u64().unwrap();
    let (status, _) = app
        .patch(
            &format!("/api/v4/leads/{lead}"),
            json!({"status_id": pipeline.negotiation}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            "/api/v4/leads/notes",
            json!([{"entity_id": lead, "note_type": "common", "params": {"text": "Called back"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let received = subscriber.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 3, "one notice per change");
    let bodies = decode(&secret, &received);
    let find = |entity: &str, action: &str| {
        bodies
            .iter()
            .find(|b| !b[entity][action].is_null())
            .unwrap_or_else(|| panic!("no {entity}[{action}] in {bodies:?}"))
            .clone()
    };
    let add = find("leads", "add");
    assert_eq!(add["leads"]["add"][0]["id"], lead.to_string());
    assert_eq!(add["leads"]["add"][0]["name"], "Order & co");
    assert_eq!(
        add["leads"]["add"][0]["status_id"],
        pipeline.first_contact.to_string()
    );
    let (_, card) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(add["account"]["id"], card["account_id"].to_string());
    assert!(add["account"]["subdomain"].is_string(), "{add}");
    let moved = &find("leads", "status")["leads"]["status"][0];
    assert_eq!(moved["id"], lead.to_string());
    assert_eq!(moved["status_id"], pipeline.negotiation.to_string());
    assert_eq!(moved["old_status_id"], pipeline.first_contact.to_string());
    assert_eq!(moved["pipeline_id"], pipeline.id.to_string());
    assert_eq!(moved["old_pipeline_id"], pipeline.id.to_string());
    let note = &find("leads", "note")["leads"]["note"][0]["note"];
    assert_eq!(note["element_id"], lead.to_string());
    assert_eq!(note["text"], "Called back");
    assert_eq!(note["note_type"], "4");

    // The deliveries are the webhook's, with their attempts; replay sends one again.
    let id = hook["id"].as_u64().unwrap();
    let (status, deliveries) = app.get(&format!("/api/v4/webhooks/{id}/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    let events = deliveries["_embedded"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(
        events.iter().all(|e| e["state"] == "delivered"),
        "{deliveries}"
    );
    let event = events[0]["id"].as_str().unwrap();
    let (status, replayed) = app
        .post(&format!("/api/v4/webhook_events/{event}/replay"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    let again = subscriber.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(again.len(), 4, "the replay arrived");
    assert_eq!(
        again[3].body,
        received
            .iter()
            .find(|r| r.header("webhook-id") == event)
            .unwrap()
            .body
    );

    // Deleting the lead (the privacy erasure) tells the subscriber: id and stage only.
    let (status, _) = app.delete(&format!("/api/v4/leads/{lead}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let all = subscriber.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(all.len(), 5, "the delete notice arrived");
    let deleted = decode(&secret, &all[4..]);
    let gone = &deleted[0]["leads"]["delete"][0];
    assert_eq!(gone["id"], lead.to_string(), "{deleted:?}");
    assert_eq!(gone["status_id"], pipeline.negotiation.to_string());
    assert_eq!(gone["pipeline_id"], pipeline.id.to_string());
    assert!(
        gone.get("name").is_none(),
        "nothing of the lead but its id and stage"
    );
}

async fn webhooks_are_capped_checked_and_unsubscribed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (body, field) in [
        (
            json!({"destination": "http://127.0.0.1:9/a", "settings": ["add_company"]}),
            "settings[0]",
        ),
        (
            json!({"destination": "http://127.0.0.1:9/a", "settings": []}),
            "settings",
        ),
        (
            json!({"destination": "http://127.0.0.1:9/a", "settings": "add_lead"}),
            "settings",
        ),
        (
            json!({"destination": 5, "settings": ["add_lead"]}),
            "destination",
        ),
        (
            json!({"destination": "ftp://example.com/", "settings": ["add_lead"]}),
            "destination",
        ),
    ] {
        let (status, problem) = app.post("/api/v4/webhooks", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let (status, _) = app.get("/api/v4/webhooks?filter[colour]=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown filter");
    let (status, _) = app.get("/api/v4/webhooks").await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "refused webhooks created nothing"
    );

    for i in 0..100 {
        let (status, body) = app
            .post(
                "/api/v4/webhooks",
                json!({"destination": format!("http://127.0.0.1:9/hook{i}"), "settings": ["add_lead"]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{i}: {body}");
    }
    let (status, problem) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": "http://127.0.0.1:9/hook100", "settings": ["add_lead"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the 101st: {problem}");
    assert_eq!(problem["errors"][0]["field"], "destination");
    // An existing destination takes new settings, keeping its place.
    let (status, same) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": "http://127.0.0.1:9/hook7", "settings": ["note_lead"], "sort": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    let (_, one) = app
        .get("/api/v4/webhooks?filter[destination]=http://127.0.0.1:9/hook7")
        .await;
    assert_eq!(one["_total_items"], 1);
    assert_eq!(
        one["_embedded"]["webhooks"][0]["settings"],
        json!(["note_lead"])
    );

    let (status, _) = app
        .delete(
            "/api/v4/webhooks",
            Some(json!({"destination": "http://127.0.0.1:9/hook7"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .delete(
            "/api/v4/webhooks",
            Some(json!({"destination": "http://127.0.0.1:9/hook7"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, all) = app.get("/api/v4/webhooks").await;
    assert_eq!(all["_total_items"], 99);
}

async fn a_private_destination_is_refused(backend: Backend) {
    let mut settings = test_settings(backend);
    settings.delivery.allow_private_targets = false;
    let app = TestApp::spawn_with(settings).await;
    for destination in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
    ] {
        let (status, problem) = app
            .post(
                "/api/v4/webhooks",
                json!({"destination": destination, "settings": ["add_lead"]}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{destination}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "destination");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not a public address"),
            "{problem}"
        );
    }
    let (status, _) = app.get("/api/v4/webhooks").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

async fn a_failing_subscriber_gets_retries_then_a_dead_letter_and_a_replay(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let subscriber = Receiver::start().await;
    // The test schedule retries three times, a second apart: four failures dead-letter it.
    subscriber.script([500, 500, 503, 500].map(Reply::Status));
    let (status, hook) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": subscriber.url(), "settings": ["add_lead"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    let id = hook["id"].as_u64().unwrap();
    let (status, _) = app
        .post("/api/v4/leads", json!([{"name": "Retry me"}]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let tries = subscriber.wait_for(4, Duration::from_secs(15)).await;
    assert_eq!(tries.len(), 4, "the first attempt and three retries");
    let webhook_id = tries[0].header("webhook-id").to_owned();
    assert!(
        tries
            .iter()
            .all(|t| t.header("webhook-id") == webhook_id && t.body == tries[0].body),
        "every retry is the same notice"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let event = loop {
        let (_, deliveries) = app.get(&format!("/api/v4/webhooks/{id}/deliveries")).await;
        let event = deliveries["_embedded"]["events"][0].clone();
        if event["state"] == "dead" || std::time::Instant::now() > deadline {
            break event;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event["state"], "dead", "{event}");
    assert_eq!(event["attempts"].as_array().unwrap().len(), 4, "{event}");
    let (status, replayed) = app
        .post(
            &format!("/api/v4/webhook_events/{webhook_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    let all = subscriber.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(all.len(), 5, "the replay arrived");
    assert_eq!(all[4].header("webhook-id"), webhook_id);
    let decoded = decode(hook["secret"].as_str().unwrap(), &all[4..]);
    assert_eq!(decoded[0]["leads"]["add"][0]["name"], "Retry me");
}

async fn contact_unsorted_and_rename_notices_reach_only_their_subscribers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let subscriber = Receiver::start().await;
    let (_, hook) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": subscriber.url(), "settings":
                ["add_contact", "update_contact", "add_unsorted", "delete_unsorted", "update_lead"]}),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let pipeline = app.pipeline().await;
    let (status, created) = app
        .post(
            "/api/v4/leads/unsorted/forms",
            json!([{"source_uid": "s", "source_name": "Shop", "pipeline_id": pipeline.id,
                    "metadata": {"form_id": "f", "form_name": "Sign-up"},
                    "_embedded": {"contacts": [{"name": "Vera", "custom_fields_values":
                        [{"field_code": "EMAIL", "values": [{"value": "vera@example.com"}]}]}]}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let entry = &created["_embedded"]["unsorted"][0];
    let uid = entry["uid"].as_str().unwrap();
    let lead = entry["_embedded"]["leads"][0]["id"].as_u64().unwrap();
    let contact = entry["_embedded"]["contacts"][0]["id"].as_u64().unwrap();
    let (status, _) = app
        .post(&format!("/api/v4/leads/unsorted/{uid}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .patch(
            "/api/v4/contacts",
            json!([{"id": contact, "name": "Vera P."}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .patch(&format!("/api/v4/leads/{lead}"), json!({"name": "Renamed"}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let received = subscriber.wait_for(5, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        subscriber.count(),
        5,
        "add_lead and status_lead are not subscribed"
    );
    let bodies = decode(&secret, &received);
    let one = |entity: &str, action: &str| {
        bodies
            .iter()
            .find_map(|b| b[entity][action].get(0).cloned())
            .unwrap_or_else(|| panic!("no {entity}[{action}] in {bodies:?}"))
    };
    let added = one("contacts", "add");
    assert_eq!(added["id"], contact.to_string());
    assert_eq!(added["custom_fields"][0]["code"], "EMAIL");
    assert_eq!(
        added["custom_fields"][0]["values"][0]["value"],
        "vera@example.com"
    );
    assert_eq!(one("contacts", "update")["name"], "Vera P.");
    assert_eq!(one("unsorted", "add")["uid"], uid);
    assert_eq!(one("unsorted", "add")["lead_id"], lead.to_string());
    assert_eq!(one("unsorted", "delete")["action"], "accept");
    assert_eq!(one("leads", "update")["name"], "Renamed");
}

/// `POST /leads/{id}/notes` (the route a handler logs back into its lead with) tells the
/// subscriber as `POST /leads/notes` does: one `note_lead` notice per note.
async fn a_note_on_one_leads_route_is_told_as_on_the_batch_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let subscriber = Receiver::start().await;
    let (status, hook) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": subscriber.url(), "settings": ["note_lead"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let pipeline = app.pipeline().await;
    let (status, added) = app
        .post(
            "/api/v4/leads",
            json!([{"name": "Order", "pipeline_id": pipeline.id}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let lead = added["_embedded"]["leads"][0]["id"].as_u64().unwrap();

    let (status, body) = app
        .post(
            &format!("/api/v4/leads/{lead}/notes"),
            json!([{"note_type": "common", "params": {"text": "Sent the SMS"}},
                   {"note_type": "common", "params": {"text": "Delivered"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let received = subscriber.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 2, "one notice per note");
    let mut texts: Vec<String> = decode(&secret, &received)
        .iter()
        .map(|b| {
            let note = &b["leads"]["note"][0]["note"];
            assert_eq!(note["element_id"], lead.to_string(), "{b}");
            note["text"].as_str().unwrap().to_owned()
        })
        .collect();
    texts.sort();
    assert_eq!(texts, ["Delivered", "Sent the SMS"]);
}

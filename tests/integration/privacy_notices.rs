//! A lead's erasure with an account webhook subscribed: the notices about the lead and its
//! contacts (bodies with its name, phone, email, note text) go with it, scheduled or
//! delivered, as does its contact's own record (a contact changed by the API), and the
//! `delete_lead` notice the erasure sends is the one record left of the lead — its body
//! (id and stage only) reaches a real subscriber, as does the `delete_contact` of its
//! contact (id only). On both stores.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::privacy::{DELAY_SECS, context, everything, plant, spawn};
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

both_stores!(erasing_a_lead_removes_its_webhook_notices_but_the_delete_one);

/// A form body's value of `name`.
fn field(body: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn erasing_a_lead_removes_its_webhook_notices_but_the_delete_one(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let subscriber = Receiver::start().await;
    let (status, hook) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": subscriber.url(),
                   "settings": ["add_lead", "add_contact", "update_contact", "status_lead",
                                "note_lead", "delete_lead", "delete_contact"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    let hook_id = hook["id"].as_u64().unwrap();
    let s = setup(app, &receiver, DELAY_SECS).await;
    let anna = plant(app, &s).await;
    let other = plant(app, &s).await;
    let name = format!("Zed{}", anna.note.trim_start_matches("note-"));
    // Renamed by the API: a contact record of its own, and an `update_contact` notice.
    let renamed = format!("Rec{}", anna.note.trim_start_matches("note-"));
    let (_, card) = app.get(&format!("/api/v4/leads/{}", anna.lead)).await;
    let contact = card["_embedded"]["contacts"][0]["id"].as_u64().unwrap();
    let (status, body) = app
        .patch(
            "/api/v4/contacts",
            json!([{"id": contact, "name": renamed}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The notices about Anna carry her data; some are delivered by now.
    let before = subscriber.wait_for(1, Duration::from_secs(10)).await;
    assert!(!before.is_empty(), "the subscriber heard of the new leads");
    let dump = everything(&h).await;
    for marker in [&name, &renamed, &anna.email, &anna.note] {
        assert!(
            dump.matches(marker.as_str()).count() > 1,
            "{marker} is in a notice as well as in the lead"
        );
    }
    let listed_before = deliveries(app, hook_id).await;
    assert!(
        listed_before
            .iter()
            .any(|e| e["lead_id"] == anna.lead || e["lead_id"] == 0),
        "{listed_before:?}"
    );

    let (status, body) = app
        .delete(&format!("/api/v4/leads/{}", anna.lead), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The subscriber gets the delete notice: the lead's id, nothing personal; and its
    // contact, which no other lead has, is a deleted contact (its id only).
    let deleted = loop_until_delete(&subscriber, "leads", anna.lead).await;
    let contact_gone = loop_until_delete(&subscriber, "contacts", contact).await;
    assert!(!contact_gone.contains(&renamed), "{contact_gone}");
    assert_eq!(
        field(&deleted, "leads[delete][0][id]"),
        Some(anna.lead.to_string())
    );
    assert!(
        !deleted.contains(&name) && !deleted.contains("Zed"),
        "{deleted}"
    );

    // Nothing of Anna is left but that notice; Bob's notices stay.
    let dump = everything(&h).await;
    let mut markers = anna.markers();
    markers.push(name.clone());
    markers.push(renamed.clone());
    for marker in &markers {
        assert!(
            !dump.contains(marker.as_str()),
            "{marker} is still stored:\n{}",
            context(&dump, marker)
        );
    }
    let after = deliveries(app, hook_id).await;
    let of_anna: Vec<_> = after.iter().filter(|e| e["lead_id"] == anna.lead).collect();
    assert_eq!(of_anna.len(), 1, "only the delete notice: {of_anna:?}");
    let body = of_anna[0]["body"].as_str().unwrap_or_default();
    assert_eq!(
        field(body, "leads[delete][0][id]"),
        Some(anna.lead.to_string()),
        "{of_anna:?}"
    );
    let other_name = format!("Zed{}", other.note.trim_start_matches("note-"));
    assert!(
        after.iter().any(
            |e| e["body"].as_str().unwrap_or_default().contains(&other_name)
                || e["lead_id"] == other.lead
        ),
        "the other lead's notices stay: {after:?}"
    );
}

/// The webhook's notices, as its deliveries route lists them.
async fn deliveries(app: &TestApp, hook: u64) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v4/webhooks/{hook}/deliveries"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["_embedded"]["events"].as_array().cloned().unwrap()
}

/// The body of the `delete_lead` (`entity` "leads") or `delete_contact` ("contacts")
/// notice of `id`, once the subscriber has it.
async fn loop_until_delete(subscriber: &Receiver, entity: &str, id: u64) -> String {
    let key = format!("{entity}[delete][0][id]");
    for _ in 0..100 {
        if let Some(r) = subscriber
            .received()
            .into_iter()
            .find(|r| field(&r.body, &key) == Some(id.to_string()))
        {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no delete notice of {entity} {id} arrived");
}

//! Contacts written through the API as amoCRM writes them: `POST /contacts`, batch
//! `PATCH /contacts`, `PATCH /contacts/{id}` — a change reaches the contact's leads and
//! the email/phone lookups duplicate detection uses; bad input is refused by name — on
//! both stores.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::amocrm::ids;
use crate::common::{Backend, Receiver, TestApp, setup, submit_form};

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
    contacts_are_added_and_listed_without_a_lead,
    a_contacts_change_reaches_its_leads_and_duplicate_detection,
    bad_contacts_are_refused_by_name,
);

fn email(value: &str) -> Value {
    json!({"field_code": "EMAIL", "values": [{"value": value, "enum_code": "WORK"}]})
}

/// An incoming lead through the API, from another browser, with this email: its Unsorted
/// entry's `duplicate_of_lead_id`.
async fn duplicate_of(app: &TestApp, pipeline: u64, address: &str) -> Value {
    let (status, created) = app
        .post(
            "/api/v4/leads/unsorted/forms",
            json!([{"source_uid": "s", "source_name": "S", "pipeline_id": pipeline,
                    "metadata": {"form_id": "f", "form_name": "F"},
                    "_embedded": {"contacts": [{"name": "Someone", "custom_fields_values": [email(address)]}]}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let uid = created["_embedded"]["unsorted"][0]["uid"].as_str().unwrap();
    let (_, entry) = app.get(&format!("/api/v4/leads/unsorted/{uid}")).await;
    entry["metadata"]["duplicate_of_lead_id"].clone()
}

async fn contacts_are_added_and_listed_without_a_lead(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, added) = app
        .post(
            "/api/v4/contacts",
            json!([
                {"first_name": "Vera", "last_name": "Ivanova", "responsible_user_id": 3, "request_id": "v",
                 "custom_fields_values": [email("vera@example.com"),
                    {"field_code": "PHONE", "values": [{"value": "+7 900 000-00-01"}]}]},
                {"name": "Gleb"}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let created = ids(&added, "contacts");
    assert_eq!(created.len(), 2);
    assert_eq!(added["_embedded"]["contacts"][0]["request_id"], "v");
    assert_eq!(
        added["_embedded"]["contacts"][1]["_links"]["self"]["href"],
        app.link(&format!("/api/v4/contacts/{}", created[1]))
    );
    let (status, list) = app.get("/api/v4/contacts?with=leads").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let vera = list["_embedded"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == created[0])
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(vera["name"], "Vera Ivanova");
    assert_eq!(vera["_embedded"]["leads"], json!([]));
    let codes: Vec<(&str, &str)> = vera["custom_fields_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field_code"].as_str().unwrap(),
                f["values"][0]["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [("PHONE", "+7 900 000-00-01"), ("EMAIL", "vera@example.com")]
    );
    // The account's own fields, of any kind (a select's enum_id, a number, a checkbox),
    // are accepted and ignored; a phone written as a number is its digits.
    let (status, added) = app
        .post(
            "/api/v4/contacts",
            json!([{"name": "Sasha", "custom_fields_values": [
                {"field_id": 5, "values": [{"enum_id": 3}]},
                {"field_id": 6, "values": [{"value": 42}]},
                {"field_id": 7, "values": [{"value": true}]},
                {"field_code": "PHONE", "values": [{"value": 79000000002_u64, "enum_code": "WORK"}]}]}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let sasha = ids(&added, "contacts")[0];
    let (_, one) = app.get(&format!("/api/v4/contacts/{sasha}")).await;
    assert_eq!(
        one["custom_fields_values"][0]["values"][0]["value"], "79000000002",
        "{one}"
    );
}

async fn a_contacts_change_reaches_its_leads_and_duplicate_detection(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, _, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let (_, card) = app.get(&format!("/api/v4/leads/{lead}")).await;
    let contact = card["_embedded"]["contacts"][0]["id"].as_u64().unwrap();
    let old_email = card["_embedded"]["contacts"][0]["email"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, changed) = app
        .patch(
            "/api/v4/contacts",
            json!([{"id": contact, "name": "Anna K.", "updated_by": 0,
                    "custom_fields_values": [email("anna.k@example.com"),
                        {"field_code": "PHONE", "values": []}]}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["_embedded"]["contacts"][0]["name"], "Anna K.");
    let (_, card) = app.get(&format!("/api/v4/leads/{lead}")).await;
    let on_lead = &card["_embedded"]["contacts"][0];
    assert_eq!(on_lead["name"], "Anna K.");
    assert_eq!(on_lead["email"], "anna.k@example.com");
    assert_eq!(on_lead["phone"], Value::Null, "an empty PHONE removes it");
    let (_, with_leads) = app
        .get(&format!("/api/v4/contacts/{contact}?with=leads"))
        .await;
    assert_eq!(with_leads["_embedded"]["leads"], json!([{"id": lead}]));

    // Duplicate detection finds the contact by its new email, no longer by the old one.
    assert_eq!(
        duplicate_of(&app, s.pipeline.id, "ANNA.K@example.com").await,
        lead
    );
    assert_eq!(
        duplicate_of(&app, s.pipeline.id, &old_email).await,
        Value::Null
    );

    let (status, one) = app
        .patch(
            &format!("/api/v4/contacts/{contact}"),
            json!({"first_name": "Anna", "last_name": "Karenina"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["name"], "Anna Karenina");
    assert_eq!(one["id"], contact);
    let (_, card) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(card["_embedded"]["contacts"][0]["name"], "Anna Karenina");
    assert_eq!(
        card["_embedded"]["contacts"][0]["email"], "anna.k@example.com",
        "what the change did not name stays"
    );
}

async fn bad_contacts_are_refused_by_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, added) = app
        .post("/api/v4/contacts", json!([{"name": "Kept"}]))
        .await;
    let kept = ids(&added, "contacts")[0];
    for (method, path, body, field) in [
        ("post", "/api/v4/contacts", json!([{"name": 5}]), "[0].name"),
        (
            "post",
            "/api/v4/contacts",
            json!([{"name": "A"}, {"custom_fields_values": [email("nope")]}]),
            "[1].email",
        ),
        (
            "patch",
            "/api/v4/contacts",
            json!([{"name": "No id"}]),
            "[0].id",
        ),
        (
            "patch",
            "/api/v4/contacts",
            json!([{"id": 987_654}]),
            "[0].id",
        ),
        (
            "patch",
            "/api/v4/contacts",
            json!([{"id": kept, "custom_fields_values": [email("nope")]}]),
            "[0].email",
        ),
        (
            "patch",
            &format!("/api/v4/contacts/{kept}"),
            json!({"name": ""}),
            "name",
        ),
        // One contact in two items: the second would undo the first.
        (
            "patch",
            "/api/v4/contacts",
            json!([{"id": kept, "custom_fields_values": [email("new@example.com")]},
                   {"id": kept, "name": "Z"}]),
            "[1].id",
        ),
        // An email that is not text is a mistake, not its removal.
        (
            "patch",
            "/api/v4/contacts",
            json!([{"id": kept, "custom_fields_values": [
                {"field_code": "EMAIL", "values": [{"value": true}]}]}]),
            "[0].custom_fields_values[0].values[0].value",
        ),
    ] {
        let (status, problem) = match method {
            "post" => app.post(path, body.clone()).await,
            _ => app.patch(path, body.clone()).await,
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let (status, _) = app
        .post("/api/v4/contacts", json!([{"name": "A", "colour": "red"}]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown field");
    let (status, _) = app
        .patch("/api/v4/contacts/987654", json!({"name": "Ghost"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/api/v4/contacts").await;
    assert_eq!(
        ids(&list, "contacts"),
        [kept],
        "refused contacts created nothing"
    );
    let (_, one) = app.get(&format!("/api/v4/contacts/{kept}")).await;
    assert_eq!(one["name"], "Kept", "a refused change changed nothing");
    // A batch's items are named by the request_id each was sent with.
    let (status, problem) = app
        .patch(
            "/api/v4/contacts",
            json!([{"id": kept, "name": "Y", "request_id": "a"},
                   {"id": kept, "name": "Z", "request_id": "b"}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        problem["validation-errors"][0]["request_id"], "b",
        "{problem}"
    );
}

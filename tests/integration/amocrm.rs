//! amoCRM's request and answer forms, as amoCRM client libraries send and read them:
//! bracket filters and orders, `with`, one rule for unknown parameters, validation errors
//! with `validation-errors`, absolute `_links`, 204 for an empty list, batch `PATCH
//! /leads`, statuses, `/leads/notes` with common notes, Unsorted parity — on both stores.

use reqwest::StatusCode;
use serde_json::{Value, json};

use std::time::Duration;

use crate::common::{Backend, Receiver, TestApp, setup, submit_form, test_settings};

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
    lead_lists_read_amocrm_filters_orders_and_with,
    leads_are_updated_in_a_batch_and_amocrm_fields_are_ignored,
    statuses_are_listed_per_pipeline_with_their_colour,
    notes_are_added_to_several_leads_and_listed_by_filter,
    unsorted_has_amocrms_decline_accept_answer_and_summary,
    a_site_backend_adds_a_lead_with_the_visitors_uid_linking_its_browser,
    the_account_event_log_is_amocrms,
    contacts_are_listed_with_phone_email_and_leads,
    a_patch_out_of_unsorted_accepts_the_entry,
    a_backend_lead_without_a_visitor_id_links_no_browser_and_folds_a_repeat,
);

pub(crate) fn ids(body: &Value, name: &str) -> Vec<u64> {
    body["_embedded"][name]
        .as_array()
        .unwrap_or_else(|| panic!("no _embedded.{name} in {body}"))
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect()
}

/// The fields a 400 names, from amoCRM's `validation-errors`: (request_id, path).
pub(crate) fn validation_paths(problem: &Value) -> Vec<(String, String)> {
    problem["validation-errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no validation-errors in {problem}"))
        .iter()
        .flat_map(|g| {
            let request = g["request_id"].as_str().unwrap().to_owned();
            g["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |e| (request.clone(), e["path"].as_str().unwrap().to_owned()))
        })
        .collect()
}

async fn lead_lists_read_amocrm_filters_orders_and_with(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let mut leads = Vec::new();
    for name in ["Anna", "Boris", "Vera"] {
        leads.push(submit_form(&app, &s.form_id, None, name).await);
    }
    let (anna, anna_uid, _) = &leads[0];
    let (status, _) = app
        .post(
            &format!("/api/v4/leads/unsorted/{anna_uid}/accept"),
            json!({"status_id": s.pipeline.negotiation}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, all) = app.get("/api/v4/leads?with=contacts").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(ids(&all, "leads").len(), 3);
    assert_eq!(
        all["_embedded"]["leads"][0]["_embedded"]["contacts"][0]["name"],
        "Vera"
    );
    let (status, by_stage) = app
        .get(&format!(
            "/api/v4/leads?filter[statuses][0][pipeline_id]={}&filter[statuses][0][status_id]={}",
            s.pipeline.id, s.pipeline.negotiation
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{by_stage}");
    assert_eq!(ids(&by_stage, "leads"), [*anna]);
    let (_, by_pipeline) = app
        .get(&format!(
            "/api/v4/leads?filter[pipeline_id]={}",
            s.pipeline.id
        ))
        .await;
    assert_eq!(ids(&by_pipeline, "leads").len(), 3);
    let (_, by_id) = app
        .get(&format!(
            "/api/v4/leads?filter[id][]={}&filter[id][]={}&order[id]=asc",
            leads[2].0, leads[0].0
        ))
        .await;
    assert_eq!(
        ids(&by_id, "leads"),
        [leads[0].0, leads[2].0],
        "ascending ids"
    );
    let (_, newest) = app
        .get("/api/v4/leads?order[created_at]=desc&limit=1")
        .await;
    assert_eq!(ids(&newest, "leads"), [leads[2].0]);
    let next = newest["_links"]["next"]["href"].as_str().unwrap();
    assert!(
        next.starts_with(&app.link("/api/v4/leads?")),
        "links are absolute: {next}"
    );
    let (_, page2) = app.get(next).await;
    assert_eq!(
        ids(&page2, "leads"),
        [leads[1].0],
        "the order survives in the link"
    );

    let (status, body) = app
        .get("/api/v4/leads?filter[created_at][from]=4102444800")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "empty: {body}");

    let (status, problem) = app
        .get("/api/v4/leads?filter[colour]=red&sort=1&with=contacts")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let named: Vec<String> = validation_paths(&problem)
        .into_iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(named, ["filter[colour]", "sort"]);
    for bad in [
        "filter[statuses][0][status_id]=abc",
        "filter[statuses][0][status_id]=142",
        "order[price]=asc",
        "order[id]=up",
        "filter[created_at][from]=yesterday",
        "page=x",
    ] {
        let (status, problem) = app.get(&format!("/api/v4/leads?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert!(problem["validation-errors"].is_array(), "{bad}: {problem}");
    }
    for list in [
        "/api/v4/sites",
        "/api/v4/forms",
        "/api/v4/handlers",
        "/api/v4/actions",
        "/api/v4/leads/pipelines",
        "/api/v4/leads/unsorted",
        "/api/v4/leads/notes",
    ] {
        let (status, problem) = app.get(&format!("{list}?colour=red")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{list}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("colour"),
            "{problem}"
        );
    }
}

async fn leads_are_updated_in_a_batch_and_amocrm_fields_are_ignored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (a, a_uid, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let (b, b_uid, _) = submit_form(&app, &s.form_id, None, "Boris").await;
    for uid in [&a_uid, &b_uid] {
        app.post(&format!("/api/v4/leads/unsorted/{uid}/accept"), json!({}))
            .await;
    }
    let (_, before) = app.get(&format!("/api/v4/leads/{a}")).await;
    let (status, answer) = app
        .patch(
            "/api/v4/leads",
            json!([
                {"id": a, "name": "Anna's order", "price": 1500, "responsible_user_id": 7,
                 "request_id": "r1"},
                {"id": b, "status_id": s.pipeline.negotiation, "pipeline_id": s.pipeline.id}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(ids(&answer, "leads"), [a, b]);
    let (_, a_now) = app.get(&format!("/api/v4/leads/{a}")).await;
    assert_eq!(a_now["name"], "Anna's order");
    assert!(
        a_now["updated_at"].as_i64() >= before["updated_at"].as_i64(),
        "{a_now}"
    );
    assert_eq!(
        answer["_embedded"]["leads"][0]["updated_at"], a_now["updated_at"],
        "the answer carries the new updated_at"
    );
    let (_, b_now) = app.get(&format!("/api/v4/leads/{b}")).await;
    assert_eq!(b_now["status_id"], s.pipeline.negotiation);

    // A lead that does not exist: nothing changes, the item is named.
    let (status, problem) = app
        .patch(
            "/api/v4/leads",
            json!([{"id": a, "name": "Changed"}, {"id": 999_999, "name": "Ghost"}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        validation_paths(&problem),
        [("1".to_owned(), "id".to_owned())]
    );
    let (_, a_now) = app.get(&format!("/api/v4/leads/{a}")).await;
    assert_eq!(a_now["name"], "Anna's order");
    for (bad, path) in [
        (json!([{"id": a, "name": 5}]), "[0].name"),
        (json!([{"name": "No id"}]), "[0].id"),
        (json!([{"id": a, "status_id": 4242}]), "[0].status_id"),
        (
            json!([{"id": a, "status_id": 4242, "pipeline_id": 999_999}]),
            "[0].pipeline_id",
        ),
        (json!([{"id": a, "colour": "red"}]), "[0]"),
    ] {
        let (status, problem) = app.patch("/api/v4/leads", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert!(
            problem["errors"][0]["field"]
                .as_str()
                .is_some_and(|f| f.starts_with(path)),
            "{bad}: {problem}"
        );
    }
    // A later item's bad stage refuses the whole batch before anything is written: the
    // first lead neither renamed nor moved; a lead's own patch likewise.
    let (status, problem) = app
        .patch(
            "/api/v4/leads",
            json!([{"id": a, "name": "Moved?", "status_id": s.pipeline.first_contact},
                   {"id": b, "status_id": 4242}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        validation_paths(&problem),
        [("1".to_owned(), "status_id".to_owned())]
    );
    let (status, problem) = app
        .patch(
            &format!("/api/v4/leads/{a}"),
            json!({"name": "Renamed?", "status_id": 4242}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (_, a_now) = app.get(&format!("/api/v4/leads/{a}")).await;
    assert_eq!(a_now["name"], "Anna's order", "{a_now}");
    assert_eq!(a_now["status_id"], s.pipeline.first_contact);
    let (_, timeline) = app.get(&format!("/api/v4/leads/{a}/timeline")).await;
    let moves = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "moved")
        .count();
    assert_eq!(moves, 1, "only the accept moved it: {timeline}");

    let response = app
        .client
        .patch(app.url("/api/v4/leads"))
        .bearer_auth(crate::common::TOKEN)
        .header("content-type", "application/json")
        .body("[{\"id\": 1,")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "malformed JSON");
}

async fn statuses_are_listed_per_pipeline_with_their_colour(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = app.pipeline().await;
    let (status, list) = app
        .get(&format!("/api/v4/leads/pipelines/{}/statuses", p.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let statuses = list["_embedded"]["statuses"].as_array().unwrap();
    assert!(statuses.iter().any(|s| s["id"] == 142));
    assert!(
        statuses
            .iter()
            .all(|s| s["color"].as_str().is_some_and(|c| c.starts_with('#'))),
        "{list}"
    );
    let (status, one) = app
        .get(&format!(
            "/api/v4/leads/pipelines/{}/statuses/{}",
            p.id, p.negotiation
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["id"], p.negotiation);
    assert_eq!(one["pipeline_id"], p.id);
    for missing in [
        format!("/api/v4/leads/pipelines/{}/statuses/4242", p.id),
        "/api/v4/leads/pipelines/4242/statuses".to_owned(),
        "/api/v4/leads/pipelines/x/statuses".to_owned(),
    ] {
        let (status, _) = app.get(&missing).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
    let (status, _) = app
        .get(&format!(
            "/api/v4/leads/pipelines/{}/statuses?colour=1",
            p.id
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn notes_are_added_to_several_leads_and_listed_by_filter(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (a, _, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let (b, _, _) = submit_form(&app, &s.form_id, None, "Boris").await;
    let (status, created) = app
        .post(
            "/api/v4/leads/notes",
            json!([
                {"entity_id": a, "note_type": "common", "params": {"text": "Called back"},
                 "request_id": "x", "created_by": 0},
                {"entity_id": b, "note_type": 25, "params": {"text": "SMS sent", "service": "Notify"}},
                {"entity_id": a, "note_type": 4, "params": {"text": "Wants a discount"}}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["_embedded"]["notes"][0]["note_type"], "common");
    assert_eq!(
        created["_embedded"]["notes"][1]["note_type"],
        "service_message"
    );
    let (_, of_a) = app
        .get(&format!("/api/v4/leads/notes?filter[entity_id]={a}"))
        .await;
    assert_eq!(ids(&of_a, "notes").len(), 2);
    let (_, common) = app
        .get("/api/v4/leads/notes?filter[note_type]=common")
        .await;
    assert_eq!(ids(&common, "notes").len(), 2);
    let (_, own) = app.get(&format!("/api/v4/leads/{a}/notes")).await;
    assert_eq!(
        own["_embedded"]["notes"][0]["params"]["text"],
        "Called back"
    );
    let (status, _) = app
        .get("/api/v4/leads/notes?filter[entity_id]=999999")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for (bad, path) in [
        (
            json!([{"note_type": "common", "params": {"text": "x"}}]),
            "entity_id",
        ),
        (
            json!([{"entity_id": 999_999, "note_type": "common", "params": {"text": "x"}}]),
            "entity_id",
        ),
        (
            json!([{"entity_id": a, "note_type": "call_in", "params": {"text": "x"}}]),
            "note_type",
        ),
        (
            json!([{"entity_id": a, "note_type": 25, "params": {"text": "x"}}]),
            "params.service",
        ),
        (
            json!([{"entity_id": a, "note_type": 4, "params": {"text": ""}}]),
            "params.text",
        ),
        (
            json!([{"entity_id": "a", "note_type": 4, "params": {"text": "x"}}]),
            "entity_id",
        ),
    ] {
        let (status, problem) = app.post("/api/v4/leads/notes", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert!(
            validation_paths(&problem).iter().any(|(_, p)| p == path),
            "{bad}: {problem}"
        );
    }
    let (_, of_a) = app
        .get(&format!("/api/v4/leads/notes?filter[entity_id]={a}"))
        .await;
    assert_eq!(ids(&of_a, "notes").len(), 2, "a refused batch adds nothing");
}

async fn unsorted_has_amocrms_decline_accept_answer_and_summary(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (a, a_uid, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let (b, b_uid, _) = submit_form(&app, &s.form_id, None, "Boris").await;
    let (_, summary) = app.get("/api/v4/leads/unsorted/summary").await;
    assert_eq!(summary["total"], 2, "{summary}");
    assert_eq!(summary["categories"]["forms"]["total"], 2);
    let (_, list) = app
        .get(&format!(
            "/api/v4/leads/unsorted?filter[uid]={a_uid}&filter[category][]=forms&filter[pipeline_id]={}",
            s.pipeline.id
        ))
        .await;
    let entries = list["_embedded"]["unsorted"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["source_uid"], s.form_id);
    assert_eq!(entries[0]["source_name"], "Contact");

    let (status, accepted) = app
        .post(
            &format!("/api/v4/leads/unsorted/{a_uid}/accept"),
            json!({"user_id": 0, "status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["_embedded"]["leads"][0]["id"], a);
    assert!(
        accepted["_embedded"]["contacts"][0]["id"]
            .as_u64()
            .is_some(),
        "{accepted}"
    );
    let (status, declined) = app
        .delete(
            &format!("/api/v4/leads/unsorted/{b_uid}/decline"),
            Some(json!({"user_id": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{declined}");
    let (_, lead_b) = app.get(&format!("/api/v4/leads/{b}")).await;
    assert_eq!(lead_b["status_id"], 143);
    let (status, _) = app
        .delete(&format!("/api/v4/leads/unsorted/{b_uid}/decline"), None)
        .await;
    assert!(status.is_client_error(), "declined twice: {status}");
    let (_, summary) = app.get("/api/v4/leads/unsorted/summary").await;
    assert_eq!(summary["total"], 0, "{summary}");
    let (status, _) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = app.get("/api/v4/leads/unsorted/summary?colour=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}

/// The body a site's backend sends to `POST /leads/unsorted/forms`.
fn incoming(pipeline: u64, visitor_uid: Option<&str>, name: &str) -> Value {
    json!([{
        "source_uid": "shop-contact", "source_name": "Shop contact form",
        "pipeline_id": pipeline, "request_id": "r1", "created_at": 1_700_000_000,
        "metadata": {"form_id": "shop-contact", "form_name": "Contact", "form_page":
            "https://shop.example/contact", "ip": "203.0.113.7", "form_sent_at": 1_700_000_000,
            "referer": "https://www.google.com/", "visitor_uid": visitor_uid, "form_type": 1},
        "_embedded": {
            "leads": [{"name": format!("Order from {name}"), "price": 100}],
            "contacts": [{"name": name, "custom_fields_values": [
                {"field_code": "PHONE", "values": [{"value": "+7 900 555-00-11", "enum_code": "WORK"}]},
                {"field_code": "EMAIL", "values": [{"value": format!("{}@example.com", name.to_lowercase())}]}
            ]}]
        }
    }])
}

async fn a_site_backend_adds_a_lead_with_the_visitors_uid_linking_its_browser(backend: Backend) {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = 1;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.expect("a new visitor gets an id");
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/pricing")
        .await;

    // Forged, damaged and never-seen ids are refused by name, and nothing is created.
    let (_, stranger) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let mut tampered = stranger.clone().unwrap();
    tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
    for bad in ["not-a-visitor".to_owned(), tampered, format!("{vid}x")] {
        let (status, problem) = app
            .post(
                "/api/v4/leads/unsorted/forms",
                incoming(s.pipeline.id, Some(&bad), "Mallory"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        // Named by the request_id the item was sent with, as amoCRM names it.
        assert_eq!(
            validation_paths(&problem),
            [("r1".to_owned(), "metadata.visitor_uid".to_owned())],
            "{problem}"
        );
    }
    for (bad, path) in [
        (
            json!([{"source_uid": "x", "source_name": "x", "pipeline_id": "one",
                 "metadata": {"form_id": "f", "form_name": "F"}}]),
            "[0].pipeline_id",
        ),
        (
            json!([{"source_uid": "x", "source_name": "x", "pipeline_id": 4242,
                 "metadata": {"form_id": "f", "form_name": "F"}}]),
            "[0].pipeline_id",
        ),
        (
            json!([{"source_uid": "x", "source_name": "x", "pipeline_id": s.pipeline.id,
                 "metadata": {"form_id": "no spaces", "form_name": "F"}}]),
            "[0].metadata.form_id",
        ),
        (
            json!([{"source_uid": "x", "source_name": "x", "pipeline_id": s.pipeline.id,
                 "metadata": {"form_id": "f", "form_name": "F"},
                 "_embedded": {"contacts": [{"name": "A", "custom_fields_values":
                    [{"field_code": "EMAIL", "values": [{"value": "not-an-email"}]}]}]}}]),
            "[0]._embedded.contacts[0].email",
        ),
    ] {
        let (status, problem) = app.post("/api/v4/leads/unsorted/forms", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert_eq!(problem["errors"][0]["field"], path, "{problem}");
    }
    let (status, _) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "refused entries created nothing"
    );

    let (status, created) = app
        .post(
            "/api/v4/leads/unsorted/forms",
            incoming(s.pipeline.id, Some(&vid), "Anna"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["_total_items"], 1);
    let entry = &created["_embedded"]["unsorted"][0];
    let uid = entry["uid"].as_str().unwrap().to_owned();
    let lead = entry["_embedded"]["leads"][0]["id"].as_u64().unwrap();
    assert!(entry["_embedded"]["contacts"][0]["id"].as_u64().is_some());
    let (_, listed) = app.get(&format!("/api/v4/leads/unsorted/{uid}")).await;
    assert_eq!(listed["source_uid"], "shop-contact");
    assert!(listed["metadata"]["visitor_uid"].is_string(), "{listed}");
    let (_, card) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(card["name"], "Order from Anna");
    assert_eq!(
        card["_embedded"]["contacts"][0]["phone"],
        "+7 900 555-00-11"
    );
    assert_eq!(
        card["_embedded"]["contacts"][0]["email"],
        "anna@example.com"
    );
    assert_eq!(card["_embedded"]["visitors"].as_array().unwrap().len(), 1);

    // The browser's page views from before the API call are on the lead's timeline.
    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    let pages: Vec<&str> = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "page_view")
        .filter_map(|i| i["url"].as_str())
        .collect();
    assert!(
        pages.contains(&"https://shop.example/pricing"),
        "the anonymous history joined the lead: {timeline}"
    );

    // Accepted into the stage with the site-visit action, the browser's next visit fires it.
    let (status, _) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
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
}

async fn the_account_event_log_is_amocrms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (status, _) = app.get("/api/v4/events").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "no lead, no event");
    let (lead, uid, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    app.post(
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        json!({"status_id": s.pipeline.first_contact}),
    )
    .await;
    app.post(
        "/api/v4/leads/notes",
        json!([{"entity_id": lead, "note_type": "common", "params": {"text": "Called"}}]),
    )
    .await;
    let (status, log) = app.get("/api/v4/events").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let types: Vec<&str> = log["_embedded"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["common_note_added", "lead_status_changed", "lead_added"],
        "newest first: {log}"
    );
    let (_, changed) = app
        .get(&format!(
            "/api/v4/events?filter[type]=lead_status_changed&filter[entity]=lead&filter[entity_id][]={lead}"
        ))
        .await;
    let event = &changed["_embedded"]["events"][0];
    assert_eq!(event["entity_type"], "lead");
    assert_eq!(event["entity_id"], lead);
    assert_eq!(
        event["value_after"][0]["lead_status"]["id"],
        s.pipeline.first_contact
    );
    assert_eq!(
        event["value_before"][0]["lead_status"]["pipeline_id"],
        s.pipeline.id
    );
    let (status, _) = app
        .get("/api/v4/events?filter[created_at][from]=4102444800")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for bad in [
        "filter[type]=lead_eaten",
        "filter[entity]=company",
        "filter[colour]=1",
    ] {
        let (status, problem) = app.get(&format!("/api/v4/events?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
    }
    // footfall's own webhook events moved to /webhook_events.
    let (status, _) = app
        .get(&format!("/api/v4/webhook_events?lead_id={lead}"))
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::NO_CONTENT,
        "{status}"
    );
}

async fn contacts_are_listed_with_phone_email_and_leads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (status, _) = app.get("/api/v4/contacts").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (anna, _, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    submit_form(&app, &s.form_id, None, "Boris").await;
    let (status, list) = app.get("/api/v4/contacts?with=leads").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let contacts = list["_embedded"]["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 2);
    let anna_contact = contacts.iter().find(|c| c["name"] == "Anna").unwrap();
    assert_eq!(anna_contact["_embedded"]["leads"][0]["id"], anna);
    let codes: Vec<&str> = anna_contact["custom_fields_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["PHONE", "EMAIL"]);
    let id = anna_contact["id"].as_u64().unwrap();
    let (_, found) = app.get("/api/v4/contacts?query=boris").await;
    assert_eq!(found["_embedded"]["contacts"].as_array().unwrap().len(), 1);
    let (status, one) = app.get(&format!("/api/v4/contacts/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["name"], "Anna");
    assert!(
        one["_embedded"].get("leads").is_none(),
        "leads only with=leads"
    );
    for (path, expected) in [
        ("/api/v4/contacts/999999".to_owned(), StatusCode::NOT_FOUND),
        (
            "/api/v4/contacts?colour=1".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v4/contacts?filter[id]=x".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, _) = app.get(&path).await;
        assert_eq!(status, expected, "{path}");
    }
}

/// Moving a lead that stands in Unsorted with `PATCH /leads/{id}` (or the batch) is an
/// accept (a decline when the stage is Lost): the entry is settled, recorded as such on
/// the lead's timeline, and can be neither accepted nor declined again.
async fn a_patch_out_of_unsorted_accepts_the_entry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, uid, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let (other, other_uid, _) = submit_form(&app, &s.form_id, None, "Boris").await;
    let (lost, _, _) = submit_form(&app, &s.form_id, None, "Vera").await;

    let (status, body) = app
        .patch(
            &format!("/api/v4/leads/{lead}"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .patch(
            "/api/v4/leads",
            json!([{"id": other, "status_id": s.pipeline.negotiation},
                   {"id": lost, "status_id": 143}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, timeline) = app.get(&format!("/api/v4/leads/{lost}/timeline")).await;
    assert!(
        timeline["_embedded"]["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "declined"),
        "a move to Lost out of Unsorted is a decline: {timeline}"
    );
    let (_, view) = app.get(&format!("/api/v4/leads/{lost}")).await;
    assert_eq!(view["status_id"], 143, "{view}");

    let (status, listed) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "no entry left: {listed}");
    for path in [
        format!("/api/v4/leads/unsorted/{uid}/accept"),
        format!("/api/v4/leads/unsorted/{other_uid}/accept"),
    ] {
        let (status, body) = app.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = app
        .delete(&format!("/api/v4/leads/unsorted/{uid}/decline"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, view) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(view["status_id"], s.pipeline.first_contact, "{view}");
    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    assert!(
        timeline["_embedded"]["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "moved" && i["by"] == "accept"),
        "the move is an accept: {timeline}"
    );
}

/// A site's backend that sends a form without t.js's visitor id makes a lead of no
/// browser: none linked, no `visitor_uid` in the entry; sent again, it folds into the
/// first, and answers as the first did (its lead's contact).
async fn a_backend_lead_without_a_visitor_id_links_no_browser_and_folds_a_repeat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let mut leads = Vec::new();
    let mut contacts = Vec::new();
    for _ in 0..2 {
        let (status, created) = app
            .post(
                "/api/v4/leads/unsorted/forms",
                incoming(s.pipeline.id, None, "Anna"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let entry = &created["_embedded"]["unsorted"][0]["_embedded"];
        leads.push(entry["leads"][0]["id"].clone());
        contacts.push(entry["contacts"].clone());
    }
    assert_eq!(leads[0], leads[1], "the repeat folded into the first lead");
    assert_eq!(
        contacts[0], contacts[1],
        "the repeat answers the lead's contact"
    );
    assert_eq!(
        contacts[0].as_array().map(Vec::len),
        Some(1),
        "{contacts:?}"
    );
    let (_, listed) = app.get("/api/v4/leads/unsorted").await;
    let entries = listed["_embedded"]["unsorted"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert!(entries[0]["metadata"]["visitor_uid"].is_null(), "{listed}");
    let (_, card) = app.get(&format!("/api/v4/leads/{}", leads[0])).await;
    assert_eq!(card["_embedded"]["visitors"], json!([]), "{card}");
}

/// An account has at most 50 pipelines, amoCRM's bound, which also keeps the list on the
/// one page amoCRM's clients read (their `pipelines.list()` does not page); a pipeline
/// without Unsorted (`is_unsorted_on: false`) is refused rather than made with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_has_at_most_fifty_pipelines_each_with_unsorted() {
    let app = TestApp::spawn(Backend::Memory).await;
    let pipeline =
        |i: usize| json!({"name": format!("P{i}"), "_embedded": {"statuses": [{"name": "Met"}]}});
    // The default pipeline and 49 more.
    let (status, body) = app
        .post(
            "/api/v4/leads/pipelines",
            Value::Array((0..49).map(pipeline).collect()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, problem) = app
        .post("/api/v4/leads/pipelines", json!([pipeline(50)]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("at most 50"),
        "{problem}"
    );
    let (_, listed) = app.get("/api/v4/leads/pipelines").await;
    assert_eq!(
        listed["_embedded"]["pipelines"].as_array().unwrap().len(),
        50
    );
    assert!(listed["_links"]["next"].is_null(), "{}", listed["_links"]);

    let other = TestApp::spawn(Backend::Memory).await;
    let mut without_unsorted = pipeline(1);
    without_unsorted["is_unsorted_on"] = json!(false);
    let (status, problem) = other
        .post("/api/v4/leads/pipelines", json!([without_unsorted]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"], "[0].is_unsorted_on",
        "{problem}"
    );
}

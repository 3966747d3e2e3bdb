//! Pipeline events beyond 18, through HTTP with a real receiver: 14
//! `lead_status_changed` and 15 `lead_appeared_in_status` with `direction_of_movement` as
//! the seed's table says, and 1 `lead_added` when a lead is created in or accepted into a
//! stage with an action.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Receiver, TestApp, submit_form};

/// A pipeline A–B–C–D, a site and a form on it, and a handler at the receiver.
struct Board {
    pipeline: u64,
    unsorted: u64,
    stage: [u64; 4],
    form: String,
}

async fn board(app: &TestApp, receiver: &Receiver, action_multiple: bool) -> Board {
    let (status, created) = app
        .post(
            "/api/v4/leads/pipelines",
            json!([{"name": "ABCD", "_embedded": {"statuses": [
            {"name": "A"}, {"name": "B"}, {"name": "C"}, {"name": "D"}]}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let pipeline = &created["_embedded"]["pipelines"][0];
    let statuses = pipeline["_embedded"]["statuses"].as_array().unwrap();
    let names: Vec<&str> = statuses
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Unsorted", "A", "B", "C", "D", "Won", "Lost"]);
    let id = |i: usize| statuses[i]["id"].as_u64().unwrap();
    let site = app
        .create(
            "sites",
            json!({"name": "Shop", "url": "https://shop.example"}),
        )
        .await;
    let form = app
        .create(
            "forms",
            json!({"name": "Contact", "site_id": site["id"], "pipeline_id": pipeline["id"]}),
        )
        .await;
    app.create(
        "handlers",
        json!({"code": "crm", "name": "CRM", "webhook_url": receiver.url(),
        "action_multiple": action_multiple,
        "settings": {"text": {"name": "Text", "type": "text"}}}),
    )
    .await;
    Board {
        pipeline: pipeline["id"].as_u64().unwrap(),
        unsorted: id(0),
        stage: [id(1), id(2), id(3), id(4)],
        form: form["id"].as_str().unwrap().to_owned(),
    }
}

async fn move_to(app: &TestApp, lead: u64, status: u64) {
    let (code, body) = app
        .patch(
            &format!("/api/v4/leads/{lead}"),
            json!({"status_id": status}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

/// The (type, direction) of the events of `lead` created since `seen` events.
async fn new_events(app: &TestApp, lead: u64, seen: &mut usize) -> Vec<(u64, String)> {
    let mut events = app.events_of(lead).await;
    events.reverse(); // oldest first
    let fresh = events[*seen..]
        .iter()
        .map(|e| {
            (
                e["type"].as_u64().unwrap(),
                e["direction_of_movement"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
            )
        })
        .collect();
    *seen = events.len();
    fresh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direction_of_movement_follows_the_seeds_table() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let b = board(&app, &receiver, true).await;
    let [a, bb, c, d] = b.stage;
    // One action stretched over B–C.
    app.create(
        "actions",
        json!({"pipeline_id": b.pipeline, "status_ids": [bb, c], "event": "lead_status_changed",
        "handler": "crm", "settings": {"text": "{{lead.name}}"}}),
    )
    .await;
    let (lead, uid, _) = submit_form(&app, &b.form, None, "Anna").await;
    app.post(
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        json!({"status_id": a}),
    )
    .await;
    let mut seen = 0;
    assert!(
        new_events(&app, lead, &mut seen).await.is_empty(),
        "accepting into A concerns no action"
    );

    let to = |t: &str| t.to_owned();
    /// (the rule checked, the stage moved to, the events it must fire)
    type Row = (&'static str, u64, Vec<(u64, String)>);
    let rows: [Row; 6] = [
        (
            "A→B: from a stage without the trigger into one with it: 14 went_to_trigger",
            bb,
            vec![(14, to("went_to_trigger"))],
        ),
        (
            "B→C: between two stages of the stretched trigger: 15 went_in_trigger",
            c,
            vec![(15, to("went_in_trigger"))],
        ),
        (
            "C→D: out of the trigger into a stage without it: 14 went_from_trigger",
            d,
            vec![(14, to("went_from_trigger"))],
        ),
        (
            "D→B: into the trigger again: 14 went_to_trigger",
            bb,
            vec![(14, to("went_to_trigger"))],
        ),
        (
            "B→A: out of the trigger (to set up the next row): 14 went_from_trigger",
            a,
            vec![(14, to("went_from_trigger"))],
        ),
        (
            "A→D: never touches the trigger's stages: nothing",
            d,
            vec![],
        ),
    ];
    for (rule, status, expected) in rows {
        move_to(&app, lead, status).await;
        assert_eq!(new_events(&app, lead, &mut seen).await, expected, "{rule}");
    }
    // The webhooks carry the same type and direction, in amoCRM's shape.
    let received = receiver.wait_for(5, Duration::from_secs(10)).await;
    let sent: Vec<(u64, String)> = received
        .iter()
        .map(|r| {
            let body = r.json();
            assert_eq!(body["event"]["data"]["element_type"], 2);
            (
                body["event"]["type"].as_u64().unwrap(),
                body["event"]["data"]["direction_of_movement"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(sent.len(), 5);
    for expected in [
        (14, to("went_to_trigger")),
        (15, to("went_in_trigger")),
        (14, to("went_from_trigger")),
    ] {
        assert!(sent.contains(&expected), "{expected:?} not sent: {sent:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_handler_only_hears_of_leads_entering_its_stage() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let b = board(&app, &receiver, false).await;
    let [a, bb, c, _] = b.stage;
    app.create(
        "actions",
        json!({"pipeline_id": b.pipeline, "status_ids": [bb], "event": "lead_status_changed",
        "handler": "crm"}),
    )
    .await;
    let (lead, uid, _) = submit_form(&app, &b.form, None, "Anna").await;
    app.post(
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        json!({"status_id": a}),
    )
    .await;
    let mut seen = 0;
    move_to(&app, lead, bb).await;
    assert_eq!(
        new_events(&app, lead, &mut seen).await,
        [(14, "went_to_trigger".to_owned())]
    );
    move_to(&app, lead, c).await;
    assert!(
        new_events(&app, lead, &mut seen).await.is_empty(),
        "went_from_trigger is only for action_multiple"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stretching_an_action_needs_action_multiple_and_adjacent_stages() {
    let app = TestApp::spawn(Backend::Memory).await;
    let receiver = Receiver::start().await;
    let b = board(&app, &receiver, false).await;
    let [a, bb, c, _] = b.stage;
    let (status, problem) = app
        .post("/api/v4/actions", json!([{"pipeline_id": b.pipeline, "status_ids": [a, bb], "event": "lead_status_changed", "handler": "crm"}]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("action_multiple"),
        "{problem}"
    );
    app.create("handlers", json!({"code": "multi", "name": "Multi", "webhook_url": receiver.url(), "action_multiple": true})).await;
    let (status, problem) = app
        .post("/api/v4/actions", json!([{"pipeline_id": b.pipeline, "status_ids": [a, c], "event": "lead_status_changed", "handler": "multi"}]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"].as_str().unwrap().contains("adjacent"),
        "{problem}"
    );
    let (status, _) = app
        .post("/api/v4/actions", json!([{"pipeline_id": b.pipeline, "status_ids": [a, bb, c], "event": "lead_status_changed", "handler": "multi"}]))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_added_fires_when_a_lead_is_created_in_or_accepted_into_the_stage() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let b = board(&app, &receiver, false).await;
    let [a, bb, _, _] = b.stage;
    for stage in [b.unsorted, a] {
        app.create("actions", json!({"pipeline_id": b.pipeline, "status_ids": [stage], "event": "lead_added", "handler": "crm"})).await;
    }
    let (lead, uid, _) = submit_form(&app, &b.form, None, "Anna").await;
    let mut seen = 0;
    assert_eq!(
        new_events(&app, lead, &mut seen).await,
        [(1, "went_to_trigger".to_owned())],
        "created in Unsorted"
    );
    app.post(
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        json!({"status_id": a}),
    )
    .await;
    assert_eq!(
        new_events(&app, lead, &mut seen).await,
        [(1, "went_to_trigger".to_owned())],
        "accepted into A"
    );
    // A later move into A is a status change, not an addition.
    move_to(&app, lead, bb).await;
    move_to(&app, lead, a).await;
    assert!(new_events(&app, lead, &mut seen).await.is_empty());
    let received = receiver.wait_for(2, Duration::from_secs(5)).await;
    let body: Value = received[0].json();
    assert_eq!(
        (
            body["event"]["type"].as_u64(),
            body["event"]["type_code"].as_str()
        ),
        (Some(1), Some("lead_added"))
    );
}

/// A lead that enters Lost fires Lost's actions however it gets there: moved from a
/// working stage, declined from Unsorted, or patched from Unsorted into Lost (which
/// declines its entry). A decline used to move the lead and send the account's
/// `status_lead` without firing the stage's actions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_entering_lost_fires_its_actions_whether_moved_or_declined() {
    for backend in [Backend::Memory, Backend::Redis] {
        let app = TestApp::spawn(backend).await;
        let receiver = Receiver::start().await;
        let b = board(&app, &receiver, false).await;
        let lost = 143;
        app.create(
            "actions",
            json!({"pipeline_id": b.pipeline, "status_ids": [lost], "event": "lead_status_changed",
            "handler": "crm"}),
        )
        .await;
        let (moved, uid, _) = submit_form(&app, &b.form, None, "Moved Away").await;
        app.post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": b.stage[0]}),
        )
        .await;
        move_to(&app, moved, lost).await;
        let (declined, uid, _) = submit_form(&app, &b.form, None, "Declined Early").await;
        let (status, body) = app
            .delete(&format!("/api/v4/leads/unsorted/{uid}/decline"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (patched, _, _) = submit_form(&app, &b.form, None, "Patched Out").await;
        move_to(&app, patched, lost).await;
        for lead in [moved, declined, patched] {
            assert_eq!(
                new_events(&app, lead, &mut 0).await,
                [(14, "went_to_trigger".to_owned())],
                "lead {lead} ({backend:?})"
            );
        }
    }
}

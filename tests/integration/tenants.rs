//! Tenants apart: with two accounts configured, account B's token can neither read nor
//! change anything of account A — for every management resource, the live stream and the
//! demo — and B's answer about A's resource is exactly its answer about a resource that
//! does not exist (404, never a 403 that would confirm it exists). Public submissions stay
//! in the account of the form they were sent to.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::accounts::{ACCOUNT_B, Answer, TOKEN_B, two_accounts};
use crate::common::{
    ACCOUNT, Backend, Pipeline, Receiver, Setup, TOKEN, TestApp, setup, submit_form,
};

/// Ids that no account has.
const NO_NUMBER: &str = "987654321";
const NO_TOKEN: &str = "fNoSuchThing0";
const NO_UID: &str = "0190c0de-0000-7000-8000-000000000000";
const NO_EVENT: &str = "evt_NoSuchEvent00000000000";

/// What account A owns, and what account B owns beside it.
struct World {
    app: TestApp,
    receiver: Receiver,
    a: Setup,
    /// A lead of A, linked to a browser, accepted into the action's stage; its visit fired
    /// `a_event`, delivered to the receiver; it has one note.
    a_lead: u64,
    a_vid: String,
    a_event: String,
    a_handler: u64,
    /// A lead of A still in Unsorted.
    a_unsorted: String,
    a_unsorted_lead: u64,
    b: BSide,
}

struct BSide {
    pipeline: Pipeline,
    site_id: u64,
    form_id: String,
    handler_id: u64,
    action_id: u64,
    lead: u64,
}

fn pipeline_of(body: &Value) -> Pipeline {
    let p = &body["_embedded"]["pipelines"][0];
    let stage = |name: &str| {
        p["_embedded"]["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["id"].as_u64())
            .unwrap()
    };
    Pipeline {
        id: p["id"].as_u64().unwrap(),
        unsorted: stage("Unsorted"),
        first_contact: stage("First contact"),
        negotiation: stage("Negotiation"),
    }
}

impl World {
    async fn build(tweak: impl FnOnce(&mut footfall::config::Settings)) -> Self {
        let mut settings = two_accounts(Backend::Redis);
        tweak(&mut settings);
        let app = TestApp::spawn_with(settings).await;
        let receiver = Receiver::start().await;
        let a = setup(&app, &receiver, 0).await;

        let (a_lead, uid, a_vid) = submit_form(&app, &a.form_id, None, "Anna").await;
        let (status, body) = app
            .post(
                &format!("/api/v4/leads/unsorted/{uid}/accept"),
                json!({"status_id": a.pipeline.first_contact}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.beacon(&a.site_key, Some(&a_vid), "https://shop.example/")
            .await;
        assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).await.len(), 1);
        let a_event = app.events_of(a_lead).await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _) = app
            .post(
                &format!("/api/v4/leads/{a_lead}/notes"),
                json!([{"note_type": 25, "params": {"text": "A's secret note", "service": "crm"}}]),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (a_unsorted_lead, a_unsorted, _) = submit_form(&app, &a.form_id, None, "Boris").await;
        let (_, handlers) = app.get("/api/v4/handlers").await;
        let a_handler = handlers["_embedded"]["handlers"][0]["id"].as_u64().unwrap();

        // B: its own pipeline, site, form, handler (with the same code as A's) and action.
        let pipelines = app.get_as(TOKEN_B, "/api/v4/leads/pipelines").await;
        assert_eq!(pipelines.status, StatusCode::OK);
        let pipeline = pipeline_of(&pipelines.body);
        let site = app
            .create_as(
                TOKEN_B,
                "sites",
                json!({"name": "B shop", "url": "https://b-shop.example"}),
            )
            .await;
        let form = app
            .create_as(
                TOKEN_B,
                "forms",
                json!({"name": "B form", "site_id": site["id"], "pipeline_id": pipeline.id}),
            )
            .await;
        let handler = app
            .create_as(
                TOKEN_B,
                "handlers",
                json!({"code": "notify", "name": "B notify", "webhook_url": receiver.url()}),
            )
            .await;
        let action = app
            .create_as(
                TOKEN_B,
                "actions",
                json!({"pipeline_id": pipeline.id, "status_ids": [pipeline.first_contact],
                "event": "site_visit", "handler": "notify", "site_url": "https://b-shop.example"}),
            )
            .await;
        let (b_lead, _, _) = submit_form(&app, form["id"].as_str().unwrap(), None, "Bella").await;
        let b = BSide {
            pipeline,
            site_id: site["id"].as_u64().unwrap(),
            form_id: form["id"].as_str().unwrap().to_owned(),
            handler_id: handler["id"].as_u64().unwrap(),
            action_id: action["id"].as_u64().unwrap(),
            lead: b_lead,
        };
        Self {
            app,
            receiver,
            a,
            a_lead,
            a_vid,
            a_event,
            a_handler,
            a_unsorted,
            a_unsorted_lead,
            b,
        }
    }

    /// B's answer about A's resource (`{}` in `path` is the id) is a 404 and reads exactly
    /// like its answer about a resource that does not exist.
    async fn hidden(
        &self,
        method: Method,
        path: &str,
        foreign: &str,
        missing: &str,
        body: Option<Value>,
    ) {
        let f = self
            .app
            .json_as(
                TOKEN_B,
                method.clone(),
                &path.replace("{}", foreign),
                body.as_ref(),
            )
            .await;
        let m = self
            .app
            .json_as(
                TOKEN_B,
                method.clone(),
                &path.replace("{}", missing),
                body.as_ref(),
            )
            .await;
        assert_eq!(
            f.status,
            StatusCode::NOT_FOUND,
            "B's {method} {path} with A's {foreign}: {}",
            f.text
        );
        same_answer(&f, foreign, &m, missing);
    }

    /// The items of a list as B sees it, as text (to look for A's ids in it).
    async fn b_list(&self, path: &str) -> String {
        let answer = self.app.get_as(TOKEN_B, path).await;
        if answer.status == StatusCode::NO_CONTENT {
            return String::new(); // an empty list, as amoCRM answers it
        }
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        answer.body["_embedded"].to_string()
    }

    async fn a_get(&self, path: &str) -> Value {
        let (status, body) = self.app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}

/// Two answers are the same once each one's id is written `ID`.
fn same_answer(f: &Answer, foreign: &str, m: &Answer, missing: &str) {
    assert_eq!(f.status, m.status, "{} vs {}", f.text, m.text);
    assert_eq!(f.header("content-type"), m.header("content-type"));
    assert_eq!(
        without_id(&f.body, foreign),
        without_id(&m.body, missing),
        "the answer about another account's resource differs from the one about a missing resource"
    );
}

fn without_id(v: &Value, id: &str) -> Value {
    match v {
        Value::String(s) => Value::String(replace_word(s, id)),
        Value::Array(items) => Value::Array(items.iter().map(|i| without_id(i, id)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (replace_word(k, id), without_id(v, id)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Replaces `id` where it stands as a whole token (not inside a longer id or number).
fn replace_word(s: &str, id: &str) -> String {
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(id) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + id.len()..].chars().next();
        let whole = !before.is_some_and(is_part) && !after.is_some_and(is_part);
        out.push_str(&rest[..i]);
        out.push_str(if whole { "ID" } else { id });
        rest = &rest[i + id.len()..];
    }
    out.push_str(rest);
    out
}

fn n(id: u64) -> String {
    id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_of_another_account_cannot_be_read_or_changed() {
    let w = World::build(|_| {}).await;
    let a_site = n(w.a.site_id);
    w.hidden(Method::GET, "/api/v4/sites/{}", &a_site, NO_NUMBER, None)
        .await;
    w.hidden(
        Method::PATCH,
        "/api/v4/sites/{}",
        &a_site,
        NO_NUMBER,
        Some(json!({"name": "taken", "hosts": ["evil.example"], "respect_dnt": true})),
    )
    .await;
    let list = w.b_list("/api/v4/sites?limit=250").await;
    assert!(!list.contains(&w.a.site_key), "{list}");
    assert!(list.contains(&format!("\"id\":{}", w.b.site_id)), "{list}");
    let site = w.a_get(&format!("/api/v4/sites/{a_site}")).await;
    assert_eq!(site["name"], "Shop");
    assert_eq!(site["hosts"], json!(["shop.example", "blog.example"]));
    assert_eq!(site["respect_dnt"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_of_another_account_cannot_be_read_nor_made_on_its_site_or_pipeline() {
    let w = World::build(|_| {}).await;
    w.hidden(
        Method::GET,
        "/api/v4/forms/{}",
        &w.a.form_id,
        NO_TOKEN,
        None,
    )
    .await;
    let list = w.b_list("/api/v4/forms?limit=250").await;
    assert!(!list.contains(&w.a.form_id), "{list}");
    assert!(list.contains(&w.b.form_id), "{list}");

    // A form of B's on A's site, or into A's pipeline, is refused as if they did not exist.
    let on_site = |site: &str| json!([{"name": "F", "site_id": site.parse::<u64>().unwrap(), "pipeline_id": w.b.pipeline.id}]);
    let a_site = n(w.a.site_id);
    let f = w
        .app
        .post_as(TOKEN_B, "/api/v4/forms", on_site(&a_site))
        .await;
    let m = w
        .app
        .post_as(TOKEN_B, "/api/v4/forms", on_site(NO_NUMBER))
        .await;
    assert_eq!(f.status, StatusCode::BAD_REQUEST, "{}", f.text);
    same_answer(&f, &a_site, &m, NO_NUMBER);
    let into = |pipeline: &str| json!([{"name": "F", "site_id": w.b.site_id, "pipeline_id": pipeline.parse::<u64>().unwrap()}]);
    let a_pipeline = n(w.a.pipeline.id);
    let f = w
        .app
        .post_as(TOKEN_B, "/api/v4/forms", into(&a_pipeline))
        .await;
    let m = w
        .app
        .post_as(TOKEN_B, "/api/v4/forms", into(NO_NUMBER))
        .await;
    assert_eq!(f.status, StatusCode::BAD_REQUEST, "{}", f.text);
    same_answer(&f, &a_pipeline, &m, NO_NUMBER);
    let b_forms = w.app.get_as(TOKEN_B, "/api/v4/forms").await;
    assert_eq!(
        b_forms.body["_embedded"]["forms"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_and_statuses_of_another_account_cannot_be_read_or_used() {
    let w = World::build(|_| {}).await;
    let a_pipeline = n(w.a.pipeline.id);
    w.hidden(
        Method::GET,
        "/api/v4/leads/pipelines/{}",
        &a_pipeline,
        NO_NUMBER,
        None,
    )
    .await;
    let list = w.app.get_as(TOKEN_B, "/api/v4/leads/pipelines").await;
    let pipelines = list.body["_embedded"]["pipelines"].as_array().unwrap();
    assert_eq!(pipelines.len(), 1, "{}", list.text);
    assert_eq!(pipelines[0]["id"], w.b.pipeline.id);
    assert_eq!(pipelines[0]["account_id"], ACCOUNT_B);
    let statuses = pipelines[0]["_embedded"]["statuses"].to_string();
    for a_status in [w.a.pipeline.unsorted, w.a.pipeline.first_contact] {
        assert!(
            !statuses.contains(&format!("\"id\":{a_status},")),
            "{statuses}"
        );
    }

    // B's lead cannot be moved into A's pipeline, or into one of A's stages.
    let lead_path = format!("/api/v4/leads/{}", w.b.lead);
    let to_pipeline = |p: &str| json!({"pipeline_id": p.parse::<u64>().unwrap(), "status_id": w.a.pipeline.first_contact});
    let f = w
        .app
        .patch_as(TOKEN_B, &lead_path, to_pipeline(&a_pipeline))
        .await;
    let m = w
        .app
        .patch_as(TOKEN_B, &lead_path, to_pipeline(NO_NUMBER))
        .await;
    assert!(
        f.status.is_client_error() && f.status != StatusCode::FORBIDDEN,
        "{}",
        f.text
    );
    same_answer(&f, &a_pipeline, &m, NO_NUMBER);
    let a_stage = n(w.a.pipeline.first_contact);
    let to_stage = |s: &str| json!({"status_id": s.parse::<u64>().unwrap()});
    let f = w
        .app
        .patch_as(TOKEN_B, &lead_path, to_stage(&a_stage))
        .await;
    let m = w
        .app
        .patch_as(TOKEN_B, &lead_path, to_stage(NO_NUMBER))
        .await;
    assert_eq!(f.status, StatusCode::BAD_REQUEST, "{}", f.text);
    same_answer(&f, &a_stage, &m, NO_NUMBER);
    let lead = w.app.get_as(TOKEN_B, &lead_path).await;
    assert_eq!(lead.body["pipeline_id"], w.b.pipeline.id);
    assert_eq!(lead.body["status_id"], w.b.pipeline.unsorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_of_another_account_cannot_be_read_moved_or_annotated() {
    let w = World::build(|_| {}).await;
    let lead = n(w.a_lead);
    for path in [
        "/api/v4/leads/{}",
        "/api/v4/leads/{}/timeline",
        "/api/v4/leads/{}/visits",
        "/api/v4/leads/{}/notes",
    ] {
        w.hidden(Method::GET, path, &lead, NO_NUMBER, None).await;
    }
    w.hidden(
        Method::PATCH,
        "/api/v4/leads/{}",
        &lead,
        NO_NUMBER,
        Some(json!({"status_id": w.a.pipeline.negotiation, "name": "taken"})),
    )
    .await;
    w.hidden(
        Method::PATCH,
        "/api/v4/leads/{}",
        &lead,
        NO_NUMBER,
        Some(json!({"status_id": w.b.pipeline.first_contact, "pipeline_id": w.b.pipeline.id})),
    )
    .await;
    w.hidden(
        Method::POST,
        "/api/v4/leads/{}/notes",
        &lead,
        NO_NUMBER,
        Some(json!([{"note_type": 25, "params": {"text": "planted", "service": "b"}}])),
    )
    .await;
    for path in [
        "/api/v4/leads?limit=250",
        "/api/v4/leads?query=Anna",
        &format!("/api/v4/leads?pipeline_id={}", w.a.pipeline.id),
    ] {
        let list = w.app.get_as(TOKEN_B, path).await;
        if list.status == StatusCode::NO_CONTENT {
            continue; // B sees no lead at all
        }
        let ids: Vec<&Value> = list.body["_embedded"]["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["id"])
            .collect();
        assert!(
            !ids.contains(&&json!(w.a_lead)) && !ids.contains(&&json!(w.a_unsorted_lead)),
            "{path}: {}",
            list.text
        );
        let embedded = list.body["_embedded"].to_string();
        assert!(!embedded.contains("Anna"), "{path}: {}", list.text);
    }
    let a_view = w.a_get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(a_view["name"], "Contact: Anna");
    assert_eq!(a_view["status_id"], w.a.pipeline.first_contact);
    let notes = w.a_get(&format!("/api/v4/leads/{lead}/notes")).await;
    let notes = notes["_embedded"]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["params"]["text"], "A's secret note");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsorted_entries_of_another_account_cannot_be_read_accepted_or_declined() {
    let w = World::build(|_| {}).await;
    let uid = w.a_unsorted.clone();
    w.hidden(Method::GET, "/api/v4/leads/unsorted/{}", &uid, NO_UID, None)
        .await;
    w.hidden(
        Method::POST,
        "/api/v4/leads/unsorted/{}/accept",
        &uid,
        NO_UID,
        Some(json!({"status_id": w.b.pipeline.first_contact})),
    )
    .await;
    w.hidden(
        Method::POST,
        "/api/v4/leads/unsorted/{}/accept",
        &uid,
        NO_UID,
        Some(json!({})),
    )
    .await;
    w.hidden(
        Method::POST,
        "/api/v4/leads/unsorted/{}/decline",
        &uid,
        NO_UID,
        None,
    )
    .await;
    for path in [
        "/api/v4/leads/unsorted?limit=250".to_owned(),
        format!("/api/v4/leads/unsorted?form_id={}", w.a.form_id),
        format!("/api/v4/leads/unsorted?pipeline_id={}", w.a.pipeline.id),
    ] {
        let list = w.b_list(&path).await;
        assert!(
            !list.contains(&uid) && !list.contains(&w.a.form_id),
            "{list}"
        );
    }
    let list = w.b_list("/api/v4/leads/unsorted").await;
    assert!(list.contains(&format!("\"id\":{}", w.b.lead)), "{list}");
    // A's entry is still waiting, its lead still in Unsorted.
    let entry = w.a_get(&format!("/api/v4/leads/unsorted/{uid}")).await;
    assert_eq!(entry["uid"], uid.as_str());
    let lead = w
        .a_get(&format!("/api/v4/leads/{}", w.a_unsorted_lead))
        .await;
    assert_eq!(lead["status_id"], w.a.pipeline.unsorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_of_another_account_cannot_be_read_changed_or_replayed() {
    let w = World::build(|_| {}).await;
    let handler = n(w.a_handler);
    w.hidden(
        Method::GET,
        "/api/v4/handlers/{}",
        &handler,
        NO_NUMBER,
        None,
    )
    .await;
    w.hidden(
        Method::PATCH,
        "/api/v4/handlers/{}",
        &handler,
        NO_NUMBER,
        Some(json!({"name": "taken", "webhook_url": "http://127.0.0.1:1/steal", "rotate_secret": true})),
    )
    .await;
    w.hidden(
        Method::POST,
        "/api/v4/handlers/{}/replay",
        &handler,
        NO_NUMBER,
        Some(json!({})),
    )
    .await;
    let list = w.b_list("/api/v4/handlers?limit=250").await;
    assert!(!list.contains(&format!("\"id\":{handler},")), "{list}");
    assert!(
        list.contains(&format!("\"id\":{},", w.b.handler_id)),
        "{list}"
    );
    assert!(
        !list.contains("whsec_"),
        "secrets are shown on creation only"
    );
    let a_view = w.a_get(&format!("/api/v4/handlers/{handler}")).await;
    assert_eq!(a_view["name"], "Notify");
    assert_eq!(a_view["webhook_url"], w.receiver.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_of_another_account_cannot_be_read_changed_deleted_or_made_with_its_parts() {
    let w = World::build(|_| {}).await;
    let action = n(w.a.action_id);
    w.hidden(Method::GET, "/api/v4/actions/{}", &action, NO_NUMBER, None)
        .await;
    w.hidden(
        Method::PATCH,
        "/api/v4/actions/{}",
        &action,
        NO_NUMBER,
        Some(json!({"enabled": false, "delay_seconds": 5})),
    )
    .await;
    w.hidden(
        Method::DELETE,
        "/api/v4/actions/{}",
        &action,
        NO_NUMBER,
        None,
    )
    .await;
    let list = w.b_list("/api/v4/actions?limit=250").await;
    assert!(!list.contains(&format!("\"id\":{action},")), "{list}");
    assert!(
        list.contains(&format!("\"id\":{},", w.b.action_id)),
        "{list}"
    );
    let a_view = w.a_get(&format!("/api/v4/actions/{action}")).await;
    assert_eq!(a_view["enabled"], true);
    assert_eq!(a_view["delay_seconds"], 0);

    // B cannot place an action on A's pipeline or stage, nor use a handler only A has.
    w.app
        .create(
            "handlers",
            json!({"code": "a-only", "name": "A only", "webhook_url": w.receiver.url()}),
        )
        .await;
    let make = |pipeline: u64, status: u64, handler: &str| {
        json!([{"pipeline_id": pipeline, "status_ids": [status], "event": "site_visit",
                "handler": handler, "site_url": "https://b-shop.example"}])
    };
    let b = &w.b.pipeline;
    let attempts = [
        (
            make(w.a.pipeline.id, w.a.pipeline.first_contact, "notify"),
            make(987654321, w.a.pipeline.first_contact, "notify"),
            n(w.a.pipeline.id),
            NO_NUMBER.to_owned(),
        ),
        (
            make(b.id, w.a.pipeline.first_contact, "notify"),
            make(b.id, 987654321, "notify"),
            n(w.a.pipeline.first_contact),
            NO_NUMBER.to_owned(),
        ),
        (
            make(b.id, b.first_contact, "a-only"),
            make(b.id, b.first_contact, "no-such-code"),
            "a-only".to_owned(),
            "no-such-code".to_owned(),
        ),
    ];
    for (foreign, missing, foreign_id, missing_id) in attempts {
        let f = w.app.post_as(TOKEN_B, "/api/v4/actions", foreign).await;
        let m = w.app.post_as(TOKEN_B, "/api/v4/actions", missing).await;
        assert_eq!(f.status, StatusCode::BAD_REQUEST, "{}", f.text);
        same_answer(&f, &foreign_id, &m, &missing_id);
    }
    let b_actions = w.app.get_as(TOKEN_B, "/api/v4/actions").await;
    assert_eq!(
        b_actions.body["_embedded"]["actions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_another_account_cannot_be_read_or_replayed() {
    let w = World::build(|_| {}).await;
    let event = w.a_event.clone();
    w.hidden(
        Method::GET,
        "/api/v4/webhook_events/{}",
        &event,
        NO_EVENT,
        None,
    )
    .await;
    w.hidden(
        Method::POST,
        "/api/v4/webhook_events/{}/replay",
        &event,
        NO_EVENT,
        Some(json!({})),
    )
    .await;
    for path in [
        "/api/v4/webhook_events?limit=250".to_owned(),
        format!("/api/v4/webhook_events?lead_id={}", w.a_lead),
        format!("/api/v4/webhook_events?handler_id={}", w.a_handler),
        "/api/v4/webhook_events?type=site_visit".to_owned(),
    ] {
        let list = w.app.get_as(TOKEN_B, &path).await;
        assert_eq!(
            list.status,
            StatusCode::NO_CONTENT,
            "B sees no event, an empty list: {path}: {}",
            list.text
        );
    }
    // Nothing was sent again: A's event has its one attempt, the receiver its one call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a_view = w.a_get(&format!("/api/v4/webhook_events/{event}")).await;
    assert_eq!(a_view["attempts"].as_array().unwrap().len(), 1, "{a_view}");
    assert_eq!(w.receiver.count(), 1);
}

/// Collects what a live stream sends, in the background.
fn listen(app: &TestApp, token: &str) -> Arc<Mutex<String>> {
    let seen = Arc::new(Mutex::new(String::new()));
    let request = app
        .client
        .get(app.url("/api/v4/stream"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(60));
    let sink = seen.clone();
    tokio::spawn(async move {
        let Ok(mut response) = request.send().await else {
            return;
        };
        while let Ok(Some(chunk)) = response.chunk().await {
            sink.lock().push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    seen
}

async fn wait_until(seen: &Mutex<String>, what: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if seen.lock().contains(what) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_of_one_account_carries_none_of_another() {
    let w = World::build(|_| {}).await;
    let a_stream = listen(&w.app, TOKEN);
    let b_stream = listen(&w.app, TOKEN_B);
    assert!(wait_until(&a_stream, ": connected").await);
    assert!(wait_until(&b_stream, ": connected").await);

    // Changes of A's lead: a note, a move, a new lead from A's form.
    let (status, _) = w
        .app
        .post(
            &format!("/api/v4/leads/{}/notes", w.a_lead),
            json!([{"note_type": 25, "params": {"text": "x", "service": "y"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .app
        .patch(
            &format!("/api/v4/leads/{}", w.a_lead),
            json!({"status_id": w.a.pipeline.negotiation}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (new_a_lead, _, _) = submit_form(&w.app, &w.a.form_id, None, "Carl").await;
    let a_marker = format!("\"lead_id\":{new_a_lead}");
    assert!(
        wait_until(&a_stream, &a_marker).await,
        "A's stream missed A's update: {}",
        a_stream.lock()
    );
    assert!(
        a_stream
            .lock()
            .contains(&format!("\"lead_id\":{}", w.a_lead))
    );

    // B's own update reaches B — after A's updates, so B has had the time to get them.
    let b_note = w
        .app
        .post_as(
            TOKEN_B,
            &format!("/api/v4/leads/{}/notes", w.b.lead),
            json!([{"note_type": 25, "params": {"text": "x", "service": "y"}}]),
        )
        .await;
    assert_eq!(b_note.status, StatusCode::OK);
    let b_marker = format!("\"lead_id\":{}", w.b.lead);
    assert!(
        wait_until(&b_stream, &b_marker).await,
        "B's stream is silent: {}",
        b_stream.lock()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every update B received is B's own (its lead's creation, published in the background,
    // may arrive after its stream opened, so they are counted by account, not in all).
    let b_seen = b_stream.lock().clone();
    let b_accounts: Vec<u64> = b_seen
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["account_id"].as_u64())
        .collect();
    assert!(!b_accounts.is_empty(), "{b_seen}");
    assert!(
        b_accounts.iter().all(|a| *a == ACCOUNT_B),
        "B received other updates: {b_seen}"
    );
    assert!(!b_seen.contains(&format!("{ACCOUNT}")), "{b_seen}");
    assert!(!a_stream.lock().contains(&b_marker), "{}", a_stream.lock());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_lives_in_an_account_of_its_own_and_no_other_sees_it() {
    // The demo used to be created in the first account (A); it now has its own account,
    // whose token alone shows it.
    let w = World::build(|s| {
        s.demo.enabled = true;
        s.demo.account_id = 30441000;
    })
    .await;
    let demo = w
        .app
        .get_as(footfall::config::DEMO_TOKEN, "/api/v4/demo")
        .await;
    assert_eq!(demo.status, StatusCode::OK, "{}", demo.text);
    let demo_site = demo.body["site_key"].as_str().unwrap().to_owned();
    for token in [TOKEN, TOKEN_B] {
        for path in ["/api/v4/demo", "/api/v4/demo/inbox"] {
            let other = w.app.get_as(token, path).await;
            assert_eq!(
                other.status,
                StatusCode::NOT_FOUND,
                "{path}: {}",
                other.text
            );
            assert!(!other.text.contains(&demo_site), "{}", other.text);
        }
        let sites = w.app.get_as(token, "/api/v4/sites?limit=250").await;
        assert!(!sites.text.contains(&demo_site), "{}", sites.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_to_a_form_creates_a_lead_in_that_form_s_account_only() {
    let w = World::build(|_| {}).await;
    let (lead, uid, _) = submit_form(&w.app, &w.a.form_id, None, "Dora").await;
    let view = w.a_get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(view["account_id"], ACCOUNT);
    assert_eq!(view["pipeline_id"], w.a.pipeline.id);
    w.hidden(Method::GET, "/api/v4/leads/{}", &n(lead), NO_NUMBER, None)
        .await;
    w.hidden(Method::GET, "/api/v4/leads/unsorted/{}", &uid, NO_UID, None)
        .await;
    let b_unsorted = w.b_list("/api/v4/leads/unsorted?limit=250").await;
    assert!(!b_unsorted.contains("Dora") && !b_unsorted.contains(&uid));
    let b_leads = w.b_list("/api/v4/leads?limit=250").await;
    assert!(!b_leads.contains("Dora"), "{b_leads}");

    // And the other way round: B's form makes B's lead, which A does not see.
    let (b_lead, b_uid, _) = submit_form(&w.app, &w.b.form_id, None, "Emil").await;
    let view = w
        .app
        .get_as(TOKEN_B, &format!("/api/v4/leads/{b_lead}"))
        .await;
    assert_eq!(view.body["account_id"], ACCOUNT_B);
    let (status, _) = w.app.get(&format!("/api/v4/leads/{b_lead}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.app.get(&format!("/api/v4/leads/unsorted/{b_uid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, a_unsorted) = w.app.get("/api/v4/leads/unsorted?limit=250").await;
    assert!(!a_unsorted.to_string().contains("Emil"));
}

/// A browser known to A that submits a form of B's (the same person on two customers'
/// sites, with footfall's own cookie) gets a lead in B; A's lead keeps its browser, its
/// site-visit action keeps firing, and A's timeline tells nothing about B's lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_of_one_account_submitting_another_s_form_leaves_the_first_lead_alone() {
    let mut settings = two_accounts(Backend::Redis);
    settings.tracking.visit_idle_seconds = 1;
    let w = World::build(|s| *s = settings).await;
    let response = w
        .app
        .client
        .post(w.app.url(&format!("/v1/forms/{}/submit", w.b.form_id)))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(json!({"vid": w.a_vid, "fields": {"name": "Anna"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let b_lead = response.json::<Value>().await.unwrap()["lead_id"]
        .as_u64()
        .unwrap();

    let a_view = w.a_get(&format!("/api/v4/leads/{}", w.a_lead)).await;
    let visitors = a_view["_embedded"]["visitors"].as_array().unwrap();
    assert_eq!(visitors.len(), 1, "{a_view}");
    assert!(
        visitors[0]["until"].is_null(),
        "A's lead lost its browser: {a_view}"
    );
    let timeline = w
        .a_get(&format!("/api/v4/leads/{}/timeline", w.a_lead))
        .await;
    let moved_away: Vec<&Value> = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "visitor_moved" || i["to_lead"] == b_lead)
        .collect();
    assert!(
        moved_away.is_empty(),
        "A's timeline names B's lead: {moved_away:?}"
    );
    // A new visit of the browser on A's site still fires A's action.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.app
        .beacon(&w.a.site_key, Some(&w.a_vid), "https://shop.example/again")
        .await;
    assert_eq!(
        w.receiver.wait_for(2, Duration::from_secs(5)).await.len(),
        2,
        "A's site-visit action no longer fires for A's lead"
    );
}

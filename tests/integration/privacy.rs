//! Privacy by design, black-box on both stores: addresses kept to their network, erasure
//! that leaves nothing of the subject in the store, export of everything held about a
//! subject, an audit without personal data, and lead retention.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use footfall::app::Application;
use footfall::config::Settings;
use footfall::domain::time::{DAY_SECS, now_ms};
use footfall::service::Services;
use footfall::store::memory::MemoryStore;

use crate::common::{
    Backend, Receiver, Setup, TestApp, email_of, phone_of, redis_url, setup, submit_form,
    test_settings,
};

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

both_stores!(
    ip_truncate_keeps_the_network_of_an_address,
    deleting_a_lead_leaves_nothing_of_it_and_its_delayed_event_never_fires,
    deleting_a_visitor_leaves_nothing_of_its_browsing,
    erasing_an_email_removes_the_subject_and_keeps_the_others,
    the_export_holds_each_planted_item_and_nothing_of_another_subject,
    retention_erases_an_untouched_lead_and_keeps_a_fresh_one,
    a_form_sent_without_consent_is_recorded_but_links_no_browser,
    a_sites_consent_and_opt_out_reach_its_snippet,
);

/// Longer than the visit gap of these tests (1 s): the next page view starts a visit.
const IDLE: Duration = Duration::from_millis(1100);
/// The delay of the site-visit action: the event waits in the schedule this long.
const DELAY_SECS: u64 = 2;

/// A running app and what a test needs to look inside its store.
struct Harness {
    app: TestApp,
    /// The embedded store's handle (searched through its debug dump).
    memory: Option<Arc<MemoryStore>>,
    services: Arc<Services>,
}

async fn spawn(backend: Backend) -> Harness {
    spawn_with(backend, |_| {}).await
}

async fn spawn_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> Harness {
    let mut settings = test_settings(backend);
    settings.tracking.visit_idle_seconds = 1;
    change(&mut settings);
    let memory = (backend == Backend::Memory).then(|| {
        Arc::new(MemoryStore::with_event_retention(Duration::from_secs(
            settings.delivery.event_retention_days * DAY_SECS,
        )))
    });
    let app = match &memory {
        Some(store) => Application::build_with_store(settings.clone(), store.clone()).await,
        None => Application::build(settings.clone()).await,
    }
    .expect("the app starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let services = app.services();
    tokio::spawn(app.run_until_stopped());
    Harness {
        app: TestApp::attach(base, settings).owning_keys(),
        memory,
        services,
    }
}

/// A data subject with unique markers in every kind of data footfall keeps of a person:
/// contact (name, email, phone), pages visited, a browser, a note, a delayed event.
struct Subject {
    lead: u64,
    /// The browser's id as the API shows it (22 characters).
    visitor: String,
    email: String,
    phone: String,
    phone_digits: String,
    pages: [String; 2],
    note: String,
}

impl Subject {
    /// Strings that must not be found anywhere once the subject is erased.
    fn markers(&self) -> Vec<String> {
        vec![
            self.email.clone(),
            self.phone.clone(),
            self.phone_digits.clone(),
            self.pages[0].clone(),
            self.pages[1].clone(),
            self.visitor.clone(),
            self.note.clone(),
        ]
    }
}

/// Plants a subject: pages viewed, a form sent from that browser, the lead accepted into
/// the stage of the site-visit action, a new visit (which schedules the delayed event),
/// and a note.
async fn plant(app: &TestApp, s: &Setup) -> Subject {
    let tag: String = format!("m{:016x}", rand::rng().random::<u64>());
    let name = format!("Zed{tag}");
    let pages = [
        format!("https://shop.example/{tag}-landing"),
        format!("https://shop.example/{tag}-return"),
    ];
    let (status, vid) = app.beacon(&s.site_key, None, &pages[0]).await;
    assert_eq!(status, StatusCode::OK);
    let vid = vid.expect("a new browser gets an id");
    let (lead, uid, vid) = submit_form(app, &s.form_id, Some(&vid), &name).await;
    let (status, body) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(IDLE).await;
    app.beacon(&s.site_key, Some(&vid), &pages[1]).await;
    let note = format!("note-{tag}");
    let (status, body) = app
        .post(
            "/api/v4/leads/notes",
            json!([{"entity_id": lead, "note_type": "common", "params": {"text": note}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let phone = phone_of(&name);
    Subject {
        lead,
        visitor: vid[vid.len() - 22..].to_owned(),
        email: email_of(&name),
        phone_digits: phone.chars().filter(char::is_ascii_digit).collect(),
        phone,
        pages,
        note,
    }
}

/// Every key of the app's Redis prefix with its contents, read by type.
async fn redis_contents(prefix: &str) -> Vec<(String, Vec<String>)> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(!keys.is_empty(), "the scan found the app's keys");
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "string" => vec![
                redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut con)
                    .await
                    .unwrap(),
            ],
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap(),
            "list" => redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut con)
                .await
                .unwrap(),
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut con)
                .await
                .unwrap(),
            "stream" => {
                let raw: redis::Value = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut con)
                    .await
                    .unwrap();
                vec![format!("{raw:?}")]
            }
            "none" => continue, // expired between the scan and the read
            other => panic!("key {key} of unexpected type {other}"),
        };
        out.push((key, values));
    }
    out
}

/// The whole store as text, and — on Redis — key by key.
async fn everything(h: &Harness) -> String {
    match &h.memory {
        Some(store) => store.debug_dump(),
        None => redis_contents(&h.app.settings.store.key_prefix)
            .await
            .into_iter()
            .map(|(key, values)| format!("{key} => {values:?}\n"))
            .collect(),
    }
}

/// Asserts that nothing of the subject is left: no marker anywhere, and no key, index
/// entry or record of its lead.
async fn assert_nothing_left(h: &Harness, subject: &Subject) {
    let dump = everything(h).await;
    for marker in subject.markers() {
        assert!(
            !dump.contains(&marker),
            "{marker} is still stored:\n{}",
            context(&dump, &marker)
        );
    }
    let lead = subject.lead;
    match &h.memory {
        Some(_) => assert!(
            !dump.contains(&format!("LeadId({lead})")),
            "lead {lead} is still referenced:\n{}",
            context(&dump, &format!("LeadId({lead})"))
        ),
        None => {
            for (key, values) in redis_contents(&h.app.settings.store.key_prefix).await {
                assert!(
                    !key.ends_with(&format!(":l:{lead}")) && !key.contains(&format!(":l:{lead}:")),
                    "key {key} of lead {lead} is left"
                );
                let indexes = key.ends_with(":leads")
                    || key.ends_with(":contacts")
                    || key.contains(":b:")
                    || key.contains(":sub:");
                if indexes {
                    assert!(
                        !values
                            .iter()
                            .any(|v| v == &lead.to_string() || v.starts_with(&format!("{lead}/"))),
                        "{key} still points at lead {lead}: {values:?}"
                    );
                }
                for v in &values {
                    for needle in [
                        format!("\"lead_id\":{lead},"),
                        format!("\"lead_id\":{lead}}}"),
                    ] {
                        assert!(
                            !v.contains(&needle),
                            "{key} holds a record of lead {lead}: {v}"
                        );
                    }
                }
            }
        }
    }
}

/// A few lines around the first occurrence, for the failure message.
fn context(dump: &str, marker: &str) -> String {
    let at = dump.find(marker).unwrap_or(0);
    let start = dump[..at]
        .char_indices()
        .rev()
        .nth(300)
        .map_or(0, |(i, _)| i);
    let end = (at + 300).min(dump.len());
    dump.get(start..end).unwrap_or("").to_owned()
}

/// Asserts that everything of the subject is there (the test's markers are real).
async fn assert_all_there(h: &Harness, subject: &Subject) {
    let dump = everything(h).await;
    for marker in subject.markers() {
        assert!(dump.contains(&marker), "{marker} was never stored");
    }
}

async fn deleting_a_lead_leaves_nothing_of_it_and_its_delayed_event_never_fires(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, DELAY_SECS).await;
    let anna = plant(app, &s).await;
    let other = plant(app, &s).await;
    let events = app.events_of(anna.lead).await;
    assert_eq!(
        events.len(),
        1,
        "the return visit scheduled one event: {events:?}"
    );
    assert_eq!(events[0]["state"], "scheduled", "{events:?}");
    assert_all_there(&h, &anna).await;

    let (status, body) = app
        .delete(&format!("/api/v4/leads/{}", anna.lead), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_nothing_left(&h, &anna).await;
    let (status, _) = app.get(&format!("/api/v4/leads/{}", anna.lead)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .delete(&format!("/api/v4/leads/{}", anna.lead), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a second erasure finds nothing"
    );

    // The other subject's delayed event fires; the erased one's never does.
    let received = receiver
        .wait_for(2, Duration::from_secs(DELAY_SECS + 4))
        .await;
    assert_eq!(received.len(), 1, "only the other lead's webhook arrives");
    assert_eq!(received[0].json()["event"]["data"]["id"], other.lead);
    assert_all_there(&h, &other).await;

    // The audit names the kind and counts, not the subject.
    let (status, audit) = app.get("/api/v4/privacy/audit").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let records = audit["_embedded"]["audit"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{audit}");
    let record = &records[0];
    assert_eq!(record["kind"], "lead");
    assert_eq!(record["erased"]["leads"], 1);
    assert_eq!(record["erased"]["contacts"], 1);
    assert_eq!(
        record["erased"]["unsorted"], 0,
        "the entry was accepted before"
    );
    assert_eq!(record["erased"]["visitors"], 1);
    assert_eq!(record["erased"]["page_views"], 2);
    assert_eq!(record["erased"]["events"], 1);
    let token = record["token"].as_str().unwrap();
    assert!(token.starts_with("sha256:"), "{token}");
    let text = audit.to_string();
    assert!(
        !text.contains(crate::common::TOKEN),
        "the audit holds the token"
    );
    for marker in anna.markers() {
        assert!(!text.contains(&marker), "the audit names {marker}");
    }
}

/// The first Unsorted entry's metadata.
async fn first_unsorted_metadata(app: &TestApp) -> Value {
    let (status, body) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["_embedded"]["unsorted"][0]["metadata"].clone()
}

async fn ip_truncate_keeps_the_network_of_an_address(backend: Backend) {
    let mut settings = test_settings(backend);
    settings.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .header("content-type", "text/plain")
        .header("x-forwarded-for", "203.0.113.57")
        .body(json!({"fields": {"name": "Anna", "email": "anna@example.com"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let metadata = first_unsorted_metadata(&app).await;
    assert_eq!(metadata["ip"], "203.0.113.0", "{metadata}");
}

async fn deleting_a_visitor_leaves_nothing_of_its_browsing(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, 0).await;
    let anna = plant(app, &s).await;
    assert_all_there(&h, &anna).await;

    let (status, body) = app
        .delete(&format!("/api/v4/visitors/{}", anna.visitor), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // The return visit's URL (pages[1]) stays in the webhook event the lead was sent: the
    // lead's delivery log, which goes with the lead (README, Privacy).
    let dump = everything(&h).await;
    for gone in [&anna.visitor, &anna.pages[0]] {
        assert!(
            !dump.contains(gone.as_str()),
            "{gone} is still stored:\n{}",
            context(&dump, gone)
        );
    }
    // The lead stays, without the browser.
    for kept in [&anna.email, &anna.note] {
        assert!(dump.contains(kept.as_str()), "{kept} went with the browser");
    }
    let (status, lead) = app.get(&format!("/api/v4/leads/{}", anna.lead)).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    assert_eq!(lead["_embedded"]["visitors"], json!([]), "{lead}");

    let (status, _) = app
        .delete(&format!("/api/v4/visitors/{}", anna.visitor), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing is left to erase");
    let (status, problem) = app.delete("/api/v4/visitors/not-a-browser", None).await;
    assert!(status.is_client_error(), "{status} {problem}");
    assert_eq!(problem["errors"][0]["field"], "visitor_uid", "{problem}");

    let (_, audit) = app.get("/api/v4/privacy/audit").await;
    let records = audit["_embedded"]["audit"].as_array().unwrap();
    assert_eq!(records.len(), 1, "only the erasure that happened: {audit}");
    assert_eq!(records[0]["kind"], "visitor");
    assert_eq!(records[0]["erased"]["visitors"], 1);
    assert_eq!(records[0]["erased"]["page_views"], 2);
    assert!(!audit.to_string().contains(&anna.visitor));
}

async fn erasing_an_email_removes_the_subject_and_keeps_the_others(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, DELAY_SECS).await;
    let anna = plant(app, &s).await;
    let boris = plant(app, &s).await;

    // Refused requests change nothing.
    for bad in [
        json!({}),
        json!({"email": anna.email, "phone": anna.phone}),
        json!({"email": "not-an-email"}),
        json!({"phone": "12"}),
        json!({"name": "Anna"}),
    ] {
        let (status, problem) = app.post("/api/v4/privacy/erase", bad.clone()).await;
        assert!(status.is_client_error(), "{bad}: {status} {problem}");
    }
    assert_all_there(&h, &anna).await;

    let (status, body) = app
        .post(
            "/api/v4/privacy/erase",
            json!({"email": anna.email.to_uppercase()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"erased": {"leads": 1, "contacts": 1, "unsorted": 0, "visitors": 1,
                          "page_views": 2, "events": 1}})
    );
    assert_nothing_left(&h, &anna).await;
    assert_all_there(&h, &boris).await;

    // By phone, in another notation.
    let (status, body) = app
        .post(
            "/api/v4/privacy/erase",
            json!({"phone": format!("+{}", boris.phone_digits)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["erased"]["leads"], 1, "{body}");
    assert_nothing_left(&h, &boris).await;

    // An unknown subject: counts of zero, and an audit record all the same.
    let (status, body) = app
        .post(
            "/api/v4/privacy/erase",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["erased"]["leads"], 0);
    let (_, audit) = app.get("/api/v4/privacy/audit").await;
    let kinds: Vec<&str> = audit["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["email", "phone", "email"], "newest first: {audit}");
    let text = audit.to_string();
    for marker in anna.markers().into_iter().chain(boris.markers()) {
        assert!(!text.contains(&marker), "the audit names {marker}");
    }
    assert!(!text.contains("nobody@example.com"));

    // Neither delayed event fires.
    tokio::time::sleep(Duration::from_secs(DELAY_SECS + 2)).await;
    assert_eq!(receiver.count(), 0, "an erased lead's event fired");
}

async fn the_export_holds_each_planted_item_and_nothing_of_another_subject(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, 0).await;
    let anna = plant(app, &s).await;
    let boris = plant(app, &s).await;
    // Both return visits' webhooks are delivered: the export shows the attempts.
    assert_eq!(receiver.wait_for(2, Duration::from_secs(10)).await.len(), 2);
    let export_of = |query: String| {
        let app = app.clone();
        async move {
            let (status, body) = app.get(&format!("/api/v4/privacy/export?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    let by_email = export_of(format!("email={}", anna.email)).await;
    let by_phone = export_of(format!("phone={}", anna.phone_digits)).await;
    let by_lead = export_of(format!("lead_id={}", anna.lead)).await;
    for export in [&by_email, &by_phone, &by_lead] {
        let text = export.to_string();
        // The phone as sent (its digits alone are the store's index, not data).
        for marker in anna.markers().iter().filter(|m| **m != anna.phone_digits) {
            assert!(text.contains(marker), "the export lacks {marker}: {export}");
        }
        for marker in boris.markers() {
            assert!(
                !text.contains(&marker),
                "the export holds {marker} of another"
            );
        }
        assert_eq!(export["leads"][0]["id"], anna.lead);
        assert_eq!(export["contacts"].as_array().unwrap().len(), 1);
        assert_eq!(
            export["browsers"][0]["page_views"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(export["browsers"][0]["visits"].as_array().unwrap().len(), 2);
        assert_eq!(export["notes"].as_array().unwrap().len(), 1);
        let events = export["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{export}");
        assert!(
            !events[0]["attempts"].as_array().unwrap().is_empty(),
            "the delivery is exported: {export}"
        );
        assert_eq!(export["unsorted"], json!([]), "accepted entries are gone");
    }
    let by_visitor = export_of(format!("visitor_uid={}", anna.visitor)).await;
    let text = by_visitor.to_string();
    for marker in [&anna.visitor, &anna.pages[0], &anna.pages[1]] {
        assert!(text.contains(marker.as_str()), "{marker}: {by_visitor}");
    }
    for marker in boris.markers() {
        assert!(
            !text.contains(&marker),
            "the export holds {marker} of another"
        );
    }

    for bad in [
        "",
        "email=a@b.example&phone=12345",
        "lead_id=x",
        "colour=red",
        "visitor_uid=zz",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/api/v4/privacy/export?{bad}")))
            .bearer_auth(crate::common::TOKEN)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{bad}: {}",
            response.status()
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{bad}"
        );
    }
    let (status, _) = app.get("/api/v4/privacy/export?lead_id=999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn retention_erases_an_untouched_lead_and_keeps_a_fresh_one(backend: Backend) {
    let h = spawn_with(backend, |s| s.privacy.lead_retention_days = 1).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, 0).await;
    let old = plant(app, &s).await;
    // Everything of `old` was last touched before this instant, `fresh` after it.
    let between = now_ms();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fresh = plant(app, &s).await;

    // The sweep, a day and 0.7 s after `between`: `old` is past the retention, `fresh`
    // is not (it was touched at least 1.5 s after `between`).
    let day_ms = DAY_SECS as i64 * 1000;
    let erased = h
        .services
        .sweep_retention(between + day_ms + 700)
        .await
        .unwrap();
    assert_eq!(erased, 1);
    assert_nothing_left(&h, &old).await;
    assert_all_there(&h, &fresh).await;
    let (status, _) = app.get(&format!("/api/v4/leads/{}", fresh.lead)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, audit) = app.get("/api/v4/privacy/audit").await;
    let record = &audit["_embedded"]["audit"][0];
    assert_eq!(record["kind"], "retention", "{audit}");
    assert_eq!(record["token"], "retention", "{audit}");
    assert_eq!(record["erased"]["leads"], 1, "{audit}");

    // Retention off (0) erases nothing, however old.
    let h = spawn(backend).await;
    let s = setup(&h.app, &receiver, 0).await;
    plant(&h.app, &s).await;
    let erased = h
        .services
        .sweep_retention(now_ms() + 1000 * day_ms)
        .await
        .unwrap();
    assert_eq!(erased, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_drops_finished_events_after_their_retention() {
    // A retention of 0 days: a delivered event expires at once.
    let h = spawn_with(Backend::Memory, |s| s.delivery.event_retention_days = 0).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, DELAY_SECS).await;
    let anna = plant(app, &s).await;
    let store = h.memory.as_ref().unwrap();
    // While it waits for its time, the event is kept.
    let dump = store.debug_dump();
    let opening = "EventRecord { id: EventId(\"";
    let at = dump.find(opening).expect("the scheduled event is kept") + opening.len();
    let event_id = dump[at..].split('"').next().unwrap().to_owned();
    let record = format!("EventRecord {{ id: EventId({event_id:?})");
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);
    // Delivered, it expires; the scheduler's polling drops it within a few seconds.
    let mut dropped = false;
    for _ in 0..50 {
        if !store.debug_dump().contains(&record) {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(dropped, "the delivered event {event_id} is still kept");
    // The lead itself is kept (no lead retention).
    assert!(store.debug_dump().contains(&anna.email));
}

async fn a_form_sent_without_consent_is_recorded_but_links_no_browser(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, 0).await;
    // A browser that was tracked before (its id is in the page), then withdrew consent.
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .header("content-type", "text/plain")
        .body(
            json!({"vid": vid, "nc": true, "page": "https://shop.example/contact",
                   "fields": {"name": "Anna", "email": "anna@example.com"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "a cookie was set"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["vid"], Value::Null, "{body}");
    let lead = body["lead_id"].as_u64().unwrap();
    let metadata = first_unsorted_metadata(app).await;
    assert_eq!(metadata["visitor_uid"], Value::Null, "{metadata}");
    let (status, lead) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    assert_eq!(lead["_embedded"]["visitors"], json!([]), "{lead}");
    // The browser's own history (its page view) stays; no link to a lead exists.
    let visitor = &vid[vid.len() - 22..];
    let dump = everything(&h).await;
    for link in [
        format!("\"v:{visitor}\""),
        format!(":b:{visitor}"),
        format!("VisitorLink {{ visitor: VisitorId({visitor})"),
        format!("({visitor}), (LeadId"),
    ] {
        assert!(
            !dump.contains(&link),
            "{link} in\n{}",
            context(&dump, &link)
        );
    }
}

async fn a_sites_consent_and_opt_out_reach_its_snippet(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let plain = app
        .create(
            "sites",
            json!({"name": "Plain", "url": "https://plain.example"}),
        )
        .await;
    assert_eq!(plain["consent"], "none");
    assert_eq!(plain["consent_days"], 395);
    assert_eq!(plain["respect_opt_out"], false);
    let snippet = plain["snippet"].as_str().unwrap();
    assert!(
        !snippet.contains("data-consent") && !snippet.contains("data-opt-out"),
        "{snippet}"
    );

    let strict = app
        .create(
            "sites",
            json!({"name": "Strict", "url": "https://strict.example", "consent": "required",
                   "consent_days": 30, "respect_opt_out": true}),
        )
        .await;
    assert_eq!(strict["consent"], "required");
    assert_eq!(strict["respect_opt_out"], true);
    assert_eq!(
        strict["respect_dnt"], true,
        "the earlier name is still answered"
    );
    let snippet = strict["snippet"].as_str().unwrap();
    assert!(snippet.contains(r#"data-consent="30""#), "{snippet}");
    assert!(snippet.contains(r#"data-opt-out="1""#), "{snippet}");

    // The earlier name is still read; a patch changes the snippet.
    let (status, site) = app
        .patch(
            &format!("/api/v4/sites/{}", plain["id"]),
            json!({"respect_dnt": true, "consent": "required"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(site["respect_opt_out"], true);
    let snippet = site["snippet"].as_str().unwrap();
    assert!(snippet.contains(r#"data-consent="395""#), "{snippet}");

    // Bad values are refused by name, and nothing changes.
    for bad in [
        json!({"consent": "maybe"}),
        json!({"consent_days": 0}),
        json!({"consent_days": 100000}),
    ] {
        let (status, problem) = app
            .patch(&format!("/api/v4/sites/{}", plain["id"]), bad.clone())
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {problem}");
    }
    let (_, after) = app.get(&format!("/api/v4/sites/{}", plain["id"])).await;
    assert_eq!(after["consent_days"], 395, "{after}");
    assert_eq!(after["consent"], "required", "{after}");

    // Erasure routes refuse what is not an id, as problems.
    for path in ["/api/v4/leads/abc", "/api/v4/visitors/%20"] {
        let response = app
            .client
            .delete(app.url(path))
            .bearer_auth(crate::common::TOKEN)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
}

//! What the privacy tests share: an app whose store a test can look inside (Redis by a
//! SCAN of its prefix with type-aware reads of every key; the embedded store by its debug
//! dump), data subjects planted with unique markers in every kind of data footfall keeps,
//! and the assertions that a subject is all there, or that nothing of it is left.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;

use footfall::app::Application;
use footfall::config::Settings;
use footfall::domain::time::DAY_SECS;
use footfall::service::Services;
use footfall::store::memory::MemoryStore;

use super::{Backend, Setup, TestApp, email_of, phone_of, redis_url, submit_form, test_settings};

/// Longer than the visit gap of these tests (1 s): the next page view starts a visit.
pub const IDLE: Duration = Duration::from_millis(1100);
/// The delay of the site-visit action: the event waits in the schedule this long.
pub const DELAY_SECS: u64 = 2;
/// The delay for tests that erase a subject before its event is due: far longer than the
/// plants and checks in between take, on a loaded machine too. (With `DELAY_SECS`, a
/// second subject's plant — over `IDLE` — left the first one's event half a second.)
pub const ERASED_BEFORE_DUE_SECS: u64 = 10;

/// A running app and what a test needs to look inside its store.
pub struct Harness {
    pub app: TestApp,
    /// The embedded store's handle (searched through its debug dump).
    pub memory: Option<Arc<MemoryStore>>,
    pub services: Arc<Services>,
}

pub async fn spawn(backend: Backend) -> Harness {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> Harness {
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
pub struct Subject {
    pub lead: u64,
    /// The browser's id as the API shows it (22 characters).
    pub visitor: String,
    pub email: String,
    pub phone: String,
    pub phone_digits: String,
    pub pages: [String; 2],
    pub note: String,
}

impl Subject {
    /// Strings that must not be found anywhere once the subject is erased.
    pub fn markers(&self) -> Vec<String> {
        vec![
            self.email.clone(),
            self.phone.clone(),
            self.phone_digits.clone(),
            // Each page's own part: Redis keeps a URL relative to its site's origin.
            page_marker(&self.pages[0]),
            page_marker(&self.pages[1]),
            self.visitor.clone(),
            self.note.clone(),
        ]
    }
}

/// The unique last segment of a planted page's URL.
fn page_marker(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_owned()
}

/// Plants a subject: pages viewed, a form sent from that browser, the lead accepted into
/// the stage of the site-visit action, a new visit (which schedules the delayed event),
/// and a note.
pub async fn plant(app: &TestApp, s: &Setup) -> Subject {
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
pub async fn redis_contents(prefix: &str) -> Vec<(String, Vec<String>)> {
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
            // Bytes: a HyperLogLog (the statistics' unique browsers) is a binary string.
            "string" => {
                let raw: Vec<u8> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                vec![String::from_utf8_lossy(&raw).into_owned()]
            }
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
pub async fn everything(h: &Harness) -> String {
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
pub async fn assert_nothing_left(h: &Harness, subject: &Subject) {
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
pub fn context(dump: &str, marker: &str) -> String {
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
pub async fn assert_all_there(h: &Harness, subject: &Subject) {
    let dump = everything(h).await;
    for marker in subject.markers() {
        assert!(dump.contains(&marker), "{marker} was never stored");
    }
}

//! Privacy by design, black-box on both stores: addresses kept to their network, erasure
//! that leaves nothing of the subject in the store, export of everything held about a
//! subject, an audit without personal data, and lead retention.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use footfall::domain::time::{DAY_SECS, now_ms};

use crate::common::privacy::{
    ERASED_BEFORE_DUE_SECS, assert_all_there, assert_nothing_left, context, everything, plant,
    spawn, spawn_with,
};
use crate::common::{Backend, Receiver, TestApp, setup, test_settings};

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
    a_post_that_did_not_come_through_t_js_with_consent_links_no_browser,
    the_quotas_count_a_client_without_keeping_its_address,
    a_contact_without_a_lead_is_exported_and_erased_by_its_email,
    a_subjects_export_holds_only_its_part_of_a_shared_browser,
    a_withdrawn_consent_expires_the_server_set_cookie,
    a_sites_consent_and_opt_out_reach_its_snippet,
);

async fn deleting_a_lead_leaves_nothing_of_it_and_its_delayed_event_never_fires(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    // Anna's event must still wait when she is erased, the other's is due after hers.
    let s = setup(app, &receiver, ERASED_BEFORE_DUE_SECS).await;
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

    // The other subject's delayed event fires; the erased one's, due before it, never
    // does: it would have come by the time the other's did (and the second after).
    let received = receiver
        .wait_for(1, Duration::from_secs(ERASED_BEFORE_DUE_SECS + 10))
        .await;
    assert_eq!(received.len(), 1, "the other lead's webhook arrives");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1, "only the other lead's webhook arrives");
    assert_eq!(received[0].json()["event"]["data"]["id"], other.lead);
    assert_all_there(&h, &other).await;

    // The audit names the kind and counts, not the subject; it is a list as the others
    // are (paged, unknown parameters refused).
    let (status, audit) = app.get("/api/v4/privacy/audit").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert_eq!(audit["_page"], 1, "{audit}");
    let (status, _) = app.get("/api/v4/privacy/audit?page=2").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = app.get("/api/v4/privacy/audit?bogus=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
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
    // Both events must still wait when their subjects are erased.
    let s = setup(app, &receiver, ERASED_BEFORE_DUE_SECS).await;
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
    tokio::time::sleep(Duration::from_secs(ERASED_BEFORE_DUE_SECS + 2)).await;
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
        let visits = export["browsers"][0]["visits"].as_array().unwrap();
        assert_eq!(visits.len(), 2);
        for visit in visits {
            assert_eq!(
                visit["source"]["url"], visit["url"],
                "each visit's source: {visit}"
            );
        }
        assert!(
            visits.iter().any(|v| v["source"]["url"] == anna.pages[0]),
            "{visits:?}"
        );
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

/// An event's delay that its plant's steps take well within, on a loaded machine too.
const DUE_AFTER_THE_PLANT_SECS: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_drops_finished_events_after_their_retention() {
    // A retention of 0 days: a delivered event expires at once.
    let h = spawn_with(Backend::Memory, |s| s.delivery.event_retention_days = 0).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, DUE_AFTER_THE_PLANT_SECS).await;
    let anna = plant(app, &s).await;
    let store = h.memory.as_ref().unwrap();
    // While it waits for its time, the event is kept.
    let dump = store.debug_dump();
    let opening = "EventRecord { id: EventId(\"";
    let at = dump.find(opening).expect("the scheduled event is kept") + opening.len();
    let event_id = dump[at..].split('"').next().unwrap().to_owned();
    let record = format!("EventRecord {{ id: EventId({event_id:?})");
    assert_eq!(
        receiver
            .wait_for(1, Duration::from_secs(DUE_AFTER_THE_PLANT_SECS + 10))
            .await
            .len(),
        1
    );
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
    // As t.js sends it (JSON, `nc`), and as its fallback posts it when that fails (an HTML
    // form post, `ff_nc`).
    for html in [false, true] {
        let h = spawn(backend).await;
        let app = &h.app;
        let receiver = Receiver::start().await;
        let s = setup(app, &receiver, 0).await;
        // A browser that was tracked before (its id is in the page), then withdrew consent.
        let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
        let vid = vid.unwrap();
        let post = app
            .client
            .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)));
        let post = if html {
            post.form(&[
                ("name", "Anna"),
                ("email", "anna@example.com"),
                ("ff_vid", &vid),
                ("ff_page", "https://shop.example/contact"),
                ("ff_nc", "1"),
            ])
        } else {
            post.header("content-type", "text/plain").body(
                json!({"vid": vid, "nc": true, "page": "https://shop.example/contact",
                       "fields": {"name": "Anna", "email": "anna@example.com"}})
                .to_string(),
            )
        };
        let again = post.try_clone().unwrap();
        let response = post.send().await.unwrap();
        let expected = if html {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::CREATED
        };
        assert_eq!(response.status(), expected, "html {html}");
        assert!(
            response.headers().get("set-cookie").is_none(),
            "html {html}: a cookie was set"
        );
        if !html {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["vid"], Value::Null, "{body}");
        }
        // Sent twice (a double click), it folds into one lead.
        let (_, entries) = app.get("/api/v4/leads/unsorted").await;
        assert_eq!(again.send().await.unwrap().status(), expected);
        let (_, after) = app.get("/api/v4/leads/unsorted").await;
        assert_eq!(after, entries, "html {html}: the repeat made an entry");
        let metadata = first_unsorted_metadata(app).await;
        assert_eq!(
            metadata["visitor_uid"],
            Value::Null,
            "html {html}: {metadata}"
        );
        let lead = entries["_embedded"]["unsorted"][0]["_embedded"]["leads"][0]["id"].clone();
        let (status, lead) = app.get(&format!("/api/v4/leads/{lead}")).await;
        assert_eq!(status, StatusCode::OK, "{lead}");
        assert_eq!(
            lead["_embedded"]["visitors"],
            json!([]),
            "html {html}: {lead}"
        );
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
                "html {html}: {link} in\n{}",
                context(&dump, &link)
            );
        }
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

/// The visitor ids of the account's Unsorted entries, newest first.
async fn entry_browsers(app: &TestApp) -> Vec<Value> {
    let (_, body) = app.get("/api/v4/leads/unsorted").await;
    let mut entries = body["_embedded"]["unsorted"].as_array().unwrap().clone();
    entries.sort_by_key(|e| std::cmp::Reverse(e["_embedded"]["leads"][0]["id"].as_u64()));
    entries
        .iter()
        .map(|e| e["metadata"]["visitor_uid"].clone())
        .collect()
}

/// Consent is the page's to give, through t.js: a form posted without it (before t.js
/// loaded, with scripts off) on a site that asks for consent, or from a browser whose
/// opt-out the site honours, links no browser and sets no cookie, even when the browser
/// carries footfall's cookie; and a page of no origin (a sandboxed frame anyone can put
/// on their page) cannot post as the browser whose cookie it carries.
async fn a_post_that_did_not_come_through_t_js_with_consent_links_no_browser(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, 0).await;
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    let cookie = format!("{}={vid}", h.services.settings.cookies.name);
    let site = format!("/api/v4/sites/{}", s.site_id);
    let submit = app.url(&format!("/v1/forms/{}/submit", s.form_id));
    let json_post = |name: &str, vid: Option<&str>| {
        app.client
            .post(&submit)
            .header("content-type", "text/plain")
            .header("cookie", &cookie)
            // As t.js sends it, with consent.
            .body(json!({"vid": vid, "nc": false, "fields": {"name": name}}).to_string())
    };

    let (status, body) = app.patch(&site, json!({"consent": "required"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A plain HTML post, the cookie sent along.
    let response = app
        .client
        .post(&submit)
        .header("cookie", &cookie)
        .form(&[("name", "Plain Post")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(entry_browsers(app).await, [Value::Null]);
    // t.js with consent sends the page's id: linked.
    let answer: Value = json_post("With Consent", Some(&vid))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["vid"].is_string(), "{answer}");
    let raw = |v: &Value| v.as_str().is_some_and(|raw| vid.ends_with(raw));
    assert!(raw(&entry_browsers(app).await[0]));

    let (status, body) = app
        .patch(&site, json!({"consent": "none", "respect_opt_out": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = json_post("Opted Out", Some(&vid))
        .header("sec-gpc", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(entry_browsers(app).await[0], Value::Null);

    // No origin: the cookie does not name the browser (a new one is minted).
    let (status, body) = app.patch(&site, json!({"respect_opt_out": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = json_post("Sandboxed Frame", None)
        .header("origin", "null")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let minted = entry_browsers(app).await[0].clone();
    assert!(minted.is_string() && !raw(&minted), "{minted} {answer}");
    // From the site's own page the cookie names it.
    json_post("Same Browser", None)
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert!(raw(&entry_browsers(app).await[0]));
}

/// The quotas count each client address in the store, shared by every instance, but
/// under a keyed hash of it: the Unsorted entry's `ip` (as `privacy.ip_mode` says) is the
/// only address footfall keeps. The counters used to be keyed by the address itself.
async fn the_quotas_count_a_client_without_keeping_its_address(backend: Backend) {
    let h = spawn_with(backend, |settings| {
        settings.server.trusted_proxies = vec!["127.0.0.0/8".into()];
        settings.quotas.page_views_per_second_per_address = 1;
        settings.quotas.page_view_burst_seconds = 2;
        settings.limits.per_ip_per_second = 0;
    })
    .await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, 0).await;
    let beacon = |url: &str| {
        app.client
            .post(app.url("/v1/collect"))
            .header("content-type", "text/plain")
            .header("x-forwarded-for", "203.0.113.77")
            .body(json!({"site": s.site_key, "url": url}).to_string())
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(
            beacon(&format!("https://shop.example/{i}"))
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        2,
        "the address's quota counts: {statuses:?}"
    );
    let dump = everything(&h).await;
    assert!(
        !dump.contains("203.0.113.77"),
        "{}",
        context(&dump, "203.0.113.77")
    );
    assert!(!dump.contains("113.77"), "{}", context(&dump, "113.77"));
}

/// A contact the API made without a lead (`POST /contacts`) is the subject's too: the
/// export by its email holds it, the erasure by its email takes it and the account
/// webhook's notice that named it. Both used to look only at leads' contacts: the export
/// was empty and the erasure answered all zeros with the contact kept.
async fn a_contact_without_a_lead_is_exported_and_erased_by_its_email(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let subscriber = Receiver::start().await;
    let (status, body) = app
        .post(
            "/api/v4/webhooks",
            json!({"destination": subscriber.url(), "settings": ["add_contact"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let marker = format!("zed.{}@example.com", rand_marker());
    let email = json!({"field_code": "EMAIL", "values": [{"value": marker}]});
    let (status, body) = app
        .post(
            "/api/v4/contacts",
            json!([{"name": "Zed Alone", "custom_fields_values": [email]}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, other) = app
        .post("/api/v4/contacts", json!([{"name": "Other Person"}]))
        .await;
    // The notice's form body holds it encoded.
    let encoded = marker.replace('@', "%40");
    let dump = everything(&h).await;
    assert!(
        dump.contains(&marker) && dump.contains(&encoded),
        "the record and the notice"
    );

    let (status, export) = app
        .get(&format!("/api/v4/privacy/export?email={marker}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let contacts = export["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1, "{export}");
    assert_eq!(contacts[0]["name"], "Zed Alone");
    assert!(
        export["events"].to_string().contains(&encoded),
        "the notice: {export}"
    );

    let (status, body) = app
        .post("/api/v4/privacy/erase", json!({"email": marker}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["erased"]["contacts"], 1, "{body}");
    let dump = everything(&h).await;
    assert!(!dump.contains(&marker), "{}", context(&dump, &marker));
    assert!(!dump.contains(&encoded), "{}", context(&dump, &encoded));
    let (_, listed) = app.get("/api/v4/contacts").await;
    let names: Vec<&str> = listed["_embedded"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Other Person"], "{other}");
}

fn rand_marker() -> u64 {
    use rand::Rng;
    rand::rng().random()
}

/// A browser that moved to another person's lead (the same computer, another person's
/// form) is in the first person's export only for the time its link to their lead
/// covers: not the later browsing, not the other lead's id, not the other's Unsorted
/// entry. The whole history and the current lead used to be exported.
async fn a_subjects_export_holds_only_its_part_of_a_shared_browser(backend: Backend) {
    let h = spawn(backend).await;
    let app = &h.app;
    let receiver = Receiver::start().await;
    let s = setup(app, &receiver, 0).await;
    let (_, vid) = app
        .beacon(&s.site_key, None, "https://shop.example/anna-was-here")
        .await;
    let vid = vid.unwrap();
    let (anna, _, _) = crate::common::submit_form(app, &s.form_id, Some(&vid), "Anna Shared").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (boris, _, _) =
        crate::common::submit_form(app, &s.form_id, Some(&vid), "Boris Shared").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.beacon(
        &s.site_key,
        Some(&vid),
        "https://shop.example/boris-was-here",
    )
    .await;
    let email = crate::common::email_of("Anna Shared");
    let (status, export) = app
        .get(&format!("/api/v4/privacy/export?email={email}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let text = export.to_string();
    assert!(text.contains("anna-was-here"), "{export}");
    assert!(!text.contains("boris-was-here"), "{export}");
    assert_eq!(export["browsers"].as_array().unwrap().len(), 1, "{export}");
    assert_eq!(export["browsers"][0]["lead_id"], Value::Null, "{export}");
    let entries: Vec<u64> = export["unsorted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["lead_id"].as_u64().unwrap())
        .collect();
    assert_eq!(entries, [anna], "not Boris's ({boris}): {export}");
    // By the browser's id, all of it is the subject's.
    let uid: String = url::form_urlencoded::byte_serialize(vid.as_bytes()).collect();
    let (_, by_browser) = app
        .get(&format!("/api/v4/privacy/export?visitor_uid={uid}"))
        .await;
    assert!(
        by_browser.to_string().contains("boris-was-here"),
        "{by_browser}"
    );
    assert_eq!(by_browser["browsers"][0]["lead_id"], boris, "{by_browser}");
}

/// t.js cannot remove the visitor cookie footfall's server set (HttpOnly, maybe on the
/// site's parent domain): on a withdrawn consent it asks footfall to, and the answer
/// expires it with the attributes it was set with.
async fn a_withdrawn_consent_expires_the_server_set_cookie(backend: Backend) {
    let h = spawn_with(backend, |s| s.cookies.domain = ".shop.example".into()).await;
    let app = &h.app;
    let response = app
        .client
        .post(app.url("/v1/forget"))
        .header("content-type", "text/plain")
        .header("origin", "https://shop.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let cookie = headers["set-cookie"].to_str().unwrap();
    let name = &h.services.settings.cookies.name;
    assert!(cookie.starts_with(&format!("{name}=;")), "{cookie}");
    for attribute in ["Max-Age=0", "HttpOnly", "Path=/", "Domain=shop.example"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
}

//! Bad input, broadly: property-based tests (proptest) of the beacon, the form endpoint
//! (JSON and urlencoded), the management API's bodies and its paths and query strings —
//! never a panic, never a 5xx (limits are off and Redis is up, so neither 429 nor 503 has
//! an excuse), 4xx answers as problem+json — and targeted cases: oversize bodies (413),
//! other content types (415), invalid UTF-8, huge numbers, deep JSON, unknown fields,
//! control characters and markup kept as text from the form to the webhook.
//!
//! Inputs are mostly mutations of valid bodies (values of the wrong type, fields missing,
//! unknown or null, huge or strange strings, raw numbers JSON cannot hold, nested junk),
//! then sometimes damaged on the wire (cut, a byte flipped, invalid UTF-8).
//! `FOOTFALL_FUZZ_CASES` sets the cases per endpoint (default 200); the long run is
//! `FOOTFALL_FUZZ_CASES=100000 cargo test --release --test integration bad_input::fuzz -- --nocapture`.

use crate::common;

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::common::accounts::Answer;
use crate::common::{Backend, Receiver, Setup, TestApp, setup, submit_form};

// ---------------------------------------------------------------------------------------
// The generators.

/// Texts JSON cannot hold as a `Value`: numbers too large or too precise, deep nesting,
/// broken escapes. A string `"\u{1}RAW<n>\u{1}"` in a generated value becomes `RAW[n]`.
fn raw_texts() -> Vec<String> {
    let mut raw: Vec<String> = [
        "1e999",
        "-1e999",
        "123456789012345678901234567890",
        "-123456789012345678901234567890",
        "18446744073709551616",
        "-9223372036854775809",
        "1.0e-400",
        "0.00000000000000000000000000000000000000000000001",
        "-0",
        "NaN",
        "Infinity",
        "0x10",
        "01",
        "1.",
        ".5",
        "+1",
        "\"\\ud800\"",
        "\"\\udfff\\ud800\"",
        "\"\\u0000\"",
        "\"\\x41\"",
        "\"<script>alert(1)</script>\"",
        "true false",
        "null null",
    ]
    .map(str::to_owned)
    .to_vec();
    for depth in [100, 127, 128, 129, 5_000] {
        raw.push(format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
        raw.push(format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)));
    }
    raw.push("[".repeat(20_000));
    raw
}

fn raw_marker(n: usize) -> Value {
    Value::String(format!("\u{1}RAW{n}\u{1}"))
}

/// Serializes, then puts the raw texts in place of their markers.
fn to_wire_json(v: &Value, raw: &[String]) -> String {
    let mut text = v.to_string();
    if text.contains("\\u0001RAW") {
        for (n, r) in raw.iter().enumerate().rev() {
            text = text.replace(&format!("\"\\u0001RAW{n}\\u0001\""), r);
        }
    }
    text
}

fn junk_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,24}",
        2 => any::<String>(),
        1 => Just("<script>alert(\"x\")</script>".to_owned()),
        1 => Just("\u{0}\u{1}\u{1b}[31m\u{7f}\r\n\t\u{85}\u{2028}".to_owned()),
        1 => Just("💥🦀 \u{202e}evil\u{200b}\u{feff}".to_owned()),
        1 => Just("' OR 1=1; -- \\\" {{lead.name}} ${jndi:x} %s%n".to_owned()),
        1 => Just("{prefix}:*\r\nFLUSHALL\r\n".to_owned()),
        1 => Just("../../../etc/passwd%00".to_owned()),
        1 => Just(String::new()),
        1 => Just("   ".to_owned()),
        1 => (1usize..40_000).prop_map(|n| "x".repeat(n)),
        1 => (1usize..3_000).prop_map(|n| "é🦀".repeat(n)),
        1 => Just("https://shop.example/".to_owned()),
        1 => Just("javascript:alert(1)".to_owned()),
        1 => Just("http://[::1]:0/".to_owned()),
    ]
}

fn junk_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(i64::MIN),
            Just(i64::MAX),
            Just(u32::MAX as i64),
            Just(u32::MAX as i64 + 1),
            Just(2_592_001),
        ]
        .prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(1.5)),
        Just(json!(-0.0)),
        Just(json!(1e308)),
    ]
}

fn junk_leaf() -> impl Strategy<Value = Value> {
    let raw = raw_texts().len();
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => junk_number(),
        4 => junk_string().prop_map(Value::String),
        2 => (0..raw).prop_map(raw_marker),
    ]
}

fn junk_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "name", "url", "hosts", "site", "vid", "referrer", "title", "page", "fields", "phone",
            "email", "ff_hp", "ff_vid", "site_id", "pipeline_id", "status_id", "status_ids",
            "success_url", "required", "code", "webhook_url", "action_multiple", "settings",
            "event", "handler", "site_url", "delay_seconds", "enabled", "note_type", "params",
            "text", "service", "respect_dnt", "rotate_secret", "_embedded", "statuses",
            "__proto__", "constructor", "", "a.b", "[0]", "$where",
        ])
        .prop_map(str::to_owned),
        1 => junk_string(),
    ]
}

fn junk_value() -> impl Strategy<Value = Value> {
    junk_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((junk_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every place in a value, the root first.
fn places(v: &Value) -> Vec<Vec<Seg>> {
    let mut out = vec![vec![]];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        match at(v, &path) {
            Some(Value::Object(m)) => {
                for k in m.keys() {
                    let mut p = path.clone();
                    p.push(Seg::Key(k.clone()));
                    out.push(p);
                }
            }
            Some(Value::Array(a)) => {
                for n in 0..a.len() {
                    let mut p = path.clone();
                    p.push(Seg::Index(n));
                    out.push(p);
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn at<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(n) => v.get(*n),
    })
}

fn at_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(n) => v.get_mut(*n),
    })
}

/// One change to a valid body; `usize`s pick a place (modulo their number).
#[derive(Debug, Clone)]
enum Mutation {
    /// A value of another type, or a strange one of the same type.
    Replace(usize, Value),
    Null(usize),
    Remove(usize),
    /// An unknown (or known) field added to an object, or an item to an array.
    Add(usize, String, Value),
    /// `x` becomes `[x]`.
    Wrap(usize),
    /// `[x, …]` becomes `x`, `{k: x, …}` becomes `x`.
    Unwrap(usize),
    /// An array gets more copies of its first item.
    Repeat(usize, usize),
    /// A value becomes its JSON text (`5` → `"5"`).
    Stringify(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), junk_value()).prop_map(|(p, v)| Mutation::Replace(p, v)),
        1 => any::<usize>().prop_map(Mutation::Null),
        2 => any::<usize>().prop_map(Mutation::Remove),
        2 => (any::<usize>(), junk_key(), junk_value()).prop_map(|(p, k, v)| Mutation::Add(p, k, v)),
        1 => any::<usize>().prop_map(Mutation::Wrap),
        1 => any::<usize>().prop_map(Mutation::Unwrap),
        1 => (any::<usize>(), 1usize..300).prop_map(|(p, n)| Mutation::Repeat(p, n)),
        1 => any::<usize>().prop_map(Mutation::Stringify),
    ]
}

fn apply(template: &Value, mutations: &[Mutation]) -> Value {
    let mut v = template.clone();
    for m in mutations {
        let all = places(&v);
        let pick = |n: usize| all[n % all.len()].clone();
        match m {
            Mutation::Replace(p, new) => {
                if let Some(slot) = at_mut(&mut v, &pick(*p)) {
                    *slot = new.clone();
                }
            }
            Mutation::Null(p) => {
                if let Some(slot) = at_mut(&mut v, &pick(*p)) {
                    *slot = Value::Null;
                }
            }
            Mutation::Remove(p) => {
                let mut path = pick(*p);
                let Some(last) = path.pop() else {
                    v = Value::Null;
                    continue;
                };
                match (at_mut(&mut v, &path), last) {
                    (Some(Value::Object(m)), Seg::Key(k)) => {
                        m.remove(&k);
                    }
                    (Some(Value::Array(a)), Seg::Index(n)) if n < a.len() => {
                        a.remove(n);
                    }
                    _ => {}
                }
            }
            Mutation::Add(p, key, new) => match at_mut(&mut v, &pick(*p)) {
                Some(Value::Object(m)) => {
                    m.insert(key.clone(), new.clone());
                }
                Some(Value::Array(a)) => a.push(new.clone()),
                _ => {}
            },
            Mutation::Wrap(p) => {
                if let Some(slot) = at_mut(&mut v, &pick(*p)) {
                    *slot = Value::Array(vec![slot.take()]);
                }
            }
            Mutation::Unwrap(p) => {
                if let Some(slot) = at_mut(&mut v, &pick(*p)) {
                    let inner = match slot {
                        Value::Array(a) => a.first().cloned(),
                        Value::Object(m) => m.values().next().cloned(),
                        _ => None,
                    };
                    if let Some(inner) = inner {
                        *slot = inner;
                    }
                }
            }
            Mutation::Repeat(p, n) => {
                if let Some(Value::Array(a)) = at_mut(&mut v, &pick(*p))
                    && let Some(first) = a.first().cloned()
                {
                    a.extend(std::iter::repeat_n(first, *n));
                }
            }
            Mutation::Stringify(p) => {
                if let Some(slot) = at_mut(&mut v, &pick(*p)) {
                    *slot = Value::String(slot.to_string());
                }
            }
        }
    }
    v
}

/// What becomes of the text on its way: mostly nothing.
#[derive(Debug, Clone)]
enum Wire {
    Intact,
    Cut(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Bom,
    Trailing(Vec<u8>),
    Empty,
    Bytes(Vec<u8>),
}

fn wire() -> impl Strategy<Value = Wire> {
    let bad_bytes = prop_oneof![
        Just(vec![0xff]),
        Just(vec![0xc3]),
        Just(vec![0xed, 0xa0, 0x80]),
        Just(vec![0xf4, 0x90, 0x80, 0x80]),
        Just(vec![0]),
        prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        24 => Just(Wire::Intact),
        2 => any::<usize>().prop_map(Wire::Cut),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Wire::Flip(i, b)),
        2 => (any::<usize>(), bad_bytes).prop_map(|(i, b)| Wire::Insert(i, b)),
        1 => Just(Wire::Bom),
        1 => prop::collection::vec(any::<u8>(), 1..16).prop_map(Wire::Trailing),
        1 => Just(Wire::Empty),
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(Wire::Bytes),
    ]
}

fn damage(text: String, wire: &Wire) -> Vec<u8> {
    let mut bytes = text.into_bytes();
    let len = bytes.len().max(1);
    match wire {
        Wire::Intact => {}
        Wire::Cut(i) => bytes.truncate(i % len),
        Wire::Flip(i, b) => {
            if !bytes.is_empty() {
                bytes[i % len] = *b;
            }
        }
        Wire::Insert(i, b) => {
            let i = i % len;
            let i = i.min(bytes.len());
            bytes.splice(i..i, b.iter().copied());
        }
        Wire::Bom => bytes.splice(0..0, [0xef, 0xbb, 0xbf]).for_each(drop),
        Wire::Trailing(t) => bytes.extend_from_slice(t),
        Wire::Empty => bytes.clear(),
        Wire::Bytes(b) => bytes = b.clone(),
    }
    bytes
}

/// A JSON body: a template mutated, then maybe damaged.
#[derive(Debug, Clone)]
struct JsonCase {
    mutations: Vec<Mutation>,
    wire: Wire,
    content_type: Option<&'static str>,
}

impl JsonCase {
    fn body(&self, template: &Value, raw: &[String]) -> Vec<u8> {
        damage(
            to_wire_json(&apply(template, &self.mutations), raw),
            &self.wire,
        )
    }
}

fn json_case(content_types: Vec<Option<&'static str>>) -> impl Strategy<Value = JsonCase> {
    (
        prop::collection::vec(mutation(), 0..4),
        wire(),
        prop::sample::select(content_types),
    )
        .prop_map(|(mutations, wire, content_type)| JsonCase {
            mutations,
            wire,
            content_type,
        })
}

/// What the management API may be sent as: mostly JSON.
fn api_content_types() -> Vec<Option<&'static str>> {
    let mut v = vec![Some("application/json"); 12];
    v.extend([
        None,
        Some("application/json; charset=utf-8"),
        Some("APPLICATION/JSON"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/json-patch+json"),
        Some("text/html"),
        Some(""),
    ]);
    v
}

/// What the tracker's endpoints may be sent as: mostly t.js's text/plain.
fn public_content_types() -> Vec<Option<&'static str>> {
    let mut v = vec![Some("text/plain;charset=UTF-8"); 10];
    v.extend([
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("application/octet-stream"),
        Some("multipart/form-data; boundary=x"),
        Some(""),
    ]);
    v
}

// ---------------------------------------------------------------------------------------
// The rules every answer keeps.

#[derive(Clone, Copy, PartialEq)]
enum Surface {
    /// The management API with `ApiJson` bodies: JSON only.
    Api,
    /// An API endpoint whose body is optional.
    ApiOptionalBody,
    /// The tracker's JSON endpoints.
    Public,
    /// A plain HTML form post: errors are pages for a person.
    HtmlForm,
}

fn is_json_type(ct: Option<&str>) -> bool {
    match ct {
        None => true,
        Some(ct) => ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json"),
    }
}

/// Never a 5xx or a dropped connection; no 429 (limits are off); 4xx of the API and of
/// the tracker's JSON endpoints are problem+json; the API takes JSON only.
fn verdict(
    surface: Surface,
    content_type: Option<&str>,
    answer: Result<Answer, reqwest::Error>,
) -> Result<StatusCode, String> {
    let answer = answer.map_err(|e| {
        let e = format!("{e:?}");
        format!(
            "no answer (a panic or a crash?): {}",
            e.chars().take(600).collect::<String>()
        )
    })?;
    let status = answer.status;
    let summary = || {
        format!(
            "{status} {} {}",
            answer.header("content-type"),
            answer.text.chars().take(400).collect::<String>()
        )
    };
    if status.is_server_error() {
        return Err(format!("server error: {}", summary()));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(format!("429 with the limits off: {}", summary()));
    }
    if status.is_client_error() && surface != Surface::HtmlForm {
        let ct = answer.header("content-type");
        if ct != "application/problem+json" || answer.body["status"] != status.as_u16() {
            return Err(format!("a 4xx that is not problem+json: {}", summary()));
        }
        if !answer.body["detail"].is_string() {
            return Err(format!("a problem without detail: {}", summary()));
        }
    }
    if status.is_success() && surface == Surface::Api && !is_json_type(content_type) {
        return Err(format!(
            "the API took a body of type {content_type:?}: {}",
            summary()
        ));
    }
    if status.is_success()
        && matches!(surface, Surface::Api | Surface::ApiOptionalBody)
        && !answer.text.is_empty()
        && !(answer.body.is_object() || answer.body.is_array())
    {
        return Err(format!("a success that is not JSON: {}", summary()));
    }
    Ok(status)
}

// ---------------------------------------------------------------------------------------
// The runner.

fn cases() -> u32 {
    std::env::var("FOOTFALL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// The app under test, on a runtime of its own (proptest's runner is synchronous).
struct Bench {
    rt: Runtime,
    app: TestApp,
    s: Setup,
    raw: Vec<String>,
    _receiver: Receiver,
}

impl Bench {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, s, receiver) = rt.block_on(async {
            let app = TestApp::spawn(Backend::Redis).await;
            let receiver = Receiver::start().await;
            let s = setup(&app, &receiver, 0).await;
            (app, s, receiver)
        });
        Self {
            rt,
            app,
            s,
            raw: raw_texts(),
            _receiver: receiver,
        }
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, reqwest::Error> {
        self.rt
            .block_on(self.app.raw(method, path, token, content_type, body))
    }

    /// Runs `cases()` cases of `strategy` through `case`, then checks that the service is
    /// still up and its store reachable.
    fn fuzz<S>(
        &self,
        name: &str,
        strategy: S,
        case: impl Fn(&S::Value) -> Result<StatusCode, String>,
    ) where
        S: Strategy,
        S::Value: Debug,
    {
        let cases = cases();
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 200,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let started = Instant::now();
        let tally = Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
        let result = runner.run(&strategy, |input| {
            let status = case(&input).map_err(TestCaseError::fail)?;
            *tally.lock().unwrap().entry(status.as_u16()).or_default() += 1;
            Ok(())
        });
        let took = started.elapsed();
        println!(
            "fuzz {name}: {cases} cases in {took:.1?} ({:.2} ms each), {}; answers {:?}",
            took.as_secs_f64() * 1000.0 / f64::from(cases.max(1)),
            if result.is_ok() {
                "no failure"
            } else {
                "FAILED"
            },
            tally.lock().unwrap()
        );
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        for path in ["/healthz", "/readyz"] {
            let answer = self
                .send(Method::GET, path, None, None, vec![])
                .expect("the service still answers");
            assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        }
    }
}

fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    common::HEAVY.blocking_lock()
}

// ---------------------------------------------------------------------------------------
// Property-based tests.

#[test]
fn fuzz_the_beacon() {
    let _serial = serial();
    let b = Bench::new();
    let (_, vid) =
        b.rt.block_on(b.app.beacon(&b.s.site_key, None, "https://shop.example/"));
    let template = json!({"site": b.s.site_key, "vid": vid, "url": "https://shop.example/pricing?x=1#y",
                          "referrer": "https://www.google.com/", "title": "Pricing"});
    b.fuzz("POST /v1/collect", json_case(public_content_types()), |c| {
        let body = c.body(&template, &b.raw);
        let answer = b.send(Method::POST, "/v1/collect", None, c.content_type, body);
        verdict(Surface::Public, c.content_type, answer)
    });
}

#[test]
fn fuzz_the_json_form() {
    let _serial = serial();
    let b = Bench::new();
    let (_, vid) =
        b.rt.block_on(b.app.beacon(&b.s.site_key, None, "https://shop.example/"));
    let template = json!({"vid": vid, "page": "https://shop.example/contact",
        "fields": {"name": "Anna", "phone": "+7 900 123-45-67", "email": "anna@example.com", "ff_hp": ""}});
    let paths = form_paths(&b.s.form_id);
    b.fuzz(
        "POST /v1/forms/{id}/submit (JSON)",
        (
            json_case(public_content_types()),
            prop::sample::select(paths),
        ),
        |(c, path)| {
            let body = c.body(&template, &b.raw);
            let answer = b.send(Method::POST, path, None, c.content_type, body);
            verdict(Surface::Public, c.content_type, answer)
        },
    );
}

/// The form's path, mostly, and strange ones.
fn form_paths(form_id: &str) -> Vec<String> {
    let mut paths = vec![format!("/v1/forms/{form_id}/submit"); 40];
    for junk in [
        "fNoSuchForm00",
        "%00",
        "..%2F..%2Fapi",
        "%F0%9F%A6%80",
        "a%20b",
        &"f".repeat(300),
        "%ff%fe",
        "{id}",
        "f*",
    ] {
        paths.push(format!("/v1/forms/{junk}/submit"));
    }
    paths
}

/// An urlencoded form: fields changed, added or dropped, then encoded (or not).
#[derive(Debug, Clone)]
struct HtmlFormCase {
    changes: Vec<(usize, Option<String>, Option<String>)>,
    extra: Vec<(String, String)>,
    raw: Option<Vec<u8>>,
    wire: Wire,
}

fn html_form_case() -> impl Strategy<Value = HtmlFormCase> {
    let raw = prop_oneof![
        8 => Just(None),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Some),
        1 => prop::sample::select(vec![
            b"name=%zz&email=%".to_vec(),
            b"name=%ff%fe%fd".to_vec(),
            b"name=Anna&name=Boris&&&=x;;".to_vec(),
            b"name".to_vec(),
            b"=".to_vec(),
            b"name=\xff\xfe".to_vec(),
            b"name=a+b%2Bc&ff_vid=%00".to_vec(),
            format!("name={}", "%41".repeat(6000)).into_bytes(),
        ])
        .prop_map(Some),
    ];
    (
        prop::collection::vec(
            (
                any::<usize>(),
                prop::option::of(junk_key()),
                prop::option::of(junk_string()),
            ),
            0..4,
        ),
        prop::collection::vec((junk_key(), junk_string()), 0..3),
        raw,
        wire(),
    )
        .prop_map(|(changes, extra, raw, wire)| HtmlFormCase {
            changes,
            extra,
            raw,
            wire,
        })
}

#[test]
fn fuzz_the_html_form() {
    let _serial = serial();
    let b = Bench::new();
    let (_, vid) =
        b.rt.block_on(b.app.beacon(&b.s.site_key, None, "https://shop.example/"));
    let template: Vec<(String, String)> = [
        ("name", "Anna"),
        ("phone", "+7 900 123-45-67"),
        ("email", "anna@example.com"),
        ("ff_vid", vid.as_deref().unwrap_or("")),
        ("ff_page", "https://shop.example/contact"),
        ("ff_hp", ""),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let paths = form_paths(&b.s.form_id);
    b.fuzz(
        "POST /v1/forms/{id}/submit (urlencoded)",
        (html_form_case(), prop::sample::select(paths)),
        |(c, path)| {
            let mut pairs = template.clone();
            for (i, key, value) in &c.changes {
                let n = i % pairs.len().max(1);
                match (key, value) {
                    (None, None) if !pairs.is_empty() => {
                        pairs.remove(n);
                    }
                    (Some(k), _) if !pairs.is_empty() => pairs[n].0 = k.clone(),
                    (_, Some(v)) if !pairs.is_empty() => pairs[n].1 = v.clone(),
                    _ => {}
                }
            }
            pairs.extend(c.extra.iter().cloned());
            let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            let body = match &c.raw {
                Some(raw) => raw.clone(),
                None => damage(encoded, &c.wire),
            };
            let ct = Some("application/x-www-form-urlencoded");
            let answer = b.send(Method::POST, path, None, ct, body);
            let status = verdict(Surface::HtmlForm, ct, answer)?;
            if status.is_success() && status != StatusCode::OK && status != StatusCode::CREATED {
                return Err(format!("unexpected {status}"));
            }
            Ok(status)
        },
    );
}

/// Fuzzes one API endpoint that takes a JSON body.
fn fuzz_api(b: &Bench, name: &str, method: Method, path: &str, template: Value) {
    b.fuzz(name, json_case(api_content_types()), |c| {
        let body = c.body(&template, &b.raw);
        let answer = b.send(
            method.clone(),
            path,
            Some(common::TOKEN),
            c.content_type,
            body,
        );
        verdict(Surface::Api, c.content_type, answer)
    });
}

#[test]
fn fuzz_api_site_creation() {
    let _serial = serial();
    let b = Bench::new();
    fuzz_api(
        &b,
        "POST /api/v4/sites",
        Method::POST,
        "/api/v4/sites",
        json!([{"name": "Shop", "url": "https://shop.example", "hosts": ["shop.example", "www.shop.example"], "respect_dnt": false}]),
    );
}

#[test]
fn fuzz_api_form_creation() {
    let _serial = serial();
    let b = Bench::new();
    let template = json!([{"name": "Contact", "site_id": b.s.site_id, "pipeline_id": b.s.pipeline.id,
        "success_url": "https://shop.example/thanks", "required": ["name", "email"]}]);
    fuzz_api(
        &b,
        "POST /api/v4/forms",
        Method::POST,
        "/api/v4/forms",
        template,
    );
}

#[test]
fn fuzz_api_handler_creation() {
    let _serial = serial();
    let b = Bench::new();
    let template = json!([{"code": "hook", "name": "Hook", "webhook_url": "http://127.0.0.1:9/hook",
        "action_multiple": true,
        "settings": {"message": {"name": "Message", "type": "text", "required": true},
                     "mode": {"name": "Mode", "type": "select", "options": ["a", "b"]},
                     "count": {"name": "Count", "type": "number"}}}]);
    fuzz_api(
        &b,
        "POST /api/v4/handlers",
        Method::POST,
        "/api/v4/handlers",
        template,
    );
}

#[test]
fn fuzz_api_action_creation() {
    let _serial = serial();
    let b = Bench::new();
    let p = &b.s.pipeline;
    let template = json!([{"pipeline_id": p.id, "status_ids": [p.first_contact], "event": "site_visit",
        "handler": "notify", "site_url": "https://shop.example/blog", "delay_seconds": 60,
        "settings": {"message": "Hi {{contact.name}}"}, "enabled": true}]);
    fuzz_api(
        &b,
        "POST /api/v4/actions",
        Method::POST,
        "/api/v4/actions",
        template,
    );
}

#[test]
fn fuzz_api_pipeline_creation() {
    let _serial = serial();
    let b = Bench::new();
    fuzz_api(
        &b,
        "POST /api/v4/leads/pipelines",
        Method::POST,
        "/api/v4/leads/pipelines",
        json!([{"name": "Partners", "_embedded": {"statuses": [{"name": "Met"}, {"name": "Signed"}]}}]),
    );
}

#[test]
fn fuzz_api_leads_contacts_and_webhooks_by_api() {
    let _serial = serial();
    let b = Bench::new();
    let p = &b.s.pipeline;
    let contact = json!({"name": "Anna", "custom_fields_values": [
        {"field_code": "PHONE", "values": [{"value": "+7 900 555-00-11", "enum_code": "WORK"}]},
        {"field_code": "EMAIL", "values": [{"value": "anna@example.com"}]}]});
    let lead = json!([{"name": "Order", "price": 10, "pipeline_id": p.id, "status_id": p.first_contact,
        "_embedded": {"contacts": [contact.clone()], "tags": [{"name": "web"}]}}]);
    fuzz_api(
        &b,
        "POST /api/v4/leads",
        Method::POST,
        "/api/v4/leads",
        lead.clone(),
    );
    fuzz_api(
        &b,
        "POST /api/v4/leads/complex",
        Method::POST,
        "/api/v4/leads/complex",
        lead,
    );
    fuzz_api(
        &b,
        "POST /api/v4/contacts",
        Method::POST,
        "/api/v4/contacts",
        json!([contact]),
    );
    let (_, listed) = b.rt.block_on(b.app.get("/api/v4/contacts"));
    let id = listed["_embedded"]["contacts"][0]["id"].as_u64().unwrap();
    fuzz_api(
        &b,
        "PATCH /api/v4/contacts",
        Method::PATCH,
        "/api/v4/contacts",
        json!([{"id": id, "name": "Anna K."}]),
    );
    fuzz_api(
        &b,
        "POST /api/v4/webhooks",
        Method::POST,
        "/api/v4/webhooks",
        json!({"destination": "http://127.0.0.1:9/hook", "settings": ["add_lead", "status_lead"], "sort": 1}),
    );
}

#[test]
fn fuzz_api_lead_changes_and_notes() {
    let _serial = serial();
    let b = Bench::new();
    let (lead, _, _) =
        b.rt.block_on(submit_form(&b.app, &b.s.form_id, None, "Anna"));
    let p = &b.s.pipeline;
    fuzz_api(
        &b,
        "PATCH /api/v4/leads/{id}",
        Method::PATCH,
        &format!("/api/v4/leads/{lead}"),
        json!({"status_id": p.negotiation, "pipeline_id": p.id, "name": "Renamed"}),
    );
    fuzz_api(
        &b,
        "POST /api/v4/leads/{id}/notes",
        Method::POST,
        &format!("/api/v4/leads/{lead}/notes"),
        json!([{"note_type": 25, "params": {"text": "Called back", "service": "phone"}}]),
    );
}

#[test]
fn fuzz_api_patches_of_sites_handlers_and_actions() {
    let _serial = serial();
    let b = Bench::new();
    let (_, handlers) = b.rt.block_on(b.app.get("/api/v4/handlers"));
    let handler = handlers["_embedded"]["handlers"][0]["id"].as_u64().unwrap();
    let targets = vec![
        (
            format!("/api/v4/sites/{}", b.s.site_id),
            json!({"name": "Shop 2", "hosts": ["shop.example", "blog.example"], "respect_dnt": true}),
        ),
        (
            format!("/api/v4/handlers/{handler}"),
            json!({"name": "Notify 2", "webhook_url": "http://127.0.0.1:9/x", "rotate_secret": false}),
        ),
        (
            format!("/api/v4/actions/{}", b.s.action_id),
            json!({"status_ids": [b.s.pipeline.first_contact], "site_url": "https://shop.example",
                   "delay_seconds": 5, "settings": {"message": "Hi"}, "enabled": true}),
        ),
    ];
    b.fuzz(
        "PATCH /api/v4/{sites,handlers,actions}/{id}",
        (
            json_case(api_content_types()),
            prop::sample::select(targets),
        ),
        |(c, (path, template))| {
            let body = c.body(template, &b.raw);
            let answer = b.send(
                Method::PATCH,
                path,
                Some(common::TOKEN),
                c.content_type,
                body,
            );
            verdict(Surface::Api, c.content_type, answer)
        },
    );
}

#[test]
fn fuzz_api_accepting_unsorted_leads() {
    let _serial = serial();
    let b = Bench::new();
    let p = &b.s.pipeline;
    let template = json!({"status_id": p.first_contact});
    let counter = std::sync::atomic::AtomicUsize::new(0);
    b.fuzz(
        "POST /api/v4/leads/unsorted/{uid}/accept",
        json_case(api_content_types()),
        |c| {
            // A fresh entry for each case, so that every body meets a waiting lead.
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (_, uid, _) = b.rt.block_on(submit_form(
                &b.app,
                &b.s.form_id,
                None,
                &format!("Lead {n}"),
            ));
            let body = c.body(&template, &b.raw);
            let answer = b.send(
                Method::POST,
                &format!("/api/v4/leads/unsorted/{uid}/accept"),
                Some(common::TOKEN),
                c.content_type,
                body,
            );
            verdict(Surface::ApiOptionalBody, c.content_type, answer)
        },
    );
}

/// Junk short enough for a URL (the client refuses URLs past 64 KiB).
fn short_junk() -> impl Strategy<Value = String> {
    junk_string().prop_map(|s| s.chars().take(500).collect())
}

/// A path and query string of the API, with strange ids and parameters.
#[derive(Debug, Clone)]
struct Lookup {
    path: String,
    query: Vec<(String, String)>,
    method: Method,
}

fn lookup(lead: u64, uid: String, event: String) -> impl Strategy<Value = Lookup> {
    let paths = vec![
        "/api/v4/leads".to_owned(),
        "/api/v4/leads/{id}".to_owned(),
        "/api/v4/leads/{id}/timeline".to_owned(),
        "/api/v4/leads/{id}/visits".to_owned(),
        "/api/v4/leads/{id}/notes".to_owned(),
        "/api/v4/leads/unsorted".to_owned(),
        "/api/v4/leads/unsorted/{id}".to_owned(),
        "/api/v4/leads/pipelines".to_owned(),
        "/api/v4/leads/pipelines/{id}".to_owned(),
        "/api/v4/sites".to_owned(),
        "/api/v4/sites/{id}".to_owned(),
        "/api/v4/forms".to_owned(),
        "/api/v4/forms/{id}".to_owned(),
        "/api/v4/handlers".to_owned(),
        "/api/v4/handlers/{id}".to_owned(),
        "/api/v4/actions".to_owned(),
        "/api/v4/actions/{id}".to_owned(),
        "/api/v4/webhook_events".to_owned(),
        "/api/v4/webhook_events/{id}".to_owned(),
        "/api/v4/contacts".to_owned(),
        "/api/v4/contacts/{id}".to_owned(),
        "/api/v4/webhooks".to_owned(),
        "/api/v4/webhooks/{id}/deliveries".to_owned(),
        "/api/v4/webhook_events/{id}/replay".to_owned(),
        "/api/v4/handlers/{id}/replay".to_owned(),
        "/api/v4/leads/unsorted/{id}/decline".to_owned(),
    ];
    let ids = prop_oneof![
        2 => Just(lead.to_string()),
        1 => Just(uid),
        1 => Just(event),
        1 => prop::sample::select(vec![
            "0", "-1", "1", "18446744073709551615", "18446744073709551616",
            "99999999999999999999999", "1e3", "0x1", "%00", "%2e%2e", "a%2Fb", "%ff",
            "%F0%9F%A6%80", "{id}", "*", "1.5", " 1",
        ])
        .prop_map(str::to_owned),
        1 => short_junk().prop_map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect()),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "0",
            "-1",
            "1",
            "250",
            "251",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
            "1e3",
            "",
            "true",
            "null",
            "delivered",
            "dead",
            "site_visit",
            "18",
        ])
        .prop_map(str::to_owned),
        short_junk(),
    ];
    let key = prop::sample::select(vec![
        "page",
        "limit",
        "status_id",
        "pipeline_id",
        "created_from",
        "created_to",
        "query",
        "lead_id",
        "handler_id",
        "state",
        "type",
        "form_id",
        "unknown",
        "page[]",
        "",
    ])
    .prop_map(str::to_owned);
    let method = prop_oneof![
        6 => Just(Method::GET),
        1 => Just(Method::POST),
        1 => Just(Method::DELETE),
        1 => Just(Method::PUT),
        1 => Just(Method::OPTIONS),
    ];
    (
        prop::sample::select(paths),
        ids,
        prop::collection::vec((key, value), 0..4),
        method,
    )
        .prop_map(|(path, id, query, method)| Lookup {
            path: path.replace("{id}", &id),
            query,
            method,
        })
}

#[test]
fn fuzz_api_paths_and_query_strings() {
    let _serial = serial();
    let b = Bench::new();
    let (lead, uid, vid) =
        b.rt.block_on(submit_form(&b.app, &b.s.form_id, None, "Anna"));
    b.rt.block_on(async {
        let (status, _) = b
            .app
            .post(
                &format!("/api/v4/leads/unsorted/{uid}/accept"),
                json!({"status_id": b.s.pipeline.first_contact}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        b.app
            .beacon(&b.s.site_key, Some(&vid), "https://shop.example/")
            .await;
    });
    let event = b.rt.block_on(b.app.events_of(lead))[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.fuzz(
        "GET /api/v4/… paths and query strings",
        lookup(lead, uid, event),
        |l| {
            let query = serde_urlencoded::to_string(&l.query).unwrap_or_default();
            let path = if query.is_empty() {
                l.path.clone()
            } else {
                format!("{}?{query}", l.path)
            };
            let answer = b.send(l.method.clone(), &path, Some(common::TOKEN), None, vec![]);
            verdict(Surface::ApiOptionalBody, None, answer)
        },
    );
}

// ---------------------------------------------------------------------------------------
// Targeted cases.

async fn count(app: &TestApp, path: &str, name: &str) -> usize {
    let (status, body) = app.get(path).await;
    if status == StatusCode::NO_CONTENT {
        return 0; // an empty list, as amoCRM answers it
    }
    assert_eq!(status, StatusCode::OK, "{body}");
    body["_embedded"][name].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_get_413_and_change_nothing() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let public_limit = app.settings.limits.public_body_bytes;
    let api_limit = app.settings.limits.api_body_bytes;

    let big = "x".repeat(public_limit);
    let cases: Vec<(&str, String, &str, Vec<u8>)> = vec![
        (
            "beacon",
            "/v1/collect".into(),
            "text/plain",
            json!({"site": s.site_key, "url": "https://shop.example/", "title": big})
                .to_string()
                .into_bytes(),
        ),
        (
            "JSON form",
            format!("/v1/forms/{}/submit", s.form_id),
            "text/plain",
            json!({"fields": {"name": "Anna", "note": big}})
                .to_string()
                .into_bytes(),
        ),
        (
            "HTML form",
            format!("/v1/forms/{}/submit", s.form_id),
            "application/x-www-form-urlencoded",
            format!("name=Anna&note={big}").into_bytes(),
        ),
    ];
    for (what, path, ct, body) in cases {
        let answer = app
            .raw(Method::POST, &path, None, Some(ct), body)
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{what}: {}",
            answer.text
        );
    }
    let huge = json!([{"name": "x".repeat(api_limit), "url": "https://shop.example"}]);
    for (method, path) in [
        (Method::POST, "/api/v4/sites".to_owned()),
        (Method::PATCH, format!("/api/v4/sites/{}", s.site_id)),
        (Method::POST, "/api/v4/handlers".to_owned()),
    ] {
        let answer = app
            .raw(
                method.clone(),
                &path,
                Some(common::TOKEN),
                Some("application/json"),
                huge.to_string().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}: {}",
            answer.text
        );
        assert_eq!(answer.header("content-type"), "application/problem+json");
    }
    // Just under the public limit is fine.
    let fits = json!({"site": s.site_key, "url": "https://shop.example/", "title": "x".repeat(public_limit - 200)});
    let answer = app
        .raw(
            Method::POST,
            "/v1/collect",
            None,
            Some("text/plain"),
            fits.to_string().into_bytes(),
        )
        .await
        .unwrap();
    assert!(answer.status.is_success(), "{}", answer.text);
    assert_eq!(count(&app, "/api/v4/sites", "sites").await, 1);
    assert_eq!(count(&app, "/api/v4/leads/unsorted", "unsorted").await, 0);
    let (_, site) = app.get(&format!("/api/v4/sites/{}", s.site_id)).await;
    assert_eq!(site["name"], "Shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_bodies_that_are_not_json_with_415() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, _, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let p = &s.pipeline;
    let requests = [
        (
            Method::POST,
            "/api/v4/sites".to_owned(),
            json!([{"name": "Two", "url": "https://two.example"}]),
        ),
        (
            Method::PATCH,
            format!("/api/v4/sites/{}", s.site_id),
            json!({"name": "Renamed"}),
        ),
        (
            Method::POST,
            "/api/v4/handlers".to_owned(),
            json!([{"code": "two", "name": "Two", "webhook_url": receiver.url()}]),
        ),
        (
            Method::PATCH,
            format!("/api/v4/leads/{lead}"),
            json!({"status_id": p.negotiation}),
        ),
        (
            Method::POST,
            format!("/api/v4/leads/{lead}/notes"),
            json!([{"note_type": 25, "params": {"text": "t", "service": "s"}}]),
        ),
    ];
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/html",
        "application/xml",
    ] {
        for (method, path, body) in &requests {
            let answer = app
                .raw(
                    method.clone(),
                    path,
                    Some(common::TOKEN),
                    Some(ct),
                    body.to_string().into_bytes(),
                )
                .await
                .unwrap();
            assert_eq!(
                answer.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {path} as {ct}: {}",
                answer.text
            );
            assert_eq!(answer.header("content-type"), "application/problem+json");
        }
    }
    // Nothing changed; the same bodies as JSON do go through.
    assert_eq!(count(&app, "/api/v4/sites", "sites").await, 1);
    assert_eq!(count(&app, "/api/v4/handlers", "handlers").await, 1);
    let (_, view) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(view["status_id"], p.unsorted);
    assert_eq!(
        count(&app, &format!("/api/v4/leads/{lead}/notes"), "notes").await,
        0
    );
    for (method, path, body) in &requests {
        let answer = app
            .raw(
                method.clone(),
                path,
                Some(common::TOKEN),
                Some("application/json; charset=utf-8"),
                body.to_string().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{method} {path}: {}",
            answer.text
        );
    }
}

/// Found by `fuzz_api_paths_and_query_strings`: a page this far cost an overflow (a
/// panic in a debug build, a wrapped count in a release one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_page_number_there_is_gets_an_empty_page() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    submit_form(&app, &s.form_id, None, "Anna").await;
    let last = u64::MAX;
    for path in ["/api/v4/leads", "/api/v4/webhook_events"] {
        for limit in ["", "&limit=250"] {
            let (status, body) = app.get(&format!("{path}?page={last}{limit}")).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_an_unsorted_lead_with_a_body_that_is_not_json_gets_415() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, uid, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let body = json!({"status_id": s.pipeline.first_contact}).to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "text/html",
    ] {
        let answer = app
            .raw(
                Method::POST,
                &format!("/api/v4/leads/unsorted/{uid}/accept"),
                Some(common::TOKEN),
                Some(ct),
                body.clone().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{ct}: {}",
            answer.text
        );
    }
    let (_, view) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(view["status_id"], s.pipeline.unsorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_of_every_kind_gets_a_4xx_naming_what_is_wrong() {
    let app = TestApp::spawn(Backend::Redis).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (lead, _, _) = submit_form(&app, &s.form_id, None, "Anna").await;
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let site = |name: &str| format!("[{{\"name\":{name},\"url\":\"https://two.example\"}}]");
    // (body, field the problem must name, if any)
    let bodies: Vec<(Vec<u8>, Option<&str>)> = vec![
        (
            b"[{\"name\":\"\xff\xfe\",\"url\":\"https://two.example\"}]".to_vec(),
            None,
        ),
        (site("\"\\ud800\"").into_bytes(), None),
        (site("1e999").into_bytes(), None),
        (
            site("123456789012345678901234567890").into_bytes(),
            Some("[0].name"),
        ),
        (site("{\"nested\":[1,2,{}]}").into_bytes(), Some("[0].name")),
        (deep(100_000).into_bytes(), None),
        (format!("[{}]", "{\"a\":".repeat(50_000)).into_bytes(), None),
        (
            b"[{\"name\":\"Two\",\"url\":\"https://two.example\",\"owner\":\"me\"}]".to_vec(),
            Some("owner"),
        ),
        (
            b"[{\"name\":\"Two\",\"url\":\"https://two.example\"},]".to_vec(),
            None,
        ),
        (
            b"[{\"name\":\"Two\",\"url\":\"https://two.example\"}] trailing".to_vec(),
            None,
        ),
        (b"\xef\xbb\xbf[]".to_vec(), None),
        (b"{}".to_vec(), None),
        (b"[]".to_vec(), None),
        (b"null".to_vec(), None),
        (b"".to_vec(), None),
        (
            format!(
                "[{}]",
                vec![r#"{"name":"N","url":"https://n.example"}"#; 251].join(",")
            )
            .into_bytes(),
            None,
        ),
    ];
    for (body, field) in &bodies {
        let answer = app
            .raw(
                Method::POST,
                "/api/v4/sites",
                Some(common::TOKEN),
                Some("application/json"),
                body.clone(),
            )
            .await
            .unwrap();
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        assert!(
            matches!(answer.status.as_u16(), 400 | 413),
            "{shown}: {} {}",
            answer.status,
            answer.text
        );
        assert_eq!(
            answer.header("content-type"),
            "application/problem+json",
            "{shown}"
        );
        if let Some(field) = field {
            assert!(
                answer.text.contains(field),
                "{shown}: the problem does not name {field}: {}",
                answer.text
            );
        }
    }
    // Numbers out of range for ids, delays and statuses.
    let p = &s.pipeline;
    let patches = [
        json!({"status_id": -1}),
        json!({"status_id": 1.5}),
        json!({"status_id": u64::MAX}),
        json!({"status_id": "1002"}),
        json!({"status_id": p.first_contact, "pipeline_id": 0}),
        json!({"name": ""}),
        json!({"name": "x".repeat(300)}),
        json!({"owner": 1}),
    ];
    for patch in &patches {
        let (status, body) = app
            .patch(&format!("/api/v4/leads/{lead}"), patch.clone())
            .await;
        assert!(status.is_client_error(), "{patch}: {status} {body}");
    }
    for delay in [
        json!(-1),
        json!(2_592_001),
        json!(u64::MAX),
        json!(1e300),
        json!("60"),
    ] {
        let (status, body) = app
            .post(
                "/api/v4/actions",
                json!([{"pipeline_id": p.id, "status_ids": [p.first_contact],
                "event": "site_visit", "handler": "notify", "site_url": "https://shop.example",
                "delay_seconds": delay, "settings": {"message": "x"}}]),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{delay}: {body}");
        assert!(body.to_string().contains("delay_seconds"), "{body}");
    }
    let (_, view) = app.get(&format!("/api/v4/leads/{lead}")).await;
    assert_eq!(view["status_id"], p.unsorted);
    assert_eq!(view["name"], "Contact: Anna");
    assert_eq!(count(&app, "/api/v4/sites", "sites").await, 1);
    assert_eq!(count(&app, "/api/v4/actions", "actions").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_and_control_characters_stay_text_from_the_form_to_the_webhook() {
    let mut settings = common::test_settings(Backend::Redis);
    settings.tracking.visit_idle_seconds = 1;
    let app = TestApp::spawn_with(settings).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let script = "<script>alert(\"owned\")</script>";
    let typed = format!(" {script}\u{0}\u{1b}[2J{{{{lead.id}}}}\u{202e}é🦀\r\n");
    let kept = format!("{script}  [2J{{{{lead.id}}}}\u{202e}é🦀");
    let (_, vid) = app.beacon(&s.site_key, None, "https://shop.example/").await;
    let vid = vid.unwrap();
    // A page title with markup, from the tracker.
    let response = app
        .client
        .post(app.url("/v1/collect"))
        .header("content-type", "text/plain")
        .body(json!({"site": s.site_key, "vid": vid, "url": "https://shop.example/x?q=<b>", "title": script}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .header("content-type", "text/plain")
        .body(
            json!({"vid": vid, "fields": {"name": typed, "email": "anna@example.com"}}).to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let submitted: Value = response.json().await.unwrap();
    let lead = submitted["lead_id"].as_u64().unwrap();
    let uid = submitted["uid"].as_str().unwrap();

    // The API returns the text as a JSON string, exactly as kept.
    let response = app
        .client
        .get(app.url(&format!("/api/v4/leads/{lead}")))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["_embedded"]["contacts"][0]["name"], kept.as_str());
    assert_eq!(view["name"], format!("Contact: {kept}").as_str());
    let (_, timeline) = app.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    let titles: Vec<&Value> = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "page_view")
        .map(|i| &i["title"])
        .collect();
    assert!(titles.contains(&&json!(script)), "{timeline}");

    // And the webhook carries it as a plain JSON string, its macro-like text not expanded.
    let (status, _) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.beacon(&s.site_key, Some(&vid), "https://shop.example/")
        .await;
    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    let hook = &received[0];
    assert!(
        hook.body.contains(r#"<script>alert(\"owned\")</script>"#),
        "the webhook body does not carry the text as a JSON string: {}",
        hook.body
    );
    let message = hook.json()["action"]["settings"]["widget"]["settings"]["message"].clone();
    assert_eq!(
        message,
        json!(format!("Hi {kept}, lead {lead} {{{{lead.unknown}}}}"))
    );

    // A plain HTML form's error page shows no markup it was sent.
    let response = app
        .client
        .post(app.url(&format!("/v1/forms/{}/submit", s.form_id)))
        .form(&[("name", script), ("email", script), ("phone", script)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>"), "{page}");
}

//! An open-loop driver: sends requests at a fixed rate, whatever the server's answers take
//! (wrk keeps a fixed number of requests in flight instead, so a slow answer would slow
//! the load it measures). Each latency counts from the moment the request was due, so a
//! stall of the driver or the server shows in it. The requests are what `bench/stream.lua`
//! sends: a form submission of a new contact (`json` or `urlencoded`) or a page view
//! (`beacon`), from the browsers of `VIDS` starting at line `FROM`.
//! With `RATE` 0 it is a closed loop instead, to fill a store: `SECONDS` is then the
//! number of requests, sent 64 at a time as fast as the server answers.
//! `bench-rate URL MODE RATE SECONDS VIDS UAS FROM [SITE]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use footfall_bench::summary;
use parking_lot::Mutex;

/// Requests in flight in the closed loop (as many as wrk's connections).
const CLOSED_LOOP_IN_FLIGHT: usize = 64;

const FIRST: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Ana", "Zoë",
];
const LAST: &[&str] = &[
    "Smith", "Garcia", "Müller", "Rossi", "Kowalski", "Nguyen", "Tanaka", "O'Brien",
];
const MESSAGE: &str = "Hello, we are looking for a quote for 40 units delivered to our Lyon warehouse before the end of the quarter. Could someone call me back?";

fn body(mode: &str, n: usize, run: u32, vid: &str, site: &str) -> (String, &'static str) {
    let product = n % 5000;
    if mode == "beacon" {
        let body = serde_json::json!({"site": site, "vid": vid,
            "url": format!("https://shop.example/catalog/product-{product}?ref=mail"),
            "referrer": "https://shop.example/catalog", "title": format!("Product {product} — Shop")});
        return (body.to_string(), "text/plain;charset=UTF-8");
    }
    let (f, l) = (FIRST[n % FIRST.len()], LAST[n / FIRST.len() % LAST.len()]);
    let name = format!("{f} {l}");
    let email = format!(
        "{}.{}.{run}.{n}@example.org",
        f.to_lowercase(),
        l.to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let phone = format!("+44 20 {:04} {:04}", n / 10_000 % 10_000, n % 10_000);
    let page = format!("https://shop.example/contact?from=product-{product}&utm_source=newsletter");
    if mode == "json" {
        let body = serde_json::json!({"vid": vid, "page": page, "fields": {"name": name,
            "email": email, "phone": phone, "company": "Acme Logistics", "message": MESSAGE,
            "consent": true}});
        return (body.to_string(), "text/plain;charset=UTF-8");
    }
    let fields = [
        ("name", name.as_str()),
        ("email", &email),
        ("phone", &phone),
        ("company", "Acme Logistics"),
        ("message", MESSAGE),
        ("consent", "on"),
        ("ff_vid", vid),
        ("ff_page", &page),
    ];
    (
        serde_urlencoded::to_string(fields).unwrap_or_default(),
        "application/x-www-form-urlencoded",
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (url, mode, rate, seconds, vids, uas, from, site) = match args.as_slice() {
        [_, url, mode, rate, seconds, vids, uas, from, rest @ ..] => (
            url,
            mode.as_str(),
            rate.parse::<f64>().context("RATE")?,
            seconds.parse::<f64>().context("SECONDS")?,
            vids,
            uas,
            from.parse::<usize>().context("FROM")?,
            rest.first().cloned().unwrap_or_default(),
        ),
        _ => bail!("usage: bench-rate URL MODE RATE SECONDS VIDS UAS FROM [SITE]"),
    };
    if !["beacon", "json", "urlencoded"].contains(&mode) {
        bail!("MODE is beacon, json or urlencoded");
    }
    let closed = rate == 0.0;
    let count = if closed {
        seconds as usize
    } else {
        (rate * seconds) as usize
    };
    let agents: Vec<String> = std::fs::read_to_string(uas)?
        .lines()
        .map(str::to_owned)
        .collect();
    let text = std::fs::read_to_string(vids)?;
    let browsers: Vec<(&str, usize)> = text
        .lines()
        .skip(from)
        .take(count)
        .filter_map(|l| {
            let (vid, ua) = l.split_once('\t')?;
            Some((vid, ua.parse::<usize>().ok()?.saturating_sub(1)))
        })
        .collect();
    if browsers.len() < count {
        bail!("{vids} has too few browsers after line {from}");
    }
    let run = rand::random::<u32>();
    let requests: Vec<(String, &str, &str)> = browsers
        .iter()
        .enumerate()
        .map(|(n, (vid, ua))| {
            let (body, content_type) = body(mode, n, run, vid, &site);
            let agent = agents
                .get(*ua)
                .map_or(footfall_bench::BROWSER, String::as_str);
            (body, content_type, agent)
        })
        .collect();

    let client = footfall::http_client()
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(Duration::from_secs(2))
        .build()?;
    // A few requests to open connections first.
    for (body, content_type, agent) in requests.iter().take(8) {
        let _ = client
            .post(url)
            .header("content-type", *content_type)
            .header("user-agent", *agent)
            .body(body.clone())
            .send()
            .await;
    }
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let errors = Arc::new(Mutex::new(
        std::collections::BTreeMap::<String, usize>::new(),
    ));
    let interval = Duration::from_secs_f64(if closed { 0.0 } else { 1.0 / rate });
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (body, content_type, agent)) in requests.into_iter().enumerate() {
        let mut due = started + interval.mul_f64(i as f64);
        if closed {
            if tasks.len() >= CLOSED_LOOP_IN_FLIGHT {
                tasks.join_next().await;
            }
            due = Instant::now();
        } else {
            tokio::time::sleep_until(due.into()).await;
        }
        let (client, url, latencies, errors) = (
            client.clone(),
            url.clone(),
            latencies.clone(),
            errors.clone(),
        );
        let (content_type, agent) = (content_type.to_owned(), agent.to_owned());
        tasks.spawn(async move {
            let answer = client
                .post(url)
                .header("content-type", content_type)
                .header("user-agent", agent)
                .body(body)
                .send()
                .await;
            let outcome = match answer {
                Ok(r) if r.status().is_success() => r.bytes().await.err().map(|e| e.to_string()),
                Ok(r) => Some(r.status().to_string()),
                Err(e) => Some(e.to_string()),
            };
            let ms = due.elapsed().as_secs_f64() * 1000.0;
            latencies.lock().push(ms);
            if let Some(e) = outcome {
                *errors.lock().entry(e).or_default() += 1;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let took = started.elapsed().as_secs_f64();
    let (p50, p99, max) = summary(std::mem::take(&mut *latencies.lock()));
    let errors = errors.lock();
    let how = if closed {
        format!("{:.0}/s closed loop", count as f64 / took)
    } else {
        format!("{rate:.0}/s open loop")
    };
    println!(
        "{mode} at {how}: {count} sent in {took:.1} s; latency from due time \
         p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms; errors {}{}",
        errors.values().sum::<usize>(),
        if errors.is_empty() {
            String::new()
        } else {
            format!(" {errors:?}")
        }
    );
    Ok(())
}

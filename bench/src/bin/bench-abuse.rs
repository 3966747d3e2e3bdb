//! The abuse benchmark's driver (`scripts/abuse.sh`): junk to account A's site — beacons
//! without a visitor id (2 KB URL, 2 KB referrer, 300-character title) and junk form posts,
//! each from a new client address in `X-Forwarded-For` (footfall trusts the local proxy) —
//! while account B runs its normal flow: a lead per browser, accepted, then its visit's
//! first beacon, whose site-visit webhook the receiver times. B's flow runs two rounds
//! quiet and then rounds under the attack, with browsers of its own addresses.
//! `bench-abuse FOOTFALL_URL TOKEN_A TOKEN_B BEACONS FORMS VISITS RATE CONCURRENCY
//! ATTACK_RATE ATTACKER_NICE`; the attack runs in a process of its own (the same binary,
//! `bench-abuse attack …`) at that niceness, or under SCHED_IDLE for `idle`. Prints
//! `key value` lines for the script.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use footfall_bench::{Api, BROWSER, Receiver, Setup, now_ms, setup, summary};
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// B's rounds before the attack.
const QUIET_ROUNDS: u64 = 2;

fn lead_of(body: &Value) -> Option<String> {
    body["event"]["data"]["id"].as_u64().map(|l| l.to_string())
}

/// A client address of its own for each request (outside the loopback the proxy is on).
fn address(i: u64) -> String {
    let n = 0x0B00_0000u32.wrapping_add((i as u32).wrapping_mul(2_654_435_761) >> 8);
    std::net::Ipv4Addr::from(n).to_string()
}

fn client() -> reqwest::Client {
    footfall::http_client()
        .user_agent(BROWSER)
        .pool_max_idle_per_host(512)
        .pool_idle_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Answers by status of the attack's beacons and forms.
#[derive(Default)]
struct Tally {
    beacons: HashMap<u16, u64>,
    forms: HashMap<u16, u64>,
}

/// The attack: `beacons` and `forms` as fast as `concurrency` requests in flight allow, or
/// at `rate` requests a second (open loop) when it is not 0.
async fn attack(
    base: String,
    (site_key, form_id): (String, String),
    (beacons, forms): (u64, u64),
    concurrency: usize,
    rate: u64,
) -> Tally {
    let http = client();
    let started = tokio::time::Instant::now();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let referrer = format!("https://junk.example/{}", "r".repeat(2000));
    let title = "t".repeat(300);
    let every = (beacons / forms.max(1)).max(1);
    futures_util::stream::iter(0..beacons + forms)
        .map(|i| {
            let (http, base, tally) = (http.clone(), base.clone(), tally.clone());
            let (key, form) = (site_key.clone(), form_id.clone());
            let (referrer, title) = (referrer.clone(), title.clone());
            async move {
                if rate > 0 {
                    let due = started + std::time::Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until(due).await;
                }
                let is_form = forms > 0 && i % (every + 1) == every && i / (every + 1) < forms;
                let request = if is_form {
                    http.post(format!("{base}/v1/forms/{form}/submit"))
                        .header("content-type", "text/plain;charset=UTF-8")
                        .body(json!({"page": "https://shop.example/contact",
                                     "fields": {"name": format!("Junk {i}"), "email": format!("junk{i}@junk.example"),
                                                "phone": format!("+1555{i:07}")}}).to_string())
                } else {
                    http.post(format!("{base}/v1/collect"))
                        .header("content-type", "text/plain;charset=UTF-8")
                        .body(json!({"site": key, "url": format!("https://shop.example/{i}/{}", "u".repeat(2000)),
                                     "referrer": referrer, "title": title}).to_string())
                };
                let status = match request.header("x-forwarded-for", address(i)).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                let mut t = tally.lock();
                let map = if is_form { &mut t.forms } else { &mut t.beacons };
                *map.entry(status).or_default() += 1;
            }
        })
        .buffer_unordered(concurrency)
        .collect::<()>()
        .await;
    Arc::try_unwrap(tally)
        .map(Mutex::into_inner)
        .unwrap_or_default()
}

/// B's browsers for one round: a lead each (form post from the browser's own address),
/// accepted into the stage whose site-visit action fires.
async fn leads(
    b: &Api,
    s: &Setup,
    n: u64,
    first: u64,
) -> anyhow::Result<Vec<(String, String, u64)>> {
    let http = client();
    let mut out = Vec::new();
    let run = rand::random::<u32>();
    let made = futures_util::stream::iter(first..first + n)
        .map(|i| {
            let (http, b) = (http.clone(), b.clone());
            let form = s.form_id.clone();
            let stage = s.first_contact;
            async move {
                let ip = address(u64::from(u32::MAX) - i);
                let name = format!("Buyer {run} {i}");
                let r = http
                    .post(format!("{}/v1/forms/{form}/submit", b.base))
                    .header("x-forwarded-for", &ip)
                    .json(&json!({"page": "https://shop.example/contact",
                                  "fields": {"name": name, "email": format!("buyer.{run}.{i}@b.example")}}))
                    .send()
                    .await?;
                let status = r.status();
                let v: Value = r.json().await?;
                anyhow::ensure!(status == 201, "B's form from {ip} answered {status}: {v}");
                let lead = v["lead_id"].as_u64().context("lead")?;
                let uid = v["uid"].as_str().context("uid")?.to_owned();
                b.post(
                    &format!("/api/v4/leads/unsorted/{uid}/accept"),
                    json!({"status_id": stage}),
                )
                .await?;
                anyhow::Ok((lead.to_string(), v["vid"].as_str().context("vid")?.to_owned(), i))
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for m in made {
        out.push(m?);
    }
    Ok(out)
}

/// One round of B's visits at `rate`: each browser's first beacon, timed, and the time
/// from it to the webhook.
async fn visits(
    b: &Api,
    s: &Setup,
    browsers: Vec<(String, String, u64)>,
    rate: u64,
    receiver: &Receiver,
) -> (Vec<f64>, Vec<f64>, usize) {
    let http = client();
    let sent: Arc<Mutex<Vec<(String, i64, f64)>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (lead, vid, i) in browsers {
        tick.tick().await;
        let (http, sent, base, key) = (
            http.clone(),
            sent.clone(),
            b.base.clone(),
            s.site_key.clone(),
        );
        tasks.spawn(async move {
            let at = now_ms();
            let started = Instant::now();
            let r = http
                .post(format!("{base}/v1/collect"))
                .header("content-type", "text/plain;charset=UTF-8")
                .header("x-forwarded-for", address(u64::from(u32::MAX) - i))
                .body(
                    json!({"site": key, "vid": vid, "url": "https://shop.example/pricing"})
                        .to_string(),
                )
                .send()
                .await;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            if r.is_ok_and(|r| r.status().is_success()) {
                sent.lock().push((lead, at, took));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let sent = sent.lock().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let arrivals = receiver.arrivals();
        let missing = sent
            .iter()
            .filter(|(l, _, _)| !arrivals.contains_key(l))
            .count();
        if missing == 0 || Instant::now() > deadline {
            let webhook = sent
                .iter()
                .filter_map(|(l, at, _)| arrivals.get(l).map(|a| (a - at) as f64))
                .collect();
            let beacon = sent.iter().map(|(_, _, took)| *took).collect();
            return (beacon, webhook, missing);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// B's timings over its rounds: each beacon's, each visit's to its webhook, and the
/// webhooks that never came.
#[derive(Default)]
struct Samples {
    beacon: Vec<f64>,
    webhook: Vec<f64>,
    missing: usize,
}

impl Samples {
    /// One round: `n` new browsers from the `first`, each given a lead, then visiting.
    async fn round(
        &mut self,
        b: &Api,
        s: &Setup,
        (n, first): (u64, u64),
        rate: u64,
        receiver: &Receiver,
    ) -> anyhow::Result<()> {
        let browsers = leads(b, s, n, first).await?;
        let (beacon, webhook, missing) = visits(b, s, browsers, rate, receiver).await;
        self.beacon.extend(beacon);
        self.webhook.extend(webhook);
        self.missing += missing;
        Ok(())
    }

    fn report(self, tag: &str) {
        let n = self.beacon.len();
        let (b50, b99, _) = summary(self.beacon);
        let (w50, w99, _) = summary(self.webhook);
        println!("{tag}_visits {n}");
        println!("{tag}_beacon_p50_ms {b50:.2}");
        println!("{tag}_beacon_p99_ms {b99:.2}");
        println!("{tag}_webhook_p50_ms {w50:.1}");
        println!("{tag}_webhook_p99_ms {w99:.1}");
        println!("{tag}_webhooks_missing {}", self.missing);
    }
}

/// The attacker's process: `bench-abuse attack FOOTFALL_URL SITE_KEY FORM_ID BEACONS
/// FORMS CONCURRENCY ATTACK_RATE`; prints the tally.
async fn attacker(args: &[String]) -> anyhow::Result<()> {
    let [base, site_key, form_id, beacons, forms, concurrency, rate] = args else {
        anyhow::bail!(
            "usage: bench-abuse attack FOOTFALL_URL SITE_KEY FORM_ID BEACONS FORMS CONCURRENCY ATTACK_RATE"
        );
    };
    let tally = attack(
        base.clone(),
        (site_key.clone(), form_id.clone()),
        (beacons.parse()?, forms.parse()?),
        concurrency.parse()?,
        rate.parse()?,
    )
    .await;
    let sum = |m: &HashMap<u16, u64>, ok: bool| -> u64 {
        m.iter()
            .filter(|(s, _)| (200..300).contains(*s) == ok)
            .map(|(_, n)| n)
            .sum()
    };
    println!("junk_beacons_admitted {}", sum(&tally.beacons, true));
    println!("junk_beacons_refused {}", sum(&tally.beacons, false));
    println!("junk_forms_admitted {}", sum(&tally.forms, true));
    println!("junk_forms_refused {}", sum(&tally.forms, false));
    println!("junk_beacon_statuses {:?}", tally.beacons);
    println!("junk_form_statuses {:?}", tally.forms);
    println!("attacker_ended_ms {}", now_ms());
    println!("attacker_cpu_ticks {}", cpu_ticks()?);
    Ok(())
}

/// This process's CPU time so far (user and system) in clock ticks, from
/// `/proc/self/stat`.
fn cpu_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = stat.rsplit_once(')').context("/proc/self/stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the file: the 12th and 13th after the name.
    Ok(fields.get(11).context("utime")?.parse::<u64>()?
        + fields.get(12).context("stime")?.parse::<u64>()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "attack") {
        return attacker(&args[2..]).await;
    }
    let [
        _,
        base,
        token_a,
        token_b,
        beacons,
        forms,
        visits_n,
        rate,
        concurrency,
        attack_rate,
        attacker_nice,
    ] = args.as_slice()
    else {
        anyhow::bail!(
            "usage: bench-abuse FOOTFALL_URL TOKEN_A TOKEN_B BEACONS FORMS VISITS RATE CONCURRENCY ATTACK_RATE ATTACKER_NICE"
        );
    };
    let (visits_n, rate): (u64, u64) = (visits_n.parse()?, rate.parse()?);
    let (a, b) = (Api::new(base, token_a), Api::new(base, token_b));
    let receiver = Receiver::start(lead_of)?;
    let sa = setup(&a, &receiver.url).await?;
    let sb = setup(&b, &receiver.url).await?;

    // Quiet rounds enough for a p99 that is not two samples' luck.
    let mut quiet = Samples::default();
    for round in 0..QUIET_ROUNDS {
        quiet
            .round(&b, &sb, (visits_n, round * visits_n), rate, &receiver)
            .await?;
    }
    quiet.report("quiet");

    // The attacker is a process of its own, at the niceness asked: B's requests and their
    // timing must not queue behind its tasks, and at 19 the machine's scheduler runs it
    // after footfall, Redis and B — as an attacker's own machine would.
    println!("attack_started_ms {}", now_ms());
    // `idle`: Linux's SCHED_IDLE policy, which runs the attacker only on a core that
    // nothing else wants and lets any other thread that wakes take it over at once; a
    // niceness still shares a core with them for a time slice.
    let mut command = if attacker_nice == "idle" {
        let mut c = tokio::process::Command::new("chrt");
        c.args(["--idle", "0"]);
        c
    } else {
        let mut c = tokio::process::Command::new("nice");
        c.args(["-n", attacker_nice]);
        c
    };
    let mut junk = command
        .arg(std::env::current_exe()?)
        .arg("attack")
        .args([base, &sa.site_key, &sa.form_id, beacons, forms, concurrency])
        .arg(attack_rate)
        .kill_on_drop(true)
        .spawn()
        .context("starting the attacker")?;
    // B's rounds while the attack lasts (one at least).
    let mut attacked = Samples::default();
    let mut round = QUIET_ROUNDS;
    let status = loop {
        attacked
            .round(&b, &sb, (visits_n, round * visits_n), rate, &receiver)
            .await?;
        round += 1;
        if let Some(status) = junk.try_wait()? {
            break status;
        }
        // A pause between rounds keeps B's forms (one per browser) under its own site's
        // form quota for the attack's ~100 s: a round is at least its visits' 4 s.
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    anyhow::ensure!(status.success(), "the attacker failed: {status}");
    attacked.report("attack");
    Ok(())
}

//! Scheduler lateness: `N` events scheduled straight into the store, due at a steady rate,
//! fired by a running footfall; lateness is when the receiver has each webhook minus when
//! it was due. With one handler (taking every event) the baseline runs the same schedule
//! with nothing but a tokio timer and an HTTP POST per event, in this process: the floor
//! any scheduler can reach here. With `HANDLERS` handlers the events go to them in turn,
//! and the last `BLACK_HOLES` of them accept connections and never answer: the others'
//! lateness is reported on its own, to show whether a dead handler holds them back.
//! `bench-lateness FOOTFALL_URL TOKEN REDIS_URL KEY_PREFIX SHARDS N RATE [HANDLERS [BLACK_HOLES]]`
//!
//! The events go into the schedule through footfall's own store code (of this workspace),
//! the only way to have a hundred thousand of them due at a chosen rate; a build measured
//! with `FOOTFALL=` must keep the same schedule in Redis.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use footfall::domain::event::EventType;
use footfall::domain::event_record::{DeliveryState, EventRecord};
use footfall::domain::ids::{
    AccountId, ActionId, EventId, HandlerId, LeadId, PipelineId, StatusId,
};
use footfall::domain::pipeline::Stage;
use footfall::store::Store;
use footfall::store::redis::{RedisOptions, RedisStore};
use footfall_bench::{Api, Receiver, Setup, now_ms, setup, summary};
use serde_json::Value;

/// The targets (issue 19), printed beside the figures.
const TARGET_MAX_MS: f64 = 250.0;
const TARGET_P99_MS: f64 = 10.0;

fn event_of(body: &Value) -> Option<String> {
    body["meta"]["event_id"].as_str().map(str::to_owned)
}

/// Prints the lateness of the events of `due` and returns (p99, max).
fn report(name: &str, due: &HashMap<String, i64>, arrivals: &HashMap<String, i64>) -> (f64, f64) {
    let lateness: Vec<f64> = due
        .iter()
        .filter_map(|(id, due)| arrivals.get(id).map(|at| (at - due) as f64))
        .collect();
    let n = lateness.len();
    let (p50, p99, max) = summary(lateness);
    println!(
        "{name}: {n}/{} fired; lateness p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        due.len()
    );
    (p99, max)
}

async fn wait_for(receiver: &Receiver, n: usize, deadline_ms: i64) {
    while receiver.count() < n && now_ms() < deadline_ms {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A webhook address that accepts connections and never answers; the connections stay
/// open as long as this process runs.
fn black_hole() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    Ok(url)
}

/// The floor: a timer per event, an HTTP POST at its time.
async fn baseline(n: usize, rate: f64, span_ms: i64) -> anyhow::Result<f64> {
    let baseline = Receiver::start(event_of)?;
    let client = footfall::http_client().build()?;
    let start = now_ms() + 2000;
    let mut due = HashMap::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let at = start + (i as f64 * 1000.0 / rate) as i64;
        let id = format!("evt_baseline{i}");
        due.insert(id.clone(), at);
        let (client, url) = (client.clone(), baseline.url.clone());
        tasks.spawn(async move {
            let wait = (at - now_ms()).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let body = format!("{{\"meta\":{{\"event_id\":\"{id}\"}}}}");
            let _ = client.post(url).body(body).send().await;
        });
    }
    while tasks.join_next().await.is_some() {}
    wait_for(&baseline, n, start + span_ms + 10_000).await;
    let (p99, _) = report(
        "baseline (tokio timer + HTTP POST)",
        &due,
        &baseline.arrivals(),
    );
    Ok(p99)
}

fn event(account: u64, s: &Setup, due_at: i64) -> EventRecord {
    EventRecord {
        id: EventId::generate(),
        account_id: AccountId(account),
        lead_id: LeadId(s.lead_id),
        action_id: ActionId(s.action_id),
        handler_id: HandlerId(s.handler_id),
        event_type: EventType::SiteVisit,
        direction: None,
        stage: Stage {
            pipeline_id: PipelineId(s.pipeline_id),
            status_id: StatusId(s.first_contact),
        },
        visit: None,
        delayed_by: 0,
        created_at: now_ms(),
        due_at,
        state: DeliveryState::Scheduled,
        body: None,
        attempts: vec![],
        failures: 0,
        next_attempt_at: None,
        reason: None,
        notice: None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (base, token, redis_url, prefix, shards, n, rate, rest) = match args.as_slice() {
        [
            _,
            base,
            token,
            redis_url,
            prefix,
            shards,
            n,
            rate,
            rest @ ..,
        ] => (base, token, redis_url, prefix, shards, n, rate, rest),
        _ => anyhow::bail!(
            "usage: bench-lateness FOOTFALL_URL TOKEN REDIS_URL KEY_PREFIX SHARDS N RATE [HANDLERS [BLACK_HOLES]]"
        ),
    };
    let (shards, n, rate): (u32, usize, f64) = (shards.parse()?, n.parse()?, rate.parse()?);
    let handlers: usize = rest.first().map_or(Ok(1), |h| h.parse())?;
    let black_holes: usize = rest.get(1).map_or(Ok(0), |h| h.parse())?;
    anyhow::ensure!(
        handlers >= 1 && black_holes < handlers,
        "HANDLERS > BLACK_HOLES"
    );
    let span_ms = (n as f64 / rate * 1000.0) as i64;

    let floor = if handlers == 1 {
        Some(baseline(n, rate, span_ms).await?)
    } else {
        None
    };

    // footfall: the events go straight into its store's schedule, to the handlers in turn.
    let api = Api::new(base, token);
    let receiver = Receiver::start(event_of)?;
    let hole = black_hole()?;
    let mut setups = Vec::with_capacity(handlers);
    for h in 0..handlers {
        let url = if h >= handlers - black_holes {
            &hole
        } else {
            &receiver.url
        };
        setups.push(setup(&api, url).await?);
    }
    let store = RedisStore::connect(
        redis_url,
        RedisOptions {
            key_prefix: prefix.clone(),
            schedule_shards: shards,
            event_retention_secs: 3600,
            response_timeout: Duration::from_secs(5),
            durable_writes: None,
        },
    )
    .await?;
    let store: Arc<dyn Store> = Arc::new(store);
    let account =
        api.get("/api/v4/leads/pipelines").await?["_embedded"]["pipelines"][0]["account_id"]
            .as_u64()
            .unwrap_or(0);
    // Scheduling 100 000 events takes a few seconds; the first is due after that.
    let start = now_ms() + 5000 + n as i64 / 50;
    let mut due = HashMap::with_capacity(n);
    let mut batch = Vec::new();
    for i in 0..n {
        let at = start + (i as f64 * 1000.0 / rate) as i64;
        let h = i % handlers;
        let event = event(account, &setups[h], at);
        if h < handlers - black_holes {
            due.insert(event.id.to_string(), at);
        }
        let store = store.clone();
        batch.push(tokio::spawn(async move { store.save_event(&event).await }));
        if batch.len() == 500 {
            for t in batch.drain(..) {
                t.await??;
            }
        }
    }
    for t in batch {
        t.await??;
    }
    let scheduled_by = now_ms();
    println!(
        "scheduled {n} events for {handlers} handler(s){} ({:.1} s before the first was due); \
         due over {:.1} s at {rate:.0}/s",
        if black_holes > 0 {
            format!(", {black_holes} of them a black hole (accepts, never answers)")
        } else {
            String::new()
        },
        (start - scheduled_by) as f64 / 1000.0,
        span_ms as f64 / 1000.0
    );
    wait_for(&receiver, due.len(), start + span_ms + 30_000).await;
    let name = if black_holes > 0 {
        format!(
            "footfall scheduler, the {} answering handlers",
            handlers - black_holes
        )
    } else {
        "footfall scheduler".to_owned()
    };
    let (p99, max) = report(&name, &due, &receiver.arrivals());
    println!(
        "targets: max ≤ {TARGET_MAX_MS:.0} ms ({}), p99 ≤ {TARGET_P99_MS:.0} ms ({})",
        if max <= TARGET_MAX_MS {
            "met"
        } else {
            "MISSED"
        },
        if p99 <= TARGET_P99_MS {
            "met"
        } else {
            "MISSED"
        }
    );
    if let Some(floor) = floor {
        println!("footfall p99 / baseline p99: {:.2}", p99 / floor.max(0.1));
    }
    Ok(())
}

//! Scheduler lateness: `N` events scheduled straight into the store, due at a steady rate,
//! fired by a running footfall; lateness is when the receiver has each webhook minus when
//! it was due. The baseline runs the same schedule with nothing but a tokio timer and an
//! HTTP POST per event, in this process: the floor any scheduler can reach here.
//! `bench-lateness FOOTFALL_URL TOKEN REDIS_URL KEY_PREFIX SHARDS N RATE_PER_SECOND`

use std::collections::HashMap;
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
use footfall_bench::{Api, Receiver, now_ms, setup, summary};
use serde_json::Value;

fn event_of(body: &Value) -> Option<String> {
    body["meta"]["event_id"].as_str().map(str::to_owned)
}

fn report(name: &str, due: &HashMap<String, i64>, arrivals: &HashMap<String, i64>) -> f64 {
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
    p99
}

async fn wait_for(receiver: &Receiver, n: usize, deadline_ms: i64) {
    while receiver.count() < n && now_ms() < deadline_ms {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, token, redis_url, prefix, shards, n, rate] = args.as_slice() else {
        anyhow::bail!(
            "usage: bench-lateness FOOTFALL_URL TOKEN REDIS_URL KEY_PREFIX SHARDS N RATE_PER_SECOND"
        );
    };
    let (shards, n, rate): (u32, usize, f64) = (shards.parse()?, n.parse()?, rate.parse()?);
    let span_ms = (n as f64 / rate * 1000.0) as i64;

    // The baseline: a timer per event, an HTTP POST at its time.
    let baseline = Receiver::start(event_of)?;
    let client = reqwest::Client::new();
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
    let floor = report(
        "baseline (tokio timer + HTTP POST)",
        &due,
        &baseline.arrivals(),
    );

    // footfall: the events go straight into its store's schedule.
    let api = Api::new(base, token);
    let receiver = Receiver::start(event_of)?;
    let s = setup(&api, &receiver.url).await?;
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
        let event = EventRecord {
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
            due_at: at,
            state: DeliveryState::Scheduled,
            body: None,
            attempts: vec![],
            failures: 0,
            next_attempt_at: None,
            reason: None,
        };
        due.insert(event.id.to_string(), at);
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
        "scheduled {n} events ({:.1} s before the first was due); due over {:.1} s at {rate:.0}/s",
        (start - scheduled_by) as f64 / 1000.0,
        span_ms as f64 / 1000.0
    );
    wait_for(&receiver, n, start + span_ms + 30_000).await;
    let p99 = report("footfall scheduler", &due, &receiver.arrivals());
    println!("footfall p99 / baseline p99: {:.2}", p99 / floor.max(0.1));
    Ok(())
}

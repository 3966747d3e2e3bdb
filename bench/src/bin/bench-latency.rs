//! Visit → webhook latency for an immediate site-visit action: from the moment a beacon
//! that starts a visit is sent to the moment the receiver has the webhook.
//! `bench-latency FOOTFALL_URL TOKEN VISITS RATE_PER_SECOND`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use footfall_bench::{Api, Receiver, now_ms, setup, summary};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

fn lead_of(body: &Value) -> Option<String> {
    body["event"]["data"]["id"].as_u64().map(|l| l.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, token, visits, rate] = args.as_slice() else {
        anyhow::bail!("usage: bench-latency FOOTFALL_URL TOKEN VISITS RATE_PER_SECOND");
    };
    let (visits, rate): (usize, u64) = (visits.parse()?, rate.parse()?);
    let api = Api::new(base, token);
    let receiver = Receiver::start(lead_of)?;
    let s = setup(&api, &receiver.url).await?;

    // Leads whose browsers have not visited yet: each browser's first beacon starts a visit.
    // Names of this run's own, so that no form joins a contact of an earlier run.
    let run = rand::random::<u32>();
    let slots = Arc::new(Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..visits {
        let (api, form, stage, permit) = (
            api.clone(),
            s.form_id.clone(),
            s.first_contact,
            slots.clone().acquire_owned().await?,
        );
        tasks.spawn(async move {
            let (lead, uid, vid) = api.submit(&form, &format!("Visitor {run} {i}")).await?;
            api.post(
                &format!("/api/v4/leads/unsorted/{uid}/accept"),
                json!({"status_id": stage}),
            )
            .await?;
            drop(permit);
            anyhow::Ok((lead, vid))
        });
    }
    let mut browsers = Vec::with_capacity(visits);
    while let Some(done) = tasks.join_next().await {
        browsers.push(done??);
    }

    let sent: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let started = now_ms();
    for (lead, vid) in browsers {
        tick.tick().await;
        let (api, site, sent) = (api.clone(), s.site_key.clone(), sent.clone());
        tasks.spawn(async move {
            sent.lock().insert(lead.to_string(), now_ms());
            api.beacon(&site, Some(&vid), "https://shop.example/pricing")
                .await?;
            anyhow::Ok((0, String::new()))
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let sending = now_ms() - started;
    for _ in 0..100 {
        if receiver.count() >= visits {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let arrivals = receiver.arrivals();
    let sent = sent.lock().clone();
    let latencies: Vec<f64> = arrivals
        .iter()
        .filter_map(|(lead, at)| sent.get(lead).map(|t| (at - t) as f64))
        .collect();
    let received = latencies.len();
    let (p50, p99, max) = summary(latencies);
    println!(
        "visit→webhook: {received}/{visits} webhooks at {:.0} visits/s: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        visits as f64 * 1000.0 / sending.max(1) as f64
    );
    if received < visits {
        anyhow::bail!("{} webhooks never arrived", visits - received);
    }
    Ok(())
}

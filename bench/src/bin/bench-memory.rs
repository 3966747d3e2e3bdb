//! Redis memory per linked visitor and per retained page view: `N` form submissions (each a
//! lead, contact, contact index entry, Unsorted entry, timeline and the browser's link to
//! the lead), then a visit of each browser, then `PAGE_VIEWS` page views each, written
//! through footfall's Redis store into an empty Redis; `INFO memory` between the steps.
//! The browser's link is made with its lead and counted with it; what a visit and its page
//! views add is the browser's own cost.
//! `bench-memory REDIS_URL N PAGE_VIEWS`

use std::sync::Arc;
use std::time::Duration;

use footfall::domain::ids::{
    AccountId, ContactId, FormId, LeadId, PipelineId, SiteId, SiteKey, StatusId, UnsortedUid,
};
use footfall::domain::lead::{Contact, Lead, Unsorted, UnsortedMetadata};
use footfall::domain::site::Site;
use footfall::domain::tracking::{PageUrl, PageView};
use footfall::domain::visitor::VisitorId;
use footfall::store::redis::{RedisOptions, RedisStore};
use footfall::store::{Fingerprints, NewSubmission, PageViewWrite, Store};
use futures_like::run_all;

const RETENTION: u64 = 395 * 86_400;
/// A short idle gap, so that the last sightings (kept only as long as a visit runs) are
/// gone when the retained memory is measured.
const IDLE_MS: i64 = 1000;

async fn dbsize(url: &str) -> anyhow::Result<i64> {
    let mut con = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    Ok(redis::cmd("DBSIZE").query_async(&mut con).await?)
}

/// Waits out the idle gap, then walks the keyspace: Redis drops the expired keys a SCAN
/// meets (its background expiry leaves a few percent behind), until `keys` are left.
async fn wait_for_keys(url: &str, keys: i64) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(IDLE_MS as u64 + 1500)).await;
    let mut con = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    for _ in 0..20 {
        let mut cursor: u64 = 0;
        loop {
            let (next, _): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await?;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        // The site's per-day statistics are a few keys in all, not a key per browser.
        if dbsize(url).await? - stats_keys(&mut con).await?.len() as i64 <= keys {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("the last sightings did not expire")
}

/// The statistics keys (`ff…:{s<site>}:st:…`).
async fn stats_keys(con: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("*:st:*")
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await?;
        keys.extend(found);
        cursor = next;
        if cursor == 0 {
            return Ok(keys);
        }
    }
}

async fn used_memory(url: &str) -> anyhow::Result<i64> {
    let mut con = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut con)
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no used_memory in INFO"))
}

fn page_view(i: usize, j: usize, at: i64) -> PageView {
    let product = (i * 7 + j) % 5000;
    let url = format!("https://shop.example/catalog/product-{product}?utm_source=newsletter");
    let referrer = if j == 0 {
        "https://www.google.com/"
    } else {
        ""
    };
    match PageUrl::parse(&url) {
        Some(page) => PageView::new(
            at,
            SiteId(1),
            page,
            &format!("Product {product} — Shop"),
            referrer,
        ),
        None => unreachable!("a well-formed URL"),
    }
}

mod futures_like {
    /// Runs the futures `width` at a time.
    pub async fn run_all<F>(futures: Vec<F>, width: usize) -> anyhow::Result<()>
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let mut pending = tokio::task::JoinSet::new();
        for f in futures {
            if pending.len() >= width {
                pending.join_next().await.transpose()?.transpose()?;
            }
            pending.spawn(f);
        }
        while let Some(done) = pending.join_next().await {
            done??;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, n, page_views] = args.as_slice() else {
        anyhow::bail!("usage: bench-memory REDIS_URL N PAGE_VIEWS");
    };
    let (n, page_views): (usize, usize) = (n.parse()?, page_views.parse()?);
    let mut con = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut con).await?;
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(
            url,
            RedisOptions {
                key_prefix: "ff".into(),
                schedule_shards: 8,
                event_retention_secs: 86_400,
                response_timeout: Duration::from_secs(5),
                durable_writes: None,
            },
        )
        .await?,
    );
    let visitors: Vec<VisitorId> = (0..n).map(|_| VisitorId::mint()).collect();
    let now = footfall::domain::time::now_ms();
    // The page views' site (their URLs are stored relative to its origin).
    let site = Site {
        id: SiteId(1),
        account_id: AccountId(1),
        key: SiteKey::generate(),
        name: "Shop".into(),
        url: "https://shop.example".into(),
        hosts: vec!["shop.example".into()],
        respect_opt_out: false,
        consent: Default::default(),
        consent_days: None,
        visit_idle_seconds: None,
        created_at: now,
    };
    footfall::store::catalog::put(&*store, &site).await?;
    let empty = used_memory(url).await?;

    // The leads: each a form submission (lead, contact, its index, Unsorted entry,
    // timeline) that links its browser.
    let work = visitors.iter().enumerate().map(|(i, v)| {
        let (store, v) = (store.clone(), *v);
        async move {
            let (id, contact_id) = (LeadId(i as u64 + 1), ContactId(i as u64 + 1));
            let lead = Lead {
                id,
                account_id: AccountId(1),
                name: format!("Contact: Visitor {i}"),
                pipeline_id: PipelineId(1),
                status_id: StatusId(1001),
                created_at: now,
                updated_at: now,
                contacts: vec![Contact {
                    id: contact_id,
                    name: format!("Visitor {i}"),
                    phone: None,
                    email: Some(format!("visitor{i}@example.com")),
                    is_main: true,
                }],
            };
            let uid = UnsortedUid(format!("u{i}"));
            let submission = NewSubmission {
                account: AccountId(1),
                fingerprints: Fingerprints {
                    looked_up: format!("f{i}"),
                    minted_browser: None,
                },
                duplicate_window_secs: 1,
                contact_keys: vec![format!("email:visitor{i}@example.com")],
                unsorted: Unsorted {
                    uid,
                    account_id: AccountId(1),
                    category: "forms".into(),
                    pipeline_id: PipelineId(1),
                    created_at: now,
                    metadata: UnsortedMetadata {
                        form_id: FormId("fContact".into()),
                        form_name: "Contact".into(),
                        form_page: "https://shop.example/contact".into(),
                        ip: "203.0.113.7".into(),
                        referer: String::new(),
                        visitor_uid: Some(v.encode()),
                        form_sent_at: now / 1000,
                        duplicate_of_lead_id: None,
                        utm: None,
                    },
                    lead_id: id,
                    contact_id,
                },
                lead,
                browser: Some(v),
                at: now,
                link_retention_secs: RETENTION,
            };
            store.create_lead_from_submission(&submission).await?;
            anyhow::Ok(())
        }
    });
    run_all(work.collect(), 256).await?;
    // The fingerprints of the duplicate check expire after a second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let leads = used_memory(url).await?;
    let lead_keys = dbsize(url).await?;

    // Each visitor: a first page view and its visit.
    let work = visitors.iter().enumerate().map(|(i, v)| {
        let (store, v) = (store.clone(), *v);
        async move {
            let pv = page_view(i, 0, now);
            store
                .record_page_view(PageViewWrite {
                    account: AccountId(1),
                    visitor: v,
                    page_view: pv,
                    visit_idle_ms: IDLE_MS,
                    watch: false,
                })
                .await?;
            store
                .start_visit(AccountId(1), v, RETENTION, RETENTION, 1000)
                .await?;
            anyhow::Ok(())
        }
    });
    run_all(work.collect(), 256).await?;
    let active = used_memory(url).await?;
    // Once the visits are over, a visitor keeps only its history (one key).
    wait_for_keys(url, lead_keys + n as i64).await?;
    let linked = used_memory(url).await?;

    // The rest of the page views.
    let work = visitors.iter().enumerate().map(|(i, v)| {
        let (store, v) = (store.clone(), *v);
        async move {
            for j in 1..page_views {
                let pv = page_view(i, j, now + j as i64 * 1000);
                store
                    .record_page_view(PageViewWrite {
                        account: AccountId(1),
                        visitor: v,
                        page_view: pv,
                        visit_idle_ms: IDLE_MS,
                        watch: false,
                    })
                    .await?;
            }
            anyhow::Ok(())
        }
    });
    run_all(work.collect(), 256).await?;
    wait_for_keys(url, lead_keys + n as i64).await?;
    let full = used_memory(url).await?;

    let per_page_view = (full - linked) as f64 / (n * (page_views - 1)) as f64;
    let mut con = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut stats_bytes = 0i64;
    let stats = stats_keys(&mut con).await?;
    for key in &stats {
        let used: Option<i64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .query_async(&mut con)
            .await?;
        stats_bytes += used.unwrap_or(0);
    }
    println!(
        "statistics counters: {} keys, {stats_bytes} bytes in all ({:.2} bytes per page view, included below)",
        stats.len(),
        stats_bytes as f64 / (n * page_views) as f64
    );
    let per_visitor = (linked - leads) as f64 / n as f64 - per_page_view;
    let per_lead = (leads - empty) as f64 / n as f64;
    let during_visit = (active - linked) as f64 / n as f64;
    println!(
        "redis memory: {n} linked visitors × {page_views} page views: {:.1} MB in all; \
         {per_visitor:.0} bytes per linked visitor (history, visit count; \
         +{during_visit:.0} while a visit runs), {per_page_view:.0} bytes per page view \
         (for reference: {per_lead:.0} bytes per lead with its Unsorted entry, contact \
         index and browser link)",
        (full - empty) as f64 / 1e6
    );
    Ok(())
}

//! Shared pieces of footfall's benchmark drivers: a small API client that sets up a site,
//! a form, a handler and an action on a running footfall, a webhook receiver that notes
//! when each event arrives, and percentiles; and many distinct browsers (`visitors`).

pub mod visitors;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// A browser's user agent (footfall drops bots).
pub const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The management API of one footfall.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    token: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Self {
        let client = footfall::http_client()
            .user_agent(BROWSER)
            .pool_max_idle_per_host(256)
            // Below actix's 5 s keep-alive, so no request goes out on a closing connection.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            client,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let response = req.send().await.with_context(|| what.to_owned())?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{what}: {status} {body}");
        }
        Ok(body)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.token),
            path,
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.with_body(reqwest::Method::POST, path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.with_body(reqwest::Method::PATCH, path, body).await
    }

    async fn with_body(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = self.client.request(method, url).bearer_auth(&self.token);
        self.send(request.json(&body), path).await
    }

    /// A page view as t.js sends it; returns the newly minted visitor id, if any.
    pub async fn beacon(
        &self,
        site: &str,
        vid: Option<&str>,
        url: &str,
    ) -> anyhow::Result<Option<String>> {
        let body = json!({"site": site, "vid": vid, "url": url, "referrer": "https://www.google.com/", "title": "Product page — Shop"});
        let response = self
            .client
            .post(format!("{}/v1/collect", self.base))
            .body(body.to_string())
            .send()
            .await?;
        match response.status().as_u16() {
            200 => Ok(response.json::<Value>().await?["vid"]
                .as_str()
                .map(str::to_owned)),
            204 => Ok(None),
            other => bail!("beacon answered {other}"),
        }
    }

    /// Submits the form as a new browser; returns (lead id, unsorted uid, signed visitor).
    pub async fn submit(&self, form: &str, name: &str) -> anyhow::Result<(u64, String, String)> {
        let body = json!({"page": "https://shop.example/contact",
            "fields": {"name": name, "email": format!("{}@bench.example", name.replace(' ', "."))}});
        let response = self
            .client
            .post(format!("{}/v1/forms/{form}/submit", self.base))
            .json(&body)
            .send()
            .await?;
        if response.status() != 201 {
            bail!("form answered {}", response.status());
        }
        let v: Value = response.json().await?;
        Ok((
            v["lead_id"].as_u64().context("lead_id")?,
            v["uid"].as_str().context("uid")?.to_owned(),
            v["vid"].as_str().context("vid")?.to_owned(),
        ))
    }
}

/// What the benchmarks create on a footfall.
pub struct Setup {
    pub site_key: String,
    pub form_id: String,
    pub first_contact: u64,
    pub lead_id: u64,
    pub action_id: u64,
    pub handler_id: u64,
    pub pipeline_id: u64,
}

/// A site, a form, a handler at `webhook_url` and a site-visit action on "First contact".
pub async fn setup(api: &Api, webhook_url: &str) -> anyhow::Result<Setup> {
    let pipelines = api.get("/api/v4/leads/pipelines").await?;
    let p = &pipelines["_embedded"]["pipelines"][0];
    let pipeline_id = p["id"].as_u64().context("pipeline")?;
    let first_contact = p["_embedded"]["statuses"][1]["id"]
        .as_u64()
        .context("status")?;
    let site = api
        .post(
            "/api/v4/sites",
            json!([{"name": "Shop", "url": "https://shop.example"}]),
        )
        .await?;
    let site_key = site["_embedded"]["sites"][0]["key"]
        .as_str()
        .context("key")?
        .to_owned();
    let site_id = &site["_embedded"]["sites"][0]["id"];
    let form = api
        .post(
            "/api/v4/forms",
            json!([{"name": "Contact", "site_id": site_id, "pipeline_id": pipeline_id}]),
        )
        .await?;
    let form_id = form["_embedded"]["forms"][0]["id"]
        .as_str()
        .context("form")?
        .to_owned();
    // Several benchmarks share one footfall: each gets a handler of its own.
    let code = format!("bench-{}", rand::random::<u32>());
    let handler = api
        .post(
            "/api/v4/handlers",
            json!([{"code": code, "name": "Bench", "webhook_url": webhook_url,
            "settings": {"message": {"name": "Message", "type": "text"}}}]),
        )
        .await?;
    let handler_id = handler["_embedded"]["handlers"][0]["id"]
        .as_u64()
        .context("handler")?;
    let action = api
        .post(
            "/api/v4/actions",
            json!([{"pipeline_id": pipeline_id, "status_ids": [first_contact],
            "event": "site_visit", "handler": code, "site_url": "https://shop.example",
            "settings": {"message": "Hi {{contact.name}}"}}]),
        )
        .await?;
    let action_id = action["_embedded"]["actions"][0]["id"]
        .as_u64()
        .context("action")?;
    let (lead_id, uid, _) = api.submit(&form_id, &format!("Bench Lead {code}")).await?;
    api.post(
        &format!("/api/v4/leads/unsorted/{uid}/accept"),
        json!({"status_id": first_contact}),
    )
    .await?;
    Ok(Setup {
        site_key,
        form_id,
        first_contact,
        lead_id,
        action_id,
        handler_id,
        pipeline_id,
    })
}

/// Arrival times by key, and how to find the key of a body.
type Arrivals = (
    Arc<Mutex<HashMap<String, i64>>>,
    fn(&Value) -> Option<String>,
);

/// A webhook receiver on a free loopback port: the wall-clock millisecond each body
/// arrived, keyed by `key(body)`.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    arrivals: Arc<Mutex<HashMap<String, i64>>>,
}

impl Receiver {
    pub fn start(key: fn(&Value) -> Option<String>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
        let arrivals = Arc::new(Mutex::new(HashMap::new()));
        let data = web::Data::new((arrivals.clone(), key));
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).default_service(web::to(
                |body: web::Bytes, data: web::Data<Arrivals>| async move {
                    let at = now_ms();
                    if let Some(k) = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .as_ref()
                        .and_then(data.1)
                    {
                        data.0.lock().entry(k).or_insert(at);
                    }
                    HttpResponse::Ok().finish()
                },
            ))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        tokio::spawn(server);
        Ok(Self { url, arrivals })
    }

    pub fn count(&self) -> usize {
        self.arrivals.lock().len()
    }

    pub fn arrivals(&self) -> HashMap<String, i64> {
        self.arrivals.lock().clone()
    }
}

/// The p-th percentile (0–100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// "p50 … p99 … max …" of a list of milliseconds.
pub fn summary(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.total_cmp(b));
    (
        percentile(&values, 50.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or(f64::NAN),
    )
}

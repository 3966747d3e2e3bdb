//! Prepares the beacon benchmark: a site on a running footfall and `N` known visitors
//! (each has made a first page view, so every later beacon is inside a running visit),
//! written as one beacon body per line for wrk.
//! `bench-prepare FOOTFALL_URL TOKEN N OUT_FILE`

use std::io::Write;

use anyhow::Context;
use footfall_bench::{Api, setup};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, token, n, out] = args.as_slice() else {
        anyhow::bail!("usage: bench-prepare FOOTFALL_URL TOKEN N OUT_FILE");
    };
    let n: usize = n.parse().context("N")?;
    let api = Api::new(base, token);
    let s = setup(&api, "https://hooks.example/bench").await?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut lengths = 0;
    for i in 0..n {
        let url = format!("https://shop.example/catalog/product-{i}?ref=mail");
        let vid = api
            .beacon(&s.site_key, None, &url)
            .await?
            .context("a new visitor gets an id")?;
        let body = json!({"site": s.site_key, "vid": vid, "url": url,
            "referrer": "https://shop.example/catalog", "title": format!("Product {i} — Shop")})
        .to_string();
        lengths += body.len();
        writeln!(file, "{body}")?;
    }
    file.flush()?;
    // Its handler's address is made up: later benchmarks on this footfall must not have
    // their visits fire webhooks at it.
    api.patch(
        &format!("/api/v4/actions/{}", s.action_id),
        json!({"enabled": false}),
    )
    .await?;
    println!(
        "{n} visitors, beacon bodies of {} bytes on average",
        lengths / n.max(1)
    );
    Ok(())
}

//! Prepares the forms benchmark: a site and a contact form (name required, as by default)
//! on a running footfall; prints the form's id.
//! `bench-form FOOTFALL_URL TOKEN`

use anyhow::Context;
use footfall_bench::Api;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, token] = args.as_slice() else {
        anyhow::bail!("usage: bench-form FOOTFALL_URL TOKEN");
    };
    let api = Api::new(base, token);
    let pipelines = api.get("/api/v4/leads/pipelines").await?;
    let pipeline_id = pipelines["_embedded"]["pipelines"][0]["id"]
        .as_u64()
        .context("pipeline")?;
    let site = api
        .post(
            "/api/v4/sites",
            json!([{"name": "Forms", "url": "https://shop.example"}]),
        )
        .await?;
    let site_id = &site["_embedded"]["sites"][0]["id"];
    let form = api
        .post(
            "/api/v4/forms",
            json!([{"name": "Contact us", "site_id": site_id, "pipeline_id": pipeline_id}]),
        )
        .await?;
    println!(
        "{}",
        form["_embedded"]["forms"][0]["id"]
            .as_str()
            .context("form id")?
    );
    Ok(())
}

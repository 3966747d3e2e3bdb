//! Prepares the distinct-browsers benchmarks: a site on a running footfall, `N` browsers
//! with visitor ids signed with the footfall's cookie key (as its tracker would have been
//! given them), each with one of `UAS` user agents drawn from a realistic mix. Writes
//! `OUT_DIR/vids.txt` (a signed id and the index of its user agent per line, for
//! `bench/stream.lua`), `OUT_DIR/uas.txt` and `OUT_DIR/site.txt`; then checks that the
//! footfall accepts a sample of the ids (204, where a refused id would get a new one, 200).
//! `bench-visitors FOOTFALL_URL TOKEN COOKIE_KEY COOKIE_NAME N UAS OUT_DIR`

use std::io::Write;

use anyhow::{Context, bail};
use footfall_bench::visitors::{Signer, user_agents};
use footfall_bench::{Api, BROWSER};
use rand::SeedableRng;
use serde_json::json;

/// Ids checked against the server; they become known to it, a negligible share.
const SAMPLE: usize = 20;
/// The account of the bench's config (`scripts/bench.sh`): ids are signed for it.
const BENCH_ACCOUNT: u64 = 1;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, token, key, cookie_name, n, uas, out] = args.as_slice() else {
        bail!("usage: bench-visitors FOOTFALL_URL TOKEN COOKIE_KEY COOKIE_NAME N UAS OUT_DIR");
    };
    let (n, uas): (usize, usize) = (n.parse().context("N")?, uas.parse().context("UAS")?);
    let api = Api::new(base, token);
    let site = api
        .post(
            "/api/v4/sites",
            json!([{"name": "Many browsers", "url": "https://shop.example"}]),
        )
        .await?;
    let site_key = site["_embedded"]["sites"][0]["key"]
        .as_str()
        .context("site key")?
        .to_owned();
    std::fs::create_dir_all(out)?;
    std::fs::write(format!("{out}/site.txt"), &site_key)?;

    let (agents, bots) = user_agents(uas, 19);
    let mut file = std::io::BufWriter::new(std::fs::File::create(format!("{out}/uas.txt"))?);
    for agent in &agents {
        writeln!(file, "{agent}")?;
    }
    file.flush()?;
    let distinct = agents
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();

    let signer = Signer::new(key, cookie_name, BENCH_ACCOUNT)?;
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut file = std::io::BufWriter::new(std::fs::File::create(format!("{out}/vids.txt"))?);
    let mut sample = Vec::with_capacity(SAMPLE);
    for i in 0..n {
        let vid = signer.mint(&mut rng);
        // Lua indexes from 1; lines of one length, so that the stream can start anywhere.
        writeln!(file, "{vid}\t{:06}", i % uas.max(1) + 1)?;
        if i % (n / SAMPLE).max(1) == 0 && sample.len() < SAMPLE {
            sample.push(vid);
        }
    }
    file.flush()?;

    // The server must take these ids as its own: 204, not 200 with a new id.
    let client = footfall::http_client().user_agent(BROWSER).build()?;
    for vid in &sample {
        let body =
            json!({"site": site_key, "vid": vid, "url": "https://shop.example/", "title": "Shop"});
        let answer = client
            .post(format!("{}/v1/collect", api.base))
            .body(body.to_string())
            .send()
            .await?;
        if answer.status() != 204 {
            bail!(
                "footfall answered {} to a signed id: the bench does not sign as it does",
                answer.status()
            );
        }
    }
    println!(
        "{n} browsers with signed ids ({SAMPLE} checked: accepted), {uas} user agents \
         ({distinct} distinct; {:.1} % crawlers or headless)",
        bots as f64 * 100.0 / uas.max(1) as f64
    );
    Ok(())
}

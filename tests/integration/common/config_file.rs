//! The config file of a footfall process started by a test: one Redis, a key prefix, a
//! cookie key, account A, fast delivery, limits and quotas off — and whatever `extra` adds
//! (TOML tables that the base does not have, or `[[accounts]]`; an `extra` with its own
//! `[quotas]` table replaces the base's).

pub fn footfall_toml(redis_url: &str, prefix: &str, cookie_key: &str, extra: &str) -> String {
    footfall_toml_on(
        &format!("redis_url = \"{redis_url}\""),
        prefix,
        cookie_key,
        extra,
    )
}

/// The same on any store: `store` is the `[store]` table's location line
/// (`redis_url = "…"` or `redis_cluster_urls = […]`).
pub fn footfall_toml_on(store: &str, prefix: &str, cookie_key: &str, extra: &str) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 1
static_dir = "{static_dir}"

[store]
{store}
key_prefix = "{prefix}"

[cookies]
keys = ["{cookie_key}"]

[delivery]
allow_private_targets = true
retry_schedule_seconds = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
jitter_ratio = 0.0
timeout_ms = 2000
lease_seconds = 3
poll_interval_ms = 100

[limits]
per_ip_per_second = 0
per_site_per_second = 0
{quotas}
[[accounts]]
account_id = {account}
subdomain = "{subdomain}"
token = "{token}"
{extra}
"#,
        static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/static"),
        account = super::ACCOUNT,
        subdomain = super::SUBDOMAIN,
        token = super::TOKEN,
        quotas = if extra.contains("[quotas]") {
            ""
        } else {
            QUOTAS_OFF
        },
    )
}

/// Every quota off (the base's `[quotas]`).
const QUOTAS_OFF: &str = "
[quotas]
page_views_per_second_per_address = 0
page_views_per_second_per_site = 0
page_views_per_second_per_account = 0
new_visitors_per_hour_per_address = 0
new_visitors_per_hour_per_site = 0
new_visitors_per_hour_per_account = 0
form_posts_per_hour_per_address = 0
form_posts_per_hour_per_site = 0
form_posts_per_hour_per_account = 0
";

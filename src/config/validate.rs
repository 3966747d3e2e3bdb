//! The checks a configuration must pass before footfall starts: values in range, keys and
//! tokens usable, and nothing unsafe on an address the internet can reach.

use secrecy::ExposeSecret;

use super::{ConfigError, DEMO_TOKEN, MIN_PUBLIC_TOKEN_CHARS, Settings};

impl Settings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.store.key_prefix.is_empty() || self.store.key_prefix.contains(['{', '}', ' ']) {
            return invalid("store.key_prefix must be non-empty, without spaces or braces".into());
        }
        if !self.store.redis_sentinels.is_empty() {
            if self.store.redis_sentinel_master.is_empty() {
                return invalid(
                    "store.redis_sentinels needs store.redis_sentinel_master (the name the \
                     Sentinels monitor the primary by)"
                        .into(),
                );
            }
            if !self.store.redis_cluster_urls.is_empty() {
                return invalid(
                    "store.redis_sentinels and store.redis_cluster_urls exclude each other".into(),
                );
            }
        }
        if !matches!(self.cookies.same_site.as_str(), "Lax" | "Strict" | "None") {
            return invalid("cookies.same_site must be Lax, Strict or None".into());
        }
        if self.cookies.same_site == "None" && !self.cookies.secure {
            return invalid("cookies.same_site = \"None\" needs cookies.secure = true".into());
        }
        if self.delivery.retry_schedule_seconds.is_empty() {
            return invalid("delivery.retry_schedule_seconds needs at least one wait".into());
        }
        if !(0.0..1.0).contains(&self.delivery.jitter_ratio) {
            return invalid("delivery.jitter_ratio must be in [0, 1)".into());
        }
        if self.delivery.timeout_ms == 0
            || self.delivery.lease_seconds * 1000 <= self.delivery.timeout_ms
        {
            return invalid(
                "delivery.lease_seconds must be longer than delivery.timeout_ms".into(),
            );
        }
        if self.delivery.concurrency == 0 || self.delivery.schedule_shards == 0 {
            return invalid(
                "delivery.concurrency and delivery.schedule_shards must be positive".into(),
            );
        }
        if !(self.delivery.account_share > 0.0 && self.delivery.account_share <= 1.0) {
            return invalid("delivery.account_share must be in (0, 1]".into());
        }
        if self.tracking.visit_idle_seconds == 0 || self.tracking.max_page_views_per_visitor == 0 {
            return invalid(
                "tracking.visit_idle_seconds and max_page_views_per_visitor must be positive"
                    .into(),
            );
        }
        if let Err(entry) = self.proxy_trust() {
            return invalid(format!(
                "server.trusted_proxies: `{entry}` is not an address or a CIDR range (e.g. 10.0.0.0/8)"
            ));
        }
        let anonymous = self.tracking.anonymous_retention_hours;
        if anonymous.is_nan() || anonymous <= 0.0 {
            return invalid("tracking.anonymous_retention_hours must be positive".into());
        }
        if self.delivery.poll_interval_ms == 0 {
            return invalid(
                "delivery.poll_interval_ms must be positive (0 would ask Redis for due events \
                 without a pause)"
                    .into(),
            );
        }
        if self.store.response_timeout_ms == 0 {
            return invalid(
                "store.response_timeout_ms must be positive (0: every command would time out)"
                    .into(),
            );
        }
        if self.limits.body_timeout_ms == 0 {
            return invalid("limits.body_timeout_ms must be positive".into());
        }
        let public_url = url::Url::parse(&self.server.public_url);
        if !public_url.is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
            return invalid(format!(
                "server.public_url must be the http(s) URL browsers reach footfall at, with \
                 its host (e.g. https://t.shop.example), not {:?}",
                self.server.public_url
            ));
        }
        if self.demo.enabled
            && self
                .accounts
                .iter()
                .any(|a| a.account_id == self.demo.account_id)
        {
            return invalid(format!(
                "the demo lives in an account of its own, but demo.account_id {} is also in \
                 [[accounts]]: give the demo another demo.account_id, or set demo.enabled = false",
                self.demo.account_id
            ));
        }
        let accounts = self.all_accounts();
        let mut seen = std::collections::HashSet::new();
        let mut tokens = std::collections::HashMap::new();
        for a in &accounts {
            let token = a.token.expose_secret();
            if token.len() < 8 {
                return invalid(format!(
                    "accounts[{}].token must have at least 8 characters",
                    a.account_id
                ));
            }
            if a.subdomain.is_empty() {
                return invalid(format!("accounts[{}].subdomain is empty", a.account_id));
            }
            if !seen.insert(a.account_id) {
                return invalid(format!("account_id {} appears twice", a.account_id));
            }
            if let Some(other) = tokens.insert(token, a.account_id) {
                return invalid(format!(
                    "accounts {other} and {} have the same token: each account needs a token \
                     of its own (e.g. `openssl rand -hex 20`)",
                    a.account_id
                ));
            }
        }
        if let Some(afar) = self.reachable_from_afar() {
            for a in &accounts {
                let token = a.token.expose_secret();
                let fix = "set a token of its own of at least 32 characters (`footfall init` \
                           writes one), or keep footfall on loopback";
                if token == DEMO_TOKEN {
                    let whose = if self.demo.enabled && a.account_id == self.demo.account_id {
                        "the demo's account (demo.enabled = true) has".to_owned()
                    } else {
                        format!("accounts[{}] has", a.account_id)
                    };
                    return invalid(format!(
                        "{afar} while {whose} the published demo token: set \
                         demo.enabled = false, or {fix}"
                    ));
                }
                if token.len() < MIN_PUBLIC_TOKEN_CHARS {
                    return invalid(format!(
                        "{afar} while the token of account {} has {} characters: {fix}",
                        a.account_id,
                        token.chars().count()
                    ));
                }
            }
        }
        if self.uses_redis() && self.delivery.event_retention_days == 0 {
            return invalid(
                "delivery.event_retention_days must be at least 1 with Redis (a record's \
                 expiry cannot be 0 there)"
                    .into(),
            );
        }
        if self.uses_redis() && self.cookies.keys.is_empty() {
            return invalid(
                "cookies.keys is empty: with Redis, visitors must outlive restarts and be shared \
                 by instances; set at least one key (e.g. `openssl rand -base64 32`)"
                    .into(),
            );
        }
        Ok(())
    }
}

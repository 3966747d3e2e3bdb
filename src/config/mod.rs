//! Typed settings: built-in defaults, then `config.toml` (or `--config PATH`), then
//! environment variables `FOOTFALL__SECTION__KEY` (lists comma-separated). Validated once
//! at start, so the rest of the code never re-checks them.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::ids::AccountId;

mod load;
mod quotas;
mod validate;

pub use quotas::QuotaSettings;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub tracking: TrackingSettings,
    pub cookies: CookieSettings,
    pub delivery: DeliverySettings,
    pub limits: LimitSettings,
    pub quotas: QuotaSettings,
    pub demo: DemoSettings,
    pub privacy: PrivacySettings,
    pub accounts: Vec<AccountSettings>,
}

/// `[privacy]`: what footfall keeps of an address, and how long an untouched lead lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// How a client's address is stored (Unsorted metadata `ip`): `truncate` (IPv4 /24,
    /// IPv6 /48), `full` or `none`.
    pub ip_mode: crate::domain::privacy::IpMode,
    /// A lead untouched this many days is erased as `DELETE /api/v4/leads/{id}` erases it;
    /// 0 keeps leads.
    pub lead_retention_days: u64,
    /// How often the retention sweep runs (seconds).
    pub retention_sweep_seconds: u64,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            ip_mode: crate::domain::privacy::IpMode::Truncate,
            lead_retention_days: 0,
            retention_sweep_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// Where browsers reach this service (used in snippets and redirects).
    pub public_url: String,
    /// Folder with `t.js` and the console.
    pub static_dir: PathBuf,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Logs as JSON lines instead of text.
    pub json_logs: bool,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed: the client
    /// is the right-most address in it that is not one of them.
    pub trusted_proxies: Vec<String>,
    /// Replaced by `trusted_proxies`, still read: `true` trusts the connection's peer,
    /// whatever it is, and takes the right-most `X-Forwarded-For` address.
    pub trust_proxy_headers: bool,
    /// Bearer token that opens `/metrics` and `/readyz` to requests from other hosts;
    /// empty: they answer only direct requests from loopback.
    pub ops_token: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Empty: the embedded in-memory store.
    pub redis_url: String,
    /// Seed nodes of a Redis Cluster; when set, used instead of `redis_url`.
    pub redis_cluster_urls: Vec<String>,
    /// Redis Sentinels (`host:port` or `redis://…` URLs) that name the primary; when set,
    /// they give the primary's address, with `redis_sentinel_master`, and `redis_url` (if
    /// set) only how to log in to it: user, password, database, `rediss://` for TLS.
    pub redis_sentinels: Vec<String>,
    /// The name the Sentinels know the primary by (`sentinel monitor <name> …`).
    pub redis_sentinel_master: String,
    /// Whether the writes a user would notice wait for a replica (`WAIT 1`) before footfall
    /// answers: `"auto"` (on when the deployment has replicas at start), `true` or `false`.
    pub durable_writes: DurableWrites,
    pub key_prefix: String,
    /// A Redis command with no answer in this time fails (the request answers 503).
    pub response_timeout_ms: u64,
}

/// `store.durable_writes`: `"auto"`, `true` or `false` (also `"on"`/`"off"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurableWrites {
    /// On when Redis reports a replica when footfall starts.
    #[default]
    Auto,
    On,
    Off,
}

impl DurableWrites {
    /// What the store is told: `None` lets it look for replicas.
    pub fn forced(self) -> Option<bool> {
        match self {
            Self::Auto => None,
            Self::On => Some(true),
            Self::Off => Some(false),
        }
    }
}

impl<'de> Deserialize<'de> for DurableWrites {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(true) => Ok(Self::On),
            Raw::Flag(false) => Ok(Self::Off),
            Raw::Word(w) => match w.as_str() {
                "auto" => Ok(Self::Auto),
                "true" | "on" => Ok(Self::On),
                "false" | "off" => Ok(Self::Off),
                other => Err(serde::de::Error::custom(format!(
                    "store.durable_writes must be \"auto\", true or false, not {other:?}"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingSettings {
    /// A gap without page views longer than this ends a visit (Matomo: 30 minutes).
    pub visit_idle_seconds: u64,
    /// Page views kept per visitor (the newest).
    pub max_page_views_per_visitor: u64,
    /// A visitor's history is dropped this long after its last visit.
    pub retention_days: u64,
    /// A visitor that has neither come back in a later visit nor been linked to a lead is
    /// dropped this long after its first visit: junk costs nothing for long.
    /// Fractions are allowed (a benchmark waits minutes, not hours, for junk to expire).
    pub anonymous_retention_hours: f64,
    /// The most browsers linked to one lead at once; a link beyond is refused.
    pub max_browsers_per_lead: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CookieSettings {
    /// Base64 keys of at least 32 bytes: the first signs, all verify.
    pub keys: Vec<SecretString>,
    pub name: String,
    pub max_age_days: u64,
    /// `Domain` of the server-set cookie, when footfall runs on a subdomain of the site.
    pub domain: String,
    /// `Lax`, `Strict` or `None`.
    pub same_site: String,
    pub secure: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// A handler that answers no 2xx within this time has failed the attempt.
    pub timeout_ms: u64,
    /// Allow webhook URLs on loopback and private networks (tests and demos only).
    pub allow_private_targets: bool,
    /// Waits before each retry; after the last, the event is dead-lettered.
    pub retry_schedule_seconds: Vec<u64>,
    /// Each wait varies by up to this share, so that retries do not arrive in waves.
    pub jitter_ratio: f64,
    /// A handler failing for this long is shown as failing.
    pub failing_after_seconds: u64,
    /// A claimed event is taken over by another instance when its claimer is silent for
    /// this long.
    pub lease_seconds: u64,
    /// Deliveries in flight at once per instance.
    pub concurrency: usize,
    /// The share of those one account may hold (a handler holds at most a quarter): its
    /// events over it wait, in order, for its deliveries in flight.
    pub account_share: f64,
    /// The schedule is split into this many Redis keys (spread over a cluster's nodes).
    pub schedule_shards: u32,
    /// Finished events are kept this long.
    pub event_retention_days: u64,
    /// The longest the scheduler sleeps before it looks at the schedule again (jobs other
    /// instances scheduled).
    pub poll_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest request body of the public endpoints, in bytes.
    pub public_body_bytes: usize,
    /// Largest request body of the management API, in bytes.
    pub api_body_bytes: usize,
    /// Page views and form posts per second per client IP (burst: 4×).
    pub per_ip_per_second: u32,
    /// Page views and form posts per second per site (burst: 4×).
    pub per_site_per_second: u32,
    /// A request body that has not all arrived in this time is answered 408.
    pub body_timeout_ms: u64,
    /// Unsorted entries an account may hold; a form post beyond is answered 429 until
    /// someone accepts or declines some. 0: no bound.
    pub max_unsorted_per_account: u64,
}

/// The demo account's published API token (in the shipped `config.toml` and the README).
pub const DEMO_TOKEN: &str = "demo-token-change-me";

/// Shortest API token accepted when footfall listens beyond loopback (`footfall init`
/// makes 40 alphanumeric characters).
pub const MIN_PUBLIC_TOKEN_CHARS: usize = 32;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSettings {
    /// Serve the sample site at `/demo` and the built-in sample handler's inbox.
    pub enabled: bool,
    /// The demo's own account, added to `[[accounts]]` while the demo is on; it must not
    /// be one of them (the demo's site, form and handler never land in a real account).
    pub account_id: u64,
    pub subdomain: String,
    /// The demo account's API token; the default is published.
    pub token: SecretString,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            account_id: 30441694,
            subdomain: "demo".into(),
            token: SecretString::from(DEMO_TOKEN.to_owned()),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub account_id: u64,
    pub subdomain: String,
    pub token: SecretString,
}

impl std::fmt::Debug for AccountSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSettings")
            .field("account_id", &self.account_id)
            .field("subdomain", &self.subdomain)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            static_dir: "static".into(),
            workers: 0,
            json_logs: false,
            trusted_proxies: Vec::new(),
            trust_proxy_headers: false,
            ops_token: SecretString::from(String::new()),
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            redis_cluster_urls: Vec::new(),
            redis_sentinels: Vec::new(),
            redis_sentinel_master: String::new(),
            durable_writes: DurableWrites::Auto,
            key_prefix: "ff".into(),
            response_timeout_ms: 1000,
        }
    }
}

impl Default for TrackingSettings {
    fn default() -> Self {
        Self {
            visit_idle_seconds: 1800,
            max_page_views_per_visitor: 1000,
            retention_days: 395,
            anonymous_retention_hours: 48.0,
            max_browsers_per_lead: 20,
        }
    }
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            name: "ff_vid".into(),
            max_age_days: 395,
            domain: String::new(),
            same_site: "Lax".into(),
            secure: true,
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            timeout_ms: 5000,
            allow_private_targets: false,
            retry_schedule_seconds: vec![5, 30, 120, 600, 1800, 3600, 7200, 7200, 7200],
            jitter_ratio: 0.2,
            failing_after_seconds: 3600,
            lease_seconds: 30,
            concurrency: 64,
            account_share: 0.5,
            schedule_shards: 8,
            event_retention_days: 30,
            poll_interval_ms: 500,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            public_body_bytes: 16 * 1024,
            api_body_bytes: 256 * 1024,
            per_ip_per_second: 50,
            per_site_per_second: 5000,
            body_timeout_ms: 10_000,
            max_unsorted_per_account: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Why footfall can be reached from beyond this machine, if it can: it listens on a
    /// public address, or browsers reach it at a public URL (through a proxy).
    pub fn reachable_from_afar(&self) -> Option<String> {
        if !self.binds_loopback_only() {
            return Some(format!(
                "server.bind = \"{}\" listens beyond loopback",
                self.server.bind
            ));
        }
        let public_host = url::Url::parse(&self.server.public_url)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_owned()))
            .is_some_and(|host| match host {
                url::Host::Ipv4(ip) => !ip.is_loopback(),
                url::Host::Ipv6(ip) => !ip.is_loopback(),
                url::Host::Domain(d) => {
                    let d = d.to_ascii_lowercase();
                    d != "localhost" && !d.ends_with(".localhost")
                }
            });
        public_host.then(|| {
            format!(
                "server.public_url = \"{}\" is reached beyond loopback (through a proxy)",
                self.server.public_url
            )
        })
    }

    /// Whether `server.bind` is a loopback address (`localhost` counts; a name footfall
    /// cannot tell is taken as public).
    pub fn binds_loopback_only(&self) -> bool {
        let bind = self.server.bind.trim();
        if let Ok(addr) = bind.parse::<std::net::SocketAddr>() {
            return addr.ip().is_loopback();
        }
        bind.rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
    }

    /// Which peers may tell the client's address.
    pub fn proxy_trust(&self) -> Result<crate::http::client::ProxyTrust, String> {
        crate::http::client::ProxyTrust::new(
            &self.server.trusted_proxies,
            self.server.trust_proxy_headers,
        )
    }

    /// The configured accounts, and the demo's own while the demo is on.
    pub fn all_accounts(&self) -> Vec<AccountSettings> {
        let mut accounts = self.accounts.clone();
        if self.demo.enabled {
            accounts.push(AccountSettings {
                account_id: self.demo.account_id,
                subdomain: self.demo.subdomain.clone(),
                token: self.demo.token.clone(),
            });
        }
        accounts
    }

    pub fn uses_redis(&self) -> bool {
        !self.store.redis_url.is_empty()
            || !self.store.redis_cluster_urls.is_empty()
            || !self.store.redis_sentinels.is_empty()
    }

    pub fn account_ids(&self) -> Vec<AccountId> {
        self.all_accounts()
            .iter()
            .map(|a| AccountId(a.account_id))
            .collect()
    }

    pub fn cookie_keys(&self) -> Vec<String> {
        self.cookies
            .keys
            .iter()
            .map(|k| k.expose_secret().to_owned())
            .collect()
    }
}

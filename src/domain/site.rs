//! Sites and the URLs that identify them: the hosts a site's tracker may report from, and
//! the "site URL" of a site-visit action (a host and an optional path prefix).

use serde::{Deserialize, Serialize};
use url::Url;

use super::ids::{AccountId, SiteId, SiteKey};
pub use super::privacy::{Consent, DEFAULT_CONSENT_DAYS};
use super::time::Millis;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    pub account_id: AccountId,
    pub key: SiteKey,
    pub name: String,
    pub url: String,
    /// Hosts whose pages may report page views and submit forms (lower case).
    pub hosts: Vec<String>,
    /// Honour Do-Not-Track and Global Privacy Control: such browsers are not tracked.
    /// (Records written before the rename say `respect_dnt`.)
    #[serde(default, alias = "respect_dnt")]
    pub respect_opt_out: bool,
    /// Whether t.js waits for the page to give the visitor's consent.
    #[serde(default)]
    pub consent: Consent,
    /// How long t.js remembers a consent, in days; none: [`DEFAULT_CONSENT_DAYS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_days: Option<u32>,
    /// This site's visit gap in seconds; none: the configuration's
    /// `tracking.visit_idle_seconds` (records written before the field read as none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_idle_seconds: Option<u64>,
    pub created_at: Millis,
}

impl Site {
    /// Whether `host` may report for this site.
    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| same_host(h, host))
    }

    /// How long t.js remembers a consent, in days.
    pub fn consent_days(&self) -> u32 {
        self.consent_days.unwrap_or(DEFAULT_CONSENT_DAYS)
    }

    /// The script tag to paste into the site's pages: its key, and what t.js must know
    /// before it sends anything — whether to wait for consent (and how many days to
    /// remember it) and whether to honour a browser's opt-out.
    pub fn snippet(&self, tracker: &str) -> String {
        let mut tag = format!("<script async src=\"{tracker}\" data-site=\"{}\"", self.key);
        if self.consent == Consent::Required {
            tag.push_str(&format!(" data-consent=\"{}\"", self.consent_days()));
        }
        if self.respect_opt_out {
            tag.push_str(" data-opt-out=\"1\"");
        }
        tag.push_str("></script>");
        tag
    }

    /// The gap without page views that ends a visit on this site, in milliseconds.
    pub fn visit_idle_ms(&self, default_seconds: u64) -> i64 {
        self.visit_idle_seconds.unwrap_or(default_seconds) as i64 * 1000
    }
}

/// Hosts compare case-insensitively, and `www.` does not make a different site.
pub fn same_host(a: &str, b: &str) -> bool {
    let strip = |h: &str| {
        let h = h.trim_end_matches('.');
        h.strip_prefix("www.").unwrap_or(h).to_ascii_lowercase()
    };
    strip(a) == strip(b)
}

/// An absolute http(s) URL with a host, the only kind of page footfall tracks.
pub fn parse_web_url(raw: &str) -> Option<Url> {
    let url = Url::parse(raw).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(())?;
    url.host_str()?;
    Some(url)
}

/// The "site URL" of a site-visit action: pages on this host under this path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteUrl {
    host: String,
    path_prefix: String,
    text: String,
}

impl SiteUrl {
    /// Accepts `https://shop.example`, `https://shop.example/blog` or `shop.example/blog`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("https://{raw}")
        };
        let url = parse_web_url(&with_scheme)
            .ok_or_else(|| format!("`{raw}` is not an http(s) URL with a host"))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let path_prefix = url.path().trim_end_matches('/').to_owned();
        Ok(Self {
            host,
            path_prefix,
            text: raw.to_owned(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether a page belongs to this site URL: same host, and the path starts with the
    /// prefix at a segment boundary (`/blog` matches `/blog` and `/blog/x`, not `/blogger`).
    pub fn matches(&self, page: &Url) -> bool {
        let Some(host) = page.host_str() else {
            return false;
        };
        if !same_host(&self.host, host) {
            return false;
        }
        let path = page.path();
        match path.strip_prefix(self.path_prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl TryFrom<String> for SiteUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SiteUrl::parse(&s)
    }
}

impl From<SiteUrl> for String {
    fn from(u: SiteUrl) -> String {
        u.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn site_url_matches_host_and_path_prefix_at_segment_boundaries() {
        let u = SiteUrl::parse("https://shop.example/blog").unwrap();
        assert!(u.matches(&page("https://shop.example/blog")));
        assert!(u.matches(&page("http://WWW.shop.example/blog/post?x=1")));
        assert!(!u.matches(&page("https://shop.example/blogger")));
        assert!(!u.matches(&page("https://shop.example/")));
        assert!(!u.matches(&page("https://other.example/blog")));
        let root = SiteUrl::parse("shop.example").unwrap();
        assert!(root.matches(&page("https://shop.example/anything")));
        assert_eq!(String::from(root), "shop.example");
    }

    #[test]
    fn site_url_refuses_non_web_urls() {
        assert!(SiteUrl::parse("ftp://shop.example").is_err());
        assert!(SiteUrl::parse("").is_err());
        assert!(SiteUrl::parse("javascript:alert(1)").is_err());
    }

    #[test]
    fn hosts_compare_without_case_and_www() {
        assert!(same_host("Shop.Example", "www.shop.example"));
        assert!(!same_host("shop.example", "evil-shop.example"));
    }
}

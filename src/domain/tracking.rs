//! Page views and visits.
//!
//! A visit is a run of page views of one visitor with no gap longer than the idle setting
//! (30 minutes by default, as Matomo). A site-visit action fires once per visit, at its
//! first page view. Page views are stored in a compact tab-separated form: they are the
//! bulk of the data.

use serde::{Deserialize, Serialize};

use super::ids::SiteId;
use super::site::same_host;
use super::time::Millis;

/// Longest URL or referrer kept, in bytes.
pub const MAX_URL: usize = 2048;
/// Longest page title kept, in characters.
pub const MAX_TITLE: usize = 300;

/// `s` cut to at most `max` bytes, at a character's boundary: how a referrer or a form
/// page longer than [`MAX_URL`] is kept.
pub fn cut_to_bytes(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// The host of an absolute http(s) URL or origin (`https://shop.example:8443/x` →
/// `shop.example`), without a full parse: the hot path only compares hosts. The authority
/// ends where a browser ends it: `\` counts as `/` in an http(s) URL.
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '\\', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// Whether a page view at `now` starts a new visit, given when this visitor was last seen.
pub fn starts_new_visit(last_seen: Option<Millis>, now: Millis, idle_ms: i64) -> bool {
    last_seen.is_none_or(|seen| now - seen > idle_ms)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageView {
    pub at: Millis,
    pub site_id: SiteId,
    pub url: String,
    pub title: String,
    /// Kept only when it leads from outside the page's host: an internal referrer is just
    /// the previous page view.
    pub referrer: String,
}

/// A page's URL as a browser reports it (`location.href`), checked without a full parse:
/// http(s), a host, no whitespace or control characters, at most `MAX_URL` bytes. The hot
/// path needs only its host; the rare paths that need more parse it fully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageUrl<'a> {
    pub url: &'a str,
    pub host: &'a str,
}

impl<'a> PageUrl<'a> {
    pub fn parse(url: &'a str) -> Option<Self> {
        if url.len() > MAX_URL || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return None;
        }
        Some(Self {
            url,
            host: host_of(url)?,
        })
    }
}

impl PageView {
    /// A page view; the title is cut to `MAX_TITLE` characters and stripped of control
    /// characters, an internal referrer dropped.
    pub fn new(
        at: Millis,
        site_id: SiteId,
        page: PageUrl<'_>,
        title: &str,
        referrer: &str,
    ) -> Self {
        let external = host_of(referrer).is_some_and(|h| !same_host(h, page.host));
        let referrer =
            if external && referrer.len() <= MAX_URL && !referrer.contains(char::is_control) {
                referrer.to_owned()
            } else {
                String::new()
            };
        Self {
            at,
            site_id,
            url: page.url.to_owned(),
            title: clean_title(title),
            referrer,
        }
    }

    /// `at \t site \t url \t title \t referrer`: URLs hold no whitespace and titles no
    /// control characters, so tabs separate safely.
    pub fn encode(&self) -> String {
        let (at, site) = (self.at.to_string(), self.site_id.0.to_string());
        let mut out = String::with_capacity(
            at.len() + site.len() + self.url.len() + self.title.len() + self.referrer.len() + 4,
        );
        for (i, part) in [&at, &site, &self.url, &self.title, &self.referrer]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push('\t');
            }
            out.push_str(part);
        }
        out
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut parts = s.splitn(5, '\t');
        Some(Self {
            at: parts.next()?.parse().ok()?,
            site_id: SiteId(parts.next()?.parse().ok()?),
            url: parts.next()?.to_owned(),
            title: parts.next()?.to_owned(),
            referrer: parts.next().unwrap_or("").to_owned(),
        })
    }
}

/// A title cut to `MAX_TITLE` characters, control characters as spaces; copied as it is
/// when it needs neither (most do).
pub fn clean_title(title: &str) -> String {
    if title.len() <= MAX_TITLE && !title.contains(char::is_control) {
        return title.to_owned();
    }
    title
        .chars()
        .take(MAX_TITLE)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The start of a visit: its number among the visitor's visits and its first page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub number: u32,
    pub site_id: SiteId,
    pub started_at: Millis,
    pub url: String,
    pub title: String,
    pub referrer: String,
}

impl Visit {
    /// The visit a page view starts, as its page view is stored (title cleaned, only an
    /// external referrer kept): numbered by the store.
    pub fn started_by(pv: PageView) -> Self {
        Self {
            number: 0,
            site_id: pv.site_id,
            started_at: pv.at,
            url: pv.url,
            title: pv.title,
            referrer: pv.referrer,
        }
    }
}

/// The visits a visitor's page views (oldest first) make, by the same idle rule that
/// starts them; `count` is how many visits the visitor has made in all, which numbers
/// them (the latest is number `count`, even when older page views were trimmed away).
/// `idle_ms` gives each site's visit gap.
pub fn group_visits(
    page_views: &[PageView],
    idle_ms: impl Fn(SiteId) -> i64,
    count: u32,
) -> Vec<Visit> {
    let mut last_seen: Vec<(SiteId, Millis)> = Vec::new();
    let mut visits: Vec<Visit> = Vec::new();
    for pv in page_views {
        let seen = last_seen.iter_mut().find(|(site, _)| *site == pv.site_id);
        let previous = seen.as_ref().map(|(_, at)| *at);
        if starts_new_visit(previous, pv.at, idle_ms(pv.site_id)) {
            visits.push(Visit::started_by(pv.clone()));
        }
        match seen {
            Some((_, at)) => *at = pv.at,
            None => last_seen.push((pv.site_id, pv.at)),
        }
    }
    let total = visits.len() as u32;
    let first = count.max(total).saturating_sub(total) + 1;
    for (i, visit) in visits.iter_mut().enumerate() {
        visit.number = first + i as u32;
    }
    visits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_keeps_whole_characters_within_the_bytes() {
        let cyrillic = "я".repeat(1500); // 3 000 bytes
        let cut = cut_to_bytes(&cyrillic, MAX_URL);
        assert_eq!(cut.len(), 2048);
        assert!(cyrillic.starts_with(cut));
        assert_eq!(cut_to_bytes("ab", MAX_URL), "ab");
        assert_eq!(cut_to_bytes("aя", 2), "a");
    }

    fn pv(at: Millis, site: u64, path: &str) -> PageView {
        PageView {
            at,
            site_id: SiteId(site),
            url: format!("https://shop.example{path}"),
            title: path.into(),
            referrer: String::new(),
        }
    }

    #[test]
    fn page_views_group_into_numbered_visits_per_site() {
        let views = [
            pv(0, 1, "/a"),
            pv(10, 1, "/b"),
            pv(20, 2, "/other-site"),
            pv(200, 1, "/c"),
            pv(205, 2, "/other-again"),
        ];
        let visits = group_visits(&views, |_| 100, 7);
        let summary: Vec<(u32, u64, &str)> = visits
            .iter()
            .map(|v| (v.number, v.site_id.0, v.url.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (4, 1, "https://shop.example/a"),
                (5, 2, "https://shop.example/other-site"),
                (6, 1, "https://shop.example/c"),
                (7, 2, "https://shop.example/other-again"),
            ]
        );
        // Without trimmed history the count and the groups agree; numbers start at 1.
        assert_eq!(group_visits(&views[..2], |_| 100, 1)[0].number, 1);
        assert!(group_visits(&[], |_| 100, 3).is_empty());
    }

    #[test]
    fn hosts_are_read_from_urls_and_origins() {
        assert_eq!(
            host_of("https://Shop.example:8443/a?b#c"),
            Some("Shop.example")
        );
        assert_eq!(host_of("http://shop.example"), Some("shop.example"));
        assert_eq!(
            host_of("https://user:pw@shop.example/x"),
            Some("shop.example")
        );
        assert_eq!(host_of("http://[::1]:8080/"), Some("::1"));
        // As a browser (and the url crate) reads it: the host is evil.example.
        assert_eq!(
            host_of("https://evil.example\\@shop.example/login"),
            Some("evil.example")
        );
        assert_eq!(
            url::Url::parse("https://evil.example\\@shop.example/login")
                .unwrap()
                .host_str(),
            Some("evil.example")
        );
        assert_eq!(host_of("ftp://shop.example"), None);
        assert_eq!(host_of("https:///path"), None);
        assert_eq!(host_of(""), None);
    }

    #[test]
    fn idle_gap_starts_a_new_visit() {
        let idle = 30 * 60 * 1000;
        assert!(starts_new_visit(None, 0, idle));
        assert!(!starts_new_visit(Some(1_000), 1_000 + idle, idle));
        assert!(starts_new_visit(Some(1_000), 1_001 + idle, idle));
    }

    #[test]
    fn page_urls_are_checked_without_a_full_parse() {
        let ok = PageUrl::parse("https://shop.example:8443/a?q=1#x").unwrap();
        assert_eq!(ok.host, "shop.example");
        let too_long = format!("https://shop.example/{}", "x".repeat(MAX_URL));
        for bad in [
            "shop.example/a",
            "javascript:alert(1)",
            "https://shop.example/a b",
            "https:///a",
            &too_long,
        ] {
            assert!(PageUrl::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn page_views_round_trip_and_drop_internal_referrers() {
        let url = PageUrl::parse("https://shop.example/a?q=1").unwrap();
        let pv = PageView::new(
            5,
            SiteId(2),
            url,
            "Tab\there\n",
            "https://shop.example/prev",
        );
        assert_eq!(pv.title, "Tab here ");
        assert_eq!(pv.referrer, "");
        assert_eq!(PageView::decode(&pv.encode()), Some(pv));
        let external = PageView::new(5, SiteId(2), url, "T", "https://www.google.com/");
        assert_eq!(external.referrer, "https://www.google.com/");
        assert_eq!(PageView::decode(&external.encode()), Some(external));
    }
}

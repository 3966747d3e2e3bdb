//! A page view in a browser's Redis history, in as few bytes as it can be read back from:
//! page views are the bulk of footfall's data (BENCHMARKS.md, capacity model).
//!
//! `<time><site><url>\t<title>\t<referrer>`, empty fields at the end left out:
//! - time: the milliseconds in seven base-62 digits (13 decimal ones before), whose first
//!   is a letter for any time between 1988 and 2081;
//! - site: its id in base 31, the last digit from another alphabet than the others, so
//!   that it ends itself (one character for ids below 31, two below 961);
//! - url: relative to the site's origin when it is on it (`https://shop.example/a?b`
//!   → `a?b`), else whole (it starts with `http://` or `https://`, which a relative one
//!   is never written as). The site's URL never changes and a site is never deleted, so
//!   the origin it is read back with is the one it was written with.
//!
//! The earlier form (`PageView::encode`: the time in decimal, so its first character is a
//! digit) is still read, and still written for a time outside that range.

use crate::domain::ids::SiteId;
use crate::domain::tracking::PageView;

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The time's digits.
const TIME_LEN: usize = 7;
/// A site id's digits but its last, and its last.
const SITE_MORE: &[u8; 31] = b"0123456789ABCDEFGHIJKLMNOPQRSTU";
const SITE_LAST: &[u8; 31] = b"VWXYZabcdefghijklmnopqrstuvwxyz";
/// The times whose seven digits start with a letter: from 10 × 62⁶ ms (1988) to 62⁷ ms
/// (2081).
const TIMES: std::ops::Range<i64> = 568_002_355_840..3_521_614_606_208;

/// The stored form of a page view; `origin` is its site's (`https://shop.example`), when
/// known.
pub fn encode(pv: &PageView, origin: Option<&str>) -> String {
    if !TIMES.contains(&pv.at) {
        return pv.encode();
    }
    let url = origin
        .and_then(|o| pv.url.strip_prefix(o)?.strip_prefix('/'))
        .filter(|rest| !is_absolute(rest))
        .unwrap_or(&pv.url);
    let mut out =
        String::with_capacity(TIME_LEN + 4 + url.len() + pv.title.len() + pv.referrer.len() + 3);
    push_base62(&mut out, pv.at as u64, TIME_LEN);
    push_site(&mut out, pv.site_id.0);
    out.push_str(url);
    let tail = [&pv.title, &pv.referrer];
    let used = tail
        .iter()
        .rposition(|f| !f.is_empty())
        .map_or(0, |i| i + 1);
    for field in &tail[..used] {
        out.push('\t');
        out.push_str(field);
    }
    out
}

/// A stored page view as read, before its URL is made whole.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    Whole(PageView),
    /// Its URL is relative to its site's origin.
    Relative(PageView),
}

impl Stored {
    pub fn site_id(&self) -> SiteId {
        match self {
            Self::Whole(pv) | Self::Relative(pv) => pv.site_id,
        }
    }

    /// The page view, with its site's origin when its URL is relative; none when that is
    /// missing.
    pub fn resolve(self, origin: Option<&str>) -> Option<PageView> {
        match self {
            Self::Whole(pv) => Some(pv),
            Self::Relative(mut pv) => {
                pv.url = format!("{}/{}", origin?, pv.url);
                Some(pv)
            }
        }
    }
}

/// A stored page view, in either form.
pub fn decode(s: &str) -> Option<Stored> {
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return PageView::decode(s).map(Stored::Whole);
    }
    let time = s.get(..TIME_LEN)?;
    let (site, rest) = read_site(&s[TIME_LEN..])?;
    let mut parts = rest.splitn(3, '\t');
    let url = parts.next().unwrap_or("");
    let pv = PageView {
        at: i64::try_from(base62(time)?).ok()?,
        site_id: SiteId(site),
        url: url.to_owned(),
        title: parts.next().unwrap_or("").to_owned(),
        referrer: parts.next().unwrap_or("").to_owned(),
    };
    Some(if is_absolute(url) {
        Stored::Whole(pv)
    } else {
        Stored::Relative(pv)
    })
}

fn is_absolute(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// `n` in base 62, at least `width` digits.
fn push_base62(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [0u8; 11];
    let mut len = 0;
    while n > 0 || len < width {
        digits[len] = DIGITS[(n % 62) as usize];
        n /= 62;
        len += 1;
    }
    out.extend(digits[..len].iter().rev().map(|&d| d as char));
}

/// A site id: base-31 digits, the last from `SITE_LAST`.
fn push_site(out: &mut String, mut id: u64) {
    let mut digits = [0u8; 13];
    let mut len = 0;
    loop {
        let alphabet = if len == 0 { SITE_LAST } else { SITE_MORE };
        digits[len] = alphabet[(id % 31) as usize];
        id /= 31;
        len += 1;
        if id == 0 {
            break;
        }
    }
    out.extend(digits[..len].iter().rev().map(|&d| d as char));
}

/// A site id at the start of `s`, and what follows it.
fn read_site(s: &str) -> Option<(u64, &str)> {
    let mut id = 0u64;
    for (i, c) in s.bytes().enumerate().take(13) {
        let (digit, last) = match SITE_MORE.iter().position(|&d| d == c) {
            Some(d) => (d, false),
            None => (SITE_LAST.iter().position(|&d| d == c)?, true),
        };
        id = id.checked_mul(31)?.checked_add(digit as u64)?;
        if last {
            return Some((id, &s[i + 1..]));
        }
    }
    None
}

fn base62(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |n, c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        n.checked_mul(62)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://shop.example";
    const NOW: i64 = 1_764_700_123_456;

    fn pv(at: i64, site: u64, url: &str, title: &str, referrer: &str) -> PageView {
        PageView {
            at,
            site_id: SiteId(site),
            url: url.into(),
            title: title.into(),
            referrer: referrer.into(),
        }
    }

    fn round_trip(pv: &PageView, origin: Option<&str>) -> (String, PageView) {
        let stored = encode(pv, origin);
        let read = decode(&stored)
            .and_then(|s| s.resolve(Some(ORIGIN)))
            .unwrap_or_else(|| panic!("{stored:?} does not decode"));
        (stored, read)
    }

    #[test]
    fn a_page_view_on_its_sites_origin_is_stored_relative_and_read_back_whole() {
        let view = pv(
            NOW,
            1,
            "https://shop.example/catalog/product-1234?utm_source=newsletter",
            "Product 1234 — Shop",
            "",
        );
        let (stored, read) = round_trip(&view, Some(ORIGIN));
        assert_eq!(read, view);
        assert_eq!(
            stored,
            "V4FRsP2Wcatalog/product-1234?utm_source=newsletter\tProduct 1234 — Shop"
        );
        assert_eq!(stored.len(), 72, "102 bytes in the earlier form");
    }

    #[test]
    fn every_page_view_reads_back_as_it_was() {
        let cases = [
            pv(NOW, 1, "https://shop.example/", "", ""),
            pv(NOW, 7, "https://shop.example", "T", ""),
            pv(
                NOW,
                7,
                "https://shop.example?q=1",
                "",
                "https://www.google.com/",
            ),
            pv(NOW, 7, "https://shop.example.org/a", "T", ""),
            pv(NOW, 7, "https://shop.example/https://x", "T", ""),
            pv(NOW, 7, "https://shop.example//x", "", ""),
            pv(
                NOW,
                99_999_999_999,
                "https://blog.example/b",
                "",
                "https://t.co/x",
            ),
            pv(NOW, 0, "http://shop.example/a", "Über — Shop", ""),
            pv(TIMES.start, 3, "https://shop.example/a", "T", "R"),
            pv(TIMES.end - 1, 3, "https://shop.example/a", "T", "R"),
            // Outside the range of the short time: the earlier form.
            pv(5, 2, "https://shop.example/a", "T", ""),
            pv(TIMES.end, 2, "https://shop.example/a", "T", ""),
        ];
        for view in cases {
            for origin in [Some(ORIGIN), None] {
                let (stored, read) = round_trip(&view, origin);
                assert_eq!(read, view, "{stored:?}");
            }
        }
    }

    #[test]
    fn the_earlier_form_is_still_read() {
        let old = "1764700123456\t1\thttps://shop.example/a\tA page\thttps://www.google.com/";
        assert_eq!(
            decode(old).and_then(|s| s.resolve(None)),
            Some(pv(
                NOW,
                1,
                "https://shop.example/a",
                "A page",
                "https://www.google.com/"
            ))
        );
    }

    #[test]
    fn a_relative_page_view_without_its_sites_origin_is_not_made_up() {
        let stored = encode(&pv(NOW, 1, "https://shop.example/a", "", ""), Some(ORIGIN));
        assert_eq!(decode(&stored).and_then(|s| s.resolve(None)), None);
        for junk in ["", "V4FRsP2", "V4FRsP2!a", "V4FRsP2é", "V4FRsP20", "V4FRs"] {
            assert_eq!(decode(junk), None, "{junk}");
        }
    }
}

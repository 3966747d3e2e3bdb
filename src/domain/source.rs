//! Where a visit came from: the campaign parameters of its landing page (`utm_source`,
//! `utm_medium`, `utm_campaign`, `utm_content`, `utm_term`) and the ad click ids
//! (`gclid`, `yclid`, `fbclid`), with its referrer. t.js reports the landing page's full
//! URL with the first page view of every visit, so the parameters are read from the URL
//! footfall already keeps — nothing else of the query counts as a source, and each value
//! is cut to [`MAX_VALUE`] characters.
//!
//! A lead's **first touch** is the earliest visit of any of its browsers; its **last
//! touch** the visit of the form (the latest visit that began before the lead was made).

use serde::{Deserialize, Serialize};

use super::ids::SiteId;
use super::time::Millis;
use super::tracking::{PageView, Visit};

/// The longest campaign value kept, in characters.
pub const MAX_VALUE: usize = 200;

/// The campaign parameters and click ids of a landing page; absent ones are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Utm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gclid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yclid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbclid: Option<String>,
}

impl Utm {
    /// The parameters of a page URL's query (the first of each name counts).
    pub fn of_url(url: &str) -> Self {
        let mut utm = Self::default();
        let Some((_, query)) = url.split('#').next().unwrap_or("").split_once('?') else {
            return utm;
        };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "utm_source" => &mut utm.utm_source,
                "utm_medium" => &mut utm.utm_medium,
                "utm_campaign" => &mut utm.utm_campaign,
                "utm_content" => &mut utm.utm_content,
                "utm_term" => &mut utm.utm_term,
                "gclid" => &mut utm.gclid,
                "yclid" => &mut utm.yclid,
                "fbclid" => &mut utm.fbclid,
                _ => continue,
            };
            let value: String = value
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_VALUE)
                .collect();
            if slot.is_none() && !value.trim().is_empty() {
                *slot = Some(value);
            }
        }
        utm
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Where one visit came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Source {
    /// The visit's landing page.
    pub url: String,
    /// The page that led to it from another site, or "".
    pub referrer: String,
    /// When the visit began (Unix seconds).
    pub started_at: i64,
    #[serde(flatten)]
    pub utm: Utm,
}

impl Source {
    pub fn of_visit(visit: &Visit) -> Self {
        Self::of_landing(&visit.url, &visit.referrer, visit.started_at)
    }

    /// A visit that came with no campaign and from no other site.
    pub fn is_direct(&self) -> bool {
        self.utm.is_empty() && self.referrer.is_empty()
    }

    pub fn of_landing(url: &str, referrer: &str, started_at: Millis) -> Self {
        Self {
            url: url.to_owned(),
            referrer: referrer.to_owned(),
            started_at: super::time::to_secs(started_at),
            utm: Utm::of_url(url),
        }
    }
}

/// A lead's first and last touch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeadSource {
    pub first_touch: Option<Source>,
    pub last_touch: Option<Source>,
}

impl LeadSource {
    /// From the visits of the lead's browsers (any order) and the lead's creation.
    pub fn of_visits<'a>(visits: impl IntoIterator<Item = &'a Visit>, created_at: Millis) -> Self {
        let mut first: Option<&Visit> = None;
        let mut last: Option<&Visit> = None;
        for v in visits {
            if first.is_none_or(|f| v.started_at < f.started_at) {
                first = Some(v);
            }
            if v.started_at <= created_at && last.is_none_or(|l| v.started_at > l.started_at) {
                last = Some(v);
            }
        }
        Self {
            first_touch: first.map(Source::of_visit),
            last_touch: last.map(Source::of_visit),
        }
    }
}

/// The campaign a direct visit keeps (as Google Analytics' "last non-direct click"): that
/// of the browser's latest visit before it that came with one, if any.
pub fn last_campaign<'a>(
    visits: impl IntoIterator<Item = &'a Visit>,
    before: Millis,
) -> Option<Utm> {
    visits
        .into_iter()
        .filter(|v| v.started_at < before)
        .map(|v| (v.started_at, Utm::of_url(&v.url)))
        .filter(|(_, utm)| !utm.is_empty())
        .max_by_key(|(at, _)| *at)
        .map(|(_, utm)| utm)
}

/// The landing page of the latest visit in a browser's newest page views (oldest first)
/// on `site`, by the visit gap: the source of the visit a form was sent in.
pub fn current_visit_source(recent: &[PageView], site: SiteId, idle_ms: i64) -> Option<Source> {
    let mut views = recent.iter().rev().filter(|pv| pv.site_id == site);
    let mut landing = views.next()?;
    for pv in views {
        if landing.at - pv.at > idle_ms {
            break;
        }
        landing = pv;
    }
    Some(Source::of_landing(
        &landing.url,
        &landing.referrer,
        landing.at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_campaign_parameters_and_click_ids_are_kept_decoded_and_bounded() {
        let long = "x".repeat(500);
        let utm = Utm::of_url(&format!(
            "https://s.example/p?utm_source=news&utm_campaign=d%C3%A9c+1&session=secret&gclid={long}&utm_medium=&utm_source=other#utm_term=no"
        ));
        assert_eq!(utm.utm_source.as_deref(), Some("news"));
        assert_eq!(utm.utm_campaign.as_deref(), Some("déc 1"));
        assert_eq!(utm.gclid.as_ref().map(String::len), Some(MAX_VALUE));
        assert_eq!(utm.utm_medium, None);
        assert_eq!(utm.utm_term, None);
        let json = serde_json::to_value(&utm).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
        assert!(Utm::of_url("https://s.example/").is_empty());
    }

    fn visit(at: Millis, url: &str) -> Visit {
        Visit {
            number: 0,
            site_id: SiteId(1),
            started_at: at,
            url: url.into(),
            title: String::new(),
            referrer: String::new(),
        }
    }

    #[test]
    fn first_touch_is_the_earliest_visit_last_touch_the_visit_of_the_form() {
        let visits = [
            visit(5_000, "https://s.example/?utm_source=b"),
            visit(1_000, "https://s.example/?utm_source=a"),
            visit(9_000, "https://s.example/?utm_source=after"),
        ];
        let s = LeadSource::of_visits(&visits, 6_000);
        assert_eq!(s.first_touch.unwrap().utm.utm_source.as_deref(), Some("a"));
        assert_eq!(s.last_touch.unwrap().utm.utm_source.as_deref(), Some("b"));
        assert_eq!(LeadSource::of_visits(&[], 6_000), LeadSource::default());
    }

    #[test]
    fn the_form_visit_begins_after_the_last_gap() {
        let pv = |at, url: &str| PageView {
            at,
            site_id: SiteId(1),
            url: url.into(),
            title: String::new(),
            referrer: String::new(),
        };
        let recent = [
            pv(0, "https://s.example/?utm_source=old"),
            pv(10_000, "https://s.example/?utm_source=news"),
            pv(11_000, "https://s.example/pricing"),
            pv(12_000, "https://s.example/contact"),
        ];
        let s = current_visit_source(&recent, SiteId(1), 5_000).unwrap();
        assert_eq!(s.utm.utm_source.as_deref(), Some("news"));
        assert_eq!(current_visit_source(&recent, SiteId(2), 5_000), None);
    }
}

//! Conditions on a site-visit action: which page, which visit of the browser, how deep
//! into the visit, how long the lead has stood in the stage, and how long the action
//! stays quiet after firing. All given conditions must hold; the action fires at the
//! first page view of a visit at which they do, at most once per visit.
//!
//! The conditions split in two: those a page view alone decides ([`Conditions::page_holds`]:
//! page, visit number, pages in the visit) and those that need the lead's timeline
//! ([`Conditions::lead_holds`]: time in the stage, cooldown). The first are checked on
//! every page view of a watched visit without touching the store; the timeline is read
//! only when they hold.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::{ActionId, LeadId};
use super::time::Millis;
use super::timeline::TimelineEntry;
use super::tracking::MAX_URL;
use super::validation::FieldError;

/// The largest visit number or page count a condition may ask for.
pub const MAX_COUNT: u64 = 10_000;
/// The longest time in a stage or cooldown a condition may ask for: a year.
pub const MAX_SECONDS: u64 = 366 * 24 * 3600;

/// How a page condition compares the page's path and query with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageMatch {
    Is,
    StartsWith,
    Contains,
    /// `*` stands for any run of characters (`/pricing*`, `/blog/*/comments`); every
    /// other character, `?` included, stands for itself.
    Glob,
}

impl PageMatch {
    const CODES: [&str; 4] = ["is", "starts_with", "contains", "glob"];

    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "is" => Self::Is,
            "starts_with" => Self::StartsWith,
            "contains" => Self::Contains,
            "glob" => Self::Glob,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCondition {
    #[serde(rename = "match")]
    pub kind: PageMatch,
    pub value: String,
}

impl PageCondition {
    /// Whether a page (its path and query, as [`path_and_query`] gives it) matches.
    pub fn matches(&self, page: &str) -> bool {
        let value = self.value.as_str();
        match self.kind {
            PageMatch::Is => page == value,
            PageMatch::StartsWith => page.starts_with(value),
            PageMatch::Contains => page.contains(value),
            PageMatch::Glob => glob(value, page),
        }
    }
}

/// The conditions of one action; `None` fields do not constrain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageCondition>,
    /// The browser's n-th visit to the account's sites (visits are counted per account),
    /// counting its visits before the form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_visit_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pages_in_visit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seconds_in_stage: Option<u64>,
    /// After firing for a lead, the action stays quiet this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<u64>,
}

impl Conditions {
    /// Conditions from the API's JSON (`null` or `{}`: none), with field-level errors
    /// named under `conditions.`.
    pub fn parse(value: &Value) -> Result<Option<Self>, Vec<FieldError>> {
        let field = |name: &str| format!("conditions.{name}");
        let obj = match value {
            Value::Null => return Ok(None),
            Value::Object(o) => o,
            _ => return Err(vec![FieldError::new("conditions", "must be an object")]),
        };
        let mut errors = Vec::new();
        let mut out = Self::default();
        for (key, v) in obj {
            match key.as_str() {
                "page" => out.page = parse_page(v, &mut errors),
                "min_visit_number" => {
                    out.min_visit_number = count(v, &field(key), 1, MAX_COUNT, &mut errors)
                        .map(|n| n as u32)
                }
                "min_pages_in_visit" => {
                    out.min_pages_in_visit = count(v, &field(key), 1, MAX_COUNT, &mut errors)
                        .map(|n| n as u32)
                }
                "min_seconds_in_stage" => {
                    out.min_seconds_in_stage = count(v, &field(key), 0, MAX_SECONDS, &mut errors)
                }
                "cooldown_seconds" => {
                    out.cooldown_seconds = count(v, &field(key), 0, MAX_SECONDS, &mut errors)
                }
                other => errors.push(FieldError::new(
                    field(other),
                    "is not a condition (page, min_visit_number, min_pages_in_visit, min_seconds_in_stage, cooldown_seconds)",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((out != Self::default()).then_some(out))
    }

    /// What a page view decides alone: the page, the visit's number, the pages so far.
    pub fn page_holds(&self, page: &str, visit_number: u32, pages_in_visit: u32) -> bool {
        self.page.as_ref().is_none_or(|p| p.matches(page))
            && self.min_visit_number.is_none_or(|n| visit_number >= n)
            && self.min_pages_in_visit.is_none_or(|n| pages_in_visit >= n)
    }

    /// Whether the lead-level conditions need the lead's timeline.
    pub fn needs_timeline(&self) -> bool {
        self.min_seconds_in_stage.is_some() || self.cooldown_seconds.is_some()
    }

    /// What the lead's timeline decides: time in the stage, the cooldown of `action`.
    pub fn lead_holds(&self, history: &LeadHistory, action: ActionId, now: Millis) -> bool {
        let in_stage = self
            .min_seconds_in_stage
            .is_none_or(|s| now - history.stage_since >= s as Millis * 1000);
        let quiet = self.cooldown_seconds.is_none_or(|s| {
            history
                .last_fired(action)
                .is_none_or(|at| now - at >= s as Millis * 1000)
        });
        in_stage && quiet
    }
}

/// What the lead-level conditions read from a lead's timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadHistory {
    /// When the lead came to its current stage (its creation, if it never moved).
    pub stage_since: Millis,
    /// When each action last fired for the lead.
    pub fired: Vec<(ActionId, Millis)>,
}

impl LeadHistory {
    pub fn of(created_at: Millis, timeline: &[TimelineEntry]) -> Self {
        let mut history = Self {
            stage_since: created_at,
            fired: Vec::new(),
        };
        for entry in timeline {
            match entry {
                TimelineEntry::Moved { at, from, to, .. } if from.is_none_or(|f| f != *to) => {
                    history.stage_since = *at
                }
                TimelineEntry::EventFired { at, action_id, .. } => {
                    match history.fired.iter_mut().find(|(a, _)| a == action_id) {
                        Some((_, last)) => *last = (*last).max(*at),
                        None => history.fired.push((*action_id, *at)),
                    }
                }
                _ => {}
            }
        }
        history
    }

    pub fn last_fired(&self, action: ActionId) -> Option<Millis> {
        self.fired
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, at)| *at)
    }
}

/// A visit watched for conditional actions not fired yet: kept beside the browser's
/// sighting on the site, as long as the visit runs, counting its page views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitWatch {
    pub lead: LeadId,
    pub number: u32,
    pub started_at: Millis,
    pub referrer: String,
    /// The visit's landing page (its source: `domain::source`).
    #[serde(default)]
    pub landing: String,
    /// Page views of the visit so far (this one included, when read with a page view).
    #[serde(default)]
    pub pages: u32,
    /// The conditional actions that fired in this visit.
    #[serde(default)]
    pub fired: Vec<ActionId>,
}

/// The path and query of a page URL (`https://x.example/a?b=1#c` → `/a?b=1`), what a page
/// condition compares.
pub fn path_and_query(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('#').next().unwrap_or("");
    match rest.find(['/', '?']) {
        Some(i) => &rest[i..],
        None => "/",
    }
}

/// `*` matches any run of characters; the rest literally. Linear in practice: each `*`
/// takes the earliest place the next piece fits, which is enough for a single-wildcard
/// alphabet.
fn glob(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn parse_page(v: &Value, errors: &mut Vec<FieldError>) -> Option<PageCondition> {
    let Value::Object(o) = v else {
        errors.push(FieldError::new(
            "conditions.page",
            "must be an object {\"match\": …, \"value\": …}",
        ));
        return None;
    };
    let kind = match o.get("match").and_then(Value::as_str) {
        Some(code) => PageMatch::from_code(code),
        None => None,
    };
    if kind.is_none() {
        errors.push(FieldError::new(
            "conditions.page.match",
            format!("must be one of: {}", PageMatch::CODES.join(", ")),
        ));
    }
    let value = match o.get("value").and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() && s.len() <= MAX_URL && !s.contains(char::is_control) => {
            Some(s.to_owned())
        }
        _ => {
            errors.push(FieldError::new(
                "conditions.page.value",
                format!(
                    "must be a non-empty text of at most {MAX_URL} bytes (a path such as /pricing)"
                ),
            ));
            None
        }
    };
    for key in o.keys().filter(|k| *k != "match" && *k != "value") {
        errors.push(FieldError::new(
            format!("conditions.page.{key}"),
            "is not known (match, value)",
        ));
    }
    Some(PageCondition {
        kind: kind?,
        value: value?,
    })
}

fn count(v: &Value, field: &str, min: u64, max: u64, errors: &mut Vec<FieldError>) -> Option<u64> {
    if v.is_null() {
        return None;
    }
    match v.as_u64().filter(|n| (min..=max).contains(n)) {
        Some(n) => Some(n),
        None => {
            errors.push(FieldError::new(
                field,
                format!("must be a whole number from {min} to {max}"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(kind: PageMatch, value: &str) -> PageCondition {
        PageCondition {
            kind,
            value: value.into(),
        }
    }

    #[test]
    fn page_kinds_compare_path_and_query() {
        use PageMatch::*;
        let rows: [(&str, PageCondition, &str, bool); 10] = [
            ("is: exact path", page(Is, "/pricing"), "/pricing", true),
            (
                "is: not a prefix",
                page(Is, "/pricing"),
                "/pricing/team",
                false,
            ),
            ("is: query counts", page(Is, "/p?x=1"), "/p?x=1", true),
            (
                "starts_with",
                page(StartsWith, "/pricing"),
                "/pricing/team",
                true,
            ),
            (
                "starts_with: other page",
                page(StartsWith, "/pricing"),
                "/",
                false,
            ),
            (
                "contains",
                page(Contains, "plan=pro"),
                "/p?plan=pro&x",
                true,
            ),
            (
                "glob: trailing star",
                page(Glob, "/pricing*"),
                "/pricing",
                true,
            ),
            (
                "glob: inner star",
                page(Glob, "/blog/*/c"),
                "/blog/a/b/c",
                true,
            ),
            (
                "glob: anchored end",
                page(Glob, "/blog/*/c"),
                "/blog/a/cd",
                false,
            ),
            ("glob: ? is literal", page(Glob, "/a?b"), "/axb", false),
        ];
        for (what, cond, text, expected) in rows {
            assert_eq!(cond.matches(text), expected, "{what}");
        }
    }

    #[test]
    fn path_and_query_drops_scheme_host_and_fragment() {
        assert_eq!(path_and_query("https://x.example/a/b?c=1#f"), "/a/b?c=1");
        assert_eq!(path_and_query("https://x.example"), "/");
        assert_eq!(path_and_query("https://x.example?q"), "?q");
        assert_eq!(path_and_query("http://x.example:8080/p"), "/p");
    }

    #[test]
    fn parsing_names_each_bad_field() {
        let err = Conditions::parse(&json!({"page": {"match": "regex", "value": ""},
            "min_visit_number": 0, "cooldown_seconds": -1, "colour": 1}))
        .unwrap_err();
        let mut fields: Vec<_> = err.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "conditions.colour",
                "conditions.cooldown_seconds",
                "conditions.min_visit_number",
                "conditions.page.match",
                "conditions.page.value"
            ]
        );
        assert_eq!(Conditions::parse(&json!({})), Ok(None));
        assert_eq!(Conditions::parse(&Value::Null), Ok(None));
        assert!(Conditions::parse(&json!(3)).is_err());
        let ok = Conditions::parse(&json!({"page": {"match": "glob", "value": "/p*"},
            "min_pages_in_visit": 3}))
        .unwrap()
        .unwrap();
        assert_eq!(ok.min_pages_in_visit, Some(3));
        assert!(ok.page_holds("/pq", 1, 3));
        assert!(!ok.page_holds("/pq", 1, 2));
    }

    #[test]
    fn lead_conditions_read_the_stage_time_and_the_last_firing() {
        use crate::domain::event::EventType;
        use crate::domain::ids::{EventId, PipelineId, StatusId};
        use crate::domain::pipeline::Stage;
        use crate::domain::timeline::MoveOrigin;
        let stage = |s| Stage {
            pipeline_id: PipelineId(1),
            status_id: StatusId(s),
        };
        let timeline = [
            TimelineEntry::Moved {
                at: 5_000,
                from: Some(stage(1)),
                to: stage(2),
                by: MoveOrigin::Api,
            },
            TimelineEntry::EventFired {
                at: 7_000,
                event_id: EventId::generate(),
                event_type: EventType::SiteVisit,
                action_id: ActionId(9),
                due_at: 7_000,
            },
        ];
        let history = LeadHistory::of(1_000, &timeline);
        assert_eq!(history.stage_since, 5_000);
        let c = Conditions {
            min_seconds_in_stage: Some(10),
            cooldown_seconds: Some(60),
            ..Default::default()
        };
        assert!(!c.lead_holds(&history, ActionId(9), 14_000), "in stage 9 s");
        assert!(!c.lead_holds(&history, ActionId(9), 60_000), "cooling down");
        assert!(c.lead_holds(&history, ActionId(9), 67_000));
        assert!(c.lead_holds(&history, ActionId(8), 15_000), "other action");
    }
}

//! Macros in handler settings (`{{lead.id}}`, `{{contact.name}}` …), substituted with the
//! lead's data when an event fires. Unknown macros are left as written, so a typo shows in
//! the message instead of vanishing; a known one without a value (no phone, an event
//! without a visit) becomes "".

use serde_json::{Map, Value};

use super::event_record::VisitMeta;
use super::lead::Lead;
use super::source::{Source, Utm};

/// The macros a handler can use, for help texts.
pub const MACROS: [&str; 10] = [
    "{{lead.id}}",
    "{{lead.name}}",
    "{{contact.name}}",
    "{{contact.phone}}",
    "{{contact.email}}",
    "{{lead.utm_source}}",
    "{{lead.utm_campaign}}",
    "{{visit.url}}",
    "{{visit.number}}",
    "{{visit.utm_source}}",
];

/// What macros are filled from: the lead, its first touch, the visit of a site-visit event.
#[derive(Clone, Copy)]
pub struct Macros<'a> {
    pub lead: &'a Lead,
    pub first_touch: Option<&'a Source>,
    pub visit: Option<&'a VisitMeta>,
}

impl<'a> Macros<'a> {
    pub fn of(lead: &'a Lead) -> Self {
        Self {
            lead,
            first_touch: None,
            visit: None,
        }
    }

    /// Whether any of these settings uses the lead's first touch (read only then).
    pub fn need_first_touch(settings: &Map<String, Value>) -> bool {
        Value::Object(settings.clone())
            .to_string()
            .contains("lead.utm_")
    }
}

fn value_of(m: &Macros<'_>, name: &str) -> Option<String> {
    let lead = m.lead;
    let contact = lead.main_contact();
    let first: Option<&Utm> = m.first_touch.map(|s| &s.utm);
    let visit_utm: Option<&Utm> = m.visit.and_then(|v| v.source.as_ref()).map(|s| &s.utm);
    Some(match name {
        "lead.id" => lead.id.to_string(),
        "lead.name" => lead.name.clone(),
        "contact.name" => contact.map(|c| c.name.clone()).unwrap_or_default(),
        "contact.phone" => contact.and_then(|c| c.phone.clone()).unwrap_or_default(),
        "contact.email" => contact.and_then(|c| c.email.clone()).unwrap_or_default(),
        "lead.utm_source" => first.and_then(|u| u.utm_source.clone()).unwrap_or_default(),
        "lead.utm_campaign" => first
            .and_then(|u| u.utm_campaign.clone())
            .unwrap_or_default(),
        "visit.url" => m.visit.map(|v| v.url.clone()).unwrap_or_default(),
        "visit.number" => m.visit.map(|v| v.number.to_string()).unwrap_or_default(),
        "visit.utm_source" => visit_utm
            .and_then(|u| u.utm_source.clone())
            .unwrap_or_default(),
        _ => return None,
    })
}

/// Substitutes the macros of one string.
pub fn substitute(text: &str, lead: &Macros<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match value_of(lead, name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Substitutes the macros in every string of the settings, at any depth.
pub fn substitute_settings(settings: &Map<String, Value>, lead: &Macros<'_>) -> Map<String, Value> {
    settings
        .iter()
        .map(|(k, v)| (k.clone(), substitute_value(v, lead)))
        .collect()
}

fn substitute_value(value: &Value, lead: &Macros<'_>) -> Value {
    match value {
        Value::String(s) => Value::String(substitute(s, lead)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute_value(v, lead)).collect())
        }
        Value::Object(map) => Value::Object(substitute_settings(map, lead)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::*;
    use crate::domain::lead::Contact;

    fn lead() -> Lead {
        Lead {
            id: LeadId(42),
            account_id: AccountId(1),
            name: "Deal".into(),
            pipeline_id: PipelineId(1),
            status_id: StatusId(2),
            created_at: 0,
            updated_at: 0,
            contacts: vec![Contact {
                id: ContactId(7),
                name: "Anna".into(),
                phone: Some("+7900".into()),
                email: None,
                is_main: true,
            }],
        }
    }

    #[test]
    fn known_macros_are_substituted_unknown_kept() {
        assert_eq!(
            substitute(
                "Hi {{contact.name}} #{{ lead.id }} {{lead.name}} {{contact.phone}}/{{contact.email}} {{deal.sum}} {{open",
                &Macros::of(&lead())
            ),
            "Hi Anna #42 Deal +7900/ {{deal.sum}} {{open"
        );
    }

    #[test]
    fn source_and_visit_macros_read_the_first_touch_and_the_visit() {
        let lead = lead();
        let first =
            Source::of_landing("https://s.example/?utm_source=news&utm_campaign=dec", "", 0);
        let visit = VisitMeta {
            url: "https://s.example/pricing".into(),
            referrer: String::new(),
            title: String::new(),
            number: 4,
            started_at: 0,
            source: Some(Source::of_landing(
                "https://s.example/?utm_source=ads",
                "",
                0,
            )),
        };
        let text = "{{lead.utm_source}}/{{lead.utm_campaign}} {{visit.url}} #{{visit.number}} {{visit.utm_source}}";
        let full = Macros {
            lead: &lead,
            first_touch: Some(&first),
            visit: Some(&visit),
        };
        assert_eq!(
            substitute(text, &full),
            "news/dec https://s.example/pricing #4 ads"
        );
        assert_eq!(substitute(text, &Macros::of(&lead)), "/  # ");
        let mut settings = Map::new();
        settings.insert("m".into(), Value::String(text.into()));
        assert!(Macros::need_first_touch(&settings));
    }

    #[test]
    fn settings_are_substituted_at_any_depth_and_non_strings_kept() {
        let settings = serde_json::json!({"m": "Hi {{contact.name}}", "n": 3, "b": true,
            "list": ["{{lead.id}}"]});
        let out = substitute_settings(settings.as_object().unwrap(), &Macros::of(&lead()));
        assert_eq!(
            Value::Object(out),
            serde_json::json!({"m": "Hi Anna", "n": 3, "b": true, "list": ["42"]})
        );
    }
}

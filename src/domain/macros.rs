//! Macros in handler settings (`{{lead.id}}`, `{{contact.name}}` …), substituted with the
//! lead's data when an event fires. Unknown macros are left as written, so a typo shows in
//! the message instead of vanishing.

use serde_json::{Map, Value};

use super::lead::Lead;

/// The macros a handler can use, for help texts.
pub const MACROS: [&str; 5] = [
    "{{lead.id}}",
    "{{lead.name}}",
    "{{contact.name}}",
    "{{contact.phone}}",
    "{{contact.email}}",
];

fn value_of(lead: &Lead, name: &str) -> Option<String> {
    let contact = lead.main_contact();
    Some(match name {
        "lead.id" => lead.id.to_string(),
        "lead.name" => lead.name.clone(),
        "contact.name" => contact.map(|c| c.name.clone()).unwrap_or_default(),
        "contact.phone" => contact.and_then(|c| c.phone.clone()).unwrap_or_default(),
        "contact.email" => contact.and_then(|c| c.email.clone()).unwrap_or_default(),
        _ => return None,
    })
}

/// Substitutes the macros of one string.
pub fn substitute(text: &str, lead: &Lead) -> String {
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
pub fn substitute_settings(settings: &Map<String, Value>, lead: &Lead) -> Map<String, Value> {
    settings
        .iter()
        .map(|(k, v)| (k.clone(), substitute_value(v, lead)))
        .collect()
}

fn substitute_value(value: &Value, lead: &Lead) -> Value {
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
                &lead()
            ),
            "Hi Anna #42 Deal +7900/ {{deal.sum}} {{open"
        );
    }

    #[test]
    fn settings_are_substituted_at_any_depth_and_non_strings_kept() {
        let settings = serde_json::json!({"m": "Hi {{contact.name}}", "n": 3, "b": true,
            "list": ["{{lead.id}}"]});
        let out = substitute_settings(settings.as_object().unwrap(), &lead());
        assert_eq!(
            Value::Object(out),
            serde_json::json!({"m": "Hi Anna", "n": 3, "b": true, "list": ["42"]})
        );
    }
}

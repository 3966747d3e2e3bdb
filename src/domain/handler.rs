//! Handlers: the receivers of webhooks (amoCRM's digital-pipeline widgets). A handler
//! declares its settings schema the way a widget's manifest declares `dp.settings`; every
//! action's settings are checked against it.

use super::validation::FieldError;
use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::{AccountId, HandlerId};
use super::time::Millis;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Handler {
    pub id: HandlerId,
    pub account_id: AccountId,
    pub code: String,
    pub name: String,
    pub webhook_url: String,
    /// Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes).
    pub secret: String,
    /// The settings schema, in the manifest's `dp.settings` shape; order is kept.
    pub settings: Map<String, Value>,
    pub action_multiple: bool,
    pub created_at: Millis,
}

/// Without the secret and the webhook URL (which often carries a token of its own):
/// whatever logs a handler never shows either.
impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("code", &self.code)
            .field("name", &self.name)
            .field("webhook_url", &"[redacted]")
            .field("secret", &"[redacted]")
            .field("action_multiple", &self.action_multiple)
            .finish_non_exhaustive()
    }
}

impl Handler {
    pub fn generate_secret() -> String {
        let bytes: [u8; 32] = rand::rng().random();
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// The parsed schema; a stored handler's schema was validated on creation.
    pub fn schema(&self) -> SettingsSchema {
        SettingsSchema::parse(&Value::Object(self.settings.clone())).unwrap_or_default()
    }
}

/// A handler code: what actions name their handler by.
pub fn valid_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    Text,
    Textarea,
    Checkbox,
    Select,
    Url,
    Number,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub setting_type: SettingType,
    #[serde(default)]
    pub required: bool,
    /// The choices of a `select`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A handler's settings schema: `{key: {name, type, required}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsSchema(pub Vec<(String, SettingSpec)>);

impl SettingsSchema {
    pub fn parse(value: &Value) -> Result<Self, Vec<FieldError>> {
        let Value::Object(map) = value else {
            return Err(vec![FieldError::new("settings", "must be an object")]);
        };
        let mut specs = Vec::new();
        let mut errors = Vec::new();
        for (key, spec) in map {
            if !valid_code(key) {
                errors.push(FieldError::new(
                    format!("settings.{key}"),
                    "keys are 1–64 characters of a-z, 0-9, _ and -",
                ));
                continue;
            }
            match serde_json::from_value::<SettingSpec>(spec.clone()) {
                Ok(s) if s.setting_type == SettingType::Select && s.options.is_empty() => errors
                    .push(FieldError::new(
                        format!("settings.{key}.options"),
                        "a select needs options",
                    )),
                Ok(s) => specs.push((key.clone(), s)),
                Err(e) => errors.push(FieldError::new(
                    format!("settings.{key}"),
                    format!("needs {{name, type: text|textarea|checkbox|select|url|number, required}}: {e}"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(Self(specs))
        } else {
            Err(errors)
        }
    }

    /// Checks an action's settings: no unknown keys, required ones present and not empty,
    /// each value of its declared type. Strings may hold macros (`{{contact.name}}`).
    pub fn validate(&self, settings: &Map<String, Value>) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for key in settings.keys() {
            if !self.0.iter().any(|(k, _)| k == key) {
                errors.push(FieldError::new(
                    format!("settings.{key}"),
                    "is not a setting of this handler",
                ));
            }
        }
        for (key, spec) in &self.0 {
            let field = format!("settings.{key}");
            let value = settings.get(key);
            let empty = match value {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                _ => false,
            };
            if empty {
                if spec.required {
                    errors.push(FieldError::new(field, format!("{} is required", spec.name)));
                }
                continue;
            }
            if let Some(message) = type_error(spec, value.unwrap_or(&Value::Null)) {
                errors.push(FieldError::new(field, message));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl SettingsSchema {
    /// Settings as a handler receives them: a `number` given as text (`"3"`, as a form
    /// may send it) becomes the number, so that `action.settings.widget.settings` holds
    /// one type per setting whoever wrote it. Other values are kept as given.
    pub fn normalized(&self, mut settings: Map<String, Value>) -> Map<String, Value> {
        for (key, spec) in &self.0 {
            if spec.setting_type != SettingType::Number {
                continue;
            }
            if let Some(Value::String(text)) = settings.get(key)
                && let Some(number) = number_of(text)
            {
                settings.insert(key.clone(), Value::Number(number));
            }
        }
        settings
    }
}

/// A number setting's text as a JSON number (an integer stays one, up to u64's range).
fn number_of(text: &str) -> Option<serde_json::Number> {
    let text = text.trim();
    text.parse::<i64>()
        .map(serde_json::Number::from)
        .or_else(|_| text.parse::<u64>().map(serde_json::Number::from))
        .ok()
        .or_else(|| {
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
        })
}

fn type_error(spec: &SettingSpec, value: &Value) -> Option<String> {
    match (spec.setting_type, value) {
        (SettingType::Text | SettingType::Textarea, Value::String(s)) => {
            (s.len() > 10_000).then(|| "is longer than 10 000 bytes".to_owned())
        }
        (SettingType::Url, Value::String(s)) => {
            let ok = s.contains("{{") || super::site::parse_web_url(s).is_some();
            (!ok).then(|| "must be an http(s) URL".to_owned())
        }
        (SettingType::Select, Value::String(s)) => (!spec.options.contains(s))
            .then(|| format!("must be one of: {}", spec.options.join(", "))),
        (SettingType::Checkbox, Value::Bool(_)) => None,
        (SettingType::Number, Value::Number(_)) => None,
        (SettingType::Number, Value::String(s)) if number_of(s).is_some() => None,
        (t, _) => Some(format!("must be a {}", expected(t))),
    }
}

fn expected(t: SettingType) -> &'static str {
    match t {
        SettingType::Text | SettingType::Textarea | SettingType::Url | SettingType::Select => {
            "string"
        }
        SettingType::Checkbox => "boolean",
        SettingType::Number => "number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> SettingsSchema {
        SettingsSchema::parse(&json!({
            "message": {"name": "Message", "type": "text", "required": true},
            "only_main": {"name": "Only main contact", "type": "checkbox"},
            "channel": {"name": "Channel", "type": "select", "options": ["sms", "mail"]},
            "count": {"name": "Count", "type": "number"},
            "link": {"name": "Link", "type": "url"}
        }))
        .unwrap()
    }

    fn settings(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_number_given_as_text_reaches_the_handler_as_a_number() {
        let s = settings(json!({"message": "Hi", "count": " 3 ", "link": "https://a.example"}));
        assert_eq!(schema().validate(&s), Ok(()));
        let normalized = schema().normalized(s);
        assert_eq!(normalized["count"], json!(3));
        assert_eq!(normalized["message"], json!("Hi"));
        let s = settings(json!({"message": "Hi", "count": "12345678901234567890"}));
        assert_eq!(
            schema().normalized(s)["count"],
            json!(12_345_678_901_234_567_890_u64)
        );
        let s = settings(json!({"message": "Hi", "count": "2.5"}));
        assert_eq!(schema().normalized(s)["count"], json!(2.5));
        // NaN parses as a float but is no JSON number: refused, not kept as text.
        let s = settings(json!({"message": "Hi", "count": "NaN"}));
        assert!(schema().validate(&s).is_err());
    }

    #[test]
    fn valid_settings_pass() {
        let s = settings(json!({"message": "Hi {{contact.name}}", "only_main": true,
            "channel": "sms", "count": "3", "link": "https://x.example/{{lead.id}}"}));
        assert_eq!(schema().validate(&s), Ok(()));
    }

    #[test]
    fn each_broken_setting_is_named() {
        let s = settings(
            json!({"only_main": "yes", "channel": "fax", "count": "many",
            "link": "ftp://x", "extra": 1}),
        );
        let errors = schema().validate(&s).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "settings.extra",
                "settings.message",
                "settings.only_main",
                "settings.channel",
                "settings.count",
                "settings.link"
            ]
        );
    }

    #[test]
    fn malformed_schemas_are_refused() {
        assert!(SettingsSchema::parse(&json!({"m": {"name": "M", "type": "color"}})).is_err());
        assert!(SettingsSchema::parse(&json!({"m": {"name": "M", "type": "select"}})).is_err());
        assert!(SettingsSchema::parse(&json!({"Bad Key": {"name": "M", "type": "text"}})).is_err());
        assert!(SettingsSchema::parse(&json!([1])).is_err());
    }

    #[test]
    fn debug_shows_neither_the_secret_nor_the_url() {
        let h = Handler {
            id: HandlerId(1),
            account_id: AccountId(1),
            code: "notify".into(),
            name: "Notify".into(),
            webhook_url: "https://hooks.example/t0ken-in-path".into(),
            secret: Handler::generate_secret(),
            settings: Map::new(),
            action_multiple: false,
            created_at: 0,
        };
        let shown = format!("{h:?}");
        assert!(!shown.contains(&h.secret), "{shown}");
        assert!(!shown.contains("t0ken-in-path"), "{shown}");
        assert!(shown.contains("notify"), "{shown}");
    }

    #[test]
    fn secrets_follow_standard_webhooks() {
        let s = Handler::generate_secret();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
    }
}

//! Forms on the site and the contact a submission carries. A submission is parsed here
//! once, into a `ContactDetails`, with an error per field that fails.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ids::{AccountId, FormId, PipelineId, SiteId};
use super::time::Millis;
use super::validation::FieldError;

/// The hidden field that only bots fill in.
pub const HONEYPOT_FIELD: &str = "ff_hp";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Form {
    pub id: FormId,
    pub account_id: AccountId,
    pub name: String,
    pub site_id: SiteId,
    pub pipeline_id: PipelineId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    /// The contact fields a submission must carry.
    #[serde(default = "default_required")]
    pub required: Vec<ContactField>,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactField {
    Name,
    Phone,
    Email,
}

pub fn default_required() -> Vec<ContactField> {
    vec![ContactField::Name]
}

/// A validated contact from a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactDetails {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

const MAX_FIELD: usize = 256;

impl ContactDetails {
    /// The keys a contact is found by: its email (lower case) and its phone (digits only).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(email) = &self.email {
            keys.push(format!("email:{}", email.to_lowercase()));
        }
        if let Some(phone) = &self.phone {
            let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
            keys.push(format!("phone:{digits}"));
        }
        keys
    }
}

impl Form {
    /// Parses the submitted fields; every field that fails is named.
    pub fn parse_contact(
        &self,
        fields: &HashMap<String, String>,
    ) -> Result<ContactDetails, Vec<FieldError>> {
        ContactDetails::parse(fields, &self.required)
    }
}

impl ContactDetails {
    /// Parses a contact's `name`, `phone` and `email` (a form's fields, or a contact sent
    /// through the API); every field that fails is named.
    pub fn parse(
        fields: &HashMap<String, String>,
        required: &[ContactField],
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut take = |field: ContactField, key: &str, check: fn(&str) -> Option<&'static str>| {
            let value = fields.get(key).map(|v| clean(v)).filter(|v| !v.is_empty());
            match value {
                None if required.contains(&field) => {
                    errors.push(FieldError::new(key, "is required"));
                    None
                }
                None => None,
                Some(v) if v.chars().count() > MAX_FIELD => {
                    errors.push(FieldError::new(key, "is longer than 256 characters"));
                    None
                }
                Some(v) => match check(&v) {
                    Some(message) => {
                        errors.push(FieldError::new(key, message));
                        None
                    }
                    None => Some(v),
                },
            }
        };
        let name = take(ContactField::Name, "name", |_| None);
        let phone = take(ContactField::Phone, "phone", check_phone);
        let email = take(ContactField::Email, "email", check_email);
        if !errors.is_empty() {
            return Err(errors);
        }
        let name = name
            .or_else(|| email.clone())
            .or_else(|| phone.clone())
            .unwrap_or_else(|| "Visitor".to_owned());
        Ok(ContactDetails { name, phone, email })
    }
}

/// Trims and turns control characters into spaces; the text is kept as written otherwise
/// (escaping is the job of whoever renders it).
fn clean(v: &str) -> String {
    let spaced: String = v
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.trim().to_owned()
}

fn check_phone(v: &str) -> Option<&'static str> {
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let allowed = v
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    (!allowed || !(5..=20).contains(&digits))
        .then_some("must be a phone number: 5 to 20 digits, with + - ( ) . and spaces")
}

fn check_email(v: &str) -> Option<&'static str> {
    let ok = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !v.chars().any(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    };
    (!ok).then_some("must be an email address")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(required: Vec<ContactField>) -> Form {
        Form {
            id: FormId("f1".into()),
            account_id: AccountId(1),
            name: "Contact".into(),
            site_id: SiteId(1),
            pipeline_id: PipelineId(1),
            success_url: None,
            required,
            created_at: 0,
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_valid_submission_becomes_a_contact() {
        let c = form(default_required())
            .parse_contact(&fields(&[
                ("name", " Anna "),
                ("phone", "+7 (900) 123-45-67"),
                ("email", "a@b.co"),
            ]))
            .unwrap();
        assert_eq!(c.name, "Anna");
        assert_eq!(c.phone.as_deref(), Some("+7 (900) 123-45-67"));
        assert_eq!(c.email.as_deref(), Some("a@b.co"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = form(vec![ContactField::Name, ContactField::Email])
            .parse_contact(&fields(&[("phone", "call me"), ("email", "nope")]))
            .unwrap_err();
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["name", "phone", "email"]);
    }

    #[test]
    fn control_characters_become_spaces_and_markup_is_kept_as_text() {
        let c = form(default_required())
            .parse_contact(&fields(&[("name", "<b>Anna</b>\u{0}\n")]))
            .unwrap();
        assert_eq!(c.name, "<b>Anna</b>");
    }
}

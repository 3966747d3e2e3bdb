//! Privacy rules with no I/O: how much of a client's address is kept, and the audit record
//! an erasure leaves (what kind, how many — never whose).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ids::LeadId;
use super::lead::Contact;
use super::time::Millis;
use super::validation::FieldError;
use super::visitor::VisitorId;

/// `privacy.ip_mode`: how a client's address is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    /// IPv4 keeps its /24 and IPv6 its /48 (the network, not the household).
    #[default]
    Truncate,
    Full,
    /// No address is stored.
    None,
}

/// Bits of an IPv4 address kept by `truncate`.
const IPV4_KEPT_BITS: u32 = 24;
/// Bits of an IPv6 address kept by `truncate`.
const IPV6_KEPT_BITS: u32 = 48;

impl IpMode {
    /// The address as it may be stored.
    pub fn apply(self, ip: IpAddr) -> String {
        match self {
            Self::Full => ip.to_string(),
            Self::None => String::new(),
            Self::Truncate => truncate(ip).to_string(),
        }
    }

    /// An address given as text (an API client's metadata): kept as this mode keeps an
    /// address when it parses, dropped when it does not (text that is not an address is
    /// not kept as one, whatever its length).
    pub fn apply_text(self, ip: &str) -> String {
        ip.trim()
            .parse::<IpAddr>()
            .map_or_else(|_| String::new(), |addr| self.apply(addr))
    }
}

/// The address's network: IPv4 /24, IPv6 /48 (an IPv4-mapped IPv6 address as IPv4).
pub fn truncate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & (u32::MAX << (32 - IPV4_KEPT_BITS))).into()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => truncate(IpAddr::V4(v4)),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << (128 - IPV6_KEPT_BITS))).into()),
        },
    }
}

/// A site's consent policy (`consent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// t.js tracks from the first page view.
    #[default]
    None,
    /// t.js sends and stores nothing until the page calls `footfall('consent', true)`.
    Required,
}

/// How long t.js remembers a consent by default: 13 months, as long as a visitor cookie
/// (`cookies.max_age_days`).
pub const DEFAULT_CONSENT_DAYS: u32 = 395;

/// The longest a consent may be remembered (days).
pub const MAX_CONSENT_DAYS: u32 = 3650;

/// What an erasure asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureKind {
    /// `DELETE /api/v4/leads/{id}`.
    Lead,
    /// `DELETE /api/v4/visitors/{visitor_uid}`.
    Visitor,
    /// `POST /api/v4/privacy/erase` by email.
    Email,
    /// `POST /api/v4/privacy/erase` by phone.
    Phone,
    /// `privacy.lead_retention_days`.
    Retention,
}

/// How much an erasure removed: counts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Erased {
    pub leads: u64,
    pub contacts: u64,
    pub unsorted: u64,
    pub visitors: u64,
    pub page_views: u64,
    pub events: u64,
}

impl Erased {
    pub fn add(&mut self, other: Erased) {
        self.leads += other.leads;
        self.contacts += other.contacts;
        self.unsorted += other.unsorted;
        self.visitors += other.visitors;
        self.page_views += other.page_views;
        self.events += other.events;
    }
}

/// The audit record of one erasure: when, by which token (a short digest, never the
/// token), what kind and how many. Nothing in it names the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: Millis,
    /// `sha256:` and the first 12 hex digits of the token's digest; `retention` for the
    /// sweep.
    pub token: String,
    pub kind: ErasureKind,
    pub erased: Erased,
}

/// Whom an erasure or an export is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Every lead with a contact of this email (compared in lower case).
    Email(String),
    /// Every lead with a contact of this phone (compared by its digits).
    Phone(String),
    Visitor(VisitorId),
    Lead(LeadId),
}

impl Subject {
    /// An email subject: something with one `@` between non-empty parts.
    pub fn email(raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        match email.split_once('@') {
            Some((user, host)) if !user.is_empty() && !host.is_empty() && !host.contains('@') => {
                Ok(Self::Email(email))
            }
            _ => Err(FieldError::new("email", "must be an email address")),
        }
    }

    /// A phone subject: its digits, at least five of them.
    pub fn phone(raw: &str) -> Result<Self, FieldError> {
        let digits = phone_digits(raw);
        if digits.len() < MIN_PHONE_DIGITS {
            return Err(FieldError::new(
                "phone",
                format!("must hold at least {MIN_PHONE_DIGITS} digits"),
            ));
        }
        Ok(Self::Phone(digits))
    }

    /// Whether a lead's contact is this subject (an email or phone subject only).
    pub fn names(&self, contact: &Contact) -> bool {
        match self {
            Self::Email(email) => contact
                .email
                .as_deref()
                .is_some_and(|e| e.trim().to_lowercase() == *email),
            Self::Phone(digits) => contact
                .phone
                .as_deref()
                .is_some_and(|p| phone_digits(p) == *digits),
            Self::Visitor(_) | Self::Lead(_) => false,
        }
    }

    pub fn kind(&self) -> ErasureKind {
        match self {
            Self::Email(_) => ErasureKind::Email,
            Self::Phone(_) => ErasureKind::Phone,
            Self::Visitor(_) => ErasureKind::Visitor,
            Self::Lead(_) => ErasureKind::Lead,
        }
    }
}

/// Fewer digits than this name no phone (and would match too much).
const MIN_PHONE_DIGITS: usize = 5;

/// A phone's digits, as the contact index keys it.
fn phone_digits(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

/// The audit's name of an API token: `sha256:` and 12 hex digits of its digest — enough to
/// tell an account's tokens apart, nothing to use one with.
pub fn token_label(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_ipv4_24_and_ipv6_48() {
        let v4: IpAddr = "203.0.113.57".parse().unwrap();
        assert_eq!(IpMode::Truncate.apply(v4), "203.0.113.0");
        let v6: IpAddr = "2001:db8:abcd:1234::1".parse().unwrap();
        assert_eq!(IpMode::Truncate.apply(v6), "2001:db8:abcd::");
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(IpMode::Truncate.apply(mapped), "198.51.100.0");
    }

    #[test]
    fn full_and_none_keep_all_or_nothing() {
        let v4: IpAddr = "203.0.113.57".parse().unwrap();
        assert_eq!(IpMode::Full.apply(v4), "203.0.113.57");
        assert_eq!(IpMode::None.apply(v4), "");
        assert_eq!(IpMode::Truncate.apply_text("not an ip"), "");
        assert_eq!(IpMode::Truncate.apply_text("203.0.113.57"), "203.0.113.0");
        assert_eq!(IpMode::Full.apply_text(" 203.0.113.57 "), "203.0.113.57");
        assert_eq!(IpMode::Full.apply_text(&"x".repeat(100_000)), "");
        assert_eq!(IpMode::None.apply_text("203.0.113.57"), "");
    }

    #[test]
    fn subjects_parse_and_match_contacts_as_the_index_does() {
        let contact = Contact {
            id: crate::domain::ids::ContactId(1),
            name: "Anna".into(),
            phone: Some("+7 (900) 555-00-11".into()),
            email: Some("Anna@Example.com".into()),
            is_main: true,
        };
        assert!(Subject::email(" ANNA@example.com").unwrap().names(&contact));
        assert!(Subject::phone("79005550011").unwrap().names(&contact));
        assert!(!Subject::email("bob@example.com").unwrap().names(&contact));
        assert!(Subject::email("no-at-sign").is_err());
        assert!(Subject::phone("12").is_err());
        assert!(token_label("secret").starts_with("sha256:"));
        assert!(!token_label("secret").contains("secret"));
    }
}

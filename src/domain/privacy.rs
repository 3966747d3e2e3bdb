//! Privacy rules with no I/O: how much of a client's address is kept, and the audit record
//! an erasure leaves (what kind, how many — never whose).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::time::Millis;

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

    /// An address given as text (an API client's metadata): truncated when it parses,
    /// dropped when it does not (text that is not an address cannot be truncated).
    pub fn apply_text(self, ip: &str) -> String {
        match (self, ip.trim().parse::<IpAddr>()) {
            (Self::Full, _) => ip.to_owned(),
            (_, Ok(addr)) => self.apply(addr),
            (_, Err(_)) => String::new(),
        }
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
    }
}

//! Identifiers of every resource.
//!
//! Integer ids follow amoCRM (sites, pipelines, statuses, leads, contacts, handlers,
//! actions); string ids are random tokens (form ids, unsorted uids, site keys, event ids).
//! Each id is its own type so that a lead id can never be passed where a status id is meant.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

macro_rules! integer_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

integer_id!(
    /// An account (a tenant), from the configuration.
    AccountId,
    /// A tracked site.
    SiteId,
    /// A sales pipeline.
    PipelineId,
    /// A pipeline stage. 142 (won) and 143 (lost) are shared by every pipeline, as in amoCRM.
    StatusId,
    /// A lead (amoCRM's "deal").
    LeadId,
    /// A contact person of a lead.
    ContactId,
    /// A registered webhook handler (amoCRM's digital-pipeline widget).
    HandlerId,
    /// A trigger placed on one or more stages.
    ActionId,
);

macro_rules! token_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Maps keyed by the id can be searched with a borrowed `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    )*};
}

token_id!(
    /// A form, referenced by `data-footfall-form` on the site.
    FormId,
    /// An entry of the Unsorted list.
    UnsortedUid,
    /// The public key of a site, pasted into `data-site`.
    SiteKey,
    /// A fired event; the same on every delivery attempt (also the `webhook-id`).
    EventId,
);

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random token of `len` base62 characters (about 5.95 bits each).
pub fn random_token(len: usize) -> String {
    // Six random bits per character, the two values past the alphabet drawn again: ten
    // characters from each random word (every request gets a token).
    let mut rng = rand::rng();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut bits: u64 = rng.random();
        for _ in 0..10 {
            let i = (bits & 63) as usize;
            bits >>= 6;
            if i < ALPHABET.len() && out.len() < len {
                out.push(ALPHABET[i] as char);
            }
        }
    }
    out
}

impl FormId {
    pub fn generate() -> Self {
        Self(format!("f{}", random_token(11)))
    }
}

impl UnsortedUid {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl SiteKey {
    pub fn generate() -> Self {
        Self(format!("s{}", random_token(19)))
    }
}

impl EventId {
    /// 128 bits of randomness behind the `evt_` prefix.
    pub fn generate() -> Self {
        Self(format!("evt_{}", random_token(22)))
    }
}

/// A string id taken from a URL path or a body: only tokens of our own alphabet pass, so a
/// hostile value can never reach a store key.
pub fn is_token_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_token_like_and_distinct() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("evt_"));
        assert_eq!(a.as_str().len(), 26);
        for id in [
            a.0,
            FormId::generate().0,
            UnsortedUid::generate().0,
            SiteKey::generate().0,
        ] {
            assert!(is_token_like(&id), "{id}");
        }
    }

    #[test]
    fn random_tokens_use_the_whole_alphabet_evenly() {
        let mut counts = [0u32; 62];
        for _ in 0..2_000 {
            let token = random_token(31);
            assert_eq!(token.len(), 31);
            for b in token.bytes() {
                counts[ALPHABET.iter().position(|a| *a == b).unwrap()] += 1;
            }
        }
        // 1 000 expected per character; 6 standard deviations either way.
        assert!(counts.iter().all(|n| (810..1190).contains(n)), "{counts:?}");
    }

    #[test]
    fn hostile_strings_are_not_token_like() {
        for s in ["", "a:b", "a b", "{x}", "x\n", &"a".repeat(65)] {
            assert!(!is_token_like(s), "{s:?}");
        }
    }
}

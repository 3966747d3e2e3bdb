//! Visitors: an unguessable 128-bit id minted by the server, carried by the browser as a
//! value signed with the `cookie` crate's signed cookies.
//!
//! The first configured key signs; every key verifies, so keys can be rotated without
//! forgetting visitors. A value that does not verify is treated as absent: it can never
//! reach a lead it was not linked to.
//!
//! The value is the `cookie` crate's signed format, `MAC | id`, with keys derived by the
//! crate; the MAC (HMAC-SHA256 with the key's signing half) covers the account as well
//! as the id, so a signed id is valid on one account's sites only. Each key's HMAC is
//! prepared once and cloned per check.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::Key;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use super::ids::AccountId;
use super::memo::Memo;

/// A visitor: 16 random bytes, shown as 22 characters of URL-safe base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisitorId([u8; 16]);

impl VisitorId {
    pub fn mint() -> Self {
        Self(rand::rng().random())
    }

    /// Parses the 22-character form; anything else is refused.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 22 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn encode(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for VisitorId {
    /// Encodes on the stack: key names are built from it on every page view.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 22];
        let n = URL_SAFE_NO_PAD
            .encode_slice(self.0, &mut buf)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for VisitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VisitorId({self})")
    }
}

impl serde::Serialize for VisitorId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> serde::Deserialize<'de> for VisitorId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        VisitorId::parse(&s).ok_or_else(|| serde::de::Error::custom("not a visitor id"))
    }
}

/// Signs and verifies visitor ids with the configured cookie keys.
#[derive(Clone)]
pub struct VisitorSigner {
    /// One keyed MAC per key, cloned for each verification.
    verifiers: Vec<Hmac<Sha256>>,
    cookie_name: String,
    /// Ids this signer verified lately.
    verified: Memo<Option<(VisitorId, AccountId)>>,
}

/// Length of the base64 MAC in front of a signed value.
const MAC_LEN: usize = 44;

/// The signing keys were not usable.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cookies.keys is empty")]
    Empty,
    #[error("cookies.keys[{0}] is not base64")]
    NotBase64(usize),
    #[error("cookies.keys[{0}] has {1} bytes; at least 32 are needed")]
    TooShort(usize, usize),
}

impl VisitorSigner {
    /// Builds a signer from base64 master keys of at least 32 bytes each.
    pub fn from_base64_keys(keys: &[String], cookie_name: &str) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(k.trim())
                    .map_err(|_| KeyError::NotBase64(i))?;
                if raw.len() < 32 {
                    return Err(KeyError::TooShort(i, raw.len()));
                }
                Ok(Key::derive_from(&raw))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::with_keys(keys, cookie_name))
    }

    /// A signer with one fresh random key (the embedded store's zero-setup default).
    pub fn ephemeral(cookie_name: &str) -> Self {
        Self::with_keys(vec![Key::generate()], cookie_name)
    }

    fn with_keys(keys: Vec<Key>, cookie_name: &str) -> Self {
        let verifiers = keys
            .iter()
            .filter_map(|k| Hmac::<Sha256>::new_from_slice(k.signing()).ok())
            .collect();
        Self {
            verifiers,
            cookie_name: cookie_name.to_owned(),
            verified: Memo::new(),
        }
    }

    /// A secret for another use (`purpose`), derived from the signing key: instances
    /// that share the cookie key share it.
    pub fn derive(&self, purpose: &str) -> [u8; 16] {
        let mut secret = [0u8; 16];
        if let Some(first) = self.verifiers.first() {
            let mut mac = first.clone();
            mac.update(b"derive:");
            mac.update(purpose.as_bytes());
            secret.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        }
        secret
    }

    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The signed value (`MAC | id`) that the browser keeps, valid on `account`'s sites
    /// only: the MAC covers the account, so an id read on one account's site is not
    /// accepted by another's.
    pub fn sign(&self, account: AccountId, id: VisitorId) -> String {
        let value = id.encode();
        // `with_keys` is always given a key, and an HMAC takes a key of any length.
        let Some(first) = self.verifiers.first() else {
            return String::new();
        };
        let mut mac = first.clone();
        mac.update(&Self::scope(account));
        mac.update(value.as_bytes());
        let mut signed =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        signed.push_str(&value);
        signed
    }

    /// The visitor of a signed value, if any key verifies it for `account`. A browser sends
    /// its id with every page view: ids verified lately are remembered with their account
    /// (a value's MAC can verify for one account only).
    pub fn verify(&self, account: AccountId, signed: &str) -> Option<VisitorId> {
        self.verified
            .get_or(
                signed,
                |signed| self.check(account, signed).map(|id| (id, account)),
                Option::is_some,
            )
            .and_then(|(id, of)| (of == account).then_some(id))
    }

    /// What the MAC covers before the id: the account, fixed width.
    fn scope(account: AccountId) -> [u8; 9] {
        let mut scope = [b'a'; 9];
        scope[1..].copy_from_slice(&account.0.to_be_bytes());
        scope
    }

    fn check(&self, account: AccountId, signed: &str) -> Option<VisitorId> {
        // A signed id is 44 characters of MAC and 22 of id: refuse other sizes before
        // computing any MAC.
        if signed.len() != MAC_LEN + 22 || !signed.is_char_boundary(MAC_LEN) {
            return None;
        }
        let (mac, value) = signed.split_at(MAC_LEN);
        let mac = base64::engine::general_purpose::STANDARD.decode(mac).ok()?;
        let id = VisitorId::parse(value)?;
        let scope = Self::scope(account);
        self.verifiers
            .iter()
            .any(|keyed| {
                let mut keyed = keyed.clone();
                keyed.update(&scope);
                keyed.update(value.as_bytes());
                keyed.verify_slice(&mac).is_ok()
            })
            .then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: AccountId = AccountId(1);
    const B: AccountId = AccountId(2);

    fn key(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    #[test]
    fn signed_id_round_trips() {
        let signer = VisitorSigner::from_base64_keys(&[key(1)], "ff_vid").unwrap();
        let id = VisitorId::mint();
        let signed = signer.sign(A, id);
        assert_eq!(signed.len(), 66);
        assert_eq!(signer.verify(A, &signed), Some(id));
    }

    #[test]
    fn an_id_signed_for_one_account_does_not_verify_for_another() {
        let signer = VisitorSigner::from_base64_keys(&[key(1)], "ff_vid").unwrap();
        let id = VisitorId::mint();
        let signed = signer.sign(A, id);
        // Remembered for A, still refused for B (and the other way round).
        assert_eq!(signer.verify(A, &signed), Some(id));
        assert_eq!(signer.verify(B, &signed), None);
        let for_b = signer.sign(B, id);
        assert_eq!(signer.verify(B, &for_b), Some(id));
        assert_eq!(signer.verify(A, &for_b), None);
    }

    #[test]
    fn tampered_or_foreign_values_do_not_verify() {
        let signer = VisitorSigner::from_base64_keys(&[key(1)], "ff_vid").unwrap();
        let other = VisitorSigner::from_base64_keys(&[key(2)], "ff_vid").unwrap();
        let id = VisitorId::mint();
        let signed = signer.sign(A, id);
        assert_eq!(other.verify(A, &signed), None);
        let mut tampered = signed.clone();
        tampered.replace_range(50..51, if &signed[50..51] == "A" { "B" } else { "A" });
        assert_eq!(signer.verify(A, &tampered), None);
        assert_eq!(signer.verify(A, &id.encode()), None);
        assert_eq!(signer.verify(A, ""), None);
        assert_eq!(signer.verify(A, &"é".repeat(33)), None);
    }

    #[test]
    fn rotation_first_key_signs_all_keys_verify() {
        let old = VisitorSigner::from_base64_keys(&[key(1)], "ff_vid").unwrap();
        let rotated = VisitorSigner::from_base64_keys(&[key(2), key(1)], "ff_vid").unwrap();
        let id = VisitorId::mint();
        assert_eq!(rotated.verify(A, &old.sign(A, id)), Some(id));
        assert_eq!(old.verify(A, &rotated.sign(A, id)), None);
    }

    #[test]
    fn short_or_malformed_keys_are_refused() {
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(matches!(
            VisitorSigner::from_base64_keys(&[short], "v"),
            Err(KeyError::TooShort(0, 16))
        ));
        assert!(matches!(
            VisitorSigner::from_base64_keys(&["%%%".into()], "v"),
            Err(KeyError::NotBase64(0))
        ));
        assert!(matches!(
            VisitorSigner::from_base64_keys(&[], "v"),
            Err(KeyError::Empty)
        ));
    }
}

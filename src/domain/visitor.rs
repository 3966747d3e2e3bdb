//! Visitors: an unguessable 128-bit id minted by the server, carried by the browser as a
//! value signed with the `cookie` crate's signed cookies.
//!
//! The first configured key signs; every key verifies, so keys can be rotated without
//! forgetting visitors. A value that does not verify is treated as absent: it can never
//! reach a lead it was not linked to.
//!
//! Signing goes through the `cookie` crate. Verification — on every page view — checks
//! the same MAC (HMAC-SHA256 of the value with the key's signing half, the crate's
//! `MAC | value` format) with a keyed HMAC prepared once per key, instead of re-keying
//! and building cookies per call; the tests check it against the crate's own signatures.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, CookieJar, Key};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

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
    keys: Vec<Key>,
    /// One keyed MAC per key, cloned for each verification.
    verifiers: Vec<Hmac<Sha256>>,
    cookie_name: String,
    /// Ids this signer verified lately.
    verified: Memo<Option<VisitorId>>,
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
            keys,
            verifiers,
            cookie_name: cookie_name.to_owned(),
            verified: Memo::new(),
        }
    }

    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The signed value (`MAC | id`) that the browser keeps.
    pub fn sign(&self, id: VisitorId) -> String {
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.keys[0])
            .add(Cookie::new(self.cookie_name.clone(), id.encode()));
        jar.get(&self.cookie_name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default()
    }

    /// The visitor of a signed value, if any key verifies it. A browser sends its id with
    /// every page view: ids verified lately are remembered.
    pub fn verify(&self, signed: &str) -> Option<VisitorId> {
        self.verified
            .get_or(signed, |signed| self.check(signed), Option::is_some)
    }

    fn check(&self, signed: &str) -> Option<VisitorId> {
        // A signed id is 44 characters of MAC and 22 of id: refuse other sizes before
        // computing any MAC.
        if signed.len() != MAC_LEN + 22 || !signed.is_char_boundary(MAC_LEN) {
            return None;
        }
        let (mac, value) = signed.split_at(MAC_LEN);
        let mac = base64::engine::general_purpose::STANDARD.decode(mac).ok()?;
        let id = VisitorId::parse(value)?;
        self.verifiers
            .iter()
            .any(|keyed| {
                let mut keyed = keyed.clone();
                keyed.update(value.as_bytes());
                keyed.verify_slice(&mac).is_ok()
            })
            .then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    #[test]
    fn signed_id_round_trips() {
        let signer = VisitorSigner::from_base64_keys(&[key(1)], "ff_vid").unwrap();
        let id = VisitorId::mint();
        let signed = signer.sign(id);
        assert_eq!(signed.len(), 66);
        assert_eq!(signer.verify(&signed), Some(id));
    }

    #[test]
    fn tampered_or_foreign_values_do_not_verify() {
        let signer = VisitorSigner::from_base64_keys(&[key(1)], "ff_vid").unwrap();
        let other = VisitorSigner::from_base64_keys(&[key(2)], "ff_vid").unwrap();
        let id = VisitorId::mint();
        let signed = signer.sign(id);
        assert_eq!(other.verify(&signed), None);
        let mut tampered = signed.clone();
        tampered.replace_range(50..51, if &signed[50..51] == "A" { "B" } else { "A" });
        assert_eq!(signer.verify(&tampered), None);
        assert_eq!(signer.verify(&id.encode()), None);
        assert_eq!(signer.verify(""), None);
        assert_eq!(signer.verify(&"é".repeat(33)), None);
    }

    #[test]
    fn verification_agrees_with_the_cookie_crate() {
        let signer = VisitorSigner::from_base64_keys(&[key(3)], "ff_vid").unwrap();
        let id = VisitorId::mint();
        // Signed by the crate, verified by ours …
        let signed = signer.sign(id);
        assert_eq!(signer.verify(&signed), Some(id));
        // … and ours refuses what the crate refuses.
        let jar = CookieJar::new();
        let crate_verdict = |v: &str| {
            jar.signed(&signer.keys[0])
                .verify(Cookie::new("ff_vid", v.to_owned()))
                .is_some()
        };
        let mut forged = signed.clone();
        forged.replace_range(0..1, if &signed[0..1] == "A" { "B" } else { "A" });
        for v in [signed.as_str(), forged.as_str()] {
            assert_eq!(signer.verify(v).is_some(), crate_verdict(v), "{v}");
        }
    }

    #[test]
    fn rotation_first_key_signs_all_keys_verify() {
        let old = VisitorSigner::from_base64_keys(&[key(1)], "ff_vid").unwrap();
        let rotated = VisitorSigner::from_base64_keys(&[key(2), key(1)], "ff_vid").unwrap();
        let id = VisitorId::mint();
        assert_eq!(rotated.verify(&old.sign(id)), Some(id));
        assert_eq!(old.verify(&rotated.sign(id)), None);
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

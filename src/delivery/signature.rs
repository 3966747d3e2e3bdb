//! Standard Webhooks signatures: `v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`,
//! keyed with the base64 part of the handler's `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the signing secret is not `whsec_` followed by base64")]
pub struct BadSecret;

/// The value of the `webhook-signature` header.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, BadSecret> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_public_test_vector() {
        let path = format!(
            "{}/tests/fixtures/webhook-signature-vector.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let signature = sign(
            v["secret"].as_str().unwrap(),
            v["webhook-id"].as_str().unwrap(),
            v["webhook-timestamp"].as_str().unwrap().parse().unwrap(),
            v["body"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(signature, v["webhook-signature"].as_str().unwrap());
    }

    #[test]
    fn refuses_a_secret_that_is_not_base64() {
        assert_eq!(sign("whsec_%%%", "id", 1, "{}"), Err(BadSecret));
    }
}

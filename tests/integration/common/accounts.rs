//! A second account for the tenant-isolation tests, and requests with any token (or none)
//! and any body bytes, for the tests of bad input.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use footfall::config::{AccountSettings, Settings};

use super::{Backend, TestApp, test_settings};

pub const TOKEN_B: &str = "test-token-account-b";
pub const ACCOUNT_B: u64 = 30441695;
pub const SUBDOMAIN_B: &str = "bravo";

/// The test settings with account B configured beside account A.
pub fn two_accounts(backend: Backend) -> Settings {
    let mut s = test_settings(backend);
    s.accounts.push(AccountSettings {
        account_id: ACCOUNT_B,
        subdomain: SUBDOMAIN_B.into(),
        token: TOKEN_B.to_owned().into(),
    });
    s
}

/// An answer with its headers, and its body as JSON (or as a JSON string when it is not
/// JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl TestApp {
    /// Any request: method, path, optional bearer token, optional content type, raw body.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, reqwest::Error> {
        let mut req = self.client.request(method, self.url(path)).body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let response = req.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Ok(Answer {
            status,
            headers,
            body,
            text,
        })
    }

    /// A JSON request with the given token.
    pub async fn json_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let ct = body.map(|_| "application/json");
        self.raw(method, path, Some(token), ct, bytes)
            .await
            .expect("request sent")
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Answer {
        self.json_as(token, reqwest::Method::GET, path, None).await
    }

    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> Answer {
        self.json_as(token, reqwest::Method::POST, path, Some(&body))
            .await
    }

    pub async fn patch_as(&self, token: &str, path: &str, body: Value) -> Answer {
        self.json_as(token, reqwest::Method::PATCH, path, Some(&body))
            .await
    }

    pub async fn delete_as(&self, token: &str, path: &str) -> Answer {
        self.json_as(token, reqwest::Method::DELETE, path, None)
            .await
    }

    /// Creates one resource with the given token and returns it.
    pub async fn create_as(&self, token: &str, resource: &str, item: Value) -> Value {
        let answer = self
            .post_as(
                token,
                &format!("/api/v4/{resource}"),
                serde_json::json!([item]),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "creating {resource}: {}",
            answer.text
        );
        answer.body["_embedded"][resource][0].clone()
    }
}

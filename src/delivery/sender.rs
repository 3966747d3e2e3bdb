//! Sends one webhook: the body as is, Standard Webhooks headers, a timeout, no
//! redirects, and (unless private targets are allowed) only to public addresses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};

use super::signature;
use super::ssrf::{PublicOnlyResolver, is_forbidden};
use crate::domain::event_record::Attempt;
use crate::domain::time::now_ms;

/// A handler's body.
pub const JSON: &str = "application/json";

/// An account webhook's body, as amoCRM sends it.
pub const FORM: &str = "application/x-www-form-urlencoded";

pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
    /// URLs under this prefix are footfall's own (the demo inbox): sent without the guard.
    trusted: Option<(String, reqwest::Client)>,
}

/// What one attempt came to.
pub struct Sent {
    pub attempt: Attempt,
    /// The receiver asked to wait this long before the next attempt.
    pub retry_after: Option<Duration>,
    /// The receiver answered 410 Gone: stop sending this event.
    pub gone: bool,
}

impl Sender {
    pub fn new(
        timeout: Duration,
        allow_private: bool,
        trusted_prefix: Option<String>,
    ) -> Result<Self, reqwest::Error> {
        let builder = || {
            crate::http_client()
                .timeout(timeout)
                .connect_timeout(connect_timeout(timeout))
                .redirect(reqwest::redirect::Policy::none())
                // HTTP(S)_PROXY / ALL_PROXY would send webhooks through a proxy that
                // resolves names itself, past the public-address resolver below.
                .no_proxy()
                .user_agent(concat!("footfall/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(Duration::from_secs(30))
        };
        let client = if allow_private {
            builder().build()?
        } else {
            builder()
                .dns_resolver(Arc::new(PublicOnlyResolver))
                .build()?
        };
        let trusted = match trusted_prefix {
            Some(prefix) => Some((prefix, builder().build()?)),
            None => None,
        };
        Ok(Self {
            client,
            allow_private,
            timeout,
            trusted,
        })
    }

    fn client_for(&self, url: &str) -> (&reqwest::Client, bool) {
        match &self.trusted {
            Some((prefix, client)) if url.starts_with(prefix.as_str()) => (client, true),
            _ => (&self.client, self.allow_private),
        }
    }

    pub async fn send(&self, url: &str, secret: &str, id: &str, body: &str) -> Sent {
        self.send_as(url, secret, id, body, JSON).await
    }

    /// Sends a body of the given content type (an account webhook's is a form's).
    pub async fn send_as(
        &self,
        url: &str,
        secret: &str,
        id: &str,
        body: &str,
        content_type: &'static str,
    ) -> Sent {
        let at = now_ms();
        let started = Instant::now();
        let result = self.try_send(url, secret, id, body, at, content_type).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok((status, headers)) => {
                let ok = status.is_success();
                Sent {
                    attempt: Attempt {
                        at,
                        status: Some(status.as_u16()),
                        latency_ms,
                        error: (!ok).then(|| format!("answered {status}")),
                    },
                    retry_after: retry_after(status, &headers),
                    gone: status == StatusCode::GONE,
                }
            }
            Err(error) => Sent {
                attempt: Attempt {
                    at,
                    status: None,
                    latency_ms,
                    error: Some(error),
                },
                retry_after: None,
                gone: false,
            },
        }
    }

    async fn try_send(
        &self,
        url: &str,
        secret: &str,
        id: &str,
        body: &str,
        at: i64,
        content_type: &'static str,
    ) -> Result<(StatusCode, HeaderMap), String> {
        let parsed = url::Url::parse(url).map_err(|_| "the webhook URL is invalid".to_owned())?;
        let (client, allow_private) = self.client_for(url);
        if !allow_private {
            // Literal addresses never reach the resolver: check them here.
            let literal = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(is_forbidden) {
                return Err("refused: the webhook URL points to a non-public address".into());
            }
        }
        let timestamp = at / 1000;
        let signature = signature::sign(secret, id, timestamp, body).map_err(|e| e.to_string())?;
        let response = client
            .post(parsed)
            .header(CONTENT_TYPE, content_type)
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| self.describe(e))?;
        Ok((response.status(), response.headers().clone()))
    }

    /// What went wrong, without the URL: webhook URLs often carry tokens, and this text is
    /// stored with the attempt and may reach the logs.
    fn describe(&self, e: reqwest::Error) -> String {
        let e = e.without_url();
        if e.is_connect() && e.is_timeout() {
            format!(
                "could not connect within {} ms",
                connect_timeout(self.timeout).as_millis()
            )
        } else if e.is_timeout() {
            format!("no answer within {} ms", self.timeout.as_millis())
        } else if e.is_connect() {
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            let mut deepest = e.to_string();
            while let Some(s) = source {
                deepest = s.to_string();
                source = s.source();
            }
            format!("could not connect: {deepest}")
        } else {
            e.to_string()
        }
    }
}

/// `Retry-After` in seconds, when the status is one that asks to slow down.
fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    let slow_down = matches!(status.as_u16(), 429 | 502 | 503 | 504);
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    slow_down.then(|| Duration::from_secs(secs.min(crate::domain::time::DAY_SECS)))
}

/// Connecting (with the name lookup) gets at most 3 s of the attempt's timeout.
fn connect_timeout(timeout: Duration) -> Duration {
    timeout.min(Duration::from_secs(3))
}

//! The SSRF guard: webhooks never go to loopback, private, link-local (cloud metadata),
//! shared, reserved or otherwise non-public addresses — unless the configuration allows
//! private targets (tests, demos). Checked when a handler is registered and again at every
//! send, inside the HTTP client's resolver, so that DNS rebinding cannot slip past.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

/// Whether an address is one a webhook must not reach.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2002) // 6to4 (embeds any IPv4)
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0) // IPv4-compatible
}

/// Why a webhook URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlRefusal {
    #[error("must be an absolute http(s) URL")]
    NotHttp,
    #[error("must not carry a user name or password")]
    Credentials,
    /// The address is not named: the answer must not map the internal network's DNS.
    #[error("is not a public address")]
    Private,
    #[error("its host does not resolve")]
    Unresolvable,
}

/// Checks a webhook URL: http(s), no credentials, and (unless private targets are
/// allowed) every address its host resolves to is public.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<Url, UrlRefusal> {
    let url = Url::parse(raw).map_err(|_| UrlRefusal::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(UrlRefusal::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    if allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip))?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip))?,
        Some(url::Host::Domain(domain)) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((domain, port))
                .await
                .map_err(|_| UrlRefusal::Unresolvable)?
                .collect();
            if addrs.is_empty() {
                return Err(UrlRefusal::Unresolvable);
            }
            for addr in addrs {
                check_ip(addr.ip())?;
            }
        }
        None => return Err(UrlRefusal::NotHttp),
    }
    Ok(url)
}

fn check_ip(ip: IpAddr) -> Result<(), UrlRefusal> {
    if is_forbidden(ip) {
        Err(UrlRefusal::Private)
    } else {
        Ok(())
    }
}

/// A resolver for the HTTP client that drops non-public addresses; a host with only such
/// addresses fails to resolve.
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_forbidden(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::",
            "2002:a00:1::",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn literal_private_urls_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.0.0.5/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/hook",
            "http://localhost/hook",
        ] {
            assert!(
                matches!(check_url(url, false).await, Err(UrlRefusal::Private)),
                "{url}"
            );
            assert!(check_url(url, true).await.is_ok(), "{url}");
        }
        assert_eq!(
            check_url("ftp://x.example", true).await,
            Err(UrlRefusal::NotHttp)
        );
        assert_eq!(
            check_url("https://u:p@x.example", true).await,
            Err(UrlRefusal::Credentials)
        );
    }
}

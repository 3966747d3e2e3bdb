//! What a public request tells about its client: address, origin, user agent, the
//! visitor cookie, and whether it asks not to be tracked. Everything is borrowed from the
//! request's headers: a page view copies none of them.
//!
//! The address: the connection's peer, unless the peer is a trusted proxy
//! (`server.trusted_proxies`); then the right-most address of `X-Forwarded-For` that is
//! not a trusted proxy. The left part of the header is whatever the client wrote, so it
//! never counts. The old `server.trust_proxy_headers = true` trusts the peer alone: the
//! client is the right-most address, the one that proxy appended.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName};

pub struct Client<'a> {
    pub ip: IpAddr,
    /// The page's origin; none when the request names none or an opaque one (`null`).
    pub origin: Option<&'a str>,
    pub user_agent: &'a str,
    pub referer: &'a str,
    /// The signed visitor id of the server-set cookie; none from an opaque origin.
    pub cookie_vid: Option<&'a str>,
    /// `DNT: 1` or `Sec-GPC: 1`.
    pub do_not_track: bool,
}

/// One `address/prefix` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, or a single address.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self {
            network: addr,
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.network), ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Which peers may tell the client's address (app data, parsed once at start).
#[derive(Debug, Clone, Default)]
pub struct ProxyTrust {
    proxies: Vec<Cidr>,
    /// The old `trust_proxy_headers = true`: the peer is a proxy, whatever its address.
    any_peer: bool,
}

impl ProxyTrust {
    /// From `server.trusted_proxies` and the old `server.trust_proxy_headers`; an entry that
    /// is not an address or a range is named in the error.
    pub fn new(trusted: &[String], any_peer: bool) -> Result<Self, String> {
        let proxies = trusted
            .iter()
            .map(|s| Cidr::parse(s).ok_or_else(|| s.clone()))
            .collect::<Result<_, _>>()?;
        Ok(Self { proxies, any_peer })
    }

    fn is_proxy(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|c| c.contains(ip))
    }

    /// Whether a connection from `peer` is a proxy's, which may forward anyone's request
    /// (with or without saying so in a header).
    pub fn is_proxy_peer(&self, peer: IpAddr) -> bool {
        self.any_peer || self.is_proxy(peer)
    }

    /// The client of a connection from `peer` with this `X-Forwarded-For`.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer_trusted = self.is_proxy_peer(peer);
        let Some(header) = forwarded_for.filter(|_| peer_trusted) else {
            return canonical(peer);
        };
        let mut hops = header.rsplit(',').map(hop);
        if self.proxies.is_empty() {
            // The old boolean: one proxy, which appended the client's address last.
            return hops.next().flatten().unwrap_or(canonical(peer));
        }
        let mut last = canonical(peer);
        for hop in hops {
            // A hop that is not an address was written by someone untrusted: stop at the
            // last good one.
            let Some(ip) = hop else { return last };
            if !self.is_proxy(ip) {
                return ip;
            }
            last = ip;
        }
        last
    }
}

/// One hop of `X-Forwarded-For`: an address, or an address with its port (as some
/// gateways write it); `None` for anything else.
fn hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<std::net::SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(canonical)
}

/// The key a client's rate limits and quotas count under: its address, or for IPv6 its
/// /64 (one subscriber's usual allocation, which it can rotate through freely).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

impl<'a> Client<'a> {
    /// Reads the client of a request; `X-Forwarded-For` counts only as `trust` allows,
    /// otherwise anyone could pick their own address.
    pub fn of(req: &'a HttpRequest, cookie_name: &str, trust: &ProxyTrust) -> Self {
        let header = |name: HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
        let peer = req
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        // Every line of the header, in order: a proxy may add its own line after one the
        // client wrote, and the right-most hops are the ones to believe.
        let forwarded: Vec<_> = req
            .headers()
            .get_all(HeaderName::from_static("x-forwarded-for"))
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect();
        let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
        let ip = trust.client(peer, forwarded.as_deref());
        let cookie_vid = req
            .headers()
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == cookie_name)
            .and_then(|c| c.value_raw());
        // A page of no origin (a sandboxed frame, a `data:` page) may be anyone's: the
        // browser's cookie does not name its visitor there, or any page could post as it.
        let origin = header(header::ORIGIN);
        let opaque = origin == Some("null");
        let cookie_vid = cookie_vid.filter(|_| !opaque);
        let flag = |name: &'static str| {
            header(HeaderName::from_static(name)).is_some_and(|v| v.trim() == "1")
        };
        Self {
            ip,
            origin: origin.filter(|_| !opaque),
            user_agent: header(header::USER_AGENT).unwrap_or_default(),
            referer: header(header::REFERER).unwrap_or_default(),
            cookie_vid,
            do_not_track: flag("dnt") || flag("sec-gpc"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_address() {
        let trust = ProxyTrust::new(&["10.0.0.0/8".into(), "127.0.0.1".into()], false).unwrap();
        let peer = ip("127.0.0.1");
        let client = |xff| trust.client(peer, Some(xff));
        assert_eq!(client("6.6.6.6, 203.0.113.7, 10.1.2.3"), ip("203.0.113.7"));
        assert_eq!(client("203.0.113.7"), ip("203.0.113.7"));
        assert_eq!(client("garbage, 203.0.113.7"), ip("203.0.113.7"));
        assert_eq!(client("10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(client("6.6.6.6, 203.0.113.7:4711"), ip("203.0.113.7"));
        assert_eq!(client("[2001:db8::7]:443, 10.0.0.9"), ip("2001:db8::7"));
        // An untrusted peer's header is ignored.
        assert_eq!(
            trust.client(ip("198.51.100.1"), Some("1.2.3.4")),
            ip("198.51.100.1")
        );
        // The old boolean: the right-most address.
        let old = ProxyTrust::new(&[], true).unwrap();
        assert_eq!(
            old.client(peer, Some("6.6.6.6, 203.0.113.7")),
            ip("203.0.113.7")
        );
        assert_eq!(ProxyTrust::default().client(peer, Some("1.2.3.4")), peer);
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(limit_key(ip("1.2.3.4")), ip("1.2.3.4"));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }
}

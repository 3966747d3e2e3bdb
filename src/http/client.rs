//! What a public request tells about its client: address, origin, user agent, the
//! visitor cookie, and whether it asks not to be tracked. Everything is borrowed from the
//! request's headers: a page view copies none of them.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName};

pub struct Client<'a> {
    pub ip: IpAddr,
    pub origin: Option<&'a str>,
    pub user_agent: &'a str,
    pub referer: &'a str,
    /// The signed visitor id of the server-set cookie.
    pub cookie_vid: Option<&'a str>,
    /// `DNT: 1` or `Sec-GPC: 1`.
    pub do_not_track: bool,
}

impl<'a> Client<'a> {
    /// Reads the client of a request. `X-Forwarded-For` counts only when the service is
    /// configured to sit behind a proxy; otherwise anyone could pick their own address.
    pub fn of(req: &'a HttpRequest, cookie_name: &str, trust_proxy: bool) -> Self {
        let header = |name: HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
        let forwarded = trust_proxy
            .then(|| header(HeaderName::from_static("x-forwarded-for")))
            .flatten()
            .and_then(|v| v.split(',').next().and_then(|ip| ip.trim().parse().ok()));
        let ip = forwarded
            .or_else(|| req.peer_addr().map(|a| a.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let cookie_vid = req
            .headers()
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == cookie_name)
            .and_then(|c| c.value_raw());
        let flag = |name: &'static str| {
            header(HeaderName::from_static(name)).is_some_and(|v| v.trim() == "1")
        };
        Self {
            ip,
            origin: header(header::ORIGIN).filter(|o| *o != "null"),
            user_agent: header(header::USER_AGENT).unwrap_or_default(),
            referer: header(header::REFERER).unwrap_or_default(),
            cookie_vid,
            do_not_track: flag("dnt") || flag("sec-gpc"),
        }
    }
}

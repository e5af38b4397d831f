//! What keeps other web pages from driving the bridge through the operator's browser:
//!
//! - **Host**: a request is answered only when its `Host` names localhost, an IP address
//!   (what a client uses to reach a bound address), or a name allowed with
//!   [`Bridge::allow_host`](crate::bridge::Bridge::allow_host). A page on an attacker's
//!   domain that rebinds its DNS to 127.0.0.1 sends its own name, and is refused.
//! - **Mutations** (every method but GET and HEAD) must come from the same origin: a
//!   `Sec-Fetch-Site` other than `same-origin` or `none` (typed by the user) is refused, and
//!   so is an `Origin` that is not the request's own host (or an allowed name).
//! - **A POST carries `Content-Type: application/json`**, with a body or without (checked on
//!   every matched route, and again by the body extractors). Browsers send that type cross-origin only
//!   after a CORS preflight, which the bridge never grants, so no form, `no-cors` fetch or
//!   `sendBeacon` of another page can reach a mutating route (other methods are
//!   preflighted whatever their type).
//! - **Every response** says `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//!   no-referrer` and `X-Frame-Options: DENY`, and carries a `Content-Security-Policy`
//!   (`default-src 'none'; frame-ancestors 'none'` unless the dashboard set its own).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::bridge::error::{BridgeError, cut};

/// Host names the bridge answers besides localhost and IP literals, lower case.
pub(crate) type AllowedHosts = Arc<[String]>;

/// A header quoted back in an error, cut short.
fn quote(text: &str) -> String {
    cut(text, 100)
}

/// The host name of an authority (`name[:port]`, `[v6]:port`), lower case.
fn host_name(authority: &str) -> String {
    let authority = authority.trim();
    let name = if let Some(rest) = authority.strip_prefix('[') {
        // An IPv6 literal: keep the brackets' content.
        rest.split(']').next().unwrap_or("")
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(name, _)| name)
    };
    name.to_ascii_lowercase()
}

fn host_allowed(name: &str, allowed: &[String]) -> bool {
    name == "localhost"
        || name.parse::<std::net::IpAddr>().is_ok()
        || allowed.iter().any(|a| a == name)
}

/// The request's authority: `Host`, or the URI's (HTTP/2).
fn authority(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

/// Why a mutating request is not from the bridge's own pages, if it is not.
fn cross_origin(headers: &HeaderMap, own: &str, allowed: &[String]) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !matches!(site, "same-origin" | "none") {
            return Some(format!(
                "the browser says it comes from a {} page",
                quote(site)
            ));
        }
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("");
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
        .unwrap_or("");
    let same = authority.eq_ignore_ascii_case(own)
        || (!authority.is_empty() && allowed.contains(&host_name(authority)));
    (!same).then(|| format!("it comes from another origin, `{}`", quote(origin)))
}

/// Whether `headers` say the body is JSON (`application/json`, any parameters). Every
/// POST handler's extractor insists on it (after routing, so a wrong method is a 405):
/// other methods (DELETE, PUT, ...) are preflighted by every browser whatever their type;
/// a POST is not, unless its type is one no form can send.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// On every matched route (so a wrong method is still a 405): a POST must say
/// `Content-Type: application/json`. The body extractors check it too; this covers a
/// route whose handler reads no body.
pub(crate) async fn require_json_post(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !is_json(req.headers()) {
        return BridgeError::UnsupportedMediaType.into_response();
    }
    next.run(req).await
}

pub(crate) async fn guard(
    State(allowed): State<AllowedHosts>,
    req: Request,
    next: Next,
) -> Response {
    let own = authority(&req).unwrap_or_default();
    if !host_allowed(&host_name(&own), &allowed) {
        return with_headers(
            BridgeError::Forbidden {
                code: "host_not_allowed",
                message: format!(
                    "the bridge does not answer for host `{}`; use localhost or an IP address, or allow the name with Bridge::allow_host",
                    quote(&own)
                ),
            }
            .into_response(),
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(why) = cross_origin(req.headers(), &own, &allowed)
    {
        return with_headers(
            BridgeError::Forbidden {
                code: "cross_origin",
                message: format!(
                    "refused: {why}; the bridge takes changes only from its own pages"
                ),
            }
            .into_response(),
        );
    }
    with_headers(next.run(req).await)
}

fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_localhost_ip_literals_or_allowed_names() {
        let allowed = vec!["tend.internal".to_owned()];
        for ok in [
            "localhost:8080",
            "127.0.0.1:9",
            "[::1]:80",
            "10.0.0.7",
            "LOCALHOST",
            "tend.internal:1",
        ] {
            assert!(host_allowed(&host_name(ok), &allowed), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "localhost.evil.example",
            "",
            "127.0.0.1.nip.io:80",
        ] {
            assert!(!host_allowed(&host_name(refused), &allowed), "{refused}");
        }
    }

    #[test]
    fn only_same_origin_mutations_pass() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let own = "127.0.0.1:8080";
        assert!(
            cross_origin(&headers(&[]), own, &[]).is_none(),
            "curl sends neither"
        );
        assert!(cross_origin(&headers(&[("origin", "http://127.0.0.1:8080")]), own, &[]).is_none());
        assert!(cross_origin(&headers(&[("sec-fetch-site", "same-origin")]), own, &[]).is_none());
        for (k, v) in [
            ("origin", "http://127.0.0.1:9999"),
            ("origin", "null"),
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "same-site"),
            ("sec-fetch-site", "cross-site"),
        ] {
            assert!(
                cross_origin(&headers(&[(k, v)]), own, &[]).is_some(),
                "{k}: {v}"
            );
        }
    }

    #[test]
    fn json_is_application_json_with_any_parameters() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            h
        };
        assert!(is_json(&with("application/json")));
        assert!(is_json(&with("Application/JSON; charset=utf-8")));
        assert!(!is_json(&with("text/plain")));
        assert!(!is_json(&with("application/x-www-form-urlencoded")));
        assert!(!is_json(&HeaderMap::new()));
    }
}

//! What keeps other web pages from driving the bridge through the operator's browser:
//!
//! - **Host**: a request is answered only when its `Host` names localhost, an IP address
//!   (what a client uses to reach a bound address), or a name allowed with
//!   [`Bridge::allow_host`](crate::bridge::Bridge::allow_host). A page on an attacker's
//!   domain that rebinds its DNS to 127.0.0.1 sends its own name, and is refused. The
//!   request has one `Host`, exactly `name[:port]` (no user info, a port of digits), and a
//!   target that names a host (absolute form) must name one the bridge answers too.
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

/// The host name of a `Host` value (`name[:port]`, `[v6]:port`), lower case; `None` when
/// it is not one: a name of other than letters, digits, `.`, `-` and `_`, a port of other
/// than digits, anything else around them (`127.0.0.1:80@evil.example`, `localhost:evil`).
fn host_name(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        // An IPv6 literal: the brackets' content must be one.
        let (literal, port) = rest.split_once(']')?;
        literal.parse::<std::net::Ipv6Addr>().ok()?;
        (literal, port)
    } else {
        match authority.find(':') {
            Some(colon) => authority.split_at(colon),
            None => (authority, ""),
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() <= 5);
    let name_ok = !name.is_empty()
        && (authority.starts_with('[')
            || name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
    (port_ok && name_ok).then(|| name.to_ascii_lowercase())
}

fn host_allowed(name: &str, allowed: &[String]) -> bool {
    name == "localhost"
        || name.parse::<std::net::IpAddr>().is_ok()
        || allowed.iter().any(|a| a == name)
}

/// The request's authority as it names the bridge, or why it is refused: one `Host`
/// header, and the target's authority when the request line has one (HTTP/1.1's absolute
/// form, HTTP/2), each naming a host the bridge answers.
fn own_authority(req: &Request, allowed: &[String]) -> Result<String, String> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err("the request has more than one Host header".to_owned());
    }
    let host = match host {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| "the Host header is not text".to_owned())?
                .to_owned(),
        ),
        None => None,
    };
    let target = req.uri().authority().map(|a| a.as_str().to_owned());
    if host.is_none() && target.is_none() {
        return Err("the request names no host".to_owned());
    }
    for authority in host.iter().chain(target.iter()) {
        if !host_name(authority).is_some_and(|name| host_allowed(&name, allowed)) {
            return Err(format!(
                "the bridge does not answer for host `{}`",
                quote(authority)
            ));
        }
    }
    // (One of them is set: checked above.)
    Ok(target.or(host).unwrap_or_default())
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
        || host_name(authority).is_some_and(|name| allowed.contains(&name));
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
    let own = match own_authority(&req, &allowed) {
        Ok(own) => own,
        Err(why) => {
            return with_headers(
                BridgeError::Forbidden {
                    code: "host_not_allowed",
                    message: format!(
                        "{why}; use localhost or an IP address (one Host header, `name[:port]`), or allow the name with Bridge::allow_host"
                    ),
                }
                .into_response(),
            );
        }
    };
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
        let answered = |authority: &str| {
            host_name(authority).is_some_and(|name| host_allowed(&name, &allowed))
        };
        for ok in [
            "localhost:8080",
            "127.0.0.1:9",
            "[::1]:80",
            "[::1]",
            "10.0.0.7",
            "LOCALHOST",
            "tend.internal:1",
        ] {
            assert!(answered(ok), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "localhost.evil.example",
            "",
            ":80",
            "127.0.0.1.nip.io:80",
            "127.0.0.1:80@evil.example",
            "user@localhost",
            "localhost:evil",
            "localhost:80:80",
            "localhost:123456",
            "[::1]evil",
            "[evil.example]:80",
            "local host",
            "localhost/x",
        ] {
            assert!(!answered(refused), "{refused}");
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

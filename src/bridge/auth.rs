//! The token rule: with a token configured, every mutating request must carry
//! `Authorization: Bearer <token>`; reads need it too unless they come from a loopback
//! peer. Reads may pass the token as `?token=` (a browser's `EventSource` cannot set
//! headers).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::bridge::error::BridgeError;

/// Compares in constant time (`subtle`), so the time taken does not tell how much matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

fn query_token(req: &Request) -> Option<Vec<u8>> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(percent_decode)
}

/// Decodes `%XX` escapes and `+` (a browser's `encodeURIComponent` output); a malformed
/// escape is kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

pub(crate) async fn require_token(
    State(token): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(req).await;
    };
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    // Without connection info (a router mounted by the application) the peer is unknown
    // and treated as remote.
    let loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| c.0.ip().is_loopback());
    if read && loopback {
        return next.run(req).await;
    }
    // The scheme's name is case-insensitive (RFC 9110); the token is not.
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim_start().as_bytes().to_vec());
    let offered = bearer.or(if read { query_token(&req) } else { None });
    match offered {
        Some(offered) if same(&offered, token.as_bytes()) => next.run(req).await,
        _ => BridgeError::Unauthorized.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn query_tokens_are_percent_decoded() {
        use super::percent_decode;
        assert_eq!(percent_decode("a%2Bb%3D%3D"), b"a+b==");
        assert_eq!(percent_decode("x+y"), b"x y");
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
    }

    #[test]
    fn compares_whole_tokens() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }
}

//! HTTP/1.1 spoken by hand on a socket, for tests that need what a client library hides:
//! several requests on one connection, half a request, a socket held open on purpose.
#![allow(dead_code, unreachable_pub)]

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Reads one response head (and nothing more) from `socket`: its status and the head, or
/// `None` when the socket closed or failed first (or the head is over 16 KiB).
pub async fn response_head(socket: &mut TcpStream) -> Option<(u16, String)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
        if head.len() > 16 * 1024 {
            return None;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, head))
}

/// The value of header `name` in a response head.
pub fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Reads one whole response whose body has a `content-length`: its status, head and body.
pub async fn response(socket: &mut TcpStream) -> Option<(u16, String, String)> {
    let (status, head) = response_head(socket).await?;
    let length: usize = header(&head, "content-length").map_or(Some(0), |v| v.parse().ok())?;
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).await.ok()?;
    Some((status, head, String::from_utf8_lossy(&body).into_owned()))
}

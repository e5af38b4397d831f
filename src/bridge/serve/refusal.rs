//! The answer to a connection the bridge has no room for: `503 Service Unavailable` with
//! `Retry-After`, written on the socket as it was accepted, rather than a reset the client
//! cannot tell from a crash.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What `Retry-After` says, in seconds.
pub(crate) const RETRY_AFTER_SECS: u64 = 1;

/// How long a refusal may take in all (write, then read what the client sent until it
/// closes), so that a client that neither reads nor closes holds nothing for long.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// How much of what the client sent is read and dropped before the socket is closed (so
/// that closing does not reset the connection under the answer).
const DRAINED_MAX: usize = 64 * 1024;

/// Answers `socket` with a 503 and closes it.
pub(crate) async fn refuse(mut socket: TcpStream, max_connections: usize) {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": format!(
            "the bridge has its {max_connections} connections open, each in the middle of a request; retry in {RETRY_AFTER_SECS} s"
        ),
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\nx-content-type-options: nosniff\r\n\r\n{body}",
        body.len()
    );
    let refused = tokio::time::timeout(REFUSAL_TIME, async {
        socket.write_all(answer.as_bytes()).await?;
        socket.shutdown().await?;
        // The request may still be arriving: read it until the client closes, so that
        // closing with unread bytes does not reset the connection before it reads the
        // answer.
        let mut drained = 0;
        let mut sink = [0u8; 4096];
        while drained < DRAINED_MAX {
            match socket.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if let Ok(Err(e)) = refused {
        tracing::debug!(error = %e, "bridge could not send its refusal");
    }
}

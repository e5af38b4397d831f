//! The bridge's own HTTP/1 server loop, so that no client holds unbounded sockets or time:
//!
//! - at most `max_connections` connections at once; one more is closed as it arrives;
//! - a connection must send a request's headers within `header_timeout`, the first
//!   request's and each next one's alike (so a silent or idle socket is closed);
//! - a request's body must arrive within `body_timeout` (see `body`), and a response must
//!   make progress within `write_timeout` (a client that stops reading is dropped);
//! - on shutdown, connections get `drain_timeout` to finish what they are doing (an event
//!   stream whose reader stalled included), then are closed.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower_service::Service;

mod stall;
use stall::Stalling;

/// Linux's "too many open files" in the system and in the process.
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;

/// What the bridge's server allows each client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeLimits {
    /// Connections open at once; one more is closed at once (default 256).
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, also while it idles
    /// between requests (default 10 s).
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive (default 30 s).
    pub body_timeout: Duration,
    /// How long writing a response may make no progress (the client reads nothing)
    /// before the connection is closed (default 30 s).
    pub write_timeout: Duration,
    /// On shutdown, how long open connections get before they are closed (default 5 s).
    pub drain_timeout: Duration,
}

impl Default for BridgeLimits {
    fn default() -> Self {
        BridgeLimits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, within `limits`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: BridgeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, close) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors: wait a little rather than spin. Anything else is one
                // connection's trouble (it was reset before it was accepted, say).
                if matches!(e.raw_os_error(), Some(ENFILE | EMFILE)) {
                    tracing::warn!(error = %e, "bridge is out of file descriptors; waiting");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } else {
                    tracing::debug!(error = %e, "bridge could not accept a connection");
                }
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "bridge connection limit reached; closing the new one");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                let response = router.call(request.map(axum::body::Body::new)).await;
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
        let mut close = close.clone();
        connections.spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(
                    TokioIo::new(Stalling::new(stream, limits.write_timeout)),
                    service,
                );
            tokio::pin!(connection);
            let closing = async move {
                // (The guard `wait_for` returns is dropped at once: it is not `Send`.)
                let _ = close.wait_for(|closing| *closing).await.map(|_| ());
            };
            tokio::select! {
                _ = connection.as_mut() => {}
                () = closing => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "bridge connections still open after the drain timeout; closing them"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

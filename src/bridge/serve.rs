//! The bridge's own HTTP/1 server loop, so that no client holds unbounded sockets or time,
//! and no client can lock the others out:
//!
//! - at most `max_connections` connections at once. One more makes room: the least
//!   recently used idle connection (between requests, silent, or part-way through its
//!   headers) is closed and the new one takes its place; when every connection is in the
//!   middle of a request, the new one is answered 503 with `Retry-After` and closed (see
//!   `pool`, `refusal`);
//! - an event stream holds one of `max_event_streams` places instead of its connection's
//!   (see `stream_place`), and its connection closes when it ends;
//! - a connection is closed after a 401, so that unauthenticated clients hold nothing;
//! - a connection must send a request's headers within `header_timeout`, the first
//!   request's and each next one's alike (so a silent or idle socket is closed);
//! - a request's body must arrive within `body_timeout` (see `body`), and a response must
//!   make progress within `write_timeout` (a client that stops reading is dropped);
//! - on shutdown, connections get `drain_timeout` to finish what they are doing (an event
//!   stream whose reader stalled included), then are closed.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower_service::Service;

mod pool;
mod refusal;
mod stall;
mod stream_place;
mod tracked;

pub(crate) use refusal::RETRY_AFTER_SECS;
pub(crate) use stream_place::event_stream_place;

use pool::{Admission, Membership, Pool};
use stall::Stalling;
use tracked::Tracked;

/// Linux's "too many open files" in the system and in the process.
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;

/// How long a new connection waits for the place of the idle one closed to make room for
/// it (which closes at once, unless a request arrived on it meanwhile) before it is
/// answered 503.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// How long a connection closed to make room may take to finish writing what it had
/// (the end of its last response) before it is dropped.
const EVICTION_GRACE: Duration = Duration::from_millis(100);

/// Refusals (503 answers) being written at once; past them a connection is just closed.
const REFUSALS_MAX: usize = 64;

/// What the bridge's server allows each client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeLimits {
    /// Connections open at once, event streams aside (default 256). One more closes the
    /// least recently used idle connection to take its place, or, when every one is in the
    /// middle of a request, is answered 503 with `Retry-After`.
    pub max_connections: usize,
    /// Event streams (`GET /events`) open at once (default 32). A stream holds one of
    /// these places instead of its connection's; one more is answered 503
    /// `too_many_event_streams` with `Retry-After`.
    pub max_event_streams: usize,
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
            max_event_streams: 32,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// What every connection task shares.
struct Shared {
    router: Router,
    limits: BridgeLimits,
    pool: Arc<Pool>,
    /// Turns true when the server stops accepting.
    close: watch::Receiver<bool>,
}

/// Serves `router` on `listener` until `shutdown` resolves, within `limits`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: BridgeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (closing, close) = watch::channel(false);
    let shared = Arc::new(Shared {
        router,
        limits,
        pool: Pool::new(&limits),
        close,
    });
    let refusals = Arc::new(Semaphore::new(REFUSALS_MAX));
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
        let shared = shared.clone();
        match shared.pool.admit() {
            Admission::Admitted(place) => {
                // Joined here, in the order of accepting: the pool's idea of least
                // recently used starts with it.
                let membership = shared.pool.join(place);
                connections.spawn(connection(shared, stream, peer, membership));
            }
            // The place of the connection told to close goes to this one (places go to
            // waiters in turn, before any new `admit`).
            Admission::Evicting => {
                connections.spawn(async move {
                    match shared.pool.freed_place(EVICTION_WAIT).await {
                        Some(place) => {
                            let membership = shared.pool.join(place);
                            connection(shared, stream, peer, membership).await;
                        }
                        None => refusal::refuse(stream, shared.limits.max_connections).await,
                    }
                });
            }
            Admission::Full => match refusals.clone().try_acquire_owned() {
                Ok(refusing) => {
                    tracing::debug!(%peer, "bridge connections are all busy; answering 503");
                    connections.spawn(async move {
                        refusal::refuse(stream, shared.limits.max_connections).await;
                        drop(refusing);
                    });
                }
                Err(_) => {
                    tracing::debug!(%peer, "bridge connections are all busy; closing the new one");
                    drop(stream);
                }
            },
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(shared.limits.drain_timeout, async {
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

/// Serves one connection of the pool, until it ends, the pool evicts it or the server
/// closes.
async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    membership: Membership,
) {
    let member = membership.member().clone();
    let router = shared.router.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = member.begin_request();
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(member.clone());
        let mut router = router.clone();
        async move {
            let mut response = router
                .call(request.map(axum::body::Body::new))
                .await
                .unwrap_or_else(|never| match never {});
            // A client without the token holds no connection: it may ask again.
            if response.status() == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
        }
    });
    let limits = shared.limits;
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(
            TokioIo::new(Stalling::new(stream, limits.write_timeout)),
            service,
        );
    tokio::pin!(connection);
    let mut close = shared.close.clone();
    let closing = async move {
        // (The guard `wait_for` returns is dropped at once: it is not `Send`.)
        let _ = close.wait_for(|closing| *closing).await.map(|_| ());
    };
    let member = membership.member().clone();
    tokio::select! {
        _ = connection.as_mut() => {}
        () = closing => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
        () = member.evicted() => {
            // Closed to make room: a request that arrived meanwhile is answered first; an
            // idle connection gets a moment to write the end of its last response.
            connection.as_mut().graceful_shutdown();
            if member.is_idle() {
                let _ = tokio::time::timeout(EVICTION_GRACE, connection).await;
            } else {
                let _ = connection.await;
            }
        }
    }
    drop(membership);
}

//! One client cannot lock the others out (issue 22 part 5). Under each attack the issue
//! found on loopback (connections that each send `GET /health` every 5 s, open
//! `GET /events` streams, idle sockets reopened as soon as they close), a fresh client
//! still gets `/health` within 1 s, as the issue asks. Each attack has the shape
//! at a small scale: a connection limit of 32 and 32 attackers (the were 256 and
//! 256), on 127.0.0.1, stopped by the test.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/raw.rs"]
mod raw;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use helpers::PATIENCE;
use raw::{response, response_head};
use tend::bridge::{Bridge, BridgeLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The bridge's connection limit, and how many attackers each attack has.
const LIMIT: usize = 32;
/// The bridge's event stream limit.
const STREAMS: usize = 8;
/// How many fresh clients try, one after the other, while an attack runs.
const PROBES: usize = 5;
/// How long a fresh client may wait for `/health` (the requirement).
const WITHIN: Duration = Duration::from_secs(1);

struct Server {
    runtime: tend::Runtime,
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), tend::bridge::BridgeError>>,
}

/// A bridge with the attack's limits; its timeouts are longer than the test, so only the
/// limits decide what happens.
async fn server() -> Server {
    let runtime = tend::Runtime::builder().start().await.unwrap();
    let bound = Bridge::new(runtime.clone())
        .limits(BridgeLimits {
            max_connections: LIMIT,
            max_event_streams: STREAMS,
            header_timeout: PATIENCE * 4,
            body_timeout: PATIENCE * 4,
            write_timeout: PATIENCE * 4,
            drain_timeout: Duration::from_millis(300),
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = bound.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    Server {
        runtime,
        addr,
        stop,
        served,
    }
}

impl Server {
    /// Stops the runtime (ending event streams) and the bridge, bounded.
    async fn finish(self) {
        self.runtime.shutdown().await.unwrap();
        self.stop.send(()).unwrap();
        tokio::time::timeout(PATIENCE, self.served)
            .await
            .expect("the bridge stopped")
            .unwrap()
            .unwrap();
    }
}

/// Attackers running until told to stop, and what they have achieved so far.
struct Attack {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Attackers holding what they want: a served keep-alive connection, an open stream.
    holding: Arc<AtomicUsize>,
    /// Times an attacker's socket was closed by the server (or refused) and reopened.
    reopened: Arc<AtomicUsize>,
}

impl Attack {
    fn new() -> Self {
        Attack {
            stop: watch::channel(false).0,
            tasks: JoinSet::new(),
            holding: Arc::new(AtomicUsize::new(0)),
            reopened: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn state(&self) -> String {
        format!(
            "{} attackers holding, {} reopens",
            self.holding.load(Ordering::SeqCst),
            self.reopened.load(Ordering::SeqCst)
        )
    }

    /// Waits until `n` attackers hold what they came for.
    async fn holds(&self, n: usize) {
        helpers::eventually(&format!("{n} attackers hold their place"), || async {
            if self.holding.load(Ordering::SeqCst) >= n {
                Ok(())
            } else {
                Err(self.state())
            }
        })
        .await;
    }

    /// Stops every attacker (each stops at its next step), bounded.
    async fn end(mut self) {
        self.stop.send_replace(true);
        tokio::time::timeout(PATIENCE, async {
            while let Some(joined) = self.tasks.join_next().await {
                joined.unwrap();
            }
        })
        .await
        .expect("the attackers stopped");
    }
}

/// A fresh client asks for `/health` on a connection of its own.
async fn probe(addr: SocketAddr) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let asked = async {
        let response = client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .map_err(|e| format!("failed: {e:?}"))?;
        let status = response.status();
        response
            .bytes()
            .await
            .map_err(|e| format!("body failed: {e:?}"))?;
        match status.as_u16() {
            200 => Ok(()),
            other => Err(format!("answered {other}")),
        }
    };
    tokio::time::timeout(WITHIN, asked)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {WITHIN:?}")))
}

/// Fresh clients, one after the other, each must get `/health` within a second while
/// `attack` runs.
async fn fresh_clients_get_through(addr: SocketAddr, attack: &Attack, shape: &str) {
    for n in 1..=PROBES {
        if let Err(seen) = probe(addr).await {
            panic!(
                "under {shape}, fresh client {n} of {PROBES} did not get /health within {WITHIN:?}: it {seen} ({})",
                attack.state()
            );
        }
    }
}

#[tokio::test]
async fn connections_that_each_ask_for_health_every_five_seconds_leave_room() {
    let s = server().await;
    let mut attack = Attack::new();
    for _ in 0..LIMIT {
        let (addr, mut stop) = (s.addr, attack.stop.subscribe());
        let (holding, reopened) = (attack.holding.clone(), attack.reopened.clone());
        attack.tasks.spawn(async move {
            let mut first = true;
            while !*stop.borrow() {
                let Ok(mut socket) = TcpStream::connect(addr).await else {
                    return;
                };
                if !first {
                    reopened.fetch_add(1, Ordering::SeqCst);
                }
                // Ask every 5 s on the same connection, until the server closes it.
                loop {
                    let asked = socket
                        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        .await;
                    if asked.is_err() || !matches!(response(&mut socket).await, Some((200, ..))) {
                        break;
                    }
                    if first {
                        holding.fetch_add(1, Ordering::SeqCst);
                        first = false;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        });
    }
    attack.holds(LIMIT).await;
    fresh_clients_get_through(s.addr, &attack, "connections asking every 5 s").await;
    attack.end().await;
    s.finish().await;
}

#[tokio::test]
async fn open_event_streams_leave_room_for_requests() {
    let s = server().await;
    let mut attack = Attack::new();
    for _ in 0..LIMIT {
        let (addr, mut stop) = (s.addr, attack.stop.subscribe());
        let (holding, reopened) = (attack.holding.clone(), attack.reopened.clone());
        attack.tasks.spawn(async move {
            while !*stop.borrow() {
                let Ok(mut socket) = TcpStream::connect(addr).await else {
                    return;
                };
                let asked = socket
                    .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .await;
                match response_head(&mut socket).await {
                    Some((200, _)) if asked.is_ok() => {
                        // Hold the stream, reading what comes, until it ends.
                        holding.fetch_add(1, Ordering::SeqCst);
                        let mut sink = [0u8; 1024];
                        tokio::select! {
                            () = async {
                                while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                            } => {}
                            _ = stop.changed() => {}
                        }
                        holding.fetch_sub(1, Ordering::SeqCst);
                    }
                    // Refused: try again at once, as an attacker would.
                    _ => {}
                }
                reopened.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    attack.holds(STREAMS).await;
    fresh_clients_get_through(s.addr, &attack, "open event streams").await;
    attack.end().await;
    s.finish().await;
}

#[tokio::test]
async fn idle_sockets_reopened_as_soon_as_they_close_leave_room() {
    let s = server().await;
    let mut attack = Attack::new();
    for _ in 0..LIMIT {
        let (addr, mut stop) = (s.addr, attack.stop.subscribe());
        let (holding, reopened) = (attack.holding.clone(), attack.reopened.clone());
        attack.tasks.spawn(async move {
            while !*stop.borrow() {
                let Ok(mut socket) = TcpStream::connect(addr).await else {
                    return;
                };
                holding.fetch_add(1, Ordering::SeqCst);
                // Send nothing; when the server closes the socket, open another.
                let mut sink = [0u8; 64];
                tokio::select! {
                    () = async {
                        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                    } => {}
                    _ = stop.changed() => {}
                }
                holding.fetch_sub(1, Ordering::SeqCst);
                reopened.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    attack.holds(LIMIT).await;
    fresh_clients_get_through(s.addr, &attack, "idle sockets reopened at once").await;
    attack.end().await;
    s.finish().await;
}

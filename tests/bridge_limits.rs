//! No client holds unbounded sockets or time: a connection limit that makes room by
//! closing the least recently used idle connection (503 with `Retry-After` when none is
//! idle), event streams limited apart, a close after a 401, header, idle and body
//! timeouts, and a drain deadline on shutdown, against the bridge's own server on a real
//! loopback socket. Each wait is for an event (the server closing a socket, a response,
//! `serve` returning), bounded by PATIENCE; the timeouts are the server's, set short.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use helpers::PATIENCE;
use tend::bridge::{Bridge, BridgeLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(300);

struct Server {
    runtime: tend::Runtime,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), tend::bridge::BridgeError>>,
}

/// A bridge whose other limits are short (its body timeout longer than PATIENCE).
async fn server(max_connections: usize, header_timeout: Duration) -> Server {
    server_with(BridgeLimits {
        max_connections,
        max_event_streams: 4,
        header_timeout,
        body_timeout: PATIENCE * 4,
        write_timeout: SHORT,
        drain_timeout: SHORT,
    })
    .await
}

async fn server_with(limits: BridgeLimits) -> Server {
    let runtime = tend::Runtime::builder().start().await.unwrap();
    let bound = Bridge::new(runtime.clone())
        .limits(limits)
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

/// Waits until a new client is served again (`what` says why it should be).
async fn served_again(addr: std::net::SocketAddr, what: &str) {
    helpers::eventually(what, || async {
        match health(addr).await {
            200 => Ok(()),
            other => Err(format!("{other}")),
        }
    })
    .await;
}

impl Server {
    /// Stops the bridge (bounded) and the runtime.
    async fn finish(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(PATIENCE, self.served)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.runtime.shutdown().await.unwrap();
    }
}

/// Reads until the server closes the socket; what it sent.
async fn until_closed(socket: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the socket open past {PATIENCE:?}"
    );
    all
}

async fn health(addr: std::net::SocketAddr) -> u16 {
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Sends `GET /health` on `socket` and reads the answer; its status (0: none came).
async fn health_on(socket: &mut TcpStream) -> u16 {
    if socket.write_all(HEALTH).await.is_err() {
        return 0;
    }
    tokio::time::timeout(PATIENCE, raw::response(socket))
        .await
        .expect("an answer or a close within PATIENCE")
        .map_or(0, |(status, ..)| status)
}

#[tokio::test]
async fn at_the_limit_a_new_connection_takes_the_place_of_the_least_recently_used_idle_one() {
    // Headers may take longer than the test: only the limit decides here.
    let s = server(4, PATIENCE * 4).await;
    // Four keep-alive connections, used in the order b, c, d, a: then all idle.
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(TcpStream::connect(s.addr).await.unwrap());
    }
    for i in [1, 2, 3, 0] {
        assert_eq!(health_on(&mut open[i]).await, 200, "connection {i}");
    }
    // A fifth is served: the least recently used (b) made room for it ...
    let mut fifth = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health_on(&mut fifth).await, 200, "the new connection");
    assert_eq!(until_closed(&mut open[1]).await, b"", "b is closed");
    // ... and only that one: the others still answer on their connections.
    for i in [0, 2, 3] {
        assert_eq!(health_on(&mut open[i]).await, 200, "connection {i}");
    }
    // Last used now: the fifth, then a, c, d. A socket that never sends anything takes a
    // place too, and gives it up in its turn.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(until_closed(&mut fifth).await, b"", "the fifth made room");
    let mut newer = Vec::new();
    for i in [0, 2, 3] {
        let mut socket = TcpStream::connect(s.addr).await.unwrap();
        assert_eq!(health_on(&mut socket).await, 200);
        assert_eq!(until_closed(&mut open[i]).await, b"", "connection {i}");
        newer.push(socket);
    }
    let mut last = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health_on(&mut last).await, 200);
    assert_eq!(until_closed(&mut silent).await, b"", "then the silent one");
    s.finish().await;
}

#[tokio::test]
async fn when_every_connection_is_in_a_request_a_new_one_is_answered_503_with_retry_after() {
    let s = server(2, PATIENCE * 4).await;
    // Two requests in flight: each body is asked for (100 Continue) and never sent.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut socket = TcpStream::connect(s.addr).await.unwrap();
        socket
            .write_all(
                b"POST /executions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
            )
            .await
            .unwrap();
        let head = tokio::time::timeout(PATIENCE, raw::response_head(&mut socket))
            .await
            .unwrap();
        assert!(matches!(head, Some((100, _))), "{head:?}");
        busy.push(socket);
    }
    // Nothing can make room: the third is told so, not reset.
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    let _ = third.write_all(HEALTH).await;
    let answer = until_closed(&mut third).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert_eq!(raw::header(&text, "retry-after"), Some("1"), "{text}");
    assert!(text.contains("too_many_connections"), "{text}");
    // One of them goes away: its place is free again.
    drop(busy.pop());
    served_again(s.addr, "a request is served again").await;
    s.finish().await;
}

#[tokio::test]
async fn event_streams_have_places_of_their_own() {
    let s = server_with(BridgeLimits {
        max_connections: 2,
        max_event_streams: 2,
        header_timeout: PATIENCE * 4,
        body_timeout: PATIENCE * 4,
        write_timeout: SHORT,
        drain_timeout: SHORT,
    })
    .await;
    let events = b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut socket = TcpStream::connect(s.addr).await.unwrap();
        socket.write_all(events).await.unwrap();
        let head = raw::response_head(&mut socket).await;
        assert!(matches!(head, Some((200, _))), "{head:?}");
        streams.push(socket);
    }
    // A third stream is refused ...
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    third.write_all(events).await.unwrap();
    let (status, head, body) = raw::response(&mut third).await.unwrap();
    assert_eq!(status, 503, "{head}{body}");
    assert_eq!(raw::header(&head, "retry-after"), Some("1"), "{head}");
    assert!(body.contains("too_many_event_streams"), "{body}");
    drop(third);
    // ... while the two streams leave both connection places to requests: two keep-alive
    // connections are served side by side, neither making the other leave.
    let mut first = TcpStream::connect(s.addr).await.unwrap();
    let mut second = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health_on(&mut first).await, 200);
    assert_eq!(health_on(&mut second).await, 200);
    assert_eq!(health_on(&mut first).await, 200);
    // A stream that ends gives its place back.
    drop(streams.pop());
    helpers::eventually("a stream place is free again", || async {
        let mut socket = TcpStream::connect(s.addr).await.unwrap();
        socket.write_all(events).await.map_err(|e| e.to_string())?;
        match raw::response_head(&mut socket).await {
            Some((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    s.finish().await;
}

#[tokio::test]
async fn a_connection_is_closed_after_a_401() {
    let runtime = tend::Runtime::builder().start().await.unwrap();
    // An idle connection would stay open longer than the test waits: only the 401 closes.
    let bound = Bridge::new(runtime.clone())
        .with_token("s3cret")
        .limits(BridgeLimits {
            header_timeout: PATIENCE * 4,
            ..BridgeLimits::default()
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = bound.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            b"POST /interrupt HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n",
        )
        .await
        .unwrap();
    // Answered, then closed: an unauthenticated client holds no connection.
    let answer = until_closed(&mut socket).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn silent_idle_and_slow_clients_are_cut_off() {
    let s = server_with(BridgeLimits {
        max_connections: 16,
        max_event_streams: 4,
        header_timeout: SHORT,
        body_timeout: SHORT,
        write_timeout: SHORT,
        drain_timeout: SHORT,
    })
    .await;
    // No headers at all: closed after the header timeout.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(until_closed(&mut silent).await, b"");
    // One request answered, then nothing: the idle connection is closed.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut idle).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // A body promised and never sent: 408 after the body timeout.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(
        b"POST /executions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\"",
    )
    .await
    .unwrap();
    let answer = until_closed(&mut slow).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    s.finish().await;
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_refused_at_once() {
    // A body timeout far past the test's patience: only a refusal before the body is read
    // can answer in time.
    let s = server(16, SHORT).await;
    let mut socket = TcpStream::connect(s.addr).await.unwrap();
    socket
        .write_all(
            b"POST /executions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{\"name\"",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut socket).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    s.finish().await;
}

#[tokio::test]
async fn shutdown_closes_an_event_stream_that_would_never_end_after_the_drain_timeout() {
    let s = server(16, SHORT).await;
    // An event stream that stays open (the runtime keeps running) and is never read.
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    s.stop.send(()).unwrap();
    // The bridge stops within its drain timeout, not when the stream would end.
    tokio::time::timeout(PATIENCE, s.served)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
    until_closed(&mut stream).await;
    s.runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_gives_its_connection_back() {
    // One connection at all: while the stalled one holds it, nobody else is served.
    let s = server(1, PATIENCE * 4).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(s.addr).await.unwrap();
    // Far more response than any socket buffer holds, asked for at once, never read.
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for _ in 0..400 {
        stalled.write_all(request).await.unwrap();
    }
    // The server's writes stop making progress; after the write timeout it drops the
    // connection, and the next client is served.
    served_again(s.addr, "a request is served despite the stalled reader").await;
    drop(stalled);
    s.finish().await;
}

#[tokio::test]
async fn zero_limits_are_refused_at_bind() {
    let runtime = tend::Runtime::builder().start().await.unwrap();
    for limits in [
        BridgeLimits {
            max_connections: 0,
            ..BridgeLimits::default()
        },
        BridgeLimits {
            max_event_streams: 0,
            ..BridgeLimits::default()
        },
        BridgeLimits {
            header_timeout: Duration::ZERO,
            ..BridgeLimits::default()
        },
        BridgeLimits {
            write_timeout: Duration::ZERO,
            ..BridgeLimits::default()
        },
    ] {
        let err = Bridge::new(runtime.clone())
            .limits(limits)
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, tend::bridge::BridgeError::BadLimits),
            "{limits:?}: {err:?}"
        );
    }
    runtime.shutdown().await.unwrap();
}

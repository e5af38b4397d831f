//! The bridge mounted in an application's own axum server, shut down the usual axum way
//! while a dashboard holds an event stream open: `axum::serve(..).with_graceful_shutdown(
//! runtime.shutdown_signal())`, a real SIGTERM to this process, then `runtime.shutdown()`.
//! Alone in its binary: the signal reaches the whole process.

#[path = "support/helpers.rs"]
mod helpers;

use std::time::Duration;

use futures::StreamExt;
use helpers::{PATIENCE, gate};
use tend::bridge::{Bridge, axum};
use tend::demo::Gates;
use tend::{Block, Plan, Runtime, ShutdownReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_app_with_an_open_event_stream_shuts_down_on_sigterm() {
    // From here on a SIGTERM is caught (never the default action that ends the process),
    // whether or not `shutdown_signal` listens yet.
    let _caught =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let gates = Gates::new();
    let runtime = Runtime::builder()
        .resource(gates.clone())
        .registry(tend::demo::registry().unwrap())
        .start()
        .await
        .unwrap();
    let app = axum::Router::new().nest_service("/tend", Bridge::new(runtime.clone()).router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/tend", listener.local_addr().unwrap());

    let signal = runtime.clone();
    let (reason_tx, reason_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = reason_tx.send(signal.shutdown_signal().await);
            })
            .await
    });

    // A dashboard's event stream, open and delivering: it sees the execution start.
    let client = reqwest::Client::new();
    let response = client.get(format!("{base}/events")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let id = runtime
        .submit(Plan::new("held").block(Block::new("b").item(gate("a", "g", 2))))
        .await
        .unwrap();
    let mut seen = String::new();
    tokio::time::timeout(PATIENCE, async {
        while !seen.contains(&id.to_string()) {
            let chunk = stream.next().await.expect("the stream is open").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the event stream delivers");

    nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGTERM).unwrap();

    // The server's graceful shutdown finishes although the stream was open: asking for
    // the shutdown ended it.
    let served = tokio::time::timeout(PATIENCE, server)
        .await
        .expect("axum's graceful shutdown finishes with an event stream open");
    served.unwrap().unwrap();
    let rest = tokio::time::timeout(PATIENCE, async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(rest.is_ok(), "the event stream ended");
    assert_eq!(reason_rx.await.unwrap(), ShutdownReason::Signal);

    // Then the runtime: the held execution is checkpointed.
    let report = runtime
        .shutdown_with(ShutdownReason::Signal, Duration::from_secs(20))
        .await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.executions.len(), 1, "{report:?}");
    assert_eq!(report.executions[0].execution, id);
    runtime.shutdown().await.unwrap();
}

//! The example server's event stream through a SIGTERM, as a dashboard sees it: the
//! shutdown announced, each execution's checkpointed stop, the flush and the end, in that
//! order, then the stream ends; a client that stopped reading does not hold the server
//! past its drain bound.

#[path = "support/sse.rs"]
mod sse;
#[path = "support/example.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sse::Events;
use support::{PATIENCE, Process};
use tokio::io::AsyncWriteExt;

/// The example server on `data` with gate `a` letting two steps through, and its address.
fn start(data: &Path) -> (Process, String) {
    let mut command = Command::new(support::example("server"));
    command
        .args(["--data", data.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .args(["--gate-release", "a=2"])
        .env_remove("TEND_BRIDGE_TOKEN")
        // Whatever the machine's free disk space: no low-disk events in the log or stream.
        .env("TEND_DISK_LOW_PERCENT", "0");
    let mut process = Process::spawn("the server", command);
    let first = process.wait_for_line("the server prints its first line", |l| Some(l.to_owned()));
    match first.strip_prefix("listening on ") {
        Some(base) => (process, base.to_owned()),
        None => panic!("unexpected first line {first:?}\n{}", process.describe()),
    }
}

/// Polls `GET url` until `pred` holds of its JSON; fails after PATIENCE with the last answer.
async fn wait_for(
    process: &mut Process,
    client: &reqwest::Client,
    url: &str,
    pred: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = match client.get(url).send().await {
            Ok(response) => response.json::<Value>().await.unwrap_or(Value::Null),
            Err(e) => Value::String(e.to_string()),
        };
        if pred(&seen) {
            return;
        }
        if process.try_status().is_some() || Instant::now() >= deadline {
            panic!("gave up on GET {url}; last: {seen}\n{}", process.describe());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client that asks for far more than any socket buffer holds and never reads: the
/// server's writes to it stall, and only its timeouts end the connection.
async fn stalled_client(base: &str) -> tokio::net::TcpStream {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for _ in 0..400 {
        stalled.write_all(request).await.unwrap();
    }
    stalled
}

#[tokio::test]
async fn a_sigterm_reaches_event_stream_clients_in_order_before_the_stream_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let (mut process, base) = start(&data);

    // A dashboard's stream, open before anything runs.
    let mut events = Events::connect(&client, &format!("{base}/events"), None).await;
    // `a` holds at its gate at step 3 of 20 once its checkpoint of step 2 is durable.
    let plan = json!({"name": "held", "blocks": [{"name": "b", "items": [
        {"id": "a", "kind": "gate", "params": {"gate": "a", "steps": 20}}
    ]}]});
    let created: Value = client
        .post(format!("{base}/executions"))
        .json(&plan)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    wait_for(
        &mut process,
        &client,
        &format!("{base}/executions/{id}"),
        |v| {
            v["blocks"][0]["items"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("for step 3 of 20"))
        },
    )
    .await;
    events
        .until("the execution is seen running", |f| {
            f.event == "execution" && f.json()["status"] == "running"
        })
        .await;

    // Beside it, one client whose writes stall and one event stream never read.
    let _stalled = stalled_client(&base).await;
    let mut unread = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    unread
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();

    process.signal("-TERM");
    let rest = events.rest().await;
    let order: Vec<String> = rest
        .iter()
        .filter(|f| f.event != "progress" && f.event != "item")
        .filter(|f| f.name() != "lifecycle:health_check")
        .map(|f| match f.event.as_str() {
            "execution" => format!("execution:{}", f.json()["status"].as_str().unwrap_or("?")),
            "execution_stopped" => format!(
                "execution_stopped:{}",
                f.json()["result"].as_str().unwrap_or("?")
            ),
            "end" => format!("end:{}", f.json()["reason"].as_str().unwrap_or("?")),
            _ => f.name(),
        })
        .collect();
    assert_eq!(
        order,
        [
            "lifecycle:node_shutdown",
            "execution:interrupted",
            "execution_stopped:checkpointed",
            "lifecycle:data_maintenance",
            "lifecycle:node_shutdown_completed",
            "end:runtime_stopped",
        ],
        "{rest:#?}"
    );
    let shutdown = rest
        .iter()
        .find(|f| f.name() == "lifecycle:node_shutdown")
        .unwrap()
        .json();
    assert_eq!(shutdown["event"]["reason"], "signal", "{shutdown}");
    assert_eq!(shutdown["event"]["timeout"], "30s", "{shutdown}");
    let stopped = rest
        .iter()
        .find(|f| f.event == "execution_stopped")
        .unwrap()
        .json();
    assert_eq!(stopped["execution"], id.as_str(), "{stopped}");
    assert_eq!(stopped["status"], "interrupted", "{stopped}");
    let flush = rest
        .iter()
        .find(|f| f.name() == "lifecycle:data_maintenance")
        .unwrap()
        .json();
    assert_eq!(flush["event"]["operation"], "flush", "{flush}");
    assert_eq!(flush["event"]["reason"], "shutdown", "{flush}");

    // The server exits cleanly: the stalled clients were cut at the drain bound (5 s by
    // default), well inside the 10 s the example waits for its server before it gives up.
    let finished = process.finish();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());
    assert!(
        finished.stderr.contains("stopped") && !finished.stderr.contains("did not finish within"),
        "{}",
        finished.describe()
    );
}

//! `GET /events` over a real loopback server: what a client that connects late is told
//! first, how a stream ends (and says why), and a shutdown seen to its end.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;
#[path = "support/sse.rs"]
mod sse;

use helpers::eventually;
use serde_json::json;
use served::Served;
use sse::Events;

/// A plan whose one item waits at gate `gate` before each of its `steps` steps.
fn held(gate: &str, steps: u32) -> serde_json::Value {
    json!({"name": "held", "blocks": [{"name": "b", "items": [
        {"id": "a", "kind": "gate", "params": {"gate": gate, "steps": steps}}
    ]}]})
}

#[tokio::test]
async fn a_client_connecting_after_start_first_gets_the_startup_and_the_last_health_check() {
    let s = Served::start(None, None, None).await;
    // The startup health check has been made (its report is kept once it is answered).
    eventually("the startup health check is reported", || async {
        let (_, health) = s.get("/health").await;
        match health["check"]["check_type"].as_str() {
            Some("startup") => Ok(()),
            _ => Err(health.to_string()),
        }
    })
    .await;

    let mut events = Events::connect(&s.client, &s.url("/events"), None).await;
    let startup = events.next().await.expect("a first event");
    assert_eq!(
        startup.name(),
        "lifecycle:node_startup_completed",
        "{startup:?}"
    );
    assert!(startup.replayed(), "{startup:?}");
    let components = startup.json()["event"]["components"].clone();
    assert!(
        components
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "supervisor")),
        "{components}"
    );
    assert!(
        startup.json()["event"]["duration"].is_string(),
        "{startup:?}"
    );
    let health = events.next().await.expect("a second event");
    assert_eq!(health.name(), "lifecycle:health_check", "{health:?}");
    assert!(health.replayed(), "{health:?}");
    assert_eq!(
        health.json()["event"]["check_type"],
        "startup",
        "{health:?}"
    );

    // What happens from now on is live, not replayed.
    let (status, created) = s.post("/executions", &held("g", 1)).await;
    assert_eq!(status, 201, "{created}");
    let running = events
        .until("the execution runs", |f| f.event == "execution")
        .await;
    let running = running.last().unwrap();
    assert_eq!(running.json()["status"], "running", "{running:?}");
    assert!(!running.replayed(), "{running:?}");
    s.gates.open("g");
    s.stop().await;
}

#[tokio::test]
async fn a_shutdown_is_streamed_to_its_end_then_new_streams_are_refused() {
    let s = Served::start(None, None, Some("s3cret")).await;
    let auth = "Bearer s3cret";
    let submit = s
        .client
        .post(s.url("/executions"))
        .header("authorization", auth)
        .json(&held("g", 2));
    let (status, created) = s.send(submit).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    s.wait_status(&id, "running").await;
    let mut events = Events::connect(&s.client, &s.url("/events"), None).await;

    // The shutdown runs on a task while the test watches the stream.
    let shutdown = tokio::spawn({
        let runtime = s.runtime.clone();
        async move {
            runtime
                .shutdown_with(
                    tend::ShutdownReason::Rpc,
                    std::time::Duration::from_secs(20),
                )
                .await
        }
    });
    let announced = events
        .until("the shutdown is announced", |f| {
            f.name() == "lifecycle:node_shutdown"
        })
        .await;
    let announced = announced.last().unwrap().json();
    assert_eq!(announced["event"]["reason"], "rpc", "{announced}");
    assert_eq!(announced["event"]["timeout"], "20s", "{announced}");
    let rest = events.rest().await;
    let names: Vec<String> = rest
        .iter()
        .map(sse::Frame::name)
        .filter(|n| n != "item" && n != "progress" && n != "lifecycle:health_check")
        .collect();
    assert_eq!(
        names,
        [
            "execution",
            "execution_stopped",
            "lifecycle:data_maintenance",
            "lifecycle:node_shutdown_completed",
            "end"
        ],
        "{rest:#?}"
    );
    assert_eq!(rest.last().unwrap().json()["reason"], "runtime_stopped");
    let report = shutdown.await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    // Once it is over, a new stream is refused.
    let (status, body) = s.get("/events").await;
    assert_eq!(status, 503, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn streams_end_with_the_bridge_and_on_a_request_to_drain_first_and_say_why() {
    // The bridge's own server stops while the runtime runs on: its streams end at once,
    // saying so.
    let mut s = Served::start(None, None, None).await;
    let mut events = Events::connect(&s.client, &s.url("/events"), None).await;
    let (rest, ()) = tokio::join!(events.rest(), s.stop_server());
    let end = rest.last().expect("an end");
    assert_eq!(end.event, "end", "{rest:#?}");
    assert_eq!(end.json()["reason"], "bridge_stopped", "{rest:#?}");
    let runtime = s.runtime.clone();

    // An application that drains its own server before it shuts the runtime down asks
    // first: the streams end then, so that its server does not wait for them.
    let bridge = tend::bridge::Bridge::new(runtime.clone());
    let app = axum::Router::new().nest_service("/tend", bridge.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/tend", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let mut events = Events::connect(&client, &format!("{base}/events"), None).await;
    assert!(runtime.request_shutdown(tend::ShutdownReason::Graceful));
    let rest = events.rest().await;
    let end = rest.last().expect("an end");
    assert_eq!(end.json()["reason"], "shutdown_requested", "{rest:#?}");
    let response = client.get(format!("{base}/events")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    s.stop().await;
    server.abort();
}

#[tokio::test]
async fn a_client_joining_while_the_runtime_shuts_down_is_told_of_the_shutdown_first() {
    // A module answers the announcement only when the test lets it: the shutdown stays
    // under way while a client connects.
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let runtime = tend::Runtime::builder()
        .config(tend::Config {
            lifecycle_timeout: helpers::PATIENCE * 2,
            disk_low_percent: 0.0,
            ..tend::Config::default()
        })
        .module("held", &[tend::LifecycleKind::NodeShutdown], move |_| {
            let held = held.clone();
            async move {
                held.notified().await;
                tend::Answer::Acknowledged
            }
        })
        .start()
        .await
        .unwrap();
    let bound = tend::bridge::Bridge::new(runtime.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", bound.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let mut first = Events::connect(&client, &format!("{base}/events"), None).await;
    let shutdown = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            runtime
                .shutdown_with(
                    tend::ShutdownReason::Signal,
                    std::time::Duration::from_secs(60),
                )
                .await
        }
    });
    first
        .until("the shutdown is announced", |f| {
            f.name() == "lifecycle:node_shutdown"
        })
        .await;

    let mut late = Events::connect(&client, &format!("{base}/events"), None).await;
    let replayed = late
        .until("the shutdown is replayed", |f| {
            f.name() == "lifecycle:node_shutdown"
        })
        .await;
    let names: Vec<String> = replayed.iter().map(sse::Frame::name).collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("lifecycle:node_startup_completed"),
        "{replayed:#?}"
    );
    assert!(replayed.iter().all(sse::Frame::replayed), "{replayed:#?}");
    assert_eq!(
        replayed.last().unwrap().json()["event"]["reason"],
        "signal",
        "{replayed:#?}"
    );

    release.notify_one();
    for events in [&mut first, &mut late] {
        let rest = events.rest().await;
        let names: Vec<String> = rest.iter().map(sse::Frame::name).collect();
        assert!(
            names.ends_with(&[
                "lifecycle:data_maintenance".to_owned(),
                "lifecycle:node_shutdown_completed".to_owned(),
                "end".to_owned()
            ]),
            "{rest:#?}"
        );
    }
    assert!(shutdown.await.unwrap().is_clean());
    let _ = stop.send(());
    tokio::time::timeout(helpers::PATIENCE, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// The seq of a logged event's id (`<log>-<seq>`).
fn seq(frame: &sse::Frame) -> u64 {
    let id = frame
        .id
        .as_deref()
        .unwrap_or_else(|| panic!("no id: {frame:?}"));
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}

fn is_completed(frame: &sse::Frame) -> bool {
    frame.event == "execution" && frame.json()["status"] == "completed"
}

#[tokio::test]
async fn every_event_has_an_id_and_a_client_that_reconnects_gets_exactly_what_it_missed() {
    let s = Served::start(None, None, None).await;
    // One client watches throughout; another leaves once the item runs.
    let mut watcher = Events::connect(&s.client, &s.url("/events"), None).await;
    let mut leaving = Events::connect(&s.client, &s.url("/events"), None).await;
    let (status, created) = s.post("/executions", &held("g", 3)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let seen = leaving
        .until("the item runs", |f| {
            f.event == "item" && f.json()["status"] == "running"
        })
        .await;
    let last = seen.last().unwrap().id.clone().expect("an id");
    drop(leaving);
    // Meanwhile the item makes progress and the execution completes.
    s.gates.open("g");
    s.wait_status(&id, "completed").await;

    let all = watcher.until("the execution completes", is_completed).await;
    assert!(all.iter().all(|f| f.id.is_some()), "{all:#?}");
    let live: Vec<u64> = all.iter().filter(|f| !f.replayed()).map(seq).collect();
    assert!(live.windows(2).all(|w| w[0] < w[1]), "{live:?}");
    let at = all
        .iter()
        .position(|f| f.id.as_deref() == Some(last.as_str()))
        .expect("the watcher saw the same event, with the same id");
    let missed = &all[at + 1..];
    assert!(
        missed.iter().any(|f| f.event == "progress"),
        "something was missed: {missed:#?}"
    );

    let mut back = Events::connect(&s.client, &s.url("/events"), Some(&last)).await;
    let resumed = back.until("the execution completes", is_completed).await;
    assert_eq!(
        resumed, missed,
        "exactly what it missed, nothing replayed, no reset"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_client_whose_last_event_is_no_longer_kept_or_unknown_is_told_to_reset() {
    let s = Served::start(None, None, None).await;
    let mut first = Events::connect(&s.client, &s.url("/events"), None).await;
    let startup = first.next().await.expect("the replayed startup");
    let before = startup.id.clone().expect("an id");
    drop(first);
    // Far more events than the bridge keeps (1,024): a progress report per step.
    let plan = json!({"name": "busy", "blocks": [{"name": "b", "items": [
        {"id": "a", "kind": "sleep", "params": {"ms": 0, "steps": 1500}}
    ]}]});
    let (status, created) = s.post("/executions", &plan).await;
    assert_eq!(status, 201, "{created}");
    s.wait_status(created["id"].as_str().unwrap(), "completed")
        .await;

    for (last, why) in [
        (before.as_str(), "too_old"),
        // Another process's (or bridge's) id, and no id at all.
        ("0123456789abcdef-3", "unknown_id"),
        ("garbage", "unknown_id"),
    ] {
        let mut events = Events::connect(&s.client, &s.url("/events"), Some(last)).await;
        let reset = events.next().await.expect("a reset");
        assert_eq!(reset.event, "reset", "{last}: {reset:?}");
        assert_eq!(reset.json()["reason"], why, "{last}: {reset:?}");
        // Then what a fresh client gets: the startup, replayed.
        let startup = events.next().await.expect("the startup");
        assert_eq!(startup.name(), "lifecycle:node_startup_completed");
        assert!(startup.replayed());
    }

    // The id a reset carries is a place to resume from: nothing is replayed there.
    let mut events = Events::connect(&s.client, &s.url("/events"), Some(&before)).await;
    let reset = events.next().await.expect("a reset");
    drop(events);
    let mut events = Events::connect(&s.client, &s.url("/events"), reset.id.as_deref()).await;
    let (status, _) = s.post("/executions", &held("h", 1)).await;
    assert_eq!(status, 201);
    let first = events.next().await.expect("an event");
    assert_eq!(first.event, "execution", "{first:?}");
    assert!(!first.replayed(), "{first:?}");
    s.gates.open("h");
    s.stop().await;
}

//! Maintenance as the seed's `DataMaintenance` defines it, over REST on a real loopback
//! server and through `Runtime`: an operation (flush, cleanup, both), an urgency and a
//! target age; the event the modules get carries them, and a high urgency waits for
//! their answers.

#[path = "support/helpers.rs"]
mod helpers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpers::PATIENCE;
use serde_json::{Value, json};
use tend::{
    Answer, LifecycleEvent, LifecycleKind, MaintenanceRequest, MaintenanceWork, Runtime, Urgency,
};

/// A runtime whose module `m` records every `DataMaintenance` and acknowledges it, its
/// bridge on a loopback port, and what the module saw.
struct Setup {
    runtime: Runtime,
    base: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<Arc<LifecycleEvent>>>>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), tend::bridge::BridgeError>>,
}

impl Setup {
    async fn start() -> Setup {
        let seen: Arc<Mutex<Vec<Arc<LifecycleEvent>>>> = Arc::default();
        let log = seen.clone();
        let runtime = Runtime::builder()
            .registry(tend::demo::registry().unwrap())
            .config(tend::Config {
                lifecycle_timeout: PATIENCE,
                disk_low_percent: 0.0,
                ..tend::Config::default()
            })
            .module("m", &[LifecycleKind::DataMaintenance], move |event| {
                log.lock().unwrap().push(event);
                async { Answer::Acknowledged }
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
        let client = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap();
        Setup {
            runtime,
            base,
            client,
            seen,
            stop,
            server,
        }
    }

    async fn maintain(&self, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/maintenance", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The `DataMaintenance` the module saw last, as JSON, once it has seen `count`.
    async fn seen(&self, count: usize) -> Value {
        helpers::eventually(&format!("the module saw {count} events"), || async {
            let seen = self.seen.lock().unwrap().clone();
            match seen.get(count - 1) {
                Some(event) if seen.len() == count => Ok(serde_json::to_value(&**event).unwrap()),
                _ => Err(format!("{seen:?}")),
            }
        })
        .await
    }

    /// A `sum` execution run to its end.
    async fn finished(&self) {
        let plan = json!({"name": "done", "blocks": [{"name": "b", "items": [
            {"id": "a", "kind": "sum", "params": {"add": 1}}
        ]}]});
        let id = self
            .runtime
            .submit(serde_json::from_value(plan).unwrap())
            .await
            .unwrap();
        assert!(self.runtime.wait(id).await.unwrap().is_completed());
    }

    async fn stop(self) {
        self.runtime.shutdown().await.unwrap();
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn post_maintenance_takes_an_operation_an_urgency_and_a_target_age_and_the_event_carries_them()
 {
    let s = Setup::start().await;
    s.finished().await;

    // A flush of high urgency: the store flushed, nothing pruned, the module's answer
    // waited for and reported.
    let (status, report) = s
        .maintain(json!({"operation": "flush", "urgency": "high"}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["operation"], "flush", "{report}");
    assert_eq!(report["urgency"], "high", "{report}");
    assert_eq!(report["flushed"], true, "{report}");
    assert_eq!(report["pruned"], 0, "{report}");
    assert_eq!(report["success"], true, "{report}");
    assert!(report.get("target_age").is_none(), "{report}");
    assert_eq!(
        report["modules"],
        json!([{"module": "m", "event": "data_maintenance", "result": "acknowledged"}]),
        "{report}"
    );
    let event = s.seen(1).await;
    assert_eq!(event["operation"], "flush", "{event}");
    assert_eq!(event["urgency"], "high", "{event}");
    assert_eq!(event["reason"], "manual", "{event}");
    assert_eq!(event["target_age"], Value::Null, "{event}");
    assert_eq!(event["timeout"], "30s", "{event}");

    // Both, of low urgency, with a target age of zero: the finished execution goes, and
    // nobody waits for the module.
    let (status, report) = s
        .maintain(json!({"operation": "both", "urgency": "low", "target_age": "0s"}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["operation"], "both", "{report}");
    assert_eq!(report["pruned"], 1, "{report}");
    assert_eq!(report["flushed"], true, "{report}");
    assert_eq!(report["target_age"], "0s", "{report}");
    assert!(report.get("modules").is_none(), "{report}");
    let event = s.seen(2).await;
    assert_eq!(event["operation"], "both", "{event}");
    assert_eq!(event["urgency"], "low", "{event}");
    assert_eq!(event["target_age"], "0s", "{event}");
    assert_eq!(event["timeout"], Value::Null, "{event}");

    // The body that came before (`target_age` alone), and none at all: a cleanup of
    // medium urgency, as ever.
    s.finished().await;
    let (status, report) = s.maintain(json!({"target_age": "1d"})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["operation"], "cleanup", "{report}");
    assert_eq!(report["urgency"], "medium", "{report}");
    assert_eq!(report["target_age"], "1day", "{report}");
    assert_eq!(report["pruned"], 0, "{report}");
    assert_eq!(report["flushed"], false, "{report}");
    let event = s.seen(3).await;
    assert_eq!(
        (&event["operation"], &event["urgency"], &event["target_age"]),
        (&json!("cleanup"), &json!("medium"), &json!("1day")),
        "{event}"
    );
    let (status, report) = s.maintain(json!({})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["operation"], "cleanup", "{report}");
    assert!(
        report.get("target_age").is_none(),
        "no retention is set: {report}"
    );

    // Refused, naming the culprit: a target age for a flush, an unknown operation or
    // urgency. Nothing ran.
    for (body, culprit) in [
        (
            json!({"operation": "flush", "target_age": "1d"}),
            "target_age",
        ),
        (json!({"operation": "sweep"}), "sweep"),
        (json!({"urgency": "urgent"}), "urgent"),
        (json!({"operation": "both", "target_age": "soon"}), "soon"),
    ] {
        let (status, error) = s.maintain(body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(culprit), "{body}: {error}");
    }
    assert_eq!(s.seen.lock().unwrap().len(), 4);
    s.stop().await;
}

#[tokio::test]
async fn the_runtime_runs_the_maintenance_asked_for() {
    let s = Setup::start().await;
    s.finished().await;
    let report = s
        .runtime
        .maintain_with(MaintenanceRequest {
            work: MaintenanceWork::Both {
                target_age: Some(Duration::ZERO),
            },
            urgency: Urgency::High,
        })
        .await
        .unwrap();
    assert!(report.success && report.flushed, "{report:?}");
    assert_eq!(report.pruned, 1, "{report:?}");
    assert_eq!(report.modules.len(), 1, "{report:?}");
    let event = s.seen(1).await;
    assert_eq!(event["operation"], "both", "{event}");
    assert_eq!(event["urgency"], "high", "{event}");
    // The call that came before still asks for a cleanup.
    let report = s.runtime.maintain(None).await.unwrap();
    assert_eq!(report.operation, tend::MaintenanceOperation::Cleanup);
    assert_eq!(report.urgency, Urgency::Medium);
    assert!(!report.flushed);
    s.stop().await;
}

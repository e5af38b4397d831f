//! The Janitor's monitors: a health check measures the real data directory, the store's
//! file and this process, publishes the warnings the limits call for (low disk with its
//! urgent cleanup, resource limits), collects the modules' answers, and `GET /health`
//! serves the report.

#[path = "support/helpers.rs"]
mod helpers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpers::{PATIENCE, outcome, sum};
use tend::bridge::Bridge;
use tend::{
    Answer, Block, Config, Heard, LifecycleEvent, LifecycleKind, MaintenanceReason, Plan,
    ResourceKind, Runtime, Urgency,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_measures_warns_cleans_up_when_low_on_disk_and_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let seen: Arc<Mutex<Vec<LifecycleEvent>>> = Arc::default();
    let log = seen.clone();
    let config = Config {
        // Every volume in use has less than 100% free: the disk counts as low.
        disk_low_percent: 100.0,
        // The store's file is over a 1-byte limit, and memory over a 1-byte one.
        max_store_bytes: Some(1),
        max_memory_bytes: Some(1),
        retention: Some(Duration::ZERO),
        health_interval: Duration::ZERO,
        maintenance_interval: None,
        ..Config::default()
    };
    let runtime = Runtime::builder()
        .data_dir(dir.path())
        .registry(tend::demo::registry().unwrap())
        .config(config)
        .module(
            "watch",
            &LifecycleKind::ALL,
            move |event: Arc<LifecycleEvent>| {
                let healthy = !matches!(*event, LifecycleEvent::HealthCheck { .. });
                log.lock().unwrap().push((*event).clone());
                async move {
                    if healthy {
                        Answer::Acknowledged
                    } else {
                        Answer::Report {
                            report: serde_json::json!({"queue": 0}),
                        }
                    }
                }
            },
        )
        .start()
        .await
        .unwrap();
    // The startup check first (it cleans up too), so the execution below is there when the
    // next check measures.
    helpers::eventually("the startup check has run", || async {
        runtime
            .last_health()
            .map(|_| ())
            .ok_or("none yet".to_owned())
    })
    .await;
    let done = runtime
        .submit(Plan::new("done").block(Block::new("b").item(sum("one", 1))))
        .await
        .unwrap();
    assert!(outcome(&runtime, done).await.is_completed());

    let report = runtime.health_check().await.unwrap();
    assert!(!report.node_healthy, "{report:?}");
    let disk = report
        .measures
        .disk
        .clone()
        .expect("the data volume is measured");
    assert!(disk.total_bytes > 0, "{report:?}");
    assert!(report.measures.store_bytes.unwrap_or(0) > 1, "{report:?}");
    assert_eq!(report.measures.executions, Some(1));
    assert_eq!(report.warnings.len(), 3, "{report:?}");
    let watch = report.modules.iter().find(|m| m.module == "watch").unwrap();
    assert_eq!(watch.result, Heard::Reported);
    assert_eq!(watch.report, Some(serde_json::json!({"queue": 0})));

    // The module saw the warnings, the urgent cleanup and the check, in that order; the
    // cleanup pruned the finished execution.
    let seen = seen.lock().unwrap().clone();
    let after_startup: Vec<&LifecycleEvent> = seen
        .iter()
        .skip_while(|e| !matches!(e, LifecycleEvent::HealthCheck { .. }))
        .skip(1)
        .collect();
    assert!(
        matches!(after_startup[0], LifecycleEvent::DiskSpaceLow { .. }),
        "{seen:?}"
    );
    assert!(matches!(
        after_startup[1],
        LifecycleEvent::ResourceLimitWarning {
            resource: ResourceKind::Disk,
            ..
        }
    ));
    assert!(matches!(
        after_startup[2],
        LifecycleEvent::ResourceLimitWarning {
            resource: ResourceKind::Memory,
            ..
        }
    ));
    assert!(matches!(
        after_startup[3],
        LifecycleEvent::DataMaintenance {
            urgency: Urgency::High,
            reason: MaintenanceReason::LowDisk,
            ..
        }
    ));
    assert!(matches!(
        after_startup[4],
        LifecycleEvent::HealthCheck {
            node_healthy: false,
            ..
        }
    ));
    assert!(runtime.status(done).await.is_err(), "pruned by the cleanup");

    // GET /health serves the last report, degraded with its warnings.
    let bound = Bridge::new(runtime.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("http://{}/health", bound.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let health: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["check"]["node_healthy"], false, "{health}");
    assert_eq!(health["check"]["check_type"], "manual", "{health}");
    assert!(health["reasons"].to_string().contains("free"), "{health}");
    runtime.shutdown().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn within_its_limits_the_startup_check_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::builder()
        .data_dir(dir.path())
        .config(Config {
            disk_low_percent: 0.0,
            ..Config::default()
        })
        .start()
        .await
        .unwrap();
    let report = helpers::eventually("the startup check has run", || async {
        runtime.last_health().ok_or("none yet".to_owned())
    })
    .await;
    assert!(report.node_healthy, "{report:?}");
    assert!(report.warnings.is_empty(), "{report:?}");
    assert_eq!(report.check_type, tend::HealthCheckType::Startup);
    runtime.shutdown().await.unwrap();
}

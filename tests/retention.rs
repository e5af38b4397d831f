//! Deleting finished executions: one on request (handle and REST), and maintenance pruning
//! what the retention no longer keeps, by age and by count, on request and on the
//! Janitor's interval; what is deleted is gone after a restart too.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use std::time::Duration;

use helpers::{PATIENCE, gate, outcome, sum, wait_for};
use served::Served;
use tend::demo::Gates;
use tend::{Block, Config, Event, ExecutionId, LifecycleEvent, Plan, Runtime, RuntimeError};

fn config() -> Config {
    Config {
        // Only when the test asks, unless it says otherwise.
        maintenance_interval: None,
        // Whatever the machine's disk: no low-disk cleanup.
        disk_low_percent: 0.0,
        ..Config::default()
    }
}

async fn start(dir: &std::path::Path, gates: &Gates, config: Config) -> Runtime {
    Runtime::builder()
        .data_dir(dir)
        .resource(gates.clone())
        .registry(tend::demo::registry().unwrap())
        .config(config)
        .start()
        .await
        .unwrap()
}

/// Submits a one-item plan and waits until it has completed, and until the clock is past
/// the millisecond it ended in (so executions finished one after another are ordered).
async fn finished(runtime: &Runtime, name: &str) -> ExecutionId {
    let id = runtime
        .submit(Plan::new(name).block(Block::new("b").item(sum("one", 1))))
        .await
        .unwrap();
    assert!(outcome(runtime, id).await.is_completed());
    let ended = runtime.status(id).await.unwrap().updated;
    while std::time::SystemTime::now() <= ended + Duration::from_millis(1) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    id
}

async fn held(runtime: &Runtime) -> ExecutionId {
    runtime
        .submit(Plan::new("held").block(Block::new("b").item(gate("a", "g", 2))))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_finished_execution_is_deleted_with_its_records_and_a_live_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let runtime = start(dir.path(), &gates, config()).await;
    let done = finished(&runtime, "done").await;
    let live = held(&runtime).await;

    runtime.delete(done).await.unwrap();
    assert!(matches!(
        runtime.status(done).await,
        Err(RuntimeError::UnknownExecution(id)) if id == done
    ));
    assert!(matches!(
        runtime.delete(live).await,
        Err(RuntimeError::InvalidState {
            action: "delete",
            ..
        })
    ));
    // Interrupted, it could still run: refused too.
    runtime
        .interrupt(live, tend::InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    outcome(&runtime, live).await;
    assert!(matches!(
        runtime.delete(live).await,
        Err(RuntimeError::InvalidState { .. })
    ));
    runtime.shutdown().await.unwrap();

    // Gone from the file: a restart does not find it; the other is still there.
    let runtime = start(dir.path(), &gates, config()).await;
    let ids: Vec<ExecutionId> = runtime.list().await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids, [live]);
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn maintenance_prunes_by_count_and_by_age_and_keeps_what_can_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let keep_two = Config {
        retain_max: Some(2),
        ..config()
    };
    let runtime = start(dir.path(), &gates, keep_two.clone()).await;
    let mut done = Vec::new();
    for n in 0..5 {
        done.push(finished(&runtime, &format!("done-{n}")).await);
    }
    let live = held(&runtime).await;
    let mut events = runtime.subscribe().await.unwrap();

    // By count: the newest two finished stay (by when they ended), and the running one.
    let report = runtime.maintain(None).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.pruned, 3, "{report:?}");
    let mut ids: Vec<ExecutionId> = runtime.list().await.unwrap().iter().map(|e| e.id).collect();
    ids.sort();
    let mut expected = vec![done[3], done[4], live];
    expected.sort();
    assert_eq!(ids, expected);
    // Announced: started, the modules asked to clean up, completed with the numbers.
    wait_for(&mut events, |e| {
        matches!(e, Event::Lifecycle { event } if matches!(**event, LifecycleEvent::MaintenanceStarted { .. }))
    })
    .await;
    wait_for(&mut events, |e| {
        matches!(e, Event::Lifecycle { event } if matches!(**event, LifecycleEvent::DataMaintenance { .. }))
    })
    .await;
    let completed = wait_for(&mut events, |e| {
        matches!(e, Event::Lifecycle { event } if matches!(**event, LifecycleEvent::MaintenanceCompleted { .. }))
    })
    .await;
    let Event::Lifecycle { event } = completed else {
        unreachable!()
    };
    let LifecycleEvent::MaintenanceCompleted {
        results, success, ..
    } = &*event
    else {
        unreachable!()
    };
    assert!(success);
    assert_eq!(results["pruned"], 3);

    // By age: a target age of a day keeps them; of zero, every finished one goes.
    let report = runtime
        .maintain(Some(Duration::from_secs(86_400)))
        .await
        .unwrap();
    assert_eq!(report.pruned, 0, "{report:?}");
    let report = runtime.maintain(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(report.pruned, 2, "{report:?}");
    let ids: Vec<ExecutionId> = runtime.list().await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids, [live]);
    runtime.shutdown().await.unwrap();

    let runtime = start(dir.path(), &gates, keep_two).await;
    let ids: Vec<ExecutionId> = runtime.list().await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids, [live]);
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_janitor_prunes_on_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let runtime = start(dir.path(), &gates, config()).await;
    let done = finished(&runtime, "done").await;
    runtime.shutdown().await.unwrap();

    // Everything finished a millisecond ago is past its retention; the first run on the
    // interval deletes it.
    let periodic = Config {
        maintenance_interval: Some(Duration::from_millis(100)),
        retention: Some(Duration::from_millis(1)),
        ..config()
    };
    let runtime = start(dir.path(), &gates, periodic).await;
    let mut events = runtime.subscribe().await.unwrap();
    let pruned = tokio::time::timeout(PATIENCE, async {
        loop {
            let event = wait_for(&mut events, |e| matches!(e, Event::Lifecycle { .. })).await;
            if let Event::Lifecycle { event } = event
                && let LifecycleEvent::MaintenanceCompleted { results, .. } = &*event
                && results["pruned"] == 1
            {
                return;
            }
        }
    })
    .await;
    assert!(pruned.is_ok(), "a periodic run pruned the execution");
    assert!(runtime.status(done).await.is_err());
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn delete_and_maintenance_over_the_bridge() {
    let s = Served::start(None, None, None).await;
    let done = finished(&s.runtime, "done").await;
    let live = held(&s.runtime).await;

    let (status, body) = s
        .send(s.client.delete(s.url(&format!("/executions/{live}"))))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = s
        .send(s.client.delete(s.url(&format!("/executions/{done}"))))
        .await;
    assert_eq!(status, 204);
    let (status, _) = s.get(&format!("/executions/{done}")).await;
    assert_eq!(status, 404);

    let again = finished(&s.runtime, "again").await;
    let (status, report) = s
        .post("/maintenance", &serde_json::json!({"target_age": "0s"}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["pruned"], 1, "{report}");
    assert_eq!(report["reason"], "manual", "{report}");
    let (status, _) = s.get(&format!("/executions/{again}")).await;
    assert_eq!(status, 404);
    let (status, body) = s
        .post(
            "/maintenance",
            &serde_json::json!({"target_age": "a while"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn the_list_is_paged_newest_first_with_a_status_filter() {
    let s = Served::start(None, None, None).await;
    let mut done = Vec::new();
    for n in 0..5 {
        done.push(finished(&s.runtime, &format!("done-{n}")).await);
    }
    let live = held(&s.runtime).await;
    s.wait_status(&live.to_string(), "running").await;

    // Pages of two, newest first, until `next` is absent.
    let mut seen = Vec::new();
    let mut path = "/executions?limit=2".to_owned();
    loop {
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let ids = page["executions"].as_array().unwrap();
        assert!(ids.len() <= 2, "{page}");
        seen.extend(ids.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => path = format!("/executions?limit=2&cursor={next}"),
            None => break,
        }
    }
    let mut expected: Vec<String> = done.iter().map(ToString::to_string).collect();
    expected.push(live.to_string());
    expected.reverse();
    assert_eq!(seen, expected);

    // A status keeps only its own; the handle pages the same way.
    let (_, page) = s.get("/executions?status=running").await;
    assert_eq!(page["executions"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["executions"][0]["id"], live.to_string().as_str());
    let page = s
        .runtime
        .list_page(tend::ListQuery {
            status: Some(tend::ExecutionStatus::Completed),
            limit: 3,
            before: Some(done[4]),
            search: None,
        })
        .await
        .unwrap();
    let ids: Vec<ExecutionId> = page.executions.iter().map(|e| e.id).collect();
    assert_eq!(ids, [done[3], done[2], done[1]]);
    assert_eq!(page.next, Some(done[1]));

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=many",
        "cursor=nope",
        "status=odd",
    ] {
        let (status, body) = s.get(&format!("/executions?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // A key given twice is refused, naming it; the query is percent-decoded.
    let (status, body) = s.get("/executions?limit=2&limit=3").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query", "{body}");
    assert!(body.to_string().contains("limit"), "{body}");
    let (status, body) = s.get("/executions?st%61tus=completed&limit=%32").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["executions"].as_array().unwrap().len(), 2, "{body}");
    s.stop().await;
}

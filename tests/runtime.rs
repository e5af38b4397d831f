//! Executions through the runtime handle: outputs along edges, failures and panics, check
//! before apply, events, many concurrent submitters, and the store the runtime opens (its
//! page cache from the config).

#[path = "support/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use helpers::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tend::demo::Sleep;
use tend::{
    Block, Check, Event, ExecutionStatus, Item, ItemCtx, ItemError, ItemSpec, ItemStatus, Plan,
    Registry, Runtime,
};

#[tokio::test]
async fn outputs_flow_along_edges_and_blocks_run_in_order() {
    let rt = runtime(None, None, 8).await;
    let plan = Plan::new("sums")
        .block(
            Block::new("leaves")
                .item(ItemSpec::new("one", &Sleep::new(5).output(json!(1))).unwrap())
                .item(ItemSpec::new("two", &Sleep::new(5).output(json!(2))).unwrap())
                .item(sum("three", 0).after(["one", "two"])),
        )
        .block(Block::new("root").item(sum("six", 3).after(["three"])));
    let id = rt.submit(plan).await.unwrap();
    let outcome = outcome(&rt, id).await;
    assert!(outcome.is_completed(), "{outcome:?}");
    assert_eq!(
        outcome.blocks[0].done,
        ["one", "two", "three"].map(Arc::<str>::from)
    );
    assert_eq!(outcome.blocks[1].done, ["six"].map(Arc::<str>::from));
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Completed);
    assert_eq!(report.item("one").unwrap().output_json(), Some(json!(1)));
    assert_eq!(report.item("six").unwrap().output_as::<i64>(), Some(6));
    assert_eq!(report.items_done(), 4);
    let list = rt.list().await.unwrap();
    assert_eq!((list[0].items_done, list[0].items_total), (4, 4));
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failure_skips_its_dependents_and_later_blocks_but_not_independent_items() {
    let rt = runtime(None, None, 8).await;
    let plan: Plan = serde_json::from_value(json!({
        "name": "failing",
        "blocks": [
            {"name": "first", "items": [
                {"id": "bad", "kind": "sleep", "params": {"ms": 1, "fail_times": 1}},
                {"id": "child", "kind": "sum", "after": ["bad"]},
                {"id": "grandchild", "kind": "sum", "after": ["child"]},
                {"id": "independent", "kind": "sleep", "params": {"ms": 20, "output": 5}}
            ]},
            {"name": "second", "items": [{"id": "later", "kind": "sum"}]}
        ]
    }))
    .unwrap();
    let id = rt.submit(plan).await.unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(outcome.blocks[0].failed, ["bad"].map(Arc::<str>::from));
    assert_eq!(
        outcome.blocks[0].skipped,
        ["child", "grandchild"].map(Arc::<str>::from)
    );
    assert_eq!(
        outcome.blocks[0].done,
        ["independent"].map(Arc::<str>::from)
    );
    assert_eq!(outcome.blocks[1].skipped, ["later"].map(Arc::<str>::from));
    let report = rt.status(id).await.unwrap();
    let bad = report.item("bad").unwrap();
    assert!(
        bad.error.as_deref().unwrap().contains("fails on purpose"),
        "{bad:?}"
    );
    assert_eq!(bad.attempts, 1);
    // A failed execution is final.
    assert!(rt.resume(id).await.is_err());
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_panicking_item_fails_its_attempt_and_nothing_else() {
    let rt = runtime(None, None, 8).await;
    let plan: Plan = serde_json::from_value(json!({
        "name": "panicky",
        "blocks": [{"name": "b", "items": [
            {"id": "boom", "kind": "sleep", "params": {"ms": 1, "panic_times": 1}},
            {"id": "fine", "kind": "sum", "params": {"add": 1}}
        ]}]
    }))
    .unwrap();
    let id = rt.submit(plan).await.unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.blocks[0].failed, ["boom"].map(Arc::<str>::from));
    assert_eq!(outcome.blocks[0].done, ["fine"].map(Arc::<str>::from));
    let boom = rt.status(id).await.unwrap().item("boom").unwrap().clone();
    assert!(boom.error.unwrap().contains("panics on purpose"));
    // The runtime is still healthy.
    let again = rt
        .submit(Plan::new("after").block(Block::new("b").item(sum("x", 1))))
        .await
        .unwrap();
    assert!(outcome_ok(&rt, again).await);
    rt.shutdown().await.unwrap();
}

async fn outcome_ok(rt: &Runtime, id: tend::ExecutionId) -> bool {
    outcome(rt, id).await.is_completed()
}

/// Counts applies; `check` says it is already present when `present` is set.
#[derive(Serialize, Deserialize)]
struct Ensure {
    present: bool,
}

struct Applies(AtomicU32);

impl Item for Ensure {
    const KIND: &'static str = "ensure";
    type Output = String;

    async fn check(&self, _cx: &mut ItemCtx) -> Result<Check<String>, ItemError> {
        Ok(if self.present {
            Check::Satisfied("already there".into())
        } else {
            Check::Apply
        })
    }

    async fn apply(&self, cx: &mut ItemCtx) -> Result<String, ItemError> {
        if let Some(applies) = cx.resource::<Arc<Applies>>() {
            applies.0.fetch_add(1, Ordering::SeqCst);
        }
        // Asking for the input of an item it does not depend on is an error.
        if let Err(e) = cx.input::<String>("elsewhere") {
            assert!(matches!(e, ItemError::Input { .. }));
        }
        Ok("created".into())
    }
}

#[tokio::test]
async fn check_can_skip_apply_and_still_provide_an_output() {
    let applies = Arc::new(Applies(AtomicU32::new(0)));
    let rt = Runtime::builder()
        .registry(Registry::new().with::<Ensure>().unwrap())
        .resource(applies.clone())
        .start()
        .await
        .unwrap();
    let plan = Plan::new("ensure").block(
        Block::new("b")
            .item(ItemSpec::new("present", &Ensure { present: true }).unwrap())
            .item(ItemSpec::new("absent", &Ensure { present: false }).unwrap()),
    );
    let id = rt.submit(plan).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    let report = rt.status(id).await.unwrap();
    assert_eq!(
        report
            .item("present")
            .unwrap()
            .output_as::<String>()
            .as_deref(),
        Some("already there")
    );
    assert_eq!(
        report
            .item("absent")
            .unwrap()
            .output_as::<String>()
            .as_deref(),
        Some("created")
    );
    assert_eq!(applies.0.load(Ordering::SeqCst), 1);
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscribers_see_status_changes_and_progress_in_order() {
    let rt = runtime(None, None, 1).await;
    let mut events = rt.subscribe().await.unwrap();
    let plan = Plan::new("watched").block(
        Block::new("b")
            .item(sleep("a", 30, 3))
            .item(sleep("b", 30, 3).after(["a"])),
    );
    let id = rt.submit(plan).await.unwrap();
    let mut seen = Vec::new();
    wait_for(&mut events, |e| {
        seen.push(e.clone());
        matches!(e, Event::Execution { execution, status: ExecutionStatus::Completed } if *execution == id)
    })
    .await;
    let describe: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Execution { status, .. } => Some(format!("execution {status}")),
            Event::Item { item, status, .. } => Some(format!("{item} {status}")),
            Event::Progress { item, progress, .. } => {
                Some(format!("{item} {}/{}", progress.done, progress.total))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        describe,
        vec![
            "execution running",
            "a running",
            "a 1/3",
            "a 2/3",
            "a 3/3",
            "a done",
            "b running",
            "b 1/3",
            "b 2/3",
            "b 3/3",
            "b done",
            "execution completed",
        ]
    );
    rt.shutdown().await.unwrap();
    // The shutdown's lifecycle events, then the stream ends once the runtime has stopped.
    let mut rest = Vec::new();
    while let Some(event) = tokio::time::timeout(PATIENCE, events.next()).await.unwrap() {
        match event {
            // (The Janitor's startup health check may come late.)
            Event::Lifecycle { event } if event.kind() == tend::LifecycleKind::HealthCheck => {}
            Event::Lifecycle { event } => rest.push(event.kind().to_string()),
            other => panic!("after the end: {other:?}"),
        }
    }
    assert_eq!(
        rest,
        [
            "node_shutdown",
            "data_maintenance",
            "node_shutdown_completed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_submit_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..40 {
        let rt = rt.clone();
        tasks.spawn(async move {
            let plan = Plan::new(format!("p{t}")).block(
                Block::new("b")
                    .item(sum("a", t))
                    .item(sum("b", 1).after(["a"])),
            );
            let id = rt.submit(plan).await.unwrap();
            (t, id, outcome(&rt, id).await)
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (t, id, outcome) = joined.unwrap();
        assert!(outcome.is_completed());
        assert!(ids.insert(id), "ids are unique");
        let report = rt.status(id).await.unwrap();
        assert_eq!(report.name, format!("p{t}"));
        assert_eq!(report.item("b").unwrap().output_as::<i64>(), Some(t + 1));
    }
    let list = rt.list().await.unwrap();
    assert_eq!(list.len(), 40);
    assert!(
        list.windows(2).all(|w| w[0].id < w[1].id),
        "listed oldest first"
    );
    assert!(
        list.iter()
            .all(|s| s.status == ExecutionStatus::Completed && s.items_done == 2)
    );
    rt.shutdown().await.unwrap();
    drop(rt);
    // All of it is in the file.
    let rt = runtime(Some(dir.path()), None, 4).await;
    assert_eq!(rt.list().await.unwrap().len(), 40);
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn items_report_running_status_and_progress_while_they_run() {
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(None, None, 1, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt
        .submit(Plan::new("p").block(Block::new("b").item(gate("slow", "g", 30))))
        .await
        .unwrap();
    // Two steps pass; the item then waits at the gate, running, until the interrupt.
    gates.release("g", 2);
    wait_for(
        &mut events,
        |e| matches!(e, Event::Progress { progress, .. } if progress.done == 2),
    )
    .await;
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Running);
    let slow = report.item("slow").unwrap();
    assert_eq!(slow.status, ItemStatus::Running);
    assert_eq!(slow.progress.unwrap().done, 2);
    assert_eq!(slow.attempts, 1);
    rt.interrupt(id, tend::InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    outcome(&rt, id).await;
    rt.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_listed_while_it_starts_already_has_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    let watcher = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            while seen.len() < 20 {
                for summary in rt.list().await.unwrap() {
                    // Asked for as soon as it is listed, possibly before its record is durable.
                    let report = rt.status(summary.id).await.unwrap();
                    assert_eq!(report.id, summary.id);
                    seen.insert(summary.id);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for t in 0..20 {
        let plan = Plan::new(format!("p{t}")).block(Block::new("b").item(sum("a", t)));
        rt.submit(plan).await.unwrap();
    }
    tokio::time::timeout(PATIENCE, watcher)
        .await
        .unwrap()
        .unwrap();
    rt.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_racing_shutdown_is_either_refused_or_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 2).await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..30 {
        let rt = rt.clone();
        tasks.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_micros(200 * t)).await;
            // A closed gate: an accepted execution is still running at the shutdown.
            let plan = Plan::new(format!("p{t}")).block(Block::new("b").item(gate("a", "g", 20)));
            rt.submit(plan).await
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    rt.shutdown().await.unwrap();
    let mut accepted = std::collections::HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(id) => {
                accepted.insert(id);
            }
            Err(tend::RuntimeError::ShuttingDown) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    drop(rt);
    // After a restart, exactly the accepted executions exist, each resumable: checkpointed
    // by the shutdown (interrupted), or, if the shutdown came before it ever ran, resumed
    // at start like any execution a stop left running.
    let rt = runtime(Some(dir.path()), None, 2).await;
    let listed: std::collections::HashSet<_> =
        rt.list().await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(listed, accepted);
    for summary in rt.list().await.unwrap() {
        assert!(
            matches!(
                summary.status,
                ExecutionStatus::Interrupted | ExecutionStatus::Running
            ),
            "{summary:?}"
        );
    }
    rt.shutdown().await.unwrap();
}

/// Issue 22, part 10: an execution's `updated` moves as its items end (it stayed at its
/// start until its status changed), in its report and in the list; and a done item shows
/// no message left from while it ran.
#[tokio::test]
async fn updated_moves_when_an_item_ends_and_a_done_item_keeps_no_stale_message() {
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(None, None, 2, gates.clone()).await;
    let plan = Plan::new("updated").block(
        Block::new("b")
            .item(gate("first", "first", 1))
            .item(gate("second", "second", 1).after(["first"])),
    );
    let id = rt.submit(plan).await.unwrap();
    let started = rt.status(id).await.unwrap();
    eventually("first says it waits at its gate", || async {
        let report = rt.status(id).await.unwrap();
        match report.item("first").and_then(|i| i.message.clone()) {
            Some(message) => Ok(message),
            None => Err("no message yet".to_owned()),
        }
    })
    .await;
    // The millisecond clock moves on before `first` ends (a clock's step, not a wait for
    // the scheduler).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    gates.open("first");
    let report = eventually("first is done", || async {
        let report = rt.status(id).await.unwrap();
        match report.item("first").map(|i| i.status) {
            Some(tend::ItemStatus::Done) => Ok(report),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(report.item("first").unwrap().message, None, "{report:?}");
    let ended = report.item("first").unwrap().history[0].ended;
    assert!(ended > started.created, "the clock moved");
    assert!(
        report.updated >= ended,
        "updated {:?} is at least when `first` ended, {:?}",
        report.updated,
        ended
    );
    let listed = rt.list().await.unwrap();
    assert!(listed[0].updated >= ended, "{listed:?}");
    gates.open("second");
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_runtime_keeps_executions_in_a_store_the_embedder_opened() {
    let dir = tempfile::tempdir().unwrap();
    let opened = {
        let dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || tend::engine::store::RedbStore::open(&dir))
            .await
            .unwrap()
            .unwrap()
    };
    let rt = Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .store(tend::engine::Store::new(opened))
        .start()
        .await
        .unwrap();
    let id = rt
        .submit(Plan::new("opened").block(Block::new("b").item(sum("one", 1))))
        .await
        .unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
    drop(rt);
    // The runtime closed the store: the same file opens again, with the execution.
    let rt = Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    assert_eq!(
        rt.status(id).await.unwrap().status,
        ExecutionStatus::Completed
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_store_cache_is_set_from_the_config_and_refused_for_a_store_it_cannot_set() {
    let cache = |bytes: u64| tend::Config {
        store_cache_bytes: Some(bytes),
        ..tend::Config::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let start = |config: tend::Config| {
        Runtime::builder()
            .registry(tend::demo::registry().unwrap())
            .data_dir(dir.path())
            .config(config)
            .start()
    };
    // Too small: refused, naming the key.
    let refused = start(cache(1000)).await.unwrap_err().to_string();
    assert!(refused.contains("store_cache_bytes"), "{refused}");
    // 1 MiB: the file store runs executions with it, and a restart finds them.
    let rt = start(cache(1 << 20)).await.unwrap();
    let id = rt
        .submit(Plan::new("cached").block(Block::new("b").item(sum("one", 1))))
        .await
        .unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
    drop(rt);
    let rt = start(cache(1 << 20)).await.unwrap();
    assert_eq!(
        rt.status(id).await.unwrap().status,
        ExecutionStatus::Completed
    );
    rt.shutdown().await.unwrap();
    // A store the embedder opened is not one the runtime sets a cache on: refused, not
    // ignored.
    let refused = Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .store(tend::engine::Store::in_memory().unwrap())
        .config(cache(1 << 20))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("store_cache_bytes") && refused.contains("not redb"),
        "{refused}"
    );
}

//! The lifecycle bus and the shutdown sequence, through `Runtime`: events in order, the
//! answers of modules (one that never answers is named, not waited on), executions
//! checkpointed within the deadline or reported abandoned, and what a restart finds.

#[path = "support/helpers.rs"]
mod helpers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpers::{PATIENCE, eventually, gate, outcome, wait_items};
use serde::{Deserialize, Serialize};
use tend::demo::Gates;
use tend::{
    Answer, Block, Config, Event, ExecutionStatus, Heard, InterruptStrategy, Item, ItemCtx,
    ItemError, ItemSpec, ItemStatus, LifecycleEvent, LifecycleKind, Plan, Registry, Runtime,
    ShutdownReason, StopResult,
};

fn builder(dir: &std::path::Path, gates: &Gates, config: Config) -> tend::RuntimeBuilder {
    Runtime::builder()
        .data_dir(dir)
        .resource(gates.clone())
        .registry(tend::demo::registry().unwrap())
        .config(config)
}

/// Every event of the stream until it ends (the runtime stopped), bounded.
async fn rest_of(mut events: tend::EventStream) -> Vec<Event> {
    tokio::time::timeout(PATIENCE, async {
        let mut all = Vec::new();
        while let Some(event) = events.next().await {
            all.push(event);
        }
        all
    })
    .await
    .expect("the event stream ends once the runtime has stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_announces_stops_flushes_and_ends_in_order_and_names_the_silent_module() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let seen: Arc<Mutex<Vec<(LifecycleKind, usize)>>> = Arc::default();
    let config = Config {
        lifecycle_timeout: Duration::from_secs(2),
        // Whatever the machine's disk: no low-disk events in the sequence.
        disk_low_percent: 0.0,
        ..Config::default()
    };
    let (log, at_gate) = (seen.clone(), gates.clone());
    let runtime = builder(dir.path(), &gates, config.clone())
        // Records each event with how many items were still waiting at gate `g`.
        .module(
            "cache",
            &LifecycleKind::ALL,
            move |event: Arc<LifecycleEvent>| {
                log.lock()
                    .unwrap()
                    .push((event.kind(), at_gate.waiting("g")));
                async { Answer::Acknowledged }
            },
        )
        // Never answers: the shutdown goes on without it, and says so.
        .module(
            "stuck",
            &[LifecycleKind::NodeShutdown, LifecycleKind::DataMaintenance],
            |_| std::future::pending::<Answer>(),
        )
        .start()
        .await
        .unwrap();
    let mut events = runtime.subscribe().await.unwrap();
    let id = runtime
        .submit(Plan::new("held").block(Block::new("b").item(gate("a", "g", 3))))
        .await
        .unwrap();
    wait_items(&mut events, id, ItemStatus::Running, 1).await;
    eventually("the item waits at its gate", || async {
        (gates.waiting("g") == 1)
            .then_some(())
            .ok_or("not yet".to_owned())
    })
    .await;

    let report = runtime
        .shutdown_with(ShutdownReason::Graceful, Duration::from_secs(20))
        .await;

    // The execution was interrupted, stopped and checkpointed; the store flushed.
    assert_eq!(report.reason, ShutdownReason::Graceful);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.executions.len(), 1, "{report:?}");
    assert_eq!(report.executions[0].execution, id);
    assert_eq!(report.executions[0].result, StopResult::Checkpointed);
    assert_eq!(report.executions[0].status, ExecutionStatus::Interrupted);
    assert!(report.duration < report.deadline, "{report:?}");
    // Each module's answer to each event that needs one: `stuck` timed out on both, and
    // did not hold up `cache`.
    let heard = |module: &str, kind: LifecycleKind| {
        report
            .modules
            .iter()
            .find(|m| m.module == module && m.event == kind)
            .map(|m| m.result)
    };
    use LifecycleKind::{
        DataMaintenance, NodeShutdown, NodeShutdownCompleted, NodeStartupCompleted,
    };
    assert_eq!(heard("cache", NodeShutdown), Some(Heard::Acknowledged));
    assert_eq!(heard("cache", DataMaintenance), Some(Heard::Acknowledged));
    assert_eq!(heard("stuck", NodeShutdown), Some(Heard::TimedOut));
    assert_eq!(heard("stuck", DataMaintenance), Some(Heard::TimedOut));
    assert_eq!(report.modules.len(), 4, "{report:?}");

    // On the event bus, in this order: the announcement, the execution's interrupt, how
    // the shutdown left it, the flush request, the end; then the stream ends.
    let order: Vec<String> = rest_of(events)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::Lifecycle { event } if event.kind() != LifecycleKind::HealthCheck => {
                Some(event.kind().to_string())
            }
            Event::Execution { status, .. } => Some(format!("execution {status}")),
            Event::ExecutionStopped {
                execution, result, ..
            } if execution == id => Some(format!("stopped {}", serde_json::json!(result))),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "node_shutdown",
            "execution interrupted",
            "stopped \"checkpointed\"",
            "data_maintenance",
            "node_shutdown_completed"
        ],
        "{order:?}"
    );

    // The module saw startup first, and the flush request only once the item had stopped.
    let seen = eventually("the module has seen the end", || async {
        let seen = seen.lock().unwrap().clone();
        match seen.last() {
            Some((NodeShutdownCompleted, _)) => Ok(seen),
            _ => Err(format!("{seen:?}")),
        }
    })
    .await;
    // (The Janitor's startup health check lands wherever it happens to run.)
    let seen: Vec<(LifecycleKind, usize)> = seen
        .into_iter()
        .filter(|(k, _)| *k != LifecycleKind::HealthCheck)
        .collect();
    let kinds: Vec<LifecycleKind> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            NodeStartupCompleted,
            NodeShutdown,
            DataMaintenance,
            NodeShutdownCompleted
        ]
    );
    assert_eq!(
        seen[2].1, 0,
        "no item waits at the gate once the flush is asked for"
    );
    assert_eq!(seen[0].1, 0);

    // A second call returns the same report; the runtime takes nothing more.
    let again = runtime
        .shutdown_with(ShutdownReason::Signal, Duration::from_secs(1))
        .await;
    assert_eq!(again, report);
    assert!(runtime.list().await.is_err());

    // A restart resumes what the shutdown checkpointed, from its checkpoint.
    gates.open("g");
    let runtime = builder(dir.path(), &gates, config).start().await.unwrap();
    assert!(outcome(&runtime, id).await.is_completed());
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_aborts_what_will_not_stop_and_checkpoints_everything_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    // `finish_current`: running items are let finish; these never would (their gate stays
    // closed), so the shutdown aborts them once it can wait no longer.
    let config = Config {
        shutdown_strategy: InterruptStrategy::FinishCurrent,
        disk_low_percent: 0.0,
        ..Config::default()
    };
    let runtime = builder(dir.path(), &gates, config.clone())
        .start()
        .await
        .unwrap();
    let mut events = runtime.subscribe().await.unwrap();
    let mut ids = Vec::new();
    for n in 0..40 {
        let plan = Plan::new(format!("load-{n}")).block(
            Block::new("b")
                .item(gate("a", "g", 4))
                .item(gate("b", "g", 4))
                .item(gate("c", "g", 4).after(["a", "b"])),
        );
        ids.push(runtime.submit(plan).await.unwrap());
    }
    wait_items(&mut events, ids[39], ItemStatus::Running, 2).await;
    eventually("every first item waits at the gate", || async {
        let waiting = gates.waiting("g");
        (waiting == 80)
            .then_some(())
            .ok_or(format!("{waiting} waiting"))
    })
    .await;

    let deadline = Duration::from_secs(10);
    let report = runtime
        .shutdown_with(ShutdownReason::Signal, deadline)
        .await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.count(StopResult::Checkpointed), 40, "{report:?}");
    assert!(report.duration <= deadline, "{report:?}");
    assert_eq!(gates.waiting("g"), 0);

    // Nothing was lost: each execution resumes, runs its three items to the end.
    gates.open("g");
    let runtime = builder(dir.path(), &gates, config).start().await.unwrap();
    for id in ids {
        let outcome = outcome(&runtime, id).await;
        assert!(outcome.is_completed(), "{outcome:?}");
    }
    runtime.shutdown().await.unwrap();
}

/// Blocks its thread (never reaching a cancellation point) until the test lets it go,
/// when its `Hold` says so: nothing can stop it but an abort.
#[derive(Debug, Serialize, Deserialize)]
struct Stubborn;

#[derive(Debug)]
struct Hold {
    block: bool,
    entered: std::sync::mpsc::SyncSender<()>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Item for Stubborn {
    const KIND: &'static str = "stubborn";
    type Output = ();

    async fn apply(&self, cx: &mut ItemCtx) -> Result<(), ItemError> {
        let hold = cx
            .resource::<Hold>()
            .ok_or_else(|| ItemError::failed("no Hold resource"))?;
        if hold.block {
            let _ = hold.entered.try_send(());
            let release = hold.release.lock().unwrap_or_else(|p| p.into_inner());
            let _ = release.recv_timeout(PATIENCE);
        }
        Ok(())
    }
}

fn hold(
    block: bool,
) -> (
    Hold,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (entered, entered_rx) = std::sync::mpsc::sync_channel(1);
    let (release_tx, release) = std::sync::mpsc::channel();
    let hold = Hold {
        block,
        entered,
        release: Mutex::new(release),
    };
    (hold, entered_rx, release_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attempt_that_never_reaches_a_cancellation_point_is_aborted_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let registry = || tend::demo::registry().unwrap().with::<Stubborn>().unwrap();
    let (held, entered, release) = hold(true);
    let runtime = Runtime::builder()
        .data_dir(dir.path())
        .resource(gates.clone())
        .resource(held)
        .registry(registry())
        .start()
        .await
        .unwrap();
    let stuck = runtime
        .submit(
            Plan::new("stuck")
                .block(Block::new("b").item(ItemSpec::new("wall", &Stubborn).unwrap())),
        )
        .await
        .unwrap();
    let fine = runtime
        .submit(Plan::new("fine").block(Block::new("b").item(gate("a", "g", 2))))
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || entered.recv_timeout(PATIENCE))
        .await
        .unwrap()
        .expect("the stubborn item started");
    eventually("the gate item waits", || async {
        (gates.waiting("g") == 1)
            .then_some(())
            .ok_or("not yet".to_owned())
    })
    .await;

    let report = runtime
        .shutdown_with(ShutdownReason::Rpc, Duration::from_secs(3))
        .await;
    // Aborted (its thread is still held, but the execution no longer waits for it) and
    // checkpointed with the rest, within the deadline.
    let _ = release.send(());
    assert!(report.is_clean(), "{report:?}");
    assert!(report.duration <= report.deadline, "{report:?}");
    let of = |id| {
        report
            .executions
            .iter()
            .find(|e| e.execution == id)
            .unwrap()
    };
    assert_eq!(of(fine).result, StopResult::Checkpointed, "{report:?}");
    assert_eq!(of(stuck).result, StopResult::Checkpointed, "{report:?}");
    assert_eq!(of(stuck).status, ExecutionStatus::Interrupted, "{report:?}");

    // The next start resumes both; the aborted item's second attempt runs to its end.
    let (free, _entered, _release) = hold(false);
    gates.open("g");
    let runtime = Runtime::builder()
        .data_dir(dir.path())
        .resource(gates.clone())
        .resource(free)
        .registry(registry())
        .start()
        .await
        .unwrap();
    assert!(outcome(&runtime, stuck).await.is_completed());
    assert!(outcome(&runtime, fine).await.is_completed());
    let report = runtime.status(stuck).await.unwrap();
    assert_eq!(report.item("wall").unwrap().attempts, 2);
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn modules_subscribed_after_start_and_actor_modules_answer_through_the_notice() {
    use ractor::{Actor, ActorProcessingErr, ActorRef};

    /// Acknowledges a shutdown, reports on a health check, drops anything else.
    struct Watcher;
    struct Seen(tend::Notice);
    impl From<tend::Notice> for Seen {
        fn from(notice: tend::Notice) -> Self {
            Seen(notice)
        }
    }
    impl Actor for Watcher {
        type Msg = Seen;
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<Seen>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
        async fn handle(
            &self,
            _: ActorRef<Seen>,
            Seen(notice): Seen,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            match notice.event() {
                LifecycleEvent::NodeShutdown { .. } => notice.acknowledge(),
                LifecycleEvent::HealthCheck { .. } => notice.report(serde_json::json!({"ok": 1})),
                _ => drop(notice),
            }
            Ok(())
        }
    }

    let (actor, handle) = Actor::spawn(None, Watcher, ()).await.unwrap();
    let runtime = Runtime::builder()
        .registry(Registry::new())
        .module_actor("watcher", &LifecycleKind::ALL, actor.clone())
        .start()
        .await
        .unwrap();
    runtime
        .lifecycle()
        .subscribe("late", &[LifecycleKind::HealthCheck], |_| async {
            Answer::Failed {
                error: "disk unhappy".to_owned(),
            }
        });
    let answers = runtime
        .lifecycle()
        .publish(LifecycleEvent::HealthCheck {
            check_type: tend::HealthCheckType::Manual,
            node_healthy: true,
            report: serde_json::json!({}),
        })
        .answers(PATIENCE)
        .await;
    let by = |name: &str| answers.iter().find(|a| a.module == name).unwrap();
    assert_eq!(by("watcher").result, Heard::Reported);
    assert_eq!(by("watcher").report, Some(serde_json::json!({"ok": 1})));
    assert_eq!(by("late").result, Heard::Failed);
    assert_eq!(by("late").error.as_deref(), Some("disk unhappy"));

    // A stopped actor cannot answer: named as unanswered, at once.
    actor.stop(None);
    handle.await.unwrap();
    let report = runtime
        .shutdown_with(ShutdownReason::Graceful, PATIENCE)
        .await;
    let watcher = report
        .modules
        .iter()
        .find(|m| m.module == "watcher" && m.event == LifecycleKind::NodeShutdown)
        .unwrap();
    assert_eq!(watcher.result, Heard::Unanswered, "{report:?}");
    assert!(report.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_gives_up_does_not_cut_the_shutdown_short() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let runtime = builder(dir.path(), &gates, Config::default())
        .start()
        .await
        .unwrap();
    let id = runtime
        .submit(Plan::new("held").block(Block::new("b").item(gate("a", "g", 2))))
        .await
        .unwrap();
    eventually("the item waits at its gate", || async {
        (gates.waiting("g") == 1)
            .then_some(())
            .ok_or("not yet".to_owned())
    })
    .await;
    // The first caller gives up at once (as a dropped request would); the shutdown goes
    // on, and the next caller gets its whole report.
    let _ = tokio::time::timeout(
        Duration::from_millis(1),
        runtime.shutdown_with(ShutdownReason::Rpc, Duration::from_secs(20)),
    )
    .await;
    let report = runtime
        .shutdown_with(ShutdownReason::Graceful, Duration::from_secs(20))
        .await;
    assert_eq!(report.reason, ShutdownReason::Rpc, "{report:?}");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.executions.len(), 1, "{report:?}");
    assert_eq!(report.executions[0].execution, id);
    assert_eq!(report.executions[0].result, StopResult::Checkpointed);
}

//! Message-passing tests: the Supervisor and Execution actors spawned directly and driven
//! with their own messages; assertions on their replies and on what reaches the store.

#[path = "support/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::time::Duration;

use helpers::*;
use ractor::Actor;
use ractor::rpc::CallResult;
use tend::engine::supervisor::{Settings, Supervisor, SupervisorArgs, SupervisorMsg};
use tend::engine::{Execution, ExecutionArgs, ExecutionMsg, Store};
use tend::{
    Block, Event, ExecutionId, ExecutionStatus, InterruptStrategy, ItemStatus, Plan, Resources,
    RuntimeError,
};
use tokio::sync::broadcast;

fn chain(n: usize, ms: u64, steps: u32) -> Plan {
    let mut block = Block::new("chain");
    for i in 0..n {
        let item = sleep(&format!("c{i}"), ms, steps);
        block.push(if i == 0 {
            item
        } else {
            item.after([format!("c{}", i - 1)])
        });
    }
    Plan::new("chain").block(block)
}

async fn call<T: Send + 'static>(
    actor: &ractor::ActorRef<SupervisorMsg>,
    msg: impl FnOnce(ractor::RpcReplyPort<T>) -> SupervisorMsg,
) -> T {
    match actor.call(msg, Some(PATIENCE)).await.unwrap() {
        CallResult::Success(v) => v,
        _ => panic!("no reply"),
    }
}

async fn execution_call<T: Send + 'static>(
    actor: &ractor::ActorRef<ExecutionMsg>,
    msg: impl FnOnce(ractor::RpcReplyPort<T>) -> ExecutionMsg,
) -> T {
    match actor.call(msg, Some(PATIENCE)).await.unwrap() {
        CallResult::Success(v) => v,
        _ => panic!("no reply"),
    }
}

#[tokio::test]
async fn execution_runs_a_chain_and_records_each_item_durably() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (events, mut rx) = broadcast::channel(1024);
    let registry = tend::demo::registry().unwrap();
    let id = ExecutionId::generate();
    let args = ExecutionArgs::new(id, chain(3, 10, 2), &registry, store.clone(), events).unwrap();
    let (actor, handle) = Actor::spawn(None, Execution, args).await.unwrap();

    // Every Done event is published after the item's record is durable, so the store
    // already has it when the event arrives; and a dependent starts only after that.
    let mut done = 0;
    while done < 3 {
        let event = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if let Event::Item {
            item,
            status: ItemStatus::Done,
            ..
        } = &event
        {
            let report = store.report(id).unwrap();
            assert_eq!(
                report.item(item).unwrap().status,
                ItemStatus::Done,
                "{item} is durable"
            );
            done += 1;
        }
        if let Event::Item {
            item,
            status: ItemStatus::Running,
            ..
        } = &event
            && let Some(index) = item.strip_prefix('c').and_then(|i| i.parse::<usize>().ok())
            && index > 0
        {
            let previous = format!("c{}", index - 1);
            let report = store.report(id).unwrap();
            assert_eq!(report.item(&previous).unwrap().status, ItemStatus::Done);
        }
    }
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();
    let stored = store.report(id).unwrap();
    assert_eq!(stored.status, ExecutionStatus::Completed);
    assert_eq!(stored.items_done(), 3);
    // Checkpoints of done items are cleared.
    assert_eq!(store.checkpoint::<u32>(id, "c0").unwrap(), None);
    drop(actor);
    store.close().await.unwrap();
}

#[tokio::test]
async fn execution_interrupt_message_stops_at_cancellation_points() {
    let store = Store::in_memory().unwrap();
    let (events, mut rx) = broadcast::channel(1024);
    let registry = tend::demo::registry().unwrap();
    let id = ExecutionId::generate();
    let args = ExecutionArgs::new(id, chain(3, 3000, 30), &registry, store.clone(), events)
        .unwrap()
        .with_default_parallelism(1);
    let (actor, handle) = Actor::spawn(None, Execution, args).await.unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(event, Event::Progress { ref progress, .. } if progress.done >= 2) {
            break;
        }
    }
    let report = execution_call(&actor, ExecutionMsg::Status).await;
    assert_eq!(report.item("c0").unwrap().status, ItemStatus::Running);
    let applied = execution_call(&actor, |reply| {
        ExecutionMsg::Interrupt(InterruptStrategy::AtCancellationPoint, Some(reply))
    })
    .await;
    assert!(applied, "a running execution applies the interrupt");
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();

    let stored = store.report(id).unwrap();
    assert_eq!(stored.status, ExecutionStatus::Interrupted);
    let c0 = stored.item("c0").unwrap();
    assert_eq!(c0.status, ItemStatus::Interrupted);
    let step: u32 = store.checkpoint(id, "c0").unwrap().unwrap();
    assert!((2..30).contains(&step), "{step}");
    assert_eq!(c0.progress.unwrap().done, u64::from(step));
    assert_eq!(stored.item("c1").unwrap().status, ItemStatus::Pending);
    store.close().await.unwrap();
}

#[tokio::test]
async fn execution_stop_replies_only_after_the_checkpoint_is_durable() {
    let store = Store::in_memory().unwrap();
    let (events, mut rx) = broadcast::channel(1024);
    let registry = tend::demo::registry().unwrap();
    let id = ExecutionId::generate();
    // One item that never reaches a cancellation point in time: Stop aborts it after the
    // grace and still replies with a durable, interrupted execution.
    let plan = Plan::new("p").block(
        Block::new("b")
            .item(sleep("long", 60_000, 1))
            .item(sleep("quick", 3000, 30)),
    );
    let args = ExecutionArgs::new(id, plan, &registry, store.clone(), events)
        .unwrap()
        .with_stop_grace(Duration::from_millis(200));
    let (actor, handle) = Actor::spawn(None, Execution, args).await.unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(event, Event::Progress { .. }) {
            break;
        }
    }
    let report = execution_call(&actor, ExecutionMsg::Stop).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Interrupted);
    // What the reply says is what the store holds.
    let stored = store.report(id).unwrap();
    assert_eq!(stored.status, ExecutionStatus::Interrupted);
    assert_eq!(stored.item("long").unwrap().status, ItemStatus::Interrupted);
    assert_eq!(
        stored.item("quick").unwrap().status,
        ItemStatus::Interrupted
    );
    assert!(store.checkpoint::<u32>(id, "quick").unwrap().is_some());
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
}

async fn supervisor(
    store: &Store,
) -> (ractor::ActorRef<SupervisorMsg>, tokio::task::JoinHandle<()>) {
    let (events, _) = broadcast::channel(1024);
    let args = SupervisorArgs {
        store: store.clone(),
        registry: Arc::new(tend::demo::registry().unwrap()),
        settings: Settings {
            parallelism: 2,
            stop_grace: Duration::from_millis(300),
        },
        events,
        resources: Arc::new(Resources::new()),
    };
    Actor::spawn(None, Supervisor, args).await.unwrap()
}

#[tokio::test]
async fn supervisor_serves_submit_status_wait_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (sup, handle) = supervisor(&store).await;

    let id = call(&sup, |r| SupervisorMsg::Submit(chain(2, 5, 1), r))
        .await
        .unwrap();
    // The record is durable by the time Submit replies.
    assert_eq!(store.execution_count().unwrap(), 1);
    let outcome = call(&sup, |r| SupervisorMsg::Wait(id, r)).await.unwrap();
    assert!(outcome.is_completed());
    let report = call(&sup, |r| SupervisorMsg::Status(id, r)).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Completed);
    assert_eq!(store.report(id).unwrap().status, ExecutionStatus::Completed);
    let list = call(&sup, SupervisorMsg::List).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].items_done, 2);

    let ghost = ExecutionId::generate();
    let err = call(&sup, |r| {
        SupervisorMsg::Interrupt(ghost, InterruptStrategy::FinishCurrent, r)
    })
    .await;
    assert!(matches!(err, Err(RuntimeError::UnknownExecution(_))));
    let err = call(&sup, |r| SupervisorMsg::Submit(Plan::new("empty"), r)).await;
    assert!(matches!(err, Err(RuntimeError::Plan(_))));
    assert_eq!(
        store.execution_count().unwrap(),
        1,
        "a refused plan writes nothing"
    );

    call(&sup, SupervisorMsg::Stop).await.unwrap();
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn supervisor_interrupt_all_then_stop_then_a_new_supervisor_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (sup, handle) = supervisor(&store).await;
    let mut rx = call(&sup, SupervisorMsg::Subscribe).await;
    let a = call(&sup, |r| SupervisorMsg::Submit(chain(3, 1500, 15), r))
        .await
        .unwrap();
    let b = call(&sup, |r| SupervisorMsg::Submit(chain(3, 1500, 15), r))
        .await
        .unwrap();
    let mut progressed = std::collections::HashSet::new();
    while progressed.len() < 2 {
        if let Event::Progress { execution, .. } = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            progressed.insert(execution);
        }
    }
    let mut ids = call(&sup, |r| {
        SupervisorMsg::InterruptAll(InterruptStrategy::AtCancellationPoint, r)
    })
    .await;
    ids.sort();
    assert_eq!(ids, vec![a, b]);
    for id in [a, b] {
        let outcome = call(&sup, |r| SupervisorMsg::Wait(id, r)).await.unwrap();
        assert_eq!(outcome.blocks[0].interrupted, vec!["c0"]);
        assert_eq!(
            store.report(id).unwrap().status,
            ExecutionStatus::Interrupted
        );
    }
    call(&sup, SupervisorMsg::Stop).await.unwrap();
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();

    // A new supervisor on the same store finds both, resumes one.
    let (sup, handle) = supervisor(&store).await;
    let list = call(&sup, SupervisorMsg::List).await;
    assert!(
        list.iter()
            .all(|s| s.status == ExecutionStatus::Interrupted)
    );
    call(&sup, |r| SupervisorMsg::Resume(a, r)).await.unwrap();
    let err = call(&sup, |r| SupervisorMsg::Resume(a, r))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidState { .. }), "{err:?}");
    let outcome = call(&sup, |r| SupervisorMsg::Wait(a, r)).await.unwrap();
    assert!(outcome.is_completed());
    let c0 = store.report(a).unwrap();
    assert_eq!(c0.item("c0").unwrap().attempts, 2);
    assert_eq!(c0.item("c2").unwrap().attempts, 1);
    call(&sup, SupervisorMsg::Stop).await.unwrap();
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn supervisor_stop_checkpoints_running_executions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (sup, handle) = supervisor(&store).await;
    let mut rx = call(&sup, SupervisorMsg::Subscribe).await;
    let id = call(&sup, |r| SupervisorMsg::Submit(chain(2, 3000, 30), r))
        .await
        .unwrap();
    loop {
        if let Event::Progress { .. } = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            break;
        }
    }
    call(&sup, SupervisorMsg::Stop).await.unwrap();
    // Stop replied: the checkpoint is already durable.
    let stored = store.report(id).unwrap();
    assert_eq!(stored.status, ExecutionStatus::Interrupted);
    assert_eq!(stored.item("c0").unwrap().status, ItemStatus::Interrupted);
    assert!(store.checkpoint::<u32>(id, "c0").unwrap().is_some());
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
}

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

/// A chain `c0 <- c1 <- ...` of `n` items made by `item` from their ids.
fn chain_of(n: usize, item: impl Fn(&str) -> tend::ItemSpec) -> Plan {
    let mut block = Block::new("chain");
    for i in 0..n {
        let spec = item(&format!("c{i}"));
        block.push(if i == 0 {
            spec
        } else {
            spec.after([format!("c{}", i - 1)])
        });
    }
    Plan::new("chain").block(block)
}

fn chain(n: usize, ms: u64, steps: u32) -> Plan {
    chain_of(n, |id| sleep(id, ms, steps))
}

/// A chain of `n` gate items of `steps` steps, all waiting at gate `gate`.
fn gated_chain(n: usize, gate_name: &str, steps: u32) -> Plan {
    chain_of(n, |id| gate(id, gate_name, steps))
}

/// The resources that hand `gates` to the `gate` items.
fn with_gates(gates: &tend::demo::Gates) -> Arc<Resources> {
    Arc::new(Resources::new().with(gates.clone()))
}

/// Receives events until one matches `pred`; on timeout says which event came last.
async fn recv_until(rx: &mut broadcast::Receiver<Event>, mut pred: impl FnMut(&Event) -> bool) {
    let mut last = None;
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            match rx.recv().await {
                Ok(event) if pred(&event) => return,
                Ok(event) => last = Some(event),
                Err(e) => panic!("event channel: {e}; last event: {last:?}"),
            }
        }
    })
    .await;
    if found.is_err() {
        panic!("timed out waiting for an event; last event: {last:?}");
    }
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
            .unwrap_or_else(|_| panic!("timed out with {done} of 3 items done"))
            .unwrap();
        if let Event::Item {
            item,
            status: ItemStatus::Done,
            ..
        } = &event
        {
            let report = store.report(id).await.unwrap();
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
            let report = store.report(id).await.unwrap();
            assert_eq!(report.item(&previous).unwrap().status, ItemStatus::Done);
        }
    }
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();
    let stored = store.report(id).await.unwrap();
    assert_eq!(stored.status, ExecutionStatus::Completed);
    assert_eq!(stored.items_done(), 3);
    // Checkpoints of done items are cleared.
    assert_eq!(store.checkpoint::<u32>(id, "c0").await.unwrap(), None);
    drop(actor);
    store.close().await.unwrap();
}

#[tokio::test]
async fn execution_interrupt_message_stops_at_cancellation_points() {
    let store = Store::in_memory().unwrap();
    let (events, mut rx) = broadcast::channel(1024);
    let registry = tend::demo::registry().unwrap();
    let id = ExecutionId::generate();
    let gates = tend::demo::Gates::new();
    let args = ExecutionArgs::new(
        id,
        gated_chain(3, "g", 30),
        &registry,
        store.clone(),
        events,
    )
    .unwrap()
    .with_resources(with_gates(&gates))
    .with_default_parallelism(1);
    let (actor, handle) = Actor::spawn(None, Execution, args).await.unwrap();
    // c0 does two steps, then waits at the gate until the interrupt.
    gates.release("g", 2);
    recv_until(
        &mut rx,
        |e| matches!(e, Event::Progress { progress, .. } if progress.done == 2),
    )
    .await;
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

    let stored = store.report(id).await.unwrap();
    assert_eq!(stored.status, ExecutionStatus::Interrupted);
    let c0 = stored.item("c0").unwrap();
    assert_eq!(c0.status, ItemStatus::Interrupted);
    let step: u32 = store.checkpoint(id, "c0").await.unwrap().unwrap();
    assert_eq!(step, 2);
    assert_eq!(c0.progress.unwrap().done, 2);
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
    // The other checkpoints one step and waits at a gate until the Stop.
    let plan = Plan::new("p").block(
        Block::new("b")
            .item(sleep("long", 60_000, 1))
            .item(gate("quick", "g", 30)),
    );
    let gates = tend::demo::Gates::new();
    let args = ExecutionArgs::new(id, plan, &registry, store.clone(), events)
        .unwrap()
        .with_resources(with_gates(&gates))
        .with_stop_grace(Duration::from_millis(200));
    let (actor, handle) = Actor::spawn(None, Execution, args).await.unwrap();
    gates.release("g", 1);
    recv_until(&mut rx, |e| matches!(e, Event::Progress { .. })).await;
    let report = execution_call(&actor, ExecutionMsg::Stop).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Interrupted);
    // What the reply says is what the store holds.
    let stored = store.report(id).await.unwrap();
    assert_eq!(stored.status, ExecutionStatus::Interrupted);
    assert_eq!(stored.item("long").unwrap().status, ItemStatus::Interrupted);
    assert_eq!(
        stored.item("quick").unwrap().status,
        ItemStatus::Interrupted
    );
    assert_eq!(store.checkpoint::<u32>(id, "quick").await.unwrap(), Some(1));
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
}

async fn supervisor(
    store: &Store,
    gates: &tend::demo::Gates,
) -> (ractor::ActorRef<SupervisorMsg>, tokio::task::JoinHandle<()>) {
    supervisor_with_catalog(store, gates, tend::engine::Catalog::new(store.clone())).await
}

async fn supervisor_with_catalog(
    store: &Store,
    gates: &tend::demo::Gates,
    catalog: tend::engine::Catalog,
) -> (ractor::ActorRef<SupervisorMsg>, tokio::task::JoinHandle<()>) {
    let (events, _) = broadcast::channel(1024);
    let args = SupervisorArgs {
        catalog,
        store: store.clone(),
        registry: Arc::new(tend::demo::registry().unwrap()),
        settings: Settings {
            parallelism: 2,
            stop_grace: Duration::from_millis(300),
            ..Settings::default()
        },
        events,
        resources: with_gates(gates),
        semaphores: Arc::new(tend::engine::Semaphores::new()),
        limiters: Arc::new(tend::engine::Limiters::default()),
    };
    Actor::spawn(None, Supervisor, args).await.unwrap()
}

#[tokio::test]
async fn supervisor_serves_submit_status_wait_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let catalog = tend::engine::Catalog::new(store.clone());
    let (sup, handle) =
        supervisor_with_catalog(&store, &tend::demo::Gates::new(), catalog.clone()).await;

    let id = call(&sup, |r| SupervisorMsg::Submit(chain(2, 5, 1), r))
        .await
        .unwrap()
        .id;
    // The record is durable by the time Submit replies.
    assert_eq!(store.execution_count().await.unwrap(), 1);
    let outcome = call(&sup, |r| SupervisorMsg::Wait(id, r)).await.unwrap();
    assert!(outcome.is_completed());
    let report = call(&sup, |r| SupervisorMsg::Status(id, r)).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Completed);
    assert_eq!(
        store.report(id).await.unwrap().status,
        ExecutionStatus::Completed
    );
    let list = catalog.list().await.unwrap();
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
        store.execution_count().await.unwrap(),
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
    let gates = tend::demo::Gates::new();
    let (sup, handle) = supervisor(&store, &gates).await;
    let mut rx = call(&sup, SupervisorMsg::Subscribe).await;
    let a = call(&sup, |r| SupervisorMsg::Submit(gated_chain(3, "g", 15), r))
        .await
        .unwrap()
        .id;
    let b = call(&sup, |r| SupervisorMsg::Submit(gated_chain(3, "g", 15), r))
        .await
        .unwrap()
        .id;
    // Each c0 checkpoints one step and waits at the gate.
    gates.release("g", 1);
    let mut progressed = std::collections::HashSet::new();
    recv_until(&mut rx, |e| {
        if let Event::Progress { execution, .. } = e {
            progressed.insert(*execution);
        }
        progressed.len() == 2
    })
    .await;
    let mut ids = call(&sup, |r| {
        SupervisorMsg::InterruptAll(InterruptStrategy::AtCancellationPoint, r)
    })
    .await;
    ids.sort();
    assert_eq!(ids, vec![a, b]);
    for id in [a, b] {
        let outcome = call(&sup, |r| SupervisorMsg::Wait(id, r)).await.unwrap();
        assert_eq!(outcome.blocks[0].interrupted, ["c0"].map(Arc::<str>::from));
        assert_eq!(
            store.report(id).await.unwrap().status,
            ExecutionStatus::Interrupted
        );
    }
    call(&sup, SupervisorMsg::Stop).await.unwrap();
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();

    // A new supervisor on the same store finds both, resumes one.
    gates.open("g");
    let catalog = tend::engine::Catalog::new(store.clone());
    let (sup, handle) = supervisor_with_catalog(&store, &gates, catalog.clone()).await;
    let list = catalog.list().await.unwrap();
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
    let c0 = store.report(a).await.unwrap();
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
    let gates = tend::demo::Gates::new();
    let (sup, handle) = supervisor(&store, &gates).await;
    let mut rx = call(&sup, SupervisorMsg::Subscribe).await;
    let id = call(&sup, |r| SupervisorMsg::Submit(gated_chain(2, "g", 30), r))
        .await
        .unwrap()
        .id;
    gates.release("g", 1);
    recv_until(&mut rx, |e| matches!(e, Event::Progress { .. })).await;
    call(&sup, SupervisorMsg::Stop).await.unwrap();
    // Stop replied: the checkpoint is already durable.
    let stored = store.report(id).await.unwrap();
    assert_eq!(stored.status, ExecutionStatus::Interrupted);
    assert_eq!(stored.item("c0").unwrap().status, ItemStatus::Interrupted);
    assert_eq!(store.checkpoint::<u32>(id, "c0").await.unwrap(), Some(1));
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
}

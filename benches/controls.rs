//! Graph controls, each beside a baseline in the same run:
//!
//! - `10k_items_8_permits`: 10,000 no-op items in one execution (in memory, parallelism
//!   64) that may run only 8 at a time. `tend_sema_db8` says so with the tag `db:8`;
//!   `tokio_semaphore_in_apply` has each item take a permit of a bare
//!   `tokio::sync::Semaphore` (8 permits) inside `apply`, as one would without tend's
//!   semaphores; `parallelism_8` limits the execution itself to 8 items at a time (what
//!   one semaphore over one execution amounts to, with no semaphore); `no_limit` runs
//!   them all unlimited, the floor.
//! - `quiesce_1000_executions`: 1,000 executions on a redb file, each with one item
//!   waiting at a gate (and one more behind it); the time from asking all of them to stop
//!   at their cancellation points until every one has ended and its record is durable:
//!   `pause` beside `interrupt` (the same stop, ending `interrupted`).
//!
//! `cargo bench --bench controls`

#[path = "support/noop.rs"]
mod noop;

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use noop::Noop;
use serde::{Deserialize, Serialize};
use tend::demo::{Gate, Gates};
use tend::{
    Block, Config, ExecutionId, ExecutionStatus, InterruptStrategy, Item, ItemCtx, ItemError,
    ItemSpec, Plan, Registry, Runtime,
};

const ITEMS: usize = 10_000;
const EXECUTIONS: usize = 1_000;

/// Takes a permit of the application's `tokio::sync::Semaphore` for the length of its
/// apply, and does nothing else.
#[derive(Serialize, Deserialize)]
struct TokioPermit;

/// The semaphore `TokioPermit` items share.
struct Permits(tokio::sync::Semaphore);

impl Item for TokioPermit {
    const KIND: &'static str = "tokio-permit";
    type Output = ();

    async fn apply(&self, cx: &mut ItemCtx) -> Result<(), ItemError> {
        let permits = cx
            .resource::<Permits>()
            .ok_or_else(|| ItemError::failed("no Permits resource"))?;
        let _permit = permits
            .0
            .acquire()
            .await
            .map_err(|e| ItemError::failed(e.to_string()))?;
        Ok(())
    }
}

fn plan(name: &str, spec: impl Fn(usize) -> ItemSpec) -> Plan {
    let mut block = Block::new("all");
    for i in 0..ITEMS {
        block.push(spec(i));
    }
    Plan::new(name).block(block)
}

async fn run(runtime: &Runtime, plan: Plan) {
    let id = runtime.submit(plan).await.expect("valid plan");
    let outcome = runtime.wait(id).await.expect("outcome");
    assert_eq!(outcome.done(), ITEMS);
}

fn permits(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runtime = rt.block_on(async {
        Runtime::builder()
            .registry(
                Registry::new()
                    .with::<Noop>()
                    .and_then(|r| r.with::<TokioPermit>())
                    .expect("two kinds"),
            )
            .resource(Permits(tokio::sync::Semaphore::new(8)))
            .config(Config {
                parallelism: 64,
                ..Config::default()
            })
            .start()
            .await
            .expect("runtime starts")
    });
    let noop = |i: usize| ItemSpec::new(format!("n{i}"), &Noop).expect("a unit struct");
    let unlimited = plan("unlimited", noop);
    let tokio_permits = plan("tokio", |i| {
        ItemSpec::new(format!("n{i}"), &TokioPermit).expect("a unit struct")
    });
    let tagged = plan("tagged", |i| noop(i).sema(["db:8"]));
    let eight = plan("eight", noop).with_parallelism(8);

    let mut group = c.benchmark_group("10k_items_8_permits");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("no_limit", |b| {
        b.to_async(&rt).iter(|| run(&runtime, unlimited.clone()))
    });
    group.bench_function("tokio_semaphore_in_apply", |b| {
        b.to_async(&rt)
            .iter(|| run(&runtime, tokio_permits.clone()))
    });
    group.bench_function("parallelism_8", |b| {
        b.to_async(&rt).iter(|| run(&runtime, eight.clone()))
    });
    group.bench_function("tend_sema_db8", |b| {
        b.to_async(&rt).iter(|| run(&runtime, tagged.clone()))
    });
    group.finish();
    rt.block_on(async { runtime.shutdown().await.expect("shutdown") });
}

/// Submits `EXECUTIONS` executions of a held gate item (and one behind it), waits until
/// every one runs, then times `halt` of them all until each has ended.
async fn quiesce(runtime: &Runtime, gates: &Gates, pause: bool) -> Duration {
    let held = ItemSpec::new("held", &Gate::new("never")).expect("gate spec");
    let behind = ItemSpec::new("behind", &Gate::new("never"))
        .expect("gate spec")
        .after(["held"]);
    let plan = Plan::new("held").block(Block::new("b").item(held).item(behind));
    let mut ids: Vec<ExecutionId> = Vec::with_capacity(EXECUTIONS);
    for _ in (0..EXECUTIONS).step_by(250) {
        let submits = (0..250).map(|_| runtime.submit(plan.clone()));
        for id in futures::future::join_all(submits).await {
            ids.push(id.expect("submit"));
        }
    }
    while gates.waiting("never") < EXECUTIONS {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t0 = Instant::now();
    let halts = ids.iter().map(|&id| async move {
        let strategy = InterruptStrategy::AtCancellationPoint;
        if pause {
            runtime.pause(id, strategy).await.expect("pause");
        } else {
            runtime.interrupt(id, strategy).await.expect("interrupt");
        }
        runtime.wait(id).await.expect("outcome")
    });
    let outcomes = futures::future::join_all(halts).await;
    let took = t0.elapsed();
    let expected = if pause {
        ExecutionStatus::Paused
    } else {
        ExecutionStatus::Interrupted
    };
    assert!(outcomes.iter().all(|o| o.status == expected));
    took
}

fn quiescing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("quiesce_1000_executions");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(10));
    for (name, pause) in [("interrupt", false), ("pause", true)] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh runtime and file each time, so each measures the same work.
                    let dir = tempfile::tempdir().expect("temp dir");
                    let gates = Gates::new();
                    let runtime = Runtime::builder()
                        .registry(tend::demo::registry().expect("demo kinds"))
                        .resource(gates.clone())
                        .data_dir(dir.path())
                        .start()
                        .await
                        .expect("runtime starts");
                    total += quiesce(&runtime, &gates, pause).await;
                    runtime.shutdown().await.expect("shutdown");
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, permits, quiescing);
criterion_main!(benches);

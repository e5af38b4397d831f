//! Janitorial work, each beside a baseline in the same run:
//!
//! - `shutdown_1000_executions`: 1,000 executions on a redb file, each running an item
//!   that reaches a cancellation point every 10 ms. `shutdown` times
//!   `Runtime::shutdown_with` (announce, stop each one checkpointed, flush, close) and
//!   checks every execution came out `checkpointed`; `interrupt_all` times the baseline:
//!   `interrupt` of each at its cancellation point until each has ended, durably.
//! - `sweep_orphans`: `ORPHANS` artifacts that no execution references (made by
//!   executions since deleted), swept with protection 0 while executions are submitted
//!   one every 5 ms. Printed: the sweep's rate, and the submit-to-first-item latency
//!   (median, p99) during the sweep beside the same without one.
//!
//! `cargo bench --bench janitorial`

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use tend::{
    Block, Config, ExecutionId, InterruptStrategy, Item, ItemCtx, ItemError, ItemSpec, Plan,
    Registry, Runtime, ShutdownReason, StopResult,
};
use tokio::sync::mpsc;

const EXECUTIONS: usize = 1_000;
const ORPHANS: usize = 1_000_000;

/// Reaches a cancellation point every 10 ms until stopped.
#[derive(Serialize, Deserialize)]
struct Ticker;

impl Item for Ticker {
    const KIND: &'static str = "ticker";
    type Output = ();

    async fn apply(&self, cx: &mut ItemCtx) -> Result<(), ItemError> {
        loop {
            cx.cancellation_point().await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Stores `count` distinct artifacts.
#[derive(Serialize, Deserialize)]
struct Fill {
    from: usize,
    count: usize,
}

impl Item for Fill {
    const KIND: &'static str = "fill";
    type Output = ();

    async fn apply(&self, cx: &mut ItemCtx) -> Result<(), ItemError> {
        let puts = (self.from..self.from + self.count)
            .map(|n| cx.put_artifact(format!("orphan-{n}").into_bytes()));
        for put in futures::future::join_all(puts).await {
            put?;
        }
        Ok(())
    }
}

/// Tells the bench when it started, then ends.
#[derive(Serialize, Deserialize)]
struct First;

struct Started(mpsc::UnboundedSender<Instant>);

impl Item for First {
    const KIND: &'static str = "first";
    type Output = ();

    async fn apply(&self, cx: &mut ItemCtx) -> Result<(), ItemError> {
        if let Some(started) = cx.resource::<Started>() {
            let _ = started.0.send(Instant::now());
        }
        Ok(())
    }
}

fn registry() -> Registry {
    Registry::new()
        .with::<Ticker>()
        .and_then(|r| r.with::<Fill>())
        .and_then(|r| r.with::<First>())
        .expect("three kinds")
}

async fn start(dir: &std::path::Path, started: Option<Started>) -> Runtime {
    let mut builder = Runtime::builder()
        .registry(registry())
        .data_dir(dir)
        .config(Config {
            orphan_sweep_interval: Duration::ZERO,
            maintenance_interval: None,
            health_interval: Duration::ZERO,
            ..Config::default()
        });
    if let Some(started) = started {
        builder = builder.resource(started);
    }
    builder.start().await.expect("runtime starts")
}

/// 1,000 running ticker executions.
async fn running(runtime: &Runtime) -> Vec<ExecutionId> {
    let plan = Plan::new("tick")
        .block(Block::new("b").item(ItemSpec::new("tick", &Ticker).expect("a unit struct")));
    let mut ids = Vec::with_capacity(EXECUTIONS);
    for _ in (0..EXECUTIONS).step_by(250) {
        let submits = (0..250).map(|_| runtime.submit(plan.clone()));
        for id in futures::future::join_all(submits).await {
            ids.push(id.expect("submit"));
        }
    }
    // Every item has started (each execution's tree shows its worker running).
    loop {
        let tree = runtime.tree().await.expect("tree");
        let busy = tree
            .children
            .iter()
            .filter(|e| e.children.iter().any(|w| w.status.starts_with("running")))
            .count();
        if busy == EXECUTIONS {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn shutdown(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("shutdown_1000_executions");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(20));
    for (name, by_shutdown) in [("interrupt_all", false), ("shutdown", true)] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let runtime = start(dir.path(), None).await;
                    let ids = running(&runtime).await;
                    let t0 = Instant::now();
                    if by_shutdown {
                        let report = runtime
                            .shutdown_with(ShutdownReason::Signal, Duration::from_secs(30))
                            .await;
                        total += t0.elapsed();
                        assert_eq!(report.count(StopResult::Checkpointed), EXECUTIONS);
                    } else {
                        let stops = ids.iter().map(|&id| {
                            let runtime = &runtime;
                            async move {
                                runtime
                                    .interrupt(id, InterruptStrategy::AtCancellationPoint)
                                    .await
                                    .expect("interrupt");
                                runtime.wait(id).await.expect("outcome")
                            }
                        });
                        futures::future::join_all(stops).await;
                        total += t0.elapsed();
                        runtime.shutdown().await.expect("shutdown");
                    }
                }
                total
            })
        });
    }
    group.finish();
}

/// Submits one execution every 5 ms, `count` of them or (with `until`) until it is done;
/// the submit-to-first-item latency of each, sorted.
async fn latencies(
    runtime: &Runtime,
    started: &mut mpsc::UnboundedReceiver<Instant>,
    count: usize,
    until: Option<&tokio::task::JoinHandle<tend::SweepReport>>,
) -> Vec<Duration> {
    let plan = Plan::new("first")
        .block(Block::new("b").item(ItemSpec::new("first", &First).expect("a unit struct")));
    let mut taken = Vec::with_capacity(count);
    for _ in 0..count {
        if until.is_some_and(|task| task.is_finished()) {
            break;
        }
        let t0 = Instant::now();
        runtime.submit(plan.clone()).await.expect("submit");
        let at = started.recv().await.expect("it starts");
        taken.push(at.saturating_duration_since(t0));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    taken.sort();
    taken
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn sweep(_c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let (tx, mut started) = mpsc::unbounded_channel();
        let runtime = start(dir.path(), Some(Started(tx))).await;
        // The orphans: made by executions that are then deleted.
        let t0 = Instant::now();
        let per = 1_000;
        for chunk in (0..ORPHANS).step_by(per * 10) {
            let mut block = Block::new("fill");
            for n in 0..10 {
                let fill = Fill {
                    from: chunk + n * per,
                    count: per,
                };
                block.push(ItemSpec::new(format!("f{n}"), &fill).expect("fill spec"));
            }
            let id = runtime
                .submit(Plan::new("fill").block(block))
                .await
                .expect("submit");
            assert!(runtime.wait(id).await.expect("outcome").is_completed());
            runtime.delete(id).await.expect("delete");
        }
        eprintln!("made {ORPHANS} orphans in {:?}", t0.elapsed());

        let mut quiet = latencies(&runtime, &mut started, 1_000, None).await;
        let sweeping = {
            let runtime = runtime.clone();
            tokio::spawn(async move {
                runtime
                    .sweep_orphans(Some(Duration::ZERO))
                    .await
                    .expect("sweep")
            })
        };
        let busy = latencies(&runtime, &mut started, 100_000, Some(&sweeping)).await;
        let report = sweeping.await.expect("sweep task");
        // The baseline is taken on both sides of the sweep, so a quiet or busy minute of
        // the machine weighs on both figures alike.
        quiet.extend(latencies(&runtime, &mut started, 1_000, None).await);
        quiet.sort();
        assert_eq!(report.deleted, ORPHANS);
        let rate = report.deleted as f64 / report.duration.as_secs_f64();
        eprintln!(
            "sweep_orphans: {} deleted in {:?} = {rate:.0}/s",
            report.deleted, report.duration
        );
        if busy.is_empty() {
            eprintln!("the sweep ended before a submit could be timed beside it");
            runtime.shutdown().await.expect("shutdown");
            return;
        }
        let (q50, q99) = (quantile(&quiet, 0.5), quantile(&quiet, 0.99));
        let (b50, b99) = (quantile(&busy, 0.5), quantile(&busy, 0.99));
        eprintln!(
            "submit_to_first_item: without a sweep median {q50:?} p99 {q99:?}; during it median {b50:?} p99 {b99:?} (p99 ratio {:.2})",
            b99.as_secs_f64() / q99.as_secs_f64()
        );
        eprintln!("({} samples without, {} during)", quiet.len(), busy.len());
        runtime.shutdown().await.expect("shutdown");
    });
}

criterion_group!(benches, shutdown, sweep);
criterion_main!(benches);

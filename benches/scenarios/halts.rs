//! Stopping many running executions on a redb file: `interrupt_all` until each outcome is
//! durable, and a shutdown that checkpoints them all.

use std::time::{Duration, Instant};

use futures::future::join_all;
use tend::{
    Block, ExecutionId, ExecutionStatus, InterruptStrategy, ItemSpec, Plan, Runtime,
    ShutdownReason, StopResult,
};

use crate::figure::{Figure, Goal, median, ms, quantile};
use crate::ticker::{Ticker, Ticking};
use crate::{Sizes, builder};

pub(crate) async fn run(sizes: &Sizes) {
    eprintln!("halts:");
    interrupt_all(sizes).await;
    shutdown(sizes).await;
}

/// An execution of `items` independent tickers, each at a cancellation point every
/// `every_ms`.
fn tickers(items: usize, every_ms: u64) -> Plan {
    let mut block = Block::new("tick");
    for i in 0..items {
        block.push(ItemSpec::new(format!("t{i}"), &Ticker { every_ms }).expect("a ticker spec"));
    }
    Plan::new("tick").block(block)
}

/// Starts a runtime in `dir` and `count` executions of `plan` (`items` tickers each);
/// returns once every ticker runs.
async fn running(
    dir: &std::path::Path,
    plan: &Plan,
    count: usize,
    items: usize,
) -> (Runtime, Vec<ExecutionId>) {
    let ticking = Ticking::default();
    let runtime = builder(Some(dir))
        .resource(ticking.clone())
        .start()
        .await
        .expect("the runtime starts");
    let mut ids = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(250) {
        let submits = chunk.iter().map(|_| runtime.submit(plan.clone()));
        for id in join_all(submits).await {
            ids.push(id.expect("submit"));
        }
    }
    let t0 = Instant::now();
    while ticking.started() < count * items {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "only {} of {} tickers started",
            ticking.started(),
            count * items
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (runtime, ids)
}

async fn interrupt_all(sizes: &Sizes) {
    let count = sizes.executions_8;
    let plan = tickers(8, 1);
    let (mut p99s, mut calls, mut alls) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sizes.rounds {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (runtime, ids) = running(dir.path(), &plan, count, 8).await;
        // Each execution's waiter is asked before the interrupt, so it hears the end as
        // soon as the outcome is durable.
        let waiters: Vec<_> = ids
            .iter()
            .map(|&id| {
                let runtime = runtime.clone();
                tokio::spawn(async move {
                    let outcome = runtime.wait(id).await.expect("an outcome");
                    (Instant::now(), outcome.status)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        let interrupted = runtime
            .interrupt_all(InterruptStrategy::AtCancellationPoint)
            .await
            .expect("interrupt_all");
        calls.push(ms(t0.elapsed()));
        assert_eq!(interrupted.len(), count, "every execution interrupted");
        let mut ends = Vec::with_capacity(count);
        for waiter in waiters {
            let (at, status) = waiter.await.expect("a waiter");
            assert_eq!(status, ExecutionStatus::Interrupted);
            ends.push(ms(at.saturating_duration_since(t0)));
        }
        p99s.push(quantile(&ends, 0.99));
        alls.push(quantile(&ends, 1.0));
        runtime.shutdown().await.expect("shutdown");
    }
    eprintln!(
        "  (interrupt_all: the last outcome durable after {:.1} ms, median of rounds)",
        median(&alls)
    );
    Figure::alone(
        "interrupt_all_x8_items_redb_file_p99_ms",
        "ms",
        median(&p99s),
        Goal::AtMost(30.0),
    )
    .print();
    Figure::alone(
        "interrupt_all_x8_items_redb_file_call_ms",
        "ms",
        median(&calls),
        Goal::None,
    )
    .print();
}

async fn shutdown(sizes: &Sizes) {
    let count = sizes.executions_8;
    let plan = tickers(1, 10);
    let mut took = Vec::new();
    for _ in 0..sizes.rounds {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (runtime, _ids) = running(dir.path(), &plan, count, 1).await;
        let t0 = Instant::now();
        let report = runtime
            .shutdown_with(ShutdownReason::Signal, Duration::from_secs(30))
            .await;
        took.push(ms(t0.elapsed()));
        assert_eq!(
            report.count(StopResult::Checkpointed),
            count,
            "every execution checkpointed"
        );
    }
    Figure::alone(
        "shutdown_running_executions_redb_file_ms",
        "ms",
        median(&took),
        Goal::AtMost(60.0),
    )
    .print();
}

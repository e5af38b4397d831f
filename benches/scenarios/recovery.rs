//! Unfinished executions resumed at start: how long after the call to `start()` the first
//! item runs again, and all of them.
//!
//! Setup (once): `count` executions of one `gate` item each wait at a gate that never
//! opens; the runtime shuts down, which checkpoints each as "resume on start". Each round
//! starts a runtime on that directory while a thread watches the gate's waiting count,
//! then shuts it down again, which leaves the same state for the next round.

use std::time::{Duration, Instant};

use tend::demo::{Gate, Gates};
use tend::{Block, ItemSpec, Plan};

use crate::Sizes;
use crate::figure::{Figure, Goal, median, ms};
use crate::{builder, submit_all};

const GATE: &str = "never";
/// Longest a round may take to have every execution running.
const ROUND_LIMIT: Duration = Duration::from_secs(300);

pub(crate) async fn run(sizes: &Sizes) {
    eprintln!("recovery:");
    let count = sizes.recovery;
    let dir = tempfile::tempdir().expect("a temp dir");
    let gates = Gates::new();
    {
        let runtime = builder(Some(dir.path()))
            .resource(gates.clone())
            .start()
            .await
            .expect("the runtime starts");
        let plan = Plan::new("held")
            .block(Block::new("b").item(ItemSpec::new("held", &Gate::new(GATE)).expect("a gate")));
        submit_all(&runtime, &plan, count).await;
        wait_for(&gates, count).await;
        runtime.shutdown().await.expect("shutdown");
    }
    let (mut firsts, mut alls) = (Vec::new(), Vec::new());
    for _ in 0..sizes.rounds {
        assert_eq!(gates.waiting(GATE), 0, "nothing runs between rounds");
        let watched = gates.clone();
        let t0 = Instant::now();
        let watch = std::thread::spawn(move || watch_gate(&watched, count, t0));
        let runtime = builder(Some(dir.path()))
            .resource(gates.clone())
            .start()
            .await
            .expect("the runtime starts");
        let (first, all) = tokio::task::spawn_blocking(move || watch.join())
            .await
            .expect("the watch joins")
            .expect("the watch thread");
        firsts.push(ms(first));
        alls.push(ms(all));
        runtime.shutdown().await.expect("shutdown");
    }
    Figure::alone(
        "resumed_executions_first_item_running_ms",
        "ms",
        median(&firsts),
        Goal::AtMost(50.0),
    )
    .print();
    Figure::alone(
        "resumed_executions_all_running_ms",
        "ms",
        median(&alls),
        Goal::AtMost(1_000.0),
    )
    .print();
}

async fn wait_for(gates: &Gates, count: usize) {
    let t0 = Instant::now();
    while gates.waiting(GATE) < count {
        assert!(t0.elapsed() < ROUND_LIMIT, "the executions never all ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// From `t0`: when the first item waits at the gate, and when `count` do.
fn watch_gate(gates: &Gates, count: usize, t0: Instant) -> (Duration, Duration) {
    let mut first = None;
    loop {
        let waiting = gates.waiting(GATE);
        if first.is_none() && waiting > 0 {
            first = Some(t0.elapsed());
        }
        if waiting >= count {
            return (first.unwrap_or_default(), t0.elapsed());
        }
        assert!(
            t0.elapsed() < ROUND_LIMIT,
            "{waiting} of {count} running after {ROUND_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_micros(50));
    }
}

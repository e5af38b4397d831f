//! Every figure of issue 27 beside its baseline, in one process: the variants of a figure
//! take turns (interleaved, the order swapped every round), each figure is the median of
//! its rounds and its ratio the ratio of those medians. One JSON line per figure on
//! stdout (`support/figure.rs` says what the keys mean); progress and a readable line per
//! figure on stderr.
//!
//! | group | figures |
//! |---|---|
//! | `items` | 100,000 no-op items in memory against a tokio `JoinSet`; the same on a redb file against a hand-written group-commit append (and its items/s); a 1,000-item chain against sequential commits; 1,000 executions x 100 items against one of 100,000; 1,000 executions x 8 items in memory against a `JoinSet` |
//! | `halts` | `interrupt_all` of 1,000 executions x 8 items ticking every 1 ms (p99 until each outcome is durable, and the call alone); shutdown of 1,000 running executions |
//! | `recovery` | 10,000 unfinished executions resumed at start: first item running, all running |
//! | `memory` | RSS per running execution (8 items held at gates) against a `JoinSet`; RSS and live heap per stored finished execution, in the process that ran them and after a restart (each in a fresh child process) |
//! | `allocations` | allocations and bytes per item on a redb file |
//! | `peers` | durable no-op jobs/s: tend against apalis (SQLite) and effectum, each a child process (`benches/peers/`) |
//!
//! `cargo bench --bench scenarios` runs everything (about three minutes on 2 cores);
//! `cargo bench --bench scenarios -- --quick` a reduced version (smaller counts, fewer
//! rounds; under two minutes once the peers are built). Name groups to run only those:
//! `cargo bench --bench scenarios -- --quick items memory`. The peers are built on first
//! use (`cargo build --release` of `benches/peers` and `benches/peers/effectum`, in this
//! bench's target dir); a peer that cannot be built or run is a JSON line that says it was
//! skipped and why. Without `--bench` (`cargo test --benches`) it runs a smoke version of
//! every figure at tiny counts, and skips the peers.
//!
//! The whole binary runs on a counting allocator (`stats_alloc`: a few relaxed atomic adds
//! per allocation), baselines and tend alike.

#[path = "support/figure.rs"]
mod figure;
#[path = "support/group_commit.rs"]
mod group_commit;
#[path = "support/noop.rs"]
mod noop;
#[path = "support/rss.rs"]
mod rss;
#[path = "support/ticker.rs"]
mod ticker;

#[path = "scenarios/allocations.rs"]
mod allocations;
#[path = "scenarios/halts.rs"]
mod halts;
#[path = "scenarios/items.rs"]
mod items;
#[path = "scenarios/memory.rs"]
mod memory;
#[path = "scenarios/peers.rs"]
mod peers;
#[path = "scenarios/recovery.rs"]
mod recovery;

use std::alloc::System;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::future::join_all;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tend::demo::Gates;
use tend::{Block, Config, ItemSpec, Plan, Registry, Runtime};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// How much of each figure to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The counts, 7 rounds (3 for the child-process memory figures).
    Full,
    /// Smaller counts, 1-2 rounds: under two minutes.
    Quick,
    /// Tiny counts, one round, no peers: that the code runs (`cargo test --benches`).
    Smoke,
}

/// The counts and rounds of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Rounds of the in-process figures.
    rounds: usize,
    /// Rounds of the child-process memory figures.
    memory_rounds: usize,
    /// No-op items in one execution (the issue: 100,000).
    items: usize,
    /// Items in the chain (1,000).
    chain: usize,
    /// Executions of 100 items (1,000).
    executions_100: usize,
    /// Executions of 8 items: in memory, interrupted, shut down, held for memory (1,000).
    executions_8: usize,
    /// Unfinished executions resumed at start (10,000).
    recovery: usize,
    /// Stored finished executions of 8 items (10,000).
    stored: usize,
    /// Items whose allocations are counted.
    allocation_items: usize,
    /// Jobs per peer run; 0 skips the peers.
    jobs: usize,
}

impl Sizes {
    fn of(mode: Mode) -> Self {
        match mode {
            Mode::Full => Sizes {
                rounds: 7,
                memory_rounds: 3,
                items: 100_000,
                chain: 1_000,
                executions_100: 1_000,
                executions_8: 1_000,
                recovery: 10_000,
                stored: 10_000,
                allocation_items: 100_000,
                jobs: 5_000,
            },
            Mode::Quick => Sizes {
                rounds: 2,
                memory_rounds: 1,
                items: 20_000,
                chain: 200,
                executions_100: 100,
                executions_8: 1_000,
                recovery: 5_000,
                stored: 5_000,
                allocation_items: 20_000,
                jobs: 2_000,
            },
            Mode::Smoke => Sizes {
                rounds: 1,
                memory_rounds: 1,
                items: 200,
                chain: 10,
                executions_100: 4,
                executions_8: 10,
                recovery: 20,
                stored: 20,
                allocation_items: 200,
                jobs: 0,
            },
        }
    }
}

/// Whether round `round` runs the baseline first: the order alternates, so neither
/// variant always runs on a machine the other has just warmed (or tired).
fn baseline_first(round: usize) -> bool {
    round.is_multiple_of(2)
}

/// Submits `count` executions of `plan`, 250 at a time.
async fn submit_all(runtime: &Runtime, plan: &Plan, count: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(250) {
        for id in join_all(chunk.iter().map(|_| runtime.submit(plan.clone()))).await {
            id.expect("submit");
        }
    }
}

/// Every runtime here: the demo kinds (gates), no-op and ticker items, 256 items of an
/// execution at once, on a redb file in `dir` or in memory.
fn builder(dir: Option<&Path>) -> tend::RuntimeBuilder {
    let registry: Registry = tend::demo::registry()
        .and_then(|r| r.with::<noop::Noop>())
        .and_then(|r| r.with::<ticker::Ticker>())
        .expect("the kinds register");
    let mut builder = Runtime::builder()
        .registry(registry)
        .config(Config {
            parallelism: 256,
            stop_grace: Duration::from_secs(5),
            ..Config::default()
        })
        .resource(Gates::new())
        .resource(ticker::Ticking::default());
    if let Some(dir) = dir {
        builder = builder.data_dir(dir);
    }
    builder
}

/// `items` independent no-op items in one execution.
fn noop_plan(items: usize) -> Plan {
    let mut block = Block::new("all");
    for i in 0..items {
        block.push(ItemSpec::new(format!("n{i}"), &noop::Noop).expect("a unit struct serializes"));
    }
    Plan::new("noop").block(block)
}

/// Submits `plan` and waits for its end; the time it took.
async fn run_plan(runtime: &Runtime, plan: Plan, items: usize) -> Duration {
    let t0 = Instant::now();
    let id = runtime.submit(plan).await.expect("a valid plan");
    let outcome = runtime.wait(id).await.expect("an outcome");
    let took = t0.elapsed();
    assert_eq!(outcome.done(), items, "every item done");
    took
}

/// The load average, to say how quiet the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        memory::child(&args[at + 1..]);
        return;
    }
    let mode = if args.iter().any(|a| a == "--quick") {
        Mode::Quick
    } else if args.iter().any(|a| a == "--bench") {
        Mode::Full
    } else {
        Mode::Smoke
    };
    let groups: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let wanted = |group: &str| groups.is_empty() || groups.contains(&group);
    let sizes = Sizes::of(mode);
    eprintln!(
        "scenarios: {mode:?} run, load average {} ({} cores)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let t0 = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if wanted("items") {
        rt.block_on(items::run(&sizes));
    }
    if wanted("halts") {
        rt.block_on(halts::run(&sizes));
    }
    if wanted("recovery") {
        rt.block_on(recovery::run(&sizes));
    }
    if wanted("memory") {
        memory::run(&sizes);
    }
    if wanted("allocations") {
        rt.block_on(allocations::run(&sizes));
    }
    if wanted("peers") {
        rt.block_on(peers::run(&sizes));
    }
    eprintln!(
        "scenarios: {mode:?} run took {:.1} s, load average {}",
        t0.elapsed().as_secs_f64(),
        load_average()
    );
}

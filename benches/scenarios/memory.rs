//! Memory per execution, each measure in a fresh child process (this binary run with
//! `--child`), so nothing an earlier figure allocated is counted or reused:
//!
//! - running: RSS growth (and live heap) while `count` executions of 8 `gate` items are
//!   all held running, per execution, against a `JoinSet` holding the same number of
//!   futures waiting on a `watch` channel;
//! - stored: RSS and live heap growth in the process that ran `count` executions of 8
//!   no-op items to their end on a redb file, per execution; and the growth of a fresh
//!   process's `start()` on that file, less the same on a file of one execution, per
//!   execution.
//!
//! Each child first runs one execution (or `JoinSet`) of the same shape, so code and
//! per-thread pools are in place before the first reading.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tend::demo::{Gate, Gates};
use tend::{Block, ItemSpec, Plan};

use crate::figure::{Figure, Goal, median};
use crate::rss::rss_bytes;
use crate::{GLOBAL, Sizes, builder, noop_plan, submit_all};

/// What a child measured: growth in bytes between its two readings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Growth {
    rss: i64,
    heap: i64,
}

const KB: f64 = 1024.0;
/// Time for background work to settle before a reading.
const SETTLE: Duration = Duration::from_millis(200);

pub(crate) fn run(sizes: &Sizes) {
    eprintln!("memory:");
    running(sizes);
    stored(sizes);
}

/// Runs this binary as `--child ARGS` and reads its last stdout line.
fn in_child(args: &[&str]) -> Growth {
    let exe = std::env::current_exe().expect("this binary's path");
    let output = Command::new(exe)
        .arg("--child")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("the child runs");
    assert!(output.status.success(), "child {args:?}: {}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().expect("the child printed its growth");
    serde_json::from_str(line).expect("the child's growth parses")
}

fn per_execution_kb(bytes: i64, count: usize) -> f64 {
    bytes as f64 / count as f64 / KB
}

/// The median over `growths` of the growth per execution of `count`, in KB: of the live
/// heap with `heap`, else of RSS.
fn median_kb(growths: &[Growth], count: usize, heap: bool) -> f64 {
    let v: Vec<f64> = growths
        .iter()
        .map(|g| per_execution_kb(if heap { g.heap } else { g.rss }, count))
        .collect();
    median(&v)
}

fn running(sizes: &Sizes) {
    let count = sizes.executions_8;
    let n = count.to_string();
    let (mut tend, mut base) = (Vec::new(), Vec::new());
    for round in 0..sizes.memory_rounds {
        for baseline in [crate::baseline_first(round), !crate::baseline_first(round)] {
            if baseline {
                base.push(in_child(&["running-joinset", &n]));
            } else {
                tend.push(in_child(&["running-tend", &n]));
            }
        }
    }
    let kb = |g: &[Growth], heap: bool| median_kb(g, count, heap);
    let baseline = format!(
        "tokio JoinSet holding {} futures waiting on a watch channel, per 8",
        count * 8
    );
    Figure::against(
        "memory_per_running_execution_rss_kb",
        "KB",
        kb(&tend, false),
        &baseline,
        kb(&base, false),
        Goal::AtMost(16.0),
    )
    .print();
    Figure::against(
        "memory_per_running_execution_heap_kb",
        "KB",
        kb(&tend, true),
        &baseline,
        kb(&base, true),
        Goal::None,
    )
    .print();
}

fn stored(sizes: &Sizes) {
    let count = sizes.stored;
    let n = count.to_string();
    let (mut ran, mut restarted) = (Vec::new(), Vec::new());
    for round in 0..sizes.memory_rounds {
        let full = tempfile::tempdir().expect("a temp dir");
        let empty = tempfile::tempdir().expect("a temp dir");
        let (full_path, empty_path) = (path(full.path()), path(empty.path()));
        ran.push(in_child(&["stored-run", &n, &full_path]));
        in_child(&["stored-run", "0", &empty_path]);
        let (mut with, mut without) = (None, None);
        for baseline in [crate::baseline_first(round), !crate::baseline_first(round)] {
            if baseline {
                without = Some(in_child(&["stored-restart", &empty_path]));
            } else {
                with = Some(in_child(&["stored-restart", &full_path]));
            }
        }
        let (with, without) = (with.expect("measured"), without.expect("measured"));
        eprintln!(
            "  (a start on {count} stored executions grew RSS by {:.0} KB, on one by {:.0} KB)",
            with.rss as f64 / KB,
            without.rss as f64 / KB
        );
        restarted.push(Growth {
            rss: with.rss - without.rss,
            heap: with.heap - without.heap,
        });
    }
    let kb = |g: &[Growth], heap: bool| median_kb(g, count, heap);
    for (name, value) in [
        ("memory_per_stored_execution_rss_kb", kb(&ran, false)),
        ("memory_per_stored_execution_heap_kb", kb(&ran, true)),
        (
            "memory_per_stored_execution_after_restart_rss_kb",
            kb(&restarted, false),
        ),
        (
            "memory_per_stored_execution_after_restart_heap_kb",
            kb(&restarted, true),
        ),
    ] {
        Figure::alone(name, "KB", value, Goal::AtMost(2.0)).print();
    }
}

fn path(p: &Path) -> String {
    p.to_str().expect("a temp dir's path is UTF-8").to_owned()
}

/// Bytes the process holds allocated now. (`stats_alloc` counts a reallocation's growth in
/// `bytes_allocated` and its shrinking in `bytes_deallocated` already; `bytes_reallocated`
/// is the same change again, and adding it counted every grown and freed buffer twice.)
fn live_heap() -> i64 {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// Both readings now.
fn reading() -> Growth {
    Growth {
        rss: rss_bytes() as i64,
        heap: live_heap(),
    }
}

fn growth(before: Growth, after: Growth) -> Growth {
    Growth {
        rss: after.rss - before.rss,
        heap: after.heap - before.heap,
    }
}

/// The child's side: `--child KIND ARGS...`; prints its growth as one JSON line.
pub(crate) fn child(args: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let arg = |i: usize| -> &str { args.get(i).map_or("", String::as_str) };
    let count = || arg(1).parse::<usize>().expect("a count");
    let measured = match arg(0) {
        "running-tend" => rt.block_on(running_tend(count())),
        "running-joinset" => rt.block_on(running_joinset(count())),
        "stored-run" => rt.block_on(stored_run(count(), Path::new(arg(2)))),
        "stored-restart" => rt.block_on(stored_restart(Path::new(arg(1)))),
        other => panic!("no child kind {other:?}"),
    };
    println!(
        "{}",
        serde_json::to_string(&measured).expect("a growth serializes")
    );
}

/// An execution of 8 items waiting at gate `gate`.
fn gated(gate: &str) -> Plan {
    let mut block = Block::new("held");
    for i in 0..8 {
        block.push(ItemSpec::new(format!("g{i}"), &Gate::new(gate)).expect("a gate"));
    }
    Plan::new("held").block(block)
}

async fn running_tend(count: usize) -> Growth {
    let dir = tempfile::tempdir().expect("a temp dir");
    let gates = Gates::new();
    let runtime = builder(Some(dir.path()))
        .resource(gates.clone())
        .start()
        .await
        .expect("the runtime starts");
    gates.open("warm");
    let warm = runtime.submit(gated("warm")).await.expect("submit");
    runtime.wait(warm).await.expect("an outcome");
    tokio::time::sleep(SETTLE).await;
    let before = reading();
    submit_all(&runtime, &gated("held"), count).await;
    let t0 = Instant::now();
    while gates.waiting("held") < count * 8 {
        assert!(t0.elapsed() < Duration::from_secs(120), "items never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let after = reading();
    runtime.shutdown().await.expect("shutdown");
    growth(before, after)
}

/// `futures` tasks on a `JoinSet`, each waiting on its own receiver of one watch channel.
async fn hold(futures: usize, measure: bool) -> Growth {
    let (open, gate) = tokio::sync::watch::channel(false);
    let before = reading();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..futures {
        let mut gate = gate.clone();
        set.spawn(async move {
            let _ = gate.wait_for(|open| *open).await;
        });
    }
    // Every task has been polled once and waits.
    tokio::time::sleep(if measure { SETTLE } else { Duration::ZERO }).await;
    let after = reading();
    open.send_replace(true);
    while let Some(done) = set.join_next().await {
        done.expect("a held task");
    }
    growth(before, after)
}

async fn running_joinset(count: usize) -> Growth {
    hold(8, false).await;
    tokio::time::sleep(SETTLE).await;
    hold(count * 8, true).await
}

async fn stored_run(count: usize, dir: &Path) -> Growth {
    let runtime = builder(Some(dir))
        .start()
        .await
        .expect("the runtime starts");
    let plan = noop_plan(8);
    let warm = runtime.submit(plan.clone()).await.expect("submit");
    runtime.wait(warm).await.expect("an outcome");
    tokio::time::sleep(SETTLE).await;
    let before = reading();
    for chunk in (0..count).collect::<Vec<_>>().chunks(250) {
        let runs = chunk.iter().map(|_| async {
            let id = runtime.submit(plan.clone()).await.expect("submit");
            runtime.wait(id).await.expect("an outcome")
        });
        for outcome in join_all(runs).await {
            assert!(outcome.is_completed());
        }
    }
    tokio::time::sleep(SETTLE).await;
    let after = reading();
    runtime.shutdown().await.expect("shutdown");
    growth(before, after)
}

async fn stored_restart(dir: &Path) -> Growth {
    let builder = builder(Some(dir));
    tokio::time::sleep(SETTLE).await;
    let before = reading();
    let runtime = builder.start().await.expect("the runtime starts");
    tokio::time::sleep(SETTLE).await;
    let after = reading();
    runtime.shutdown().await.expect("shutdown");
    growth(before, after)
}

//! CPU time and wall time per run of 10,000 independent no-op items on a redb file, for
//! comparing two builds of tend on a noisy machine: run this bench's binary from each
//! build alternately, several times, and compare the pairs. The CPU time (user + system of
//! the whole process, from `/proc/self/stat`) moves much less than the wall time with the
//! disk's and the neighbours' noise, and on two cores it is what the runs compete for.
//!
//! `cargo bench --bench items_cpu` (20 runs after 3 warm-up runs; `ITEMS_CPU_RUNS=N`).
//! With `ITEMS_CPU_POLICIES=1` every item carries `retry`, `delay` and `timeout` that it
//! never needs: alternate runs with and without it to see what that bookkeeping costs.
//! Linux only (it reads `/proc`); elsewhere it says so and exits.

#[path = "support/noop.rs"]
mod noop;

use std::time::{Duration, Instant};

use noop::Noop;
use tend::{Block, Config, ItemSpec, Plan, Registry, Runtime};

const ITEMS: usize = 10_000;

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks; 100 per second on Linux.
    Some((user + system) / 100.0)
}

fn main() {
    if cpu_seconds().is_none() {
        println!("items_cpu: /proc/self/stat is not readable here; nothing measured");
        return;
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("ITEMS_CPU_RUNS")
        .ok()
        .map(|v| v.parse().expect("ITEMS_CPU_RUNS: a number"))
        .unwrap_or(if bench { 20 } else { 1 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let runtime = Runtime::builder()
            .registry(Registry::new().with::<Noop>().expect("one kind"))
            .config(Config {
                parallelism: 256,
                ..Config::default()
            })
            .data_dir(dir.path())
            .start()
            .await
            .expect("runtime starts");
        let policies = std::env::var("ITEMS_CPU_POLICIES").is_ok_and(|v| v == "1");
        let mut block = Block::new("all");
        for i in 0..ITEMS {
            let mut spec = ItemSpec::new(format!("n{i}"), &Noop).expect("a unit struct serializes");
            if policies {
                spec = spec
                    .retry(3)
                    .delay(Duration::from_secs(1))
                    .timeout(Duration::from_secs(3600));
            }
            block.push(spec);
        }
        let plan = Plan::new("noop").block(block);
        let once = || async {
            let id = runtime.submit(plan.clone()).await.expect("valid plan");
            let outcome = runtime.wait(id).await.expect("outcome");
            assert_eq!(outcome.done(), ITEMS);
        };
        for _ in 0..3.min(runs) {
            once().await;
        }
        let cpu_before = cpu_seconds().unwrap_or(0.0);
        let mut walls: Vec<Duration> = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            once().await;
            walls.push(started.elapsed());
        }
        let cpu = cpu_seconds().unwrap_or(0.0) - cpu_before;
        walls.sort();
        let median = walls[walls.len() / 2];
        println!(
            "items_cpu: {runs} runs of {ITEMS} items{}: cpu {:.1} ms per run, wall median {:.1} ms",
            if policies {
                " with retry/delay/timeout"
            } else {
                ""
            },
            cpu * 1e3 / runs as f64,
            median.as_secs_f64() * 1e3
        );
        runtime.shutdown().await.expect("shutdown");
    });
}

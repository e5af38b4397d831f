//! Recovery time: how long after a restart every unfinished execution is running again.
//!
//! For each size N (default 1,000 and 10,000; `RECOVERY_SIZES=100,500` to change), N
//! executions of one `gate` item each are submitted to a runtime on a redb file and left
//! waiting at a gate that never opens; the runtime is shut down (every execution is
//! checkpointed as "resume on start") and a new runtime is started on the same directory.
//! Printed: the time `start()` takes (reading every execution back) and the time from the
//! call to `start()` until all N are `running` again, with the configured
//! `recovery_concurrency`.
//!
//! `cargo bench --bench recovery` (`RECOVERY_CONCURRENCY=32` to change how many are
//! started at once).

use std::time::{Duration, Instant};

use tend::demo::{Gate, Gates};
use tend::{Block, Config, ItemSpec, Plan, Runtime};

async fn runtime(dir: &std::path::Path, gates: &Gates) -> Runtime {
    Runtime::builder()
        .resource(gates.clone())
        .registry(tend::demo::registry().expect("demo kinds register"))
        .data_dir(dir)
        .config(Config {
            stop_grace: Duration::from_secs(5),
            recovery_concurrency: concurrency(),
            ..Config::default()
        })
        .start()
        .await
        .expect("runtime starts")
}

/// `RECOVERY_CONCURRENCY`, else the default (4).
fn concurrency() -> usize {
    std::env::var("RECOVERY_CONCURRENCY")
        .ok()
        .map(|v| v.parse().expect("RECOVERY_CONCURRENCY: a number"))
        .unwrap_or(Config::default().recovery_concurrency)
}

async fn running(rt: &Runtime) -> usize {
    rt.counts().await.expect("counts").running
}

async fn measure(n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let gates = Gates::new();
    let rt = runtime(dir.path(), &gates).await;
    let spec = ItemSpec::new("held", &Gate::new("never")).expect("gate spec");
    let plan = Plan::new("held").block(Block::new("b").item(spec));
    for chunk in (0..n).collect::<Vec<_>>().chunks(256) {
        let submits = chunk.iter().map(|_| rt.submit(plan.clone()));
        for id in futures::future::join_all(submits).await {
            id.expect("submit");
        }
    }
    while running(&rt).await < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rt.shutdown().await.expect("shutdown");

    let t0 = Instant::now();
    let rt = runtime(dir.path(), &gates).await;
    let started = t0.elapsed();
    // Each poll lists every execution: poll less often the more there are, so the
    // measurement does not slow down what it measures.
    let every = Duration::from_micros((n as u64 * 5).max(5_000));
    let mut polls = 0u32;
    while running(&rt).await < n {
        polls += 1;
        tokio::time::sleep(every).await;
    }
    let all_running = t0.elapsed();
    println!(
        "recovery/{n} (recovery_concurrency {}): start() {:.1} ms, all {n} running after {:.1} ms ({:.1} µs per execution, polled {polls} times every {every:?})",
        concurrency(),
        started.as_secs_f64() * 1e3,
        all_running.as_secs_f64() * 1e3,
        all_running.as_secs_f64() * 1e6 / n as f64,
    );
    rt.shutdown().await.expect("shutdown");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a small
    // size then, so the suite stays quick.
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("RECOVERY_SIZES") {
        Ok(text) => text
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("RECOVERY_SIZES: comma-separated numbers")
            })
            .collect(),
        Err(_) if bench => vec![1_000, 10_000],
        Err(_) => vec![20],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    for n in sizes {
        rt.block_on(measure(n));
    }
}

//! `tend-peers-effectum --jobs 10000 --dir /tmp/somewhere`: how many durable no-op jobs per
//! second effectum runs, for tend's `scenarios` bench, which builds this binary and runs
//! it as a child process beside tend's own runs of the same job count.
//!
//! It adds that many no-op jobs to an effectum queue (a SQLite file in `--dir`, which must
//! be empty) in one call, runs them with one worker, and waits until the queue holds no
//! active job (every completion written). It prints one JSON line:
//! `{"peer": "effectum", "jobs": N, "seconds": S, "jobs_per_s": R, "settings": "..."}`.
//! effectum opens its file itself and sets `synchronous = normal`; nothing here changes
//! that.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use effectum::{Job, JobRunner, Queue, RunningJob, Worker};

const KIND: &str = "noop";
/// Jobs the worker runs at once.
const CONCURRENCY: u16 = 256;
/// Longest wait for every job to be recorded done.
const DONE_WAIT: Duration = Duration::from_secs(600);

/// The jobs' context: how many have run, to check that every job did.
#[derive(Debug, Default)]
struct Ran(AtomicUsize);

async fn noop(_job: RunningJob, ran: Arc<Ran>) -> Result<(), String> {
    ran.0.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(usize, PathBuf), String> {
    let (mut jobs, mut dir) = (None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--jobs" => jobs = Some(value.parse().map_err(|e| format!("--jobs: {e}"))?),
            "--dir" => dir = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((
        jobs.ok_or("--jobs N is needed")?,
        dir.ok_or("--dir DIR is needed")?,
    ))
}

/// Runs `jobs` no-op jobs on a queue in `dir`; the time from adding them until the queue
/// has no active job left.
async fn run(jobs: usize, dir: PathBuf) -> Result<Duration, String> {
    let queue = Queue::new(&dir.join("effectum.sqlite"))
        .await
        .map_err(|e| format!("open the queue: {e}"))?;
    let ran = Arc::new(Ran::default());
    let _worker = Worker::builder(&queue, ran.clone())
        .jobs(vec![JobRunner::builder(KIND, noop).build()])
        .min_concurrency(CONCURRENCY)
        .max_concurrency(CONCURRENCY)
        .build()
        .await
        .map_err(|e| format!("start the worker: {e}"))?;

    let t0 = Instant::now();
    let batch = (0..jobs).map(|_| Job::builder(KIND).build()).collect();
    queue
        .add_jobs(batch)
        .await
        .map_err(|e| format!("add the jobs: {e}"))?;
    loop {
        let active = queue
            .num_active_jobs()
            .await
            .map_err(|e| format!("count the active jobs: {e}"))?;
        if active.pending + active.running == 0 {
            break;
        }
        if t0.elapsed() > DONE_WAIT {
            return Err(format!(
                "{} jobs still active after {DONE_WAIT:?}",
                active.pending + active.running
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = t0.elapsed();
    let ran = ran.0.load(Ordering::SeqCst);
    if ran != jobs {
        return Err(format!("the queue is empty but {ran} of {jobs} jobs ran"));
    }
    queue
        .close(Duration::from_secs(10))
        .await
        .map_err(|e| format!("close the queue: {e}"))?;
    Ok(took)
}

fn main() -> ExitCode {
    let (jobs, dir) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(why) => {
            eprintln!("tend-peers-effectum: {why}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    match runtime.block_on(run(jobs, dir)) {
        Ok(took) => {
            let secs = took.as_secs_f64();
            let line = serde_json::json!({
                "peer": "effectum",
                "jobs": jobs,
                "seconds": secs,
                "jobs_per_s": jobs as f64 / secs,
                "settings": "effectum 0.7, its own settings (synchronous=normal), concurrency 256",
            });
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("tend-peers-effectum: {why}");
            ExitCode::FAILURE
        }
    }
}

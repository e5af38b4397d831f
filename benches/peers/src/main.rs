//! `tend-peers`: how many durable no-op jobs per second a peer job queue runs, for tend's
//! `scenarios` bench (`benches/scenarios.rs`), which builds this binary and runs it as a
//! child process beside tend's own runs of the same job count.
//!
//! `tend-peers apalis --jobs 10000 --dir /tmp/somewhere` pushes that many no-op jobs to
//! apalis with its SQLite backend (a file in `--dir`, which must be empty), runs them with
//! one worker and waits until every one is recorded done; it prints one JSON line:
//! `{"peer": "apalis", "jobs": N, "seconds": S, "jobs_per_s": R, "settings": "..."}`.
//!
//! effectum is measured by its own binary (`benches/peers/effectum/`): its SQLite crate
//! and apalis's cannot be linked into one program (each bundles its own SQLite).

mod apalis_sqlite;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// What one run measured.
#[derive(Debug)]
struct Measured {
    jobs: usize,
    took: Duration,
    /// How the peer's database was set up (journal, synchronous), said beside the figure.
    settings: &'static str,
}

/// `PEER --jobs N --dir DIR`.
#[derive(Debug)]
struct Args {
    peer: String,
    jobs: usize,
    dir: PathBuf,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let peer = args.next().ok_or("name a peer: apalis")?;
    let (mut jobs, mut dir) = (None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--jobs" => jobs = Some(value.parse().map_err(|e| format!("--jobs: {e}"))?),
            "--dir" => dir = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        peer,
        jobs: jobs.ok_or("--jobs N is needed")?,
        dir: dir.ok_or("--dir DIR is needed")?,
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("tend-peers: {why}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    let measured = match args.peer.as_str() {
        "apalis" => runtime.block_on(apalis_sqlite::run(args.jobs, &args.dir)),
        other => Err(format!("unknown peer {other} (apalis)")),
    };
    match measured {
        Ok(m) => {
            let secs = m.took.as_secs_f64();
            let line = serde_json::json!({
                "peer": args.peer,
                "jobs": m.jobs,
                "seconds": secs,
                "jobs_per_s": m.jobs as f64 / secs,
                "settings": m.settings,
            });
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("tend-peers {}: {why}", args.peer);
            ExitCode::FAILURE
        }
    }
}

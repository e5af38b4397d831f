//! A server that embeds tend and serves its debug bridge.
//!
//! ```text
//! cargo run --release --example server -- --data DIR [--bind ADDR] [--token T] [--applied-log FILE]
//!     [--gate-release GATE=STEPS]... [--gate-open GATE]... [--config FILE.toml]
//! ```
//!
//! It registers the demo item kinds (`sleep`, `sum`, `gate`; see `tend::demo`), prints
//! `listening on http://ADDR` once it accepts requests, and on SIGINT, SIGTERM or
//! `POST /shutdown` shuts the runtime down (every execution checkpointed), prints
//! `shutdown report: {json}` and exits 0 (1 when something was abandoned). Started again on the same
//! `--data`, unfinished executions are listed as interrupted and can be resumed over REST.
//!
//! Items of kind `gate` wait before each step at a named gate. Every gate starts closed;
//! `--gate-release GATE=STEPS` lets the first `STEPS` steps of each item at `GATE` through
//! and `--gate-open GATE` all of them, for the life of the process. So a `gate` item holds
//! an execution running, at a step chosen up front, until an interrupt or a shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tend::Runtime;
use tend::bridge::Bridge;
use tend::demo::{AppliedLog, Gates};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser, Debug)]
#[command(about = "A server that embeds tend and serves its debug bridge")]
struct Args {
    /// Where executions are checkpointed.
    #[arg(long)]
    data: PathBuf,
    /// Address of the bridge; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Bearer token for the bridge (or TEND_BRIDGE_TOKEN); required off loopback.
    #[arg(long)]
    token: Option<String>,
    /// Append `start <execution-id> <item-id>` and `done <execution-id> <item-id>` lines.
    #[arg(long = "applied-log")]
    applied_log: Option<PathBuf>,
    /// Let the first STEPS steps of every `gate` item at GATE through (repeatable).
    #[arg(long = "gate-release", value_name = "GATE=STEPS", value_parser = parse_release)]
    gate_release: Vec<(String, u64)>,
    /// Let every step of every `gate` item at GATE through (repeatable).
    #[arg(long = "gate-open", value_name = "GATE")]
    gate_open: Vec<String>,
    /// The runtime's configuration, a TOML file (see `tend::Config`); defaults otherwise.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn parse_release(arg: &str) -> Result<(String, u64), String> {
    let (gate, steps) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected GATE=STEPS, got `{arg}`"))?;
    let steps = steps
        .parse()
        .map_err(|e| format!("STEPS in `{arg}`: {e}"))?;
    Ok((gate.to_owned(), steps))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Before anything can announce this process: from here on a signal is a request to
    // shut down gracefully, never the default action that kills it.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let gates = Gates::new();
    for (gate, steps) in &args.gate_release {
        gates.release(gate, *steps);
    }
    for gate in &args.gate_open {
        gates.open(gate);
    }
    let config = match &args.config {
        Some(path) => tend::Config::load(path)?,
        None => tend::Config::default(),
    };
    let mut builder = Runtime::builder()
        .config(config)
        .data_dir(&args.data)
        .registry(tend::demo::registry()?)
        .resource(gates);
    if let Some(path) = &args.applied_log {
        builder = builder.resource(AppliedLog::open(path)?);
    }
    let runtime = builder.start().await?;
    let mut bridge = Bridge::new(runtime.clone());
    if let Some(token) = args.token {
        bridge = bridge.with_token(token);
    }
    let bound = match bridge.token_from_env().bind(args.bind).await {
        Ok(bound) => bound,
        Err(e) => {
            runtime.shutdown().await?;
            return Err(e.into());
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let addr = bound.local_addr();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stop_rx.await;
    }));
    println!("listening on http://{addr}");

    let reason = tokio::select! {
        _ = sigint.recv() => tend::ShutdownReason::Signal,
        _ = sigterm.recv() => tend::ShutdownReason::Signal,
        // `POST /shutdown` (with a token): the bridge performs it; this joins it.
        reason = runtime.shutdown_requested() => reason,
    };
    eprintln!("shutting down ({reason:?}): checkpointing every execution...");
    // The runtime first: asking for it ends the event streams, so the server can drain.
    let report = runtime
        .shutdown_with(reason, runtime.shutdown_timeout())
        .await;
    println!("shutdown report: {}", serde_json::to_string(&report)?);
    eprintln!(
        "shut down in {}: {} checkpointed, {} completed, {} abandoned",
        humantime::format_duration(report.duration),
        report.count(tend::StopResult::Checkpointed),
        report.count(tend::StopResult::Completed),
        report.count(tend::StopResult::Abandoned),
    );
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => eprintln!("open requests did not finish within 10s; exiting anyway"),
    }
    eprintln!("stopped");
    if report.is_clean() {
        Ok(())
    } else {
        // Nothing acknowledged is lost (the next start resumes from the durable records),
        // but the exit status says the shutdown was not clean.
        Err("the shutdown was not clean; see the report".into())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! A server that embeds tend and serves its debug bridge.
//!
//! ```text
//! cargo run --release --example server -- --data DIR [--bind ADDR] [--token T] [--applied-log FILE]
//! cargo run --release --features postgres --example server -- --postgres URL [--postgres-schema NAME] ...
//!     [--gate-release GATE=STEPS]... [--gate-open GATE]... [--config FILE.toml]
//!     [--SETTING VALUE]... [--print-config] [--log FILTER] [--log-format text|json]
//! ```
//!
//! It logs to stderr (`--log`, else `RUST_LOG`, else `info`): each bridge request with its
//! `x-request-id`, status and latency; with `tend_actors=debug`, each attempt's start and
//! end with its duration; and what items log themselves, inside a span naming the
//! execution, the item and the attempt.
//!
//! Every runtime setting (`tend::SETTINGS`: `--parallelism 8`, `--stop-grace 5s`, ...) is
//! also a flag and a `TEND_*` environment variable (`TEND_STOP_GRACE=5s`): a flag goes
//! over the variable, which goes over the `--config` file, which goes over the default.
//! `--print-config` prints the configuration they make, as TOML, and exits.
//!
//! It registers the demo item kinds (`sleep`, `sum`, `gate`; see `tend::demo`), prints
//! `listening on http://ADDR` once it accepts requests, and on SIGINT, SIGTERM or
//! `POST /shutdown` shuts the runtime down (every execution checkpointed), prints
//! `shutdown report: {json}` and exits 0 (1 when something was abandoned). Started again on
//! the same `--data`, it resumes by itself the executions that were running when it stopped
//! (checkpointed by that shutdown, or cut short by a crash or a SIGKILL), each from its
//! durable records: done items stay done, unfinished ones go on from their checkpoints.
//! Executions interrupted or paused on request stay so until resumed over REST (or
//! cancelled); finished ones stay listed until deleted or pruned.
//!
//! Items of kind `gate` wait before each step at a named gate. Every gate starts closed;
//! `--gate-release GATE=STEPS` lets the first `STEPS` steps of each item at `GATE` through
//! and `--gate-open GATE` all of them, for the life of the process. So a `gate` item holds
//! an execution running, at a step chosen up front, until an interrupt or a shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, CommandFactory, FromArgMatches, Parser};
use tend::Runtime;
use tend::bridge::Bridge;
use tend::demo::{AppliedLog, Gates};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser, Debug)]
#[command(about = "A server that embeds tend and serves its debug bridge")]
struct Args {
    /// Where executions are checkpointed, a redb file in this directory (this or
    /// --postgres is required, but for --print-config).
    #[arg(long, required_unless_present_any = ["print_config", "postgres"], conflicts_with = "postgres")]
    data: Option<PathBuf>,
    /// Checkpoint executions in this PostgreSQL database instead (`postgres://user:password@host/db`;
    /// or TEND_POSTGRES_URL). Needs a build with the `postgres` feature.
    #[arg(
        long,
        value_name = "URL",
        env = "TEND_POSTGRES_URL",
        hide_env_values = true
    )]
    postgres: Option<String>,
    /// The schema of --postgres that holds tend's tables.
    #[arg(
        long = "postgres-schema",
        value_name = "NAME",
        default_value = "tend",
        requires = "postgres"
    )]
    postgres_schema: String,
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
    /// Print the configuration (file, variables and flags together) as TOML and exit.
    #[arg(long = "print-config")]
    print_config: bool,
    /// What to log, to stderr, as a tracing filter (`info`, `tend=debug,info`); RUST_LOG
    /// when not given, else `info`.
    #[arg(long = "log", value_name = "FILTER")]
    log: Option<String>,
    /// How log lines look.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event, with its spans' fields.
    Json,
}

/// Installs the log: to stderr (stdout carries the address and the report).
fn install_log(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    use tracing_subscriber::EnvFilter;
    let filter = match &args.log {
        Some(filter) => EnvFilter::try_new(filter)?,
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info"))?,
    };
    // Colours only for a person at a terminal, not in a file or a log collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = match args.log_format {
        LogFormat::Text => log.try_init(),
        LogFormat::Json => log
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    installed.map_err(|e| e.to_string().into())
}

/// The arguments above and one flag per runtime setting, each also read from its
/// environment variable.
fn command() -> clap::Command {
    Args::command()
        .next_help_heading("Runtime settings (over --config; each also TEND_<KEY>)")
        .args(tend::SETTINGS.iter().map(|setting| {
            Arg::new(setting.key)
                .long(setting.flag())
                .env(setting.env())
                .value_name("VALUE")
                .help(format!(
                    "{} [default: {}]",
                    setting.help,
                    setting.default_text()
                ))
        }))
}

/// The runtime's configuration: the file's, with the settings given over it.
fn config(args: &Args, matches: &clap::ArgMatches) -> Result<tend::Config, tend::ConfigError> {
    let given = tend::SETTINGS.iter().filter_map(|setting| {
        matches
            .get_one::<String>(setting.key)
            .map(|text| (setting.key, text.as_str()))
    });
    tend::Config::load_layered(args.config.as_deref(), given)
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

async fn run(matches: clap::ArgMatches) -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::from_arg_matches(&matches)?;
    let config = config(&args, &matches)?;
    if args.print_config {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    }
    install_log(&args)?;
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
    let builder = Runtime::builder().config(config);
    let builder = match (&args.data, &args.postgres) {
        (Some(data), _) => builder.data_dir(data),
        (None, Some(url)) => on_postgres(builder, url, &args.postgres_schema)?,
        (None, None) => {
            return Err(
                "--data DIR or --postgres URL is required: where executions are checkpointed"
                    .into(),
            );
        }
    };
    let mut builder = builder.registry(tend::demo::registry()?).resource(gates);
    if let Some(path) = &args.applied_log {
        builder = builder.resource(AppliedLog::open(path)?);
    }
    let runtime = builder.start().await?;
    // `GET /metrics` serves what the runtime measures, in Prometheus text.
    let mut bridge = Bridge::new(runtime.clone()).with_metrics()?;
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
        tend::human_millis(report.duration),
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
    match run(command().get_matches()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime on the PostgreSQL database at `url`, in `schema`.
#[cfg(feature = "postgres")]
fn on_postgres(
    builder: tend::RuntimeBuilder,
    url: &str,
    schema: &str,
) -> Result<tend::RuntimeBuilder, Box<dyn std::error::Error>> {
    Ok(builder.postgres_with(
        url,
        tend::engine::store::PostgresOptions {
            schema: schema.to_owned(),
            ..Default::default()
        },
    ))
}

/// Without the `postgres` feature, --postgres is refused: nothing would use it.
#[cfg(not(feature = "postgres"))]
fn on_postgres(
    _: tend::RuntimeBuilder,
    _: &str,
    _: &str,
) -> Result<tend::RuntimeBuilder, Box<dyn std::error::Error>> {
    Err("--postgres needs a build with the `postgres` feature: cargo run --features postgres --example server -- --postgres URL".into())
}

//! A layered rollout that survives interrupts and restarts.
//!
//! ```text
//! cargo run --release --example deploy -- --data DIR [--items N] [--width W] [--item-ms MS]
//!     [--applied-log FILE] [--hold-layer L]
//! ```
//!
//! To interrupt it by hand, give each item time: `--item-ms 1000` makes the run last long
//! enough to press Ctrl-C in the middle (the default, 50 ms an item, finishes at once).
//!
//! Items form layers of `W`; each item depends on every item of the layer before and works
//! in 5 steps, checkpointing after each. Ctrl-C (SIGINT) or SIGTERM interrupts at the next
//! cancellation point, prints the outcome and exits with 130. Run it again with the same
//! `--data` and it resumes the unfinished execution instead of starting a new one.
//!
//! With `--hold-layer L`, items of layer `L` (from 0) and later start but hold before
//! their first step until interrupted: the run cannot finish, and exactly the items of
//! layer `L` are in flight when a signal (or a crash) comes. It holds only in this
//! process; a run without it does the held items' work.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tend::demo::AppliedLog;
use tend::{
    Block, Event, ExecutionId, ExecutionStatus, InterruptStrategy, Item, ItemCtx, ItemError,
    ItemSpec, ItemStatus, Outcome, Plan, Registry, Runtime, RuntimeError,
};
use tokio::signal::unix::{SignalKind, signal};

const STEPS: u32 = 5;

#[derive(Parser, Debug)]
#[command(about = "A layered rollout that survives interrupts and restarts")]
struct Args {
    /// Where the execution is checkpointed.
    #[arg(long)]
    data: PathBuf,
    /// Number of items.
    #[arg(long, default_value_t = 60)]
    items: usize,
    /// Items per layer.
    #[arg(long, default_value_t = 6)]
    width: usize,
    /// Milliseconds of work per item.
    #[arg(long = "item-ms", default_value_t = 50)]
    item_ms: u64,
    /// Append `start <item-id>` and `done <item-id>` lines to this file.
    #[arg(long = "applied-log")]
    applied_log: Option<PathBuf>,
    /// Items of this layer (from 0) and later start, then hold until interrupted.
    #[arg(long = "hold-layer", value_name = "L")]
    hold_layer: Option<usize>,
}

/// Held items: those of `from_layer` and later wait for an interrupt instead of working.
/// A resource, not part of the plan, so a resumed run without `--hold-layer` does the work.
struct Hold {
    from_layer: usize,
}

/// One item of the rollout: `ms` of work in five checkpointed steps.
#[derive(Serialize, Deserialize)]
struct Rollout {
    ms: u64,
    /// Its layer, from 0.
    #[serde(default)]
    layer: usize,
}

impl Item for Rollout {
    const KIND: &'static str = "rollout";
    type Output = u32;

    async fn apply(&self, cx: &mut ItemCtx) -> Result<u32, ItemError> {
        let log = cx.resource::<AppliedLog>();
        if let Some(log) = &log {
            log.append(&format!("start {}", cx.item_id()))?;
        }
        let held = cx
            .resource::<Hold>()
            .is_some_and(|hold| self.layer >= hold.from_layer);
        if held {
            // Resolves at once if the interrupt came before this point.
            cx.interrupted().await;
            return Err(ItemError::Interrupted);
        }
        let start: u32 = cx.resume_point()?.unwrap_or(0);
        for step in start..STEPS {
            tokio::time::sleep(Duration::from_millis(self.ms) / STEPS).await;
            cx.progress(u64::from(step + 1), u64::from(STEPS));
            cx.checkpoint(&(step + 1)).await?;
            if step + 1 < STEPS {
                cx.cancellation_point().await?;
            }
        }
        if let Some(log) = &log {
            log.append(&format!("done {}", cx.item_id()))?;
        }
        Ok(STEPS)
    }
}

fn plan(args: &Args) -> Result<Plan, tend::PlanError> {
    let width = args.width.max(1);
    let mut block = Block::new("rollout");
    for n in 0..args.items {
        let (layer, index) = (n / width, n % width);
        let rollout = Rollout {
            ms: args.item_ms,
            layer,
        };
        let mut spec = ItemSpec::new(format!("{layer}.{index}"), &rollout)?;
        if layer > 0 {
            let previous = (0..width).map(|i| format!("{}.{i}", layer - 1));
            spec = spec.after(previous);
        }
        block.push(spec);
    }
    Ok(Plan::new("deploy").block(block))
}

/// Live progress: a bar on a terminal, plain lines otherwise.
enum Display {
    Bar(ProgressBar),
    Lines,
}

impl Display {
    fn new(done: usize, total: usize) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} items {elapsed} {msg}")
            {
                bar.set_style(style);
            }
            bar.set_position(done as u64);
            Display::Bar(bar)
        } else {
            Display::Lines
        }
    }

    fn item_done(&self, item: &str, done: usize, total: usize) {
        match self {
            Display::Bar(bar) => {
                bar.set_position(done as u64);
                bar.set_message(format!("{item} done"));
            }
            Display::Lines => eprintln!("{done}/{total} items done ({item})"),
        }
    }

    fn finish(&self) {
        if let Display::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn counts(outcome: &Outcome) -> String {
    format!(
        "{} done, {} interrupted, {} not started",
        outcome.done(),
        outcome.interrupted(),
        outcome.not_started()
    )
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    // Before any item can start: from here on a signal interrupts the rollout, never the
    // default action that kills the process.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let mut builder = Runtime::builder()
        .data_dir(&args.data)
        .registry(Registry::new().with::<Rollout>()?);
    if let Some(path) = &args.applied_log {
        builder = builder.resource(AppliedLog::open(path)?);
    }
    if let Some(from_layer) = args.hold_layer {
        builder = builder.resource(Hold { from_layer });
    }
    let runtime = builder.start().await?;
    let mut events = runtime.subscribe().await?;

    let unfinished = runtime.list().await?.into_iter().rev().find(|s| {
        s.name == "deploy"
            && matches!(
                s.status,
                ExecutionStatus::Interrupted | ExecutionStatus::Running
            )
    });
    let (id, mut done, total): (ExecutionId, usize, usize) = match unfinished {
        Some(summary) => {
            println!(
                "resuming {}: {}/{} items done",
                summary.id, summary.items_done, summary.items_total
            );
            // One a crash or a shutdown left running is resumed by the runtime itself as it
            // starts, maybe between the list and this resume: then it is running already.
            if summary.status == ExecutionStatus::Interrupted {
                match runtime.resume(summary.id).await {
                    Ok(())
                    | Err(RuntimeError::InvalidState {
                        status: ExecutionStatus::Running,
                        ..
                    }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            (summary.id, summary.items_done, summary.items_total)
        }
        None => {
            let plan = plan(&args)?;
            let total = plan.item_count();
            let id = runtime.submit(plan).await?;
            println!("started {id}: {total} items");
            (id, 0, total)
        }
    };

    let display = Display::new(done, total);
    let mut interrupted = false;
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Event::Item { execution, item, status: ItemStatus::Done }) if execution == id => {
                    done += 1;
                    display.item_done(&item, done, total);
                }
                Some(Event::Execution { execution, status }) if execution == id && status != ExecutionStatus::Running => break,
                Some(_) => {}
                None => break,
            },
            _ = sigint.recv(), if !interrupted => interrupted = true,
            _ = sigterm.recv(), if !interrupted => interrupted = true,
        }
        if interrupted {
            display.finish();
            eprintln!("interrupting {id} at the next cancellation point...");
            // An execution that finished in the meantime cannot be interrupted; the
            // outcome below says so.
            let _ = runtime
                .interrupt(id, InterruptStrategy::AtCancellationPoint)
                .await;
            break;
        }
    }
    display.finish();
    let outcome = runtime.wait(id).await?;
    runtime.shutdown().await?;
    Ok(match outcome.status {
        ExecutionStatus::Completed => {
            println!(
                "completed {id}: {}/{} items",
                outcome.done(),
                outcome.total()
            );
            ExitCode::SUCCESS
        }
        ExecutionStatus::Interrupted => {
            println!("interrupted {id}: {}", counts(&outcome));
            ExitCode::from(130)
        }
        status => {
            println!(
                "{status} {id}: {}, {} failed",
                counts(&outcome),
                outcome.failed()
            );
            ExitCode::FAILURE
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

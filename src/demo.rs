//! Demo item kinds, shared by the examples, the tests and the benches, and handy for trying
//! tend out (over the bridge, plans can use them as JSON):
//!
//! - `sleep` `{"ms": u64, "steps": u32 = 1, "fail_times": u32 = 0, "fail_at_step": u32 = 0,
//!   "panic_times": u32 = 0, "output": any JSON = null, "satisfied": bool = false}`: works
//!   `ms` in all over `steps` steps, with a cancellation point before each step and a
//!   checkpoint and a progress update after each; its first `fail_times` attempts fail (at
//!   once, or with `fail_at_step` once that many steps are checkpointed, so a retry resumes
//!   there), its next `panic_times` attempts panic; returns `output`. With `satisfied` its
//!   `check` finds the goal state already held: it is done at once, unchanged, without
//!   `apply`.
//! - `sum` `{"add": i64 = 0}`: returns `add` plus the sum of its dependencies' numeric
//!   outputs, and logs the total at `info` (`summed`).
//! - `gate` `{"gate": string, "steps": u32 = 1, "output": any JSON = null}`: waits before
//!   each step until the application releases it through a [`Gates`] resource; tests use it
//!   to hold an execution running, and to move its progress, exactly when they choose.
//!
//! With an [`AppliedLog`] resource, every attempt appends `start <execution-id> <item-id>`
//! when it begins and `done <execution-id> <item-id>` when it returns Ok; a `sleep` item
//! also appends `refresh ...` after `start` when it has a pending refresh
//! ([`ItemCtx::refresh`]), and `satisfied ...` when its `check` skips `apply`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Check, Item, ItemCtx, ItemError, PlanError, Registry};

mod gate;
pub use gate::{Gate, Gates};

/// An append-only log of item attempts, one flushed line each.
#[derive(Debug)]
pub struct AppliedLog {
    file: Mutex<File>,
}

impl AppliedLog {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AppliedLog {
            file: Mutex::new(file),
        })
    }

    /// Appends one line and flushes it.
    pub fn append(&self, line: &str) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write call per line keeps lines whole between processes appending too.
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        file.write_all(&buf)?;
        file.flush()
    }

    pub(crate) fn record(cx: &ItemCtx, event: &str) -> Result<(), ItemError> {
        match cx.resource::<AppliedLog>() {
            Some(log) => {
                Ok(log.append(&format!("{event} {} {}", cx.execution_id(), cx.item_id()))?)
            }
            None => Ok(()),
        }
    }
}

pub(crate) fn one() -> u32 {
    1
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Sleeps `ms` over `steps` checkpointed steps; can fail or panic on purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    /// Total time of the work.
    pub ms: u64,
    /// Number of steps.
    #[serde(default = "one")]
    pub steps: u32,
    /// How many first attempts fail.
    #[serde(default)]
    pub fail_times: u32,
    /// With `fail_times`: those attempts fail only once this many steps are checkpointed
    /// (0: at once, before any step).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fail_at_step: u32,
    /// How many attempts after those panic.
    #[serde(default)]
    pub panic_times: u32,
    /// What it returns.
    #[serde(default)]
    pub output: serde_json::Value,
    /// Its `check` finds the goal state already held.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub satisfied: bool,
}

impl Sleep {
    /// `ms` in one step, returning null.
    pub fn new(ms: u64) -> Self {
        Sleep {
            ms,
            steps: 1,
            fail_times: 0,
            fail_at_step: 0,
            panic_times: 0,
            output: serde_json::Value::Null,
            satisfied: false,
        }
    }

    /// Makes its `check` find the goal state already held (so `apply` is skipped).
    pub fn satisfied(mut self) -> Self {
        self.satisfied = true;
        self
    }

    /// Splits the work into `steps` steps.
    pub fn steps(mut self, steps: u32) -> Self {
        self.steps = steps;
        self
    }

    /// Returns `output`.
    pub fn output(mut self, output: serde_json::Value) -> Self {
        self.output = output;
        self
    }
}

impl Item for Sleep {
    const KIND: &'static str = "sleep";
    type Output = serde_json::Value;

    async fn check(&self, cx: &mut ItemCtx) -> Result<Check<serde_json::Value>, ItemError> {
        if self.satisfied {
            // The log is of attempts; a dry run is none.
            if !cx.is_dry_run() {
                AppliedLog::record(cx, "satisfied")?;
            }
            return Ok(Check::Satisfied(self.output.clone()));
        }
        Ok(Check::Apply)
    }

    async fn apply(&self, cx: &mut ItemCtx) -> Result<serde_json::Value, ItemError> {
        AppliedLog::record(cx, "start")?;
        if cx.refresh() {
            AppliedLog::record(cx, "refresh")?;
        }
        let attempt = cx.attempt();
        let fails = attempt <= self.fail_times;
        let fail = || {
            ItemError::failed(format!(
                "attempt {attempt} fails on purpose (fail_times = {})",
                self.fail_times
            ))
        };
        let start: u32 = cx.resume_point()?.unwrap_or(0);
        if fails && start >= self.fail_at_step {
            return Err(fail());
        }
        if !fails && attempt <= self.fail_times.saturating_add(self.panic_times) {
            panic!("attempt {attempt} panics on purpose");
        }
        let steps = self.steps.max(1);
        let step_time = Duration::from_millis(self.ms) / steps;
        for step in start..steps {
            cx.cancellation_point().await?;
            if !step_time.is_zero() {
                tokio::time::sleep(step_time).await;
            }
            cx.progress(u64::from(step + 1), u64::from(steps));
            cx.checkpoint(&(step + 1)).await?;
            if fails && step + 1 >= self.fail_at_step {
                return Err(fail());
            }
        }
        AppliedLog::record(cx, "done")?;
        Ok(self.output.clone())
    }
}

/// Adds `add` to the numeric outputs of its dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sum {
    /// Added to the total.
    #[serde(default)]
    pub add: i64,
}

impl Item for Sum {
    const KIND: &'static str = "sum";
    type Output = i64;

    async fn apply(&self, cx: &mut ItemCtx) -> Result<i64, ItemError> {
        AppliedLog::record(cx, "start")?;
        let deps: Vec<String> = cx.dependencies().map(str::to_owned).collect();
        let mut total = self.add;
        for dep in deps {
            let value: serde_json::Value = cx.input(&dep)?;
            let n = value.as_i64().ok_or_else(|| ItemError::Input {
                dependency: dep.clone(),
                reason: format!("output {value} is not an integer"),
            })?;
            total = total
                .checked_add(n)
                .ok_or_else(|| ItemError::failed(format!("sum overflows at dependency `{dep}`")))?;
        }
        AppliedLog::record(cx, "done")?;
        // Inside the attempt's span: the log line says which execution, item and attempt.
        tracing::info!(total, "summed");
        Ok(total)
    }
}

/// A registry holding the demo kinds `sleep`, `sum` and `gate`.
pub fn registry() -> Result<Registry, PlanError> {
    Registry::new()
        .with::<Sleep>()?
        .with::<Sum>()?
        .with::<Gate>()
}

//! The `gate` demo kind: an item whose steps pass only when the application (a test, or a
//! person driving a demo) releases them, so "this execution is still running" and "its
//! progress just changed" are decided by the caller, never by how fast the machine is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{Item, ItemCtx, ItemError};

use super::{AppliedLog, one};

/// Named gates that `gate` items wait at. Add one with `RuntimeBuilder::resource` and keep
/// a clone to open them; clones share the gates.
///
/// Each gate counts the steps released so far: step `k` (from 0) of every item waiting at
/// that gate passes once more than `k` steps are released.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    inner: Arc<Mutex<HashMap<String, GateState>>>,
}

#[derive(Debug)]
struct GateState {
    released: watch::Sender<u64>,
    waiting: usize,
}

impl GateState {
    fn new() -> Self {
        GateState {
            released: watch::Sender::new(0),
            waiting: 0,
        }
    }
}

impl Gates {
    /// No gates yet; each is created closed on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_gate<T>(&self, name: &str, f: impl FnOnce(&mut GateState) -> T) -> T {
        let mut gates = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(gates.entry(name.to_owned()).or_insert_with(GateState::new))
    }

    /// Lets `steps` more steps through gate `name`.
    pub fn release(&self, name: &str, steps: u64) {
        self.with_gate(name, |gate| {
            gate.released.send_modify(|r| *r = r.saturating_add(steps));
        });
    }

    /// Opens gate `name` for good: every step of every item passes.
    pub fn open(&self, name: &str) {
        self.release(name, u64::MAX);
    }

    /// How many steps of gate `name` are released.
    pub fn released(&self, name: &str) -> u64 {
        self.with_gate(name, |gate| *gate.released.borrow())
    }

    /// How many items are waiting at gate `name` right now.
    pub fn waiting(&self, name: &str) -> usize {
        self.with_gate(name, |gate| gate.waiting)
    }

    /// Waits until step `step` of gate `name` is released.
    async fn pass(&self, name: &str, step: u32) {
        let mut released = self.with_gate(name, |gate| {
            gate.waiting += 1;
            gate.released.subscribe()
        });
        // Counted out when the wait ends, also when it is dropped by an interrupt.
        let _waiting = Waiting { gates: self, name };
        // The sender lives in the map for as long as `self`, so the wait cannot fail; if it
        // ever did, passing is the answer that does not hang the item.
        let _ = released.wait_for(|r| *r > u64::from(step)).await;
    }
}

struct Waiting<'a> {
    gates: &'a Gates,
    name: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.gates.with_gate(self.name, |gate| {
            gate.waiting = gate.waiting.saturating_sub(1)
        });
    }
}

/// Waits at gate `gate` before each of its `steps` steps, with a cancellation point, a
/// checkpoint and a progress update per step; while it waits its message says so
/// (`waiting at gate `g` for step 3 of 20`). An interrupt at cancellation points ends the
/// wait at once. Needs a [`Gates`] resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// The gate's name.
    pub gate: String,
    /// Number of steps.
    #[serde(default = "one")]
    pub steps: u32,
    /// What it returns.
    #[serde(default)]
    pub output: serde_json::Value,
}

impl Gate {
    /// One step at gate `gate`, returning null.
    pub fn new(gate: &str) -> Self {
        Gate {
            gate: gate.to_owned(),
            steps: 1,
            output: serde_json::Value::Null,
        }
    }

    /// Splits the work into `steps` gated steps.
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

impl Item for Gate {
    const KIND: &'static str = "gate";
    type Output = serde_json::Value;

    async fn apply(&self, cx: &mut ItemCtx) -> Result<serde_json::Value, ItemError> {
        AppliedLog::record(cx, "start")?;
        let gates = cx.resource::<Gates>().ok_or_else(|| {
            ItemError::failed(
                "the `gate` kind needs a tend::demo::Gates resource (RuntimeBuilder::resource)",
            )
        })?;
        let steps = self.steps.max(1);
        let start: u32 = cx.resume_point()?.unwrap_or(0);
        for step in start..steps {
            cx.cancellation_point().await?;
            // Said once the checkpoint of the step before is durable.
            cx.message(format!(
                "waiting at gate `{}` for step {} of {steps}",
                self.gate,
                step + 1
            ));
            tokio::select! {
                () = gates.pass(&self.gate, step) => {}
                () = cx.interrupted() => return Err(ItemError::Interrupted),
            }
            cx.progress(u64::from(step + 1), u64::from(steps));
            cx.checkpoint(&(step + 1)).await?;
        }
        AppliedLog::record(cx, "done")?;
        Ok(self.output.clone())
    }
}

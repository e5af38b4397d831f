//! A dry run: validate a plan and run only `check` on every item, block after block and
//! each block in dependency order, to report what a real run would change. Nothing is
//! applied, nothing is written, no execution is created.
//!
//! A dependency whose `check` found its goal state held hands its output on, as in a real
//! run; one that would apply has no output yet, so a dependent that reads it gets an
//! input error (reported as that item's check failing). A dependent joined by a `notify`
//! edge to an item that would apply is checked with `refresh()` true. Each check is
//! bounded by the item's `timeout`, or [`CHECK_TIMEOUT`].

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use crate::attempt::panic_message;
use crate::error::{ItemError, PlanError};
use crate::model::{AttemptControl, CtxParts, ExecutionId, ItemCtx, Plan, Registry, Resources};
use crate::sched::compile::CompiledPlan;
use crate::sched::dag::{Readiness, Start};

/// How long one item's `check` may take in a dry run unless its `timeout` says otherwise.
pub const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What `check` said of one item in a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOutcome {
    /// Work to do: a real run would `apply` it.
    WouldApply,
    /// Already in its goal state: a real run would skip `apply`.
    Satisfied,
    /// `check` returned an error or panicked.
    Failed {
        /// Why.
        error: String,
    },
}

/// One item of a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunItem {
    /// The item's id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// What its `check` said.
    pub check: CheckOutcome,
    /// It would get a refresh: a dependency on a `notify` edge would apply.
    pub refresh: bool,
}

/// One block of a dry run, its items in plan order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunBlock {
    /// The block's name.
    pub name: String,
    /// Its items.
    pub items: Vec<DryRunItem>,
}

/// What a run of a plan would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// The plan's name.
    pub plan: String,
    /// The blocks, in order.
    pub blocks: Vec<DryRunBlock>,
}

impl DryRun {
    /// Every item, block after block.
    pub fn items(&self) -> impl Iterator<Item = &DryRunItem> {
        self.blocks.iter().flat_map(|b| b.items.iter())
    }

    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&DryRunItem> {
        self.items().find(|i| i.id == id)
    }

    /// The items a real run would apply.
    pub fn would_change(&self) -> impl Iterator<Item = &DryRunItem> {
        self.items().filter(|i| i.check == CheckOutcome::WouldApply)
    }
}

/// Validates `plan` against `registry` and runs `check` on every item in order (see the
/// module docs). Items read `resources` as in a real run. A plan that does not validate
/// is the error; a failing `check` is reported on its item.
pub async fn dry_run(
    plan: &Plan,
    registry: &Registry,
    resources: Arc<Resources>,
) -> Result<DryRun, PlanError> {
    let compiled = CompiledPlan::compile(plan, registry)?;
    // Never stored: the id items see in a dry run names no execution.
    let execution_id = ExecutionId::generate();
    let n = compiled.items.len();
    let mut outputs: Vec<Option<Arc<[u8]>>> = vec![None; n];
    let mut checks: Vec<Option<CheckOutcome>> = vec![None; n];
    let mut refresh = vec![false; n];
    for block in &compiled.shape.blocks {
        let offset = block.range.start;
        let (mut readiness, _) = Readiness::new(&block.graph, |_| Start::Pending);
        while let Some(local) = readiness.pop_ready() {
            let index = offset + local;
            let item = &compiled.items[index as usize];
            let inputs = compiled.shape.deps[index as usize]
                .iter()
                .map(|&d| {
                    (
                        compiled.items[d as usize].id.clone(),
                        outputs[d as usize].clone(),
                    )
                })
                .collect();
            let mut cx = ItemCtx::new(CtxParts {
                execution_id,
                index,
                item_id: item.id.clone(),
                attempt: 1,
                refresh: refresh[index as usize],
                inputs,
                control: Arc::new(AttemptControl::default()),
                port: None,
                resources: resources.clone(),
            });
            // Bounded like an attempt (its `timeout`, else a default): one check that hangs
            // must not hang the dry run.
            let limit = compiled.shape.policies[index as usize]
                .timeout
                .unwrap_or(CHECK_TIMEOUT);
            let check = AssertUnwindSafe(item.item.check_only(&mut cx)).catch_unwind();
            let checked = match tokio::time::timeout(limit, check).await {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(ItemError::Panicked(panic_message(panic))),
                Err(_) => Err(ItemError::Failed(format!(
                    "check did not answer within {}",
                    humantime::format_duration(limit)
                ))),
            };
            let outcome = match checked {
                Ok(Some(output)) => {
                    outputs[index as usize] = Some(Arc::from(output));
                    CheckOutcome::Satisfied
                }
                Ok(None) => {
                    for &dependent in compiled.shape.notified_by(index) {
                        refresh[dependent as usize] = true;
                    }
                    CheckOutcome::WouldApply
                }
                Err(e) => CheckOutcome::Failed {
                    error: e.to_string(),
                },
            };
            checks[index as usize] = Some(outcome);
            // Every item is checked, whatever its dependencies said.
            readiness.done(&block.graph, local);
        }
    }
    let mut checks = checks.into_iter();
    let blocks = compiled
        .blocks
        .iter()
        .map(|block| DryRunBlock {
            name: block.name.clone(),
            items: block
                .range
                .clone()
                .map(|index| {
                    let item = &compiled.items[index as usize];
                    DryRunItem {
                        id: item.id.to_string(),
                        kind: item.kind.to_string(),
                        // Each item of an acyclic block is popped once.
                        check: checks.next().flatten().unwrap_or(CheckOutcome::Failed {
                            error: "not checked".to_owned(),
                        }),
                        refresh: refresh[index as usize],
                    }
                })
                .collect(),
        })
        .collect();
    Ok(DryRun {
        plan: plan.name.clone(),
        blocks,
    })
}

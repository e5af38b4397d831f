//! Compiling a [`Plan`] into what runs: every item decoded by the registry, its policy
//! and semaphore tags, each block's DAG (refused with the cycle named), and the
//! [`Shape`] the core schedules. The first problem found is the error.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::error::{CYCLE_NAMED, PlanError};
use crate::model::{DynItem, Plan, Registry, cut, key_problem, valid_id};
use crate::sched::dag::BlockGraph;
use crate::sched::policy::Policy;
use crate::sched::shape::{Shape, ShapeBlock};
use crate::sched::tags::tags_of;

/// A validated plan, its items decoded, ready to run.
pub(crate) struct CompiledPlan {
    /// Every item, block after block, each block's items in plan order.
    pub(crate) items: Vec<CompiledItem>,
    /// Each block's name and its items' global index range.
    pub(crate) blocks: Vec<CompiledBlock>,
    /// What the scheduler needs: the blocks' DAGs and every item's dependencies.
    pub(crate) shape: Shape,
}

pub(crate) struct CompiledBlock {
    pub(crate) name: String,
    pub(crate) range: Range<u32>,
}

pub(crate) struct CompiledItem {
    pub(crate) id: Arc<str>,
    /// Its kind's name as registered (the type's `KIND`).
    pub(crate) kind: &'static str,
    pub(crate) item: Arc<dyn DynItem>,
    /// Its semaphore tags, resolved and sorted; `None` for an item without `sema`, so
    /// such items hold nothing and share nothing (see [`tags`](Self::tags)).
    tags: Option<Arc<[Arc<str>]>>,
}

impl CompiledItem {
    /// Its semaphore tags, resolved and sorted (none without `sema`).
    pub(crate) fn tags(&self) -> &[Arc<str>] {
        self.tags.as_deref().unwrap_or_default()
    }

    /// Its semaphore tags to hand to the semaphores (an empty list for an item without
    /// `sema`, which never asks for them).
    pub(crate) fn shared_tags(&self) -> Arc<[Arc<str>]> {
        self.tags.clone().unwrap_or_else(|| Arc::from([]))
    }
}

impl CompiledPlan {
    /// Validates `plan` against `registry`. The first problem found is the error.
    pub(crate) fn compile(plan: &Plan, registry: &Registry) -> Result<Self, PlanError> {
        if plan.item_count() == 0 {
            return Err(PlanError::Empty {
                plan: cut(&plan.name),
            });
        }
        if plan.parallelism == Some(0) {
            return Err(PlanError::ZeroParallelism {
                plan: cut(&plan.name),
            });
        }
        if let Some(key) = &plan.key
            && let Some(reason) = key_problem(key)
        {
            return Err(PlanError::BadKey {
                key: cut(key),
                reason,
            });
        }
        let mut index: HashMap<&str, u32> = HashMap::with_capacity(plan.item_count());
        let mut items = Vec::with_capacity(plan.item_count());
        let mut blocks = Vec::with_capacity(plan.blocks.len());
        let mut shape = Shape {
            blocks: Vec::with_capacity(plan.blocks.len()),
            deps: Vec::with_capacity(plan.item_count()),
            policies: Vec::with_capacity(plan.item_count()),
            notify: Vec::new(),
            guarded: Vec::new(),
            limited: Vec::new(),
        };
        // (upstream, dependent) for every `notify` edge.
        let mut notify: Vec<(u32, u32)> = Vec::new();
        // Some item takes semaphores.
        let mut guarded = false;
        for block in &plan.blocks {
            let start = items.len() as u32;
            for spec in &block.items {
                if !valid_id(&spec.id) {
                    return Err(PlanError::InvalidId {
                        item: spec.id.chars().take(160).collect(),
                    });
                }
                if index.insert(&spec.id, items.len() as u32).is_some() {
                    return Err(PlanError::DuplicateItem {
                        item: spec.id.clone(),
                        block: cut(&block.name),
                    });
                }
                let (kind, item) = match registry.decode(&spec.kind, &spec.params) {
                    None => {
                        return Err(PlanError::UnknownKind {
                            item: spec.id.clone(),
                            kind: cut(&spec.kind),
                        });
                    }
                    Some((_, Err(e))) => {
                        return Err(PlanError::BadParams {
                            item: spec.id.clone(),
                            kind: cut(&spec.kind),
                            reason: cut(&e.to_string()),
                        });
                    }
                    Some((kind, Ok(item))) => (kind, item),
                };
                shape.policies.push(Policy::of(spec)?);
                // Items without `sema` hold no list: no allocation or count per item.
                let tags = match &spec.sema {
                    None => None,
                    Some(_) => Some(tags_of(spec)?),
                };
                guarded |= tags.as_ref().is_some_and(|t| !t.is_empty());
                items.push(CompiledItem {
                    id: Arc::from(spec.id.as_str()),
                    kind,
                    item,
                    tags,
                });
            }
            let end = items.len() as u32;
            // Dependencies: this block's items (known now) or earlier blocks'.
            let mut local_deps = Vec::with_capacity(block.items.len());
            for (offset, spec) in block.items.iter().enumerate() {
                let mut deps = Vec::with_capacity(spec.after.len());
                let mut local = Vec::new();
                for dep in &spec.after {
                    let Some(&d) = index.get(dep.as_str()) else {
                        return Err(PlanError::UnknownDependency {
                            item: spec.id.clone(),
                            dependency: cut(dep),
                        });
                    };
                    if deps.contains(&d) {
                        continue;
                    }
                    deps.push(d);
                    if d >= start {
                        local.push(d - start);
                    }
                }
                for upstream in spec.notify_edges()? {
                    if let Some(&u) = index.get(upstream) {
                        notify.push((u, start + offset as u32));
                    }
                }
                debug_assert_eq!(shape.deps.len(), start as usize + offset);
                shape.deps.push(deps.into_boxed_slice());
                local_deps.push(local);
            }
            let graph = BlockGraph::new(local_deps);
            if let Some(cycle) = graph.find_cycle() {
                // The walk repeats its first item last; a long cycle is named by its start.
                let length = cycle.len() - 1;
                let named = if length <= CYCLE_NAMED {
                    cycle.len()
                } else {
                    CYCLE_NAMED
                };
                return Err(PlanError::Cycle {
                    block: cut(&block.name),
                    cycle: cycle[..named]
                        .iter()
                        .map(|&i| block.items[i as usize].id.clone())
                        .collect(),
                    length,
                });
            }
            blocks.push(CompiledBlock {
                name: block.name.clone(),
                range: start..end,
            });
            shape.blocks.push(ShapeBlock {
                range: start..end,
                graph,
            });
        }
        if guarded {
            shape.guarded = items.iter().map(|i| !i.tags().is_empty()).collect();
        }
        if !notify.is_empty() {
            let mut dependents = vec![Vec::new(); items.len()];
            for (upstream, dependent) in notify {
                if !dependents[upstream as usize].contains(&dependent) {
                    dependents[upstream as usize].push(dependent);
                }
            }
            shape.notify = dependents.into_iter().map(Vec::into_boxed_slice).collect();
        }
        Ok(CompiledPlan {
            items,
            blocks,
            shape,
        })
    }
}

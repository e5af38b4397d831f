//! Pure scheduling logic: no actors, no I/O, no clock; unit-tested and simulated in place.
//!
//! - [`compile`]: a plan validated into what runs (decoded items, policies, tags, DAGs).
//! - [`dag`]: a block's dependency graph, cycle detection, and readiness.
//! - [`policy`]: retries, backoff and timeouts of an item.
//! - [`shape`]: the plan as the scheduler sees it (blocks, graphs, dependencies).
//! - [`rate`]: token buckets for rate limits.
//! - [`sema`]: semaphores named by item tags, shared across executions.
//! - [`tags`]: an item's `sema` metaparam resolved into the tags it takes.
//! - [`run`]: every decision of one execution, as a deterministic state machine; the
//!   Execution actor is its shell.

pub(crate) mod compile;
pub(crate) mod dag;
pub(crate) mod policy;
pub(crate) mod rate;
pub(crate) mod run;
pub(crate) mod sema;
pub(crate) mod shape;
#[cfg(test)]
mod sim;
pub(crate) mod tags;

//! The behaviour suite every store backend passes (feature `store-suite`): what the trait's
//! rules mean, checked against a real backend.
//!
//! A backend is handed over as a [`Subject`]: a way to open one store, and to open it again
//! after it was dropped (a crash, to the backend: writes in flight, no close) or closed.
//! [`run`] runs every check on a fresh subject each and reports which failed and why. The
//! redb file and in-memory backends run it in CI (`tests/store_suite.rs`); a backend
//! written outside this crate runs it the same way:
//!
//! ```text
//! let report = tend_actors::store::suite::run(|| MySubject::new()).await;
//! assert!(report.failed.is_empty(), "{report}");
//! ```
//!
//! | check | what a user relies on |
//! |---|---|
//! | `acknowledged_is_durable` | an acknowledged commit is there after a crash and a reopen |
//! | `commit_is_all_or_nothing` | after a crash with commits in flight, each is wholly there or wholly not, in order |
//! | `recovery_follows_the_merge_rule` | items read back as `model::merge_started` says, before and after a reopen |
//! | `attempt_numbers_never_repeat` | an acknowledged start is counted after a crash, whatever the item record says |
//! | `live_executions_load` | the startup scan finds exactly the unfinished executions, with their done counts |
//! | `pages_are_newest_first_and_filtered` | paging order, cursors, status and search filters, the overlay |
//! | `deletion_and_retention` | finished executions are listed for retention, a deletion removes every record |
//! | `metadata_and_keys` | runtime metadata and idempotency keys read back |
//! | `the_sweep_deletes_exactly_old_unreferenced_artifacts` | the orphan sweep's rule |
//! | `references_racing_sweeps_never_lose_an_artifact` | a seeded property test: no referenced artifact is ever deleted |
//! | `leftovers_are_found` | records of an execution whose record is gone are found for the sweep |
//! | `a_newer_format_is_refused` | a store written by a newer build is refused at open with an error that says so |

mod artifacts;
mod listing;
mod records;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::error::StoreError;
use crate::model::{
    Block, Change, ExecutionId, ExecutionRecord, ExecutionStatus, ItemSpec, Plan, now_ms,
};
use crate::store::Store;

/// What a check returns: `Err` says what it saw.
pub type CheckResult = Result<(), String>;

/// A future a subject returns.
pub type SubjectFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// One store to run checks against, which can be opened again.
pub trait Subject: Send {
    /// Opens the store: empty the first time, and afterwards with what earlier opens made
    /// durable (when [`persistent`](Self::persistent)). A store dropped without a close
    /// (a crash) may still be releasing its resources: waiting for that (bounded) is the
    /// subject's business.
    fn open(&mut self) -> SubjectFuture<'_, Store>;

    /// Whether what is committed outlives the store being dropped (a file, a database); an
    /// in-memory store is not, and the checks that reopen are skipped for it.
    fn persistent(&self) -> bool;

    /// Makes the closed store look as a newer build of tend would leave it (a format this
    /// build does not know). Asked only of a persistent subject.
    fn mark_newer_format(&mut self) -> SubjectFuture<'_, ()>;
}

/// Which checks passed, failed or were skipped, and why.
#[derive(Debug, Default)]
pub struct SuiteReport {
    /// The checks that passed.
    pub passed: Vec<&'static str>,
    /// The checks that failed, with what they saw.
    pub failed: Vec<(&'static str, String)>,
    /// The checks skipped, with why.
    pub skipped: Vec<(&'static str, &'static str)>,
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed.len(),
            self.failed.len(),
            self.skipped.len()
        )?;
        for (check, why) in &self.failed {
            write!(f, "\n  FAILED {check}: {why}")?;
        }
        for (check, why) in &self.skipped {
            write!(f, "\n  skipped {check}: {why}")?;
        }
        Ok(())
    }
}

type Check<S> = for<'a> fn(&'a mut S) -> Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// Whether a check needs a persistent subject.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    Reopen,
}

fn checks<S: Subject>() -> Vec<(&'static str, Needs, Check<S>)> {
    vec![
        ("acknowledged_is_durable", Needs::Reopen, |s| {
            Box::pin(records::acknowledged_is_durable(s))
        }),
        ("commit_is_all_or_nothing", Needs::Nothing, |s| {
            Box::pin(records::commit_is_all_or_nothing(s))
        }),
        ("recovery_follows_the_merge_rule", Needs::Nothing, |s| {
            Box::pin(records::recovery_follows_the_merge_rule(s))
        }),
        ("first_records_and_replacements", Needs::Nothing, |s| {
            Box::pin(records::first_records_and_replacements(s))
        }),
        ("attempt_numbers_never_repeat", Needs::Reopen, |s| {
            Box::pin(records::attempt_numbers_never_repeat(s))
        }),
        ("live_executions_load", Needs::Nothing, |s| {
            Box::pin(listing::live_executions_load(s))
        }),
        ("pages_are_newest_first_and_filtered", Needs::Nothing, |s| {
            Box::pin(listing::pages_are_newest_first_and_filtered(s))
        }),
        ("deletion_and_retention", Needs::Nothing, |s| {
            Box::pin(listing::deletion_and_retention(s))
        }),
        ("metadata_and_keys", Needs::Nothing, |s| {
            Box::pin(records::metadata_and_keys(s))
        }),
        (
            "the_sweep_deletes_exactly_old_unreferenced_artifacts",
            Needs::Nothing,
            |s| Box::pin(artifacts::the_sweep_deletes_exactly_old_unreferenced(s)),
        ),
        (
            "references_racing_sweeps_never_lose_an_artifact",
            Needs::Nothing,
            |s| Box::pin(artifacts::references_racing_sweeps(s)),
        ),
        ("leftovers_are_found", Needs::Nothing, |s| {
            Box::pin(artifacts::leftovers_are_found(s))
        }),
        ("a_newer_format_is_refused", Needs::Reopen, |s| {
            Box::pin(records::a_newer_format_is_refused(s))
        }),
    ]
}

/// Runs every check, each on a subject `fresh` makes (an empty store), and reports.
pub async fn run<S: Subject>(mut fresh: impl FnMut() -> S) -> SuiteReport {
    let mut report = SuiteReport::default();
    for (name, needs, check) in checks::<S>() {
        let mut subject = fresh();
        if needs == Needs::Reopen && !subject.persistent() {
            report
                .skipped
                .push((name, "the store does not outlive being dropped"));
            continue;
        }
        match check(&mut subject).await {
            Ok(()) => report.passed.push(name),
            Err(why) => report.failed.push((name, why)),
        }
    }
    report
}

/// The names of every check, in the order [`run`] runs them.
pub fn check_names() -> Vec<&'static str> {
    struct Names;
    impl Subject for Names {
        fn open(&mut self) -> SubjectFuture<'_, Store> {
            Box::pin(async { Err(StoreError::Closed) })
        }
        fn persistent(&self) -> bool {
            false
        }
        fn mark_newer_format(&mut self) -> SubjectFuture<'_, ()> {
            Box::pin(async { Err(StoreError::Closed) })
        }
    }
    checks::<Names>()
        .into_iter()
        .map(|(name, ..)| name)
        .collect()
}

/// Fails with `what` unless `ok`.
fn ensure(ok: bool, what: impl FnOnce() -> String) -> CheckResult {
    if ok { Ok(()) } else { Err(what()) }
}

/// A store error as a check's failure, saying what was being done.
fn failed(doing: &str) -> impl FnOnce(StoreError) -> String + '_ {
    move |e| format!("{doing}: {e}")
}

/// A plan of `items` items named `i0`, `i1`, ... in one block.
fn plan(name: &str, items: usize) -> Plan {
    let mut block = Block::new("b");
    for i in 0..items {
        block.push(ItemSpec::raw(
            format!("i{i}"),
            "noop",
            serde_json::json!({}),
        ));
    }
    Plan::new(name).block(block)
}

/// A new execution's record.
fn record(id: ExecutionId, plan: Plan, status: ExecutionStatus) -> ExecutionRecord {
    ExecutionRecord::new(id, plan, status, now_ms())
}

/// Stores a new execution with `items` items and `status`; returns its record.
async fn stored(
    store: &Store,
    name: &str,
    items: usize,
    status: ExecutionStatus,
) -> Result<ExecutionRecord, String> {
    let record = record(ExecutionId::generate(), plan(name, items), status);
    store
        .commit(vec![record.change(true)])
        .await
        .map_err(failed("committing an execution record"))?;
    Ok(record)
}

/// Drops `store` as a crash would (no close) and opens the subject again.
async fn crash_and_reopen<S: Subject>(subject: &mut S, store: Store) -> Result<Store, String> {
    drop(store);
    subject
        .open()
        .await
        .map_err(failed("opening the store again after a crash"))
}

/// Changes for a whole batch of `n` items' records of execution `id`, each the item's
/// first.
fn item_changes(id: ExecutionId, states: &[crate::model::ItemState]) -> Vec<Change> {
    states
        .iter()
        .enumerate()
        .map(|(index, state)| Change::Item {
            id,
            index: index as u32,
            state: state.clone(),
            first: true,
        })
        .collect()
}

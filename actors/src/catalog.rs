//! The Catalog: reading executions without asking the Supervisor.
//!
//! Listing, counting and status reads come here instead of queueing behind the Supervisor's
//! mailbox. The store is the listing's source: pages, counts and finished executions are
//! read from it in short read transactions on the blocking pool. Over it lies what only
//! the Supervisor knows, for the executions it holds in memory (those not finished): their
//! live status, their done count as their attempts move it, why they are paused or were not
//! resumed, and their actor, which a status read asks directly. The Supervisor publishes
//! that overlay after each message it handles; it holds nothing for a finished execution,
//! so memory does not grow with the executions stored.
//!
//! An execution that is starting (its record may not be durable yet) is asked of whoever
//! is writing it, a [`ReportSource`]: the Supervisor implements it, so the Catalog names
//! no Supervisor type.

use std::collections::HashMap;

use std::sync::{Arc, RwLock};

use crate::error::{RuntimeError, StoreError};
use crate::model::{
    ExecutionId, ExecutionPage, ExecutionReport, ExecutionStatus, ExecutionSummary, ListQuery,
    MAX_PAGE,
};
use crate::store::Store;

/// What the Supervisor knows of one execution it holds in memory.
#[derive(Debug, Clone)]
pub(crate) struct LiveView {
    /// Its summary, but for what its Execution counts as it goes (`tally`).
    pub(crate) summary: ExecutionSummary,
    pub(crate) tally: Arc<crate::tally::Tally>,
    /// Why the runtime paused it or did not resume it (not always stored).
    pub(crate) problem: Option<String>,
    /// Why it cannot be read, when it cannot.
    pub(crate) corrupt: Option<String>,
    pub(crate) actor: Option<Arc<dyn LiveReport>>,
    /// A submit or resume is writing its record: only the Supervisor can answer for it.
    pub(crate) starting: bool,
}

impl LiveView {
    fn summary(&self) -> ExecutionSummary {
        let mut summary = self.summary.clone();
        self.tally.apply(&mut summary);
        summary
    }
}

/// How many executions stand how: all stored, and those the runtime holds in memory by
/// status (every execution that is not finished, and the corrupt ones it has come across:
/// at startup those in the live index, later any a read found).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutionCounts {
    /// Executions stored.
    pub stored: u64,
    /// Executions the runtime holds in memory: those not finished, and the corrupt ones
    /// it has come across. Finished ones are read from the store when asked for.
    pub in_memory: usize,
    /// Running (or starting).
    pub running: usize,
    /// Interrupted.
    pub interrupted: usize,
    /// Paused, on request or by the runtime.
    pub paused: usize,
    /// Paused by the runtime, with a reason (their actor kept failing).
    pub paused_by_runtime: usize,
    /// Stopped by a failed store write, until they run again.
    pub stopped_by_store: usize,
    /// Whose records do not decode.
    pub corrupt: usize,
}

type Overlay = Arc<RwLock<HashMap<ExecutionId, LiveView>>>;

impl crate::store::Overlay for RwLock<HashMap<ExecutionId, LiveView>> {
    fn known(&self, id: ExecutionId) -> Option<ExecutionSummary> {
        self.read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(LiveView::summary)
    }
}

/// Reads executions without going through the Supervisor (see the module docs). Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    store: Store,
    live: Overlay,
}

fn view(live: &Overlay, id: ExecutionId) -> Option<LiveView> {
    live.read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned()
}

/// Who answers for an execution the Catalog cannot read yet: one whose submit or resume
/// is writing its record. `ActorRef<SupervisorMsg>` is one (it asks the Supervisor).
pub trait ReportSource {
    /// Execution `id`'s full report, once its start has settled.
    fn report(
        &self,
        id: ExecutionId,
    ) -> impl std::future::Future<Output = Result<ExecutionReport, RuntimeError>> + Send;
}

/// An execution's actor, as the Catalog asks it for its live report: the Execution
/// implements it, so the Catalog names no actor's messages.
pub(crate) trait LiveReport: Send + Sync + std::fmt::Debug {
    /// Its report now; `None` when it does not answer (it has stopped).
    fn live_report(&self) -> futures::future::BoxFuture<'_, Option<ExecutionReport>>;
}

/// Executions `Catalog::list` reads per read transaction.
const LIST_CHUNK: usize = 10_000;

impl Catalog {
    /// A catalog of `store`, with nothing live yet.
    pub fn new(store: Store) -> Self {
        Catalog {
            store,
            live: Arc::default(),
        }
    }

    /// Applies what changed in the Supervisor's memory: a view for each execution it now
    /// holds, `None` for each it let go.
    pub(crate) fn publish(
        &self,
        changes: impl IntoIterator<Item = (ExecutionId, Option<LiveView>)>,
    ) {
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        for (id, change) in changes {
            match change {
                Some(view) => {
                    live.insert(id, view);
                }
                None => {
                    live.remove(&id);
                }
            }
        }
    }

    /// How many executions stand how (see [`ExecutionCounts`]): the store's count and a
    /// pass over what is in memory, never over every stored execution.
    pub async fn counts(&self) -> Result<ExecutionCounts, StoreError> {
        let stored = self.count().await?;
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        let mut counts = ExecutionCounts {
            stored,
            in_memory: live.len(),
            ..ExecutionCounts::default()
        };
        for view in live.values() {
            match view.summary.status {
                ExecutionStatus::Running => counts.running += 1,
                ExecutionStatus::Interrupted => counts.interrupted += 1,
                ExecutionStatus::Paused => {
                    counts.paused += 1;
                    counts.paused_by_runtime += usize::from(view.problem.is_some());
                }
                ExecutionStatus::Corrupt => counts.corrupt += 1,
                ExecutionStatus::Completed
                | ExecutionStatus::Failed
                | ExecutionStatus::Cancelled => {}
            }
            if view
                .summary
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with(crate::model::STOPPED_BY_STORE))
            {
                counts.stopped_by_store += 1;
            }
        }
        Ok(counts)
    }

    /// One page of executions, newest first. A filtered page (by status or search) reads
    /// at most 20,000 records: it may hold fewer than `limit` executions and still have a
    /// `next`.
    pub async fn page(&self, query: ListQuery) -> Result<ExecutionPage, StoreError> {
        let query = ListQuery {
            limit: query.limit.clamp(1, MAX_PAGE),
            ..query
        };
        let (executions, next) = self.store.page(query, self.live.clone()).await?;
        Ok(ExecutionPage { executions, next })
    }

    /// Every execution, oldest first, in read transactions of 10,000 records. It reads
    /// every record: prefer [`page`](Self::page).
    pub async fn list(&self) -> Result<Vec<ExecutionSummary>, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let (chunk, next) = self
                .store
                .after(after, LIST_CHUNK, self.live.clone())
                .await?;
            all.extend(chunk);
            match next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// How many executions are stored.
    pub async fn count(&self) -> Result<u64, StoreError> {
        self.store.execution_count().await
    }

    /// One execution's full report: from its actor while it runs, else from the store.
    /// Only an execution that is starting is asked of `supervisor` (its record may not
    /// be durable yet).
    pub async fn status(
        &self,
        id: ExecutionId,
        supervisor: &impl ReportSource,
    ) -> Result<ExecutionReport, RuntimeError> {
        let view = view(&self.live, id);
        match view {
            Some(view) if view.starting => supervisor.report(id).await,
            Some(LiveView {
                corrupt: Some(reason),
                ..
            }) => Err(RuntimeError::Corrupt { id, reason }),
            Some(view) => {
                if let Some(actor) = &view.actor
                    && let Some(report) = actor.live_report().await
                {
                    return Ok(report);
                }
                stored_report(&self.store, id, Some(view.summary.status), view.problem).await
            }
            None => stored_report(&self.store, id, None, None).await,
        }
    }
}

/// The report of execution `id` as stored. `status` is what the Supervisor holds it as, if
/// it holds it: a stored `running` that it does not hold as running was cut short (its
/// actor failed), so it reads as interrupted. `problem` is the Supervisor's reason, when
/// the record has none.
pub(crate) async fn stored_report(
    store: &Store,
    id: ExecutionId,
    status: Option<ExecutionStatus>,
    problem: Option<String>,
) -> Result<ExecutionReport, RuntimeError> {
    store
        .load_execution(id)
        .await
        .map(|stored| {
            let stored_status = match (stored.record.status, status) {
                (ExecutionStatus::Running, Some(held)) if held != ExecutionStatus::Running => {
                    ExecutionStatus::Interrupted
                }
                (s, _) => s,
            };
            let mut report = stored.report(stored_status);
            report.reason = report.reason.or(problem);
            report
        })
        .map_err(|e| match e {
            StoreError::Missing(id) => RuntimeError::UnknownExecution(id),
            // A finished execution's records are read only when it is asked for, so a
            // damaged one shows here.
            e @ StoreError::Decode { .. } => RuntimeError::Corrupt {
                id,
                reason: e.to_string(),
            },
            e => RuntimeError::from(e),
        })
}

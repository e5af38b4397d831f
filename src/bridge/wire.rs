//! What the bridge sends and receives, as JSON. Ids are strings, times RFC 3339, durations
//! humantime strings.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tend_actors::{
    AttemptOutcome, AttemptReport, CheckOutcome, DryRun, ExecutionReport, ExecutionStatus,
    ExecutionSummary, Halting, InterruptStrategy, ItemReport, ItemStatus, Outcome, Progress,
    SemaphoreReport, SemaphoreUser,
};
use utoipa::ToSchema;

/// RFC 3339, or seconds since the epoch for a time RFC 3339 cannot show (year 10000 or
/// later, which only a damaged record can hold).
fn time(t: SystemTime) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    if write!(text, "{}", humantime::format_rfc3339_millis(t)).is_err() {
        text.clear();
        let secs = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = write!(text, "{secs}");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    #[test]
    fn times_far_in_the_future_do_not_panic() {
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(super::time(far), "300000000000");
        assert_eq!(
            super::time(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }
}

/// Whether anything is wrong with the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HealthStatus {
    /// Nothing in `reasons`.
    Ok,
    /// Something in `reasons` is wrong.
    Degraded,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`, or `degraded` when something in `reasons` is wrong.
    pub(crate) status: HealthStatus,
    /// What is wrong, one sentence each: the store's last failure (until a commit
    /// succeeds again), executions a failed store write stopped (until they run again),
    /// corrupt executions, paused executions.
    pub(crate) reasons: Vec<String>,
    /// Executions known.
    pub(crate) executions: usize,
    /// Executions running.
    pub(crate) running: usize,
    /// Executions whose records do not decode.
    pub(crate) corrupt: usize,
    /// Executions the runtime paused (their actor kept failing).
    pub(crate) paused: usize,
    /// This build's version of tend.
    pub(crate) version: &'static str,
    /// The Janitor's last health check: measures, warnings, the modules' answers.
    pub(crate) check: Option<tend_actors::monitor::HealthReport>,
}

/// One line of `GET /executions`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SummaryView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) status: ExecutionStatus,
    pub(crate) items_total: usize,
    pub(crate) items_done: usize,
    /// How much of its running items' work is done, in items, as their reported progress
    /// says (1.5: one and a half items' worth).
    #[schema(minimum = 0.0)]
    pub(crate) running_progress: f64,
    /// RFC 3339.
    pub(crate) created: String,
    /// RFC 3339: when its status last changed, or one of its items last ended.
    pub(crate) updated: String,
    /// Why it is corrupt, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Still `running`, but told to stop: `interrupting`, `pausing` or `cancelling`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) halting: Option<Halting>,
}

impl From<ExecutionSummary> for SummaryView {
    fn from(s: ExecutionSummary) -> Self {
        SummaryView {
            id: s.id.to_string(),
            name: s.name,
            status: s.status,
            items_total: s.items_total,
            items_done: s.items_done,
            running_progress: s.running_progress,
            created: time(s.created),
            updated: time(s.updated),
            error: s.error,
            halting: s.halting,
        }
    }
}

/// `GET /executions` body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionList {
    /// Newest first.
    pub(crate) executions: Vec<SummaryView>,
    /// The `cursor` of the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<String>,
}

/// `POST /executions` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Created {
    /// The new execution's id.
    pub(crate) id: String,
}

/// One item in `GET /executions/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemView {
    pub(crate) id: String,
    pub(crate) kind: String,
    /// Its params, as the plan gave them: any JSON.
    #[schema(value_type = Value)]
    pub(crate) params: serde_json::Value,
    /// The ids of the items it runs after, as the plan gave them.
    pub(crate) after: Vec<String>,
    pub(crate) status: ItemStatus,
    /// When its latest attempt started (RFC 3339); null if none did, or its start is not
    /// known.
    pub(crate) started: Option<String>,
    /// When its latest attempt ended (RFC 3339); null while one runs.
    pub(crate) ended: Option<String>,
    /// How long its latest attempt took, or has taken so far while it runs (humantime);
    /// null when its start is not known.
    pub(crate) duration: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) progress: Option<Progress>,
    pub(crate) message: Option<String>,
    /// The item's output, once done: any JSON.
    #[schema(value_type = Option<Value>)]
    pub(crate) output: Option<serde_json::Value>,
    /// Once done: false when its `check` found the goal state held and `apply` was
    /// skipped.
    pub(crate) changed: Option<bool>,
    /// A refresh from a `notify` dependency is pending.
    pub(crate) refresh: bool,
    pub(crate) error: Option<String>,
    /// Its last few failed attempts, oldest first.
    pub(crate) errors: Vec<AttemptErrorView>,
    /// Its last ten ended attempts, oldest first. An attempt number up to `attempts`
    /// missing here has no end recorded: the process stopped under it, or its start never
    /// became durable, or it was older than the ten kept.
    pub(crate) history: Vec<AttemptView>,
}

/// An ended attempt of an item.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptView {
    /// The attempt's number.
    pub(crate) attempt: u32,
    /// When it started (RFC 3339); null when not known (it never started, or an
    /// older build ran it).
    pub(crate) started: Option<String>,
    /// When it ended (RFC 3339).
    pub(crate) ended: String,
    /// How long it ran (humantime), if its start is known.
    pub(crate) duration: Option<String>,
    /// `done`, `failed` or `interrupted`.
    pub(crate) outcome: AttemptOutcome,
    /// Why it failed or was interrupted, when it says.
    pub(crate) error: Option<String>,
}

/// `from` to `to` as humantime, to the millisecond (zero if `to` is earlier).
fn span(from: SystemTime, to: SystemTime) -> String {
    let d = to.duration_since(from).unwrap_or_default();
    let ms = std::time::Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64);
    humantime::format_duration(ms).to_string()
}

impl From<AttemptReport> for AttemptView {
    fn from(a: AttemptReport) -> Self {
        AttemptView {
            attempt: a.attempt,
            started: a.started.map(time),
            ended: time(a.ended),
            duration: a.started.map(|s| span(s, a.ended)),
            outcome: a.outcome,
            error: a.error,
        }
    }
}

/// A failed attempt of an item.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptErrorView {
    /// The attempt's number.
    pub(crate) attempt: u32,
    /// When it ended (RFC 3339).
    pub(crate) at: String,
    /// Why it failed.
    pub(crate) error: String,
}

impl From<ItemReport> for ItemView {
    fn from(item: ItemReport) -> Self {
        let output = item.output_json();
        // The latest attempt: the one in flight, else the last that ended.
        let last = item.history.last().filter(|a| a.attempt == item.attempts);
        let (started, ended, duration) = match (item.running_since, last) {
            (Some(since), _) => (
                Some(time(since)),
                None,
                Some(span(since, SystemTime::now())),
            ),
            (None, Some(a)) => (
                a.started.map(time),
                Some(time(a.ended)),
                a.started.map(|s| span(s, a.ended)),
            ),
            (None, None) => (None, None, None),
        };
        ItemView {
            id: item.id,
            kind: item.kind,
            params: item.params,
            after: item.after,
            status: item.status,
            started,
            ended,
            duration,
            attempts: item.attempts,
            progress: item.progress,
            message: item.message,
            output,
            changed: item.changed,
            refresh: item.refresh,
            error: item.error,
            errors: item
                .errors
                .into_iter()
                .map(|e| AttemptErrorView {
                    attempt: e.attempt,
                    at: time(e.at),
                    error: e.error,
                })
                .collect(),
            history: item.history.into_iter().map(AttemptView::from).collect(),
        }
    }
}

/// One block in `GET /executions/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockView {
    pub(crate) name: String,
    pub(crate) items: Vec<ItemView>,
}

/// `GET /executions/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) status: ExecutionStatus,
    pub(crate) items_total: usize,
    pub(crate) items_done: usize,
    /// RFC 3339.
    pub(crate) created: String,
    /// RFC 3339.
    pub(crate) updated: String,
    /// Present once the execution is no longer running.
    pub(crate) outcome: Option<Outcome>,
    /// Why it is paused, or why it could not be resumed automatically.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Still `running`, but told to stop: `interrupting`, `pausing` or `cancelling`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) halting: Option<Halting>,
    pub(crate) blocks: Vec<BlockView>,
}

impl From<ExecutionReport> for ExecutionView {
    fn from(report: ExecutionReport) -> Self {
        let outcome = (report.status != ExecutionStatus::Running).then(|| report.outcome());
        ExecutionView {
            id: report.id.to_string(),
            items_total: report.items_total(),
            items_done: report.items_done(),
            name: report.name,
            status: report.status,
            created: time(report.created),
            updated: time(report.updated),
            outcome,
            reason: report.reason,
            halting: report.halting,
            blocks: report
                .blocks
                .into_iter()
                .map(|b| BlockView {
                    name: b.name,
                    items: b.items.into_iter().map(ItemView::from).collect(),
                })
                .collect(),
        }
    }
}

/// The optional body of the interrupt routes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InterruptBody {
    /// Default `finish_current`.
    #[serde(default)]
    pub(crate) strategy: InterruptStrategy,
}

/// What an execution was told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    /// `POST /executions/{id}/interrupt`.
    Interrupting,
    /// `POST /executions/{id}/pause`.
    Pausing,
    /// `POST /executions/{id}/cancel`.
    Cancelling,
    /// `POST /executions/{id}/resume`.
    Resuming,
    /// `POST /executions/{id}/retry`.
    Retrying,
}

/// The body of a change that takes no options: `{}` or nothing (typed JSON all the
/// same); anything else is refused, so that an option sent to a route that does not
/// take it is not silently ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoOptions {}

impl crate::bridge::body::Strict for NoOptions {
    const SHAPE: crate::bridge::body::Shape = crate::bridge::body::Shape::Struct(&[]);
}

/// `202` answer of interrupt, pause, cancel, resume and retry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    pub(crate) id: String,
    /// What it was told to do.
    pub(crate) action: Action,
}

/// `POST /interrupt` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InterruptedAll {
    /// The executions told to stop.
    pub(crate) ids: Vec<String>,
}

/// Who holds or waits for a semaphore.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SemaphoreUserView {
    /// The execution's id.
    pub(crate) execution: String,
    /// The item's id.
    pub(crate) item: String,
}

/// One semaphore in use.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SemaphoreView {
    /// The tag that names it (`db:2`).
    pub(crate) tag: String,
    /// How many may hold it at once.
    pub(crate) size: usize,
    pub(crate) holders: Vec<SemaphoreUserView>,
    /// In the order they will get it.
    pub(crate) waiters: Vec<SemaphoreUserView>,
}

/// `GET /semaphores`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SemaphoreList {
    /// Every semaphore held or waited for, by tag.
    pub(crate) semaphores: Vec<SemaphoreView>,
}

impl From<SemaphoreReport> for SemaphoreView {
    fn from(s: SemaphoreReport) -> Self {
        let user = |u: SemaphoreUser| SemaphoreUserView {
            execution: u.execution.to_string(),
            item: u.item,
        };
        SemaphoreView {
            tag: s.tag,
            size: s.size,
            holders: s.holders.into_iter().map(user).collect(),
            waiters: s.waiters.into_iter().map(user).collect(),
        }
    }
}

/// What an item's `check` found in a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CheckView {
    /// A run would apply it.
    WouldApply,
    /// Its goal state holds: a run would leave it unchanged.
    Satisfied,
    /// Its check failed (`error` says why).
    Failed,
}

/// One item of a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunItemView {
    pub(crate) id: String,
    pub(crate) kind: String,
    /// `would_apply`, `satisfied` (its goal state holds) or `failed` (its check failed).
    pub(crate) check: CheckView,
    /// Why its check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// A dependency on a `notify` edge would apply, so it would get a refresh.
    pub(crate) refresh: bool,
}

/// One block of a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunBlockView {
    pub(crate) name: String,
    pub(crate) items: Vec<DryRunItemView>,
}

/// `POST /executions?dry_run=true`: what a run of the plan would change. Nothing was
/// applied or written.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunView {
    pub(crate) plan: String,
    /// How many items would apply.
    pub(crate) would_change: usize,
    pub(crate) blocks: Vec<DryRunBlockView>,
}

impl From<DryRun> for DryRunView {
    fn from(run: DryRun) -> Self {
        let would_change = run.would_change().count();
        DryRunView {
            plan: run.plan,
            would_change,
            blocks: run
                .blocks
                .into_iter()
                .map(|b| DryRunBlockView {
                    name: b.name,
                    items: b
                        .items
                        .into_iter()
                        .map(|i| {
                            let (check, error) = match i.check {
                                CheckOutcome::WouldApply => (CheckView::WouldApply, None),
                                CheckOutcome::Satisfied => (CheckView::Satisfied, None),
                                CheckOutcome::Failed { error } => (CheckView::Failed, Some(error)),
                                _ => (CheckView::Failed, Some("unknown check outcome".to_owned())),
                            };
                            DryRunItemView {
                                id: i.id,
                                kind: i.kind,
                                check,
                                error,
                                refresh: i.refresh,
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

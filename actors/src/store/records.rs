//! Records as stored: msgpack maps (`rmp_serde::to_vec_named`) with a version field `v`.
//! New fields get `#[serde(default)]`; enum variants are never renamed; bytes use
//! `serde_bytes`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{AttemptOutcome, ExecutionId, ExecutionStatus, ItemStatus, Plan, Progress};

/// The record version this build writes.
pub(crate) const RECORD_VERSION: u16 = 1;

/// One execution: its plan and status, as the runtime holds it (stored as a
/// [`StoredExecutionRecord`], with the plan apart).
#[derive(Debug, Clone)]
pub(crate) struct ExecutionRecord {
    pub(crate) v: u16,
    pub(crate) id: ExecutionId,
    pub(crate) plan: Plan,
    pub(crate) status: ExecutionStatus,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    /// Interrupted by a shutdown, not by anyone's interrupt: the next start resumes it,
    /// as it does one a crash left running.
    pub(crate) resume_on_start: bool,
    /// Why the runtime paused it (status `paused`).
    pub(crate) reason: Option<String>,
    /// Still running, but asked to pause: a restart finds it paused, not to resume.
    pub(crate) pausing: bool,
    /// How many of its items are done, when whoever wrote a status other than `running`
    /// knew (the execution's final record, the startup scan); `None` otherwise. Startup
    /// takes it instead of reading every item record.
    pub(crate) items_done: Option<u64>,
}

/// An execution record as stored in `executions`: everything but the plan, which is
/// written once, at submit, in `plans` (so a status change of a 10,000-item execution
/// writes a few bytes, not its plan again). A record from before that split still holds
/// its plan; reading takes it from there, and the startup scan moves it out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredExecutionRecord {
    pub(crate) v: u16,
    pub(crate) id: ExecutionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<Plan>,
    pub(crate) status: ExecutionStatus,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) resume_on_start: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) pausing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) items_done: Option<u64>,
    /// The plan's name and item count, so a listing reads no plan. `None` in records from
    /// before they were kept here: a listing then reads the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) items_total: Option<u64>,
}

impl ExecutionRecord {
    /// The ops that store this record's status (and, with `plan`, its plan: only when the
    /// execution is new).
    pub(crate) fn ops(&self, plan: bool) -> Result<Vec<crate::store::Op>, StoreError> {
        let status = encode(&StoredExecutionRecord {
            v: self.v,
            id: self.id,
            plan: None,
            status: self.status,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            resume_on_start: self.resume_on_start,
            reason: self.reason.clone(),
            pausing: self.pausing,
            items_done: self.items_done,
            name: Some(self.plan.name.clone()),
            items_total: Some(self.plan.item_count() as u64),
        })?;
        let mut ops = Vec::with_capacity(2);
        if plan {
            ops.push(crate::store::Op::Plan {
                id: self.id,
                plan: encode(&self.plan)?,
            });
        }
        ops.push(crate::store::Op::Execution {
            id: self.id,
            record: status,
            live: !self.status.is_final(),
        });
        Ok(ops)
    }
}

impl StoredExecutionRecord {
    /// The record with its plan (`plan` when it was stored apart).
    pub(crate) fn with_plan(self, plan: Plan) -> ExecutionRecord {
        ExecutionRecord {
            v: self.v,
            id: self.id,
            plan,
            status: self.status,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            resume_on_start: self.resume_on_start,
            reason: self.reason,
            pausing: self.pausing,
            items_done: self.items_done,
        }
    }
}

/// How one item's last attempt ended. An item with no record has not run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ItemRecord {
    pub(crate) v: u16,
    pub(crate) status: ItemStatus,
    pub(crate) attempts: u32,
    // Fields at their default are left out: two records per attempt are written on the
    // hot path, and most items have no output, error or progress to store (their history
    // is one entry: a number and two times).
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub(crate) output: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
    /// Failed attempts so far (what `retry` counts).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) failures: u32,
    /// The last few ended attempts, oldest first (stored as `errors`: records from before
    /// every attempt was kept hold only the failed ones).
    #[serde(default, rename = "errors", skip_serializing_if = "Vec::is_empty")]
    pub(crate) history: Vec<AttemptRecord>,
    /// Attempts in a row that the process stopped under (see `ItemState::crashes`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) crashes: u32,
    /// Done without `apply`: its `check` found the goal state held.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) unchanged: bool,
    /// An attempt since the last success may have changed something (see
    /// `ItemState::maybe_changed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) maybe_changed: bool,
    /// A refresh from a `notify` dependency is pending (see `ItemState::refresh`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) refresh: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ItemRecord {
    /// The op that stores item `index` of execution `id` as the core has it.
    pub(crate) fn op(
        id: ExecutionId,
        index: u32,
        state: &crate::sched::run::ItemState,
    ) -> Result<crate::store::Op, StoreError> {
        Ok(crate::store::Op::Item {
            id,
            index,
            attempts: state.attempts,
            record: encode(&ItemRecord::of(state))?,
        })
    }

    /// The record of an item as the core has it.
    pub(crate) fn of(state: &crate::sched::run::ItemState) -> Self {
        ItemRecord {
            v: RECORD_VERSION,
            status: state.status,
            attempts: state.attempts,
            output: state.output.as_deref().map(<[u8]>::to_vec),
            error: state.error.clone(),
            progress: state.progress,
            message: state.message.as_deref().map(str::to_owned),
            failures: state.failures,
            crashes: state.crashes,
            unchanged: state.unchanged,
            maybe_changed: state.maybe_changed,
            refresh: state.refresh,
            history: state.history.iter().map(AttemptRecord::of).collect(),
        }
    }
}

/// One ended attempt as stored. `at_ms` is when it ended; the fields at their default
/// are left out (a first attempt that succeeded stores its number and two times).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AttemptRecord {
    pub(crate) attempt: u32,
    pub(crate) at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) started_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "is_failed")]
    pub(crate) outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) error: String,
}

fn is_failed(outcome: &AttemptOutcome) -> bool {
    *outcome == AttemptOutcome::Failed
}

impl AttemptRecord {
    fn of(past: &crate::sched::run::PastAttempt) -> Self {
        AttemptRecord {
            attempt: past.attempt,
            at_ms: past.ended_ms,
            started_ms: past.started_ms,
            outcome: past.outcome,
            error: past.error.clone().unwrap_or_default(),
        }
    }

    /// As the core keeps it.
    pub(crate) fn past(&self) -> crate::sched::run::PastAttempt {
        crate::sched::run::PastAttempt {
            attempt: self.attempt,
            started_ms: self.started_ms,
            ended_ms: self.at_ms,
            outcome: self.outcome,
            error: (!self.error.is_empty()).then(|| self.error.clone()),
        }
    }
}

/// The attempts of one execution that started and whose item record does not show them
/// yet: one record per execution, rewritten once per commit, so starting an attempt costs
/// no B-tree insert of its own. An entry counts only while the item's record has fewer
/// attempts (see `load`). Stored as runs `[first item index, items, attempt, crashes]` of
/// consecutive items with the same attempt and crash count, so the usual set (first
/// attempts of a window of items) stays a few bytes however many run at once.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StartsRecord {
    pub(crate) v: u16,
    pub(crate) runs: Vec<[u32; 4]>,
}

/// The intra-item checkpoint an item saved with `ItemCtx::checkpoint`, with the progress it
/// had reported by then (what a status after a restart shows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CheckpointRecord {
    pub(crate) v: u16,
    #[serde(with = "serde_bytes")]
    pub(crate) state: Vec<u8>,
    #[serde(default)]
    pub(crate) progress: Option<Progress>,
}

/// Encodes a record.
pub(crate) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(record).map_err(|e| StoreError::Encode(e.to_string()))
}

/// Decodes a record; `what` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Decode {
        what: what(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::{ItemRecord, decode, encode};
    use crate::model::{AttemptOutcome, ItemStatus};

    /// An item record as format 3 wrote it: only failed attempts, each with its error.
    #[derive(Serialize)]
    struct OldItem {
        v: u16,
        status: ItemStatus,
        attempts: u32,
        errors: Vec<OldError>,
    }

    #[derive(Serialize)]
    struct OldError {
        attempt: u32,
        at_ms: u64,
        error: String,
    }

    #[test]
    fn an_older_records_failed_attempts_read_as_failed_attempts() {
        let old = OldItem {
            v: 1,
            status: ItemStatus::Done,
            attempts: 2,
            errors: vec![OldError {
                attempt: 1,
                at_ms: 5,
                error: "boom".to_owned(),
            }],
        };
        let bytes = encode(&old).unwrap();
        let record: ItemRecord = decode(&bytes, String::new).unwrap();
        assert_eq!(record.history.len(), 1);
        let past = record.history[0].past();
        assert_eq!(past.attempt, 1);
        assert_eq!(past.ended_ms, 5);
        assert_eq!(past.started_ms, None);
        assert_eq!(past.outcome, AttemptOutcome::Failed);
        assert_eq!(past.error.as_deref(), Some("boom"));
    }
}

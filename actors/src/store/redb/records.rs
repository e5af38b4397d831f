//! Records as stored: msgpack maps (`rmp_serde::to_vec_named`) with a version field `v`.
//! New fields get `#[serde(default)]`; enum variants are never renamed; bytes use
//! `serde_bytes`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use std::sync::Arc;

use crate::model::{
    AttemptOutcome, ExecutionId, ExecutionRecord, ExecutionStatus, ItemState, ItemStatus,
    PastAttempt, Plan, Progress,
};

/// The record version this build writes.
pub(crate) const RECORD_VERSION: u16 = 1;

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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) cancelling: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) items_done: Option<u64>,
    /// The plan's name and item count, so a listing reads no plan. `None` in records from
    /// before they were kept here: a listing then reads the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) items_total: Option<u64>,
}

/// Pushes the ops that store `record`'s status (and, with `plan`, its plan: only when the
/// execution is new).
pub(crate) fn execution_ops(
    record: &ExecutionRecord,
    plan: bool,
    ops: &mut Vec<super::op::Op>,
) -> Result<(), StoreError> {
    let status = encode(&StoredExecutionRecord {
        v: RECORD_VERSION,
        id: record.id,
        plan: None,
        status: record.status,
        created_ms: record.created_ms,
        updated_ms: record.updated_ms,
        resume_on_start: record.resume_on_start,
        reason: record.reason.clone(),
        pausing: record.pausing,
        cancelling: record.cancelling,
        items_done: record.items_done,
        name: Some(record.plan.name.clone()),
        items_total: Some(record.plan.item_count() as u64),
    })?;
    if plan {
        ops.push(super::op::Op::Plan {
            id: record.id,
            plan: encode(&*record.plan)?,
        });
    }
    ops.push(super::op::Op::Execution {
        id: record.id,
        record: status,
        live: !record.status.is_final(),
    });
    Ok(())
}

impl StoredExecutionRecord {
    /// The record with its plan (`plan` when it was stored apart).
    pub(crate) fn with_plan(self, plan: Plan) -> ExecutionRecord {
        ExecutionRecord {
            id: self.id,
            plan: Arc::new(plan),
            status: self.status,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            resume_on_start: self.resume_on_start,
            reason: self.reason,
            pausing: self.pausing,
            cancelling: self.cancelling,
            items_done: self.items_done,
        }
    }
}

/// How one item's last attempt ended. An item with no record has not run. The core's state
/// is written as an [`ItemRecordOut`], with the same fields; this is written only when a
/// record read is changed (`settle_killed`).
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
    /// The op that stores item `index` of execution `id` as the core has it, its record
    /// encoded at the end of `records` (its batch's buffer).
    pub(crate) fn op(
        id: ExecutionId,
        index: u32,
        state: &ItemState,
        records: &mut Vec<u8>,
    ) -> Result<super::op::Op, StoreError> {
        let start = records.len();
        if let Err(e) = rmp_serde::encode::write_named(records, &ItemRecordOut::of(state)) {
            // Nothing half-written stays for the next record.
            records.truncate(start);
            return Err(StoreError::Encode(e.to_string()));
        }
        Ok(super::op::Op::Item {
            id,
            index,
            attempts: state.attempts,
            record: start..records.len(),
        })
    }

    /// The item's state as the model has it.
    pub(crate) fn state(self) -> ItemState {
        ItemState {
            status: self.status,
            attempts: self.attempts,
            failures: self.failures,
            crashes: self.crashes,
            progress: self.progress,
            message: self.message.map(Arc::from),
            output: self.output.map(Arc::from),
            error: self.error,
            history: self.history.iter().map(AttemptRecord::past).collect(),
            started_ms: None,
            unchanged: self.unchanged,
            maybe_changed: self.maybe_changed,
            refresh: self.refresh,
        }
    }
}

/// An [`ItemRecord`] as written, borrowed from the core's state: two records per attempt
/// are written on the hot path, and this copies nothing on the way to its bytes.
#[derive(Serialize)]
struct ItemRecordOut<'a> {
    v: u16,
    status: ItemStatus,
    attempts: u32,
    #[serde(with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    output: Option<&'a [u8]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<Progress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    failures: u32,
    #[serde(rename = "errors", skip_serializing_if = "Attempts::is_empty")]
    history: Attempts<'a>,
    #[serde(skip_serializing_if = "is_zero")]
    crashes: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unchanged: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    maybe_changed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    refresh: bool,
}

impl<'a> ItemRecordOut<'a> {
    fn of(state: &'a ItemState) -> Self {
        ItemRecordOut {
            v: RECORD_VERSION,
            status: state.status,
            attempts: state.attempts,
            output: state.output.as_deref(),
            error: state.error.as_deref(),
            progress: state.progress,
            message: state.message.as_deref(),
            failures: state.failures,
            history: Attempts(&state.history),
            crashes: state.crashes,
            unchanged: state.unchanged,
            maybe_changed: state.maybe_changed,
            refresh: state.refresh,
        }
    }
}

/// Ended attempts as written: each an [`AttemptRecord`] array.
struct Attempts<'a>(&'a [PastAttempt]);

impl Attempts<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Attempts<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|past| {
            (
                past.attempt,
                past.ended_ms,
                past.started_ms
                    .map(|started| past.ended_ms.saturating_sub(started)),
                past.outcome,
                past.error.as_deref().unwrap_or(""),
            )
        }))
    }
}

/// One ended attempt as stored. Written as an array `[attempt, at_ms, took_ms, outcome,
/// error]` (`at_ms` when it ended, `took_ms` how long it ran, nil when its start is not
/// known, the error empty when there is none), not as a map: every item's record carries
/// one on the hot path, and a map's keys tripled its size. Read from that array or from
/// the map an older build wrote (`attempt`, `at_ms`, `error`: failed attempts only, hence
/// the default outcome).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AttemptRecord {
    pub(crate) attempt: u32,
    pub(crate) at_ms: u64,
    #[serde(default)]
    pub(crate) took_ms: Option<u64>,
    #[serde(default)]
    pub(crate) outcome: AttemptOutcome,
    #[serde(default)]
    pub(crate) error: String,
}

impl Serialize for AttemptRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            self.attempt,
            self.at_ms,
            self.took_ms,
            self.outcome,
            &self.error,
        )
            .serialize(serializer)
    }
}

impl AttemptRecord {
    /// As the core keeps it.
    pub(crate) fn past(&self) -> PastAttempt {
        PastAttempt {
            attempt: self.attempt,
            started_ms: self.took_ms.map(|took| self.at_ms.saturating_sub(took)),
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
    // Room for a small record (an execution's status, a checkpoint's header), so it is
    // not grown field by field. (Item records are encoded into their batch's buffer.)
    let mut bytes = Vec::with_capacity(128);
    rmp_serde::encode::write_named(&mut bytes, record)
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    Ok(bytes)
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

    use super::{AttemptRecord, Attempts, ItemRecord, decode, encode};
    use crate::model::{AttemptOutcome, ItemStatus, PastAttempt};

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

    #[test]
    fn attempts_are_stored_as_short_arrays_and_read_back_whole() {
        let done = PastAttempt {
            attempt: 3,
            started_ms: Some(1_733_000_000_000),
            ended_ms: 1_733_000_000_042,
            outcome: AttemptOutcome::Done,
            error: None,
        };
        let failed = PastAttempt {
            attempt: 2,
            started_ms: None,
            ended_ms: 7,
            outcome: AttemptOutcome::Failed,
            error: Some("no".to_owned()),
        };
        let one = [done.clone()];
        let bytes = encode(&Attempts(&one)).unwrap();
        // An array of one array of five: the number, the end, 42 ms, "done", "".
        assert!(bytes.len() <= 20, "{} bytes", bytes.len());
        let both = [failed.clone(), done.clone()];
        let back: Vec<AttemptRecord> =
            decode(&encode(&Attempts(&both)).unwrap(), String::new).unwrap();
        let past: Vec<PastAttempt> = back.iter().map(AttemptRecord::past).collect();
        assert_eq!(past, both);
        // A record read and written again (`settle_killed`) keeps them as they were.
        let again: Vec<AttemptRecord> = decode(&encode(&back).unwrap(), String::new).unwrap();
        let past: Vec<PastAttempt> = again.iter().map(AttemptRecord::past).collect();
        assert_eq!(past, both);
    }
}

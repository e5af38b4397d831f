//! Rows and model types, mapped by hand: a [`Change`] becomes the [`Row`]s a group commit
//! writes, and a row read back becomes an execution record, an item's state, a
//! checkpoint or a summary.
//!
//! The mapping's rules:
//! - statuses and outcomes are their wire names (`running`, `done`, ...); a name this build
//!   does not know reads as a decode error, so the execution lists as corrupt;
//! - `u32` counts are `bigint`; `u64` times and progress are `bigint`, saturated at
//!   `i64::MAX` (past any real time or count);
//! - text columns cannot hold NUL: a NUL in an execution's name or reason, or a metadata
//!   key, is stored as U+FFFD (plans are `json`, whose escapes keep it);
//! - a plan is its JSON;
//! - an item's record is its status and attempt number as columns and the rest as one
//!   msgpack `bytea` (`item_record`), which keeps every byte of its message, error and
//!   history.

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio_postgres::Row as PgRow;

use super::item_record;
use crate::error::StoreError;
use crate::model::{
    Change, Checkpoint, ExecutionId, ExecutionRecord, ExecutionStatus, ExecutionSummary, ItemState,
    ItemStatus, Plan, Progress, StoredSummary, time_of_ms,
};

/// `value` as a `bigint`, saturated.
pub(crate) fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `bigint` read back as a `u64` (a negative one, which this backend never writes, as 0).
pub(crate) fn unbig(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A `bigint` read back as a `u32` count (out of range: saturated).
pub(crate) fn count(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// `text` as a text column can hold it: without NUL.
pub(crate) fn text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// An execution's record as its row holds it.
#[derive(Debug, Clone)]
pub(crate) struct ExecutionRow {
    pub(crate) name: String,
    pub(crate) status: &'static str,
    pub(crate) live: bool,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
    pub(crate) resume_on_start: bool,
    pub(crate) reason: Option<String>,
    pub(crate) pausing: bool,
    pub(crate) cancelling: bool,
    pub(crate) items_total: i64,
    pub(crate) items_done: Option<i64>,
}

/// An item's record as its row holds it (see `item_record`).
#[derive(Debug, Clone)]
pub(crate) struct ItemRow {
    pub(crate) status: &'static str,
    pub(crate) attempts: i64,
    /// The rest of the state, encoded.
    pub(crate) record: Vec<u8>,
    /// No row of the item exists yet (the change said it was the item's first record):
    /// it may be inserted without looking for one to replace. Not a column.
    pub(crate) first: bool,
}

/// A checkpoint as its row holds it.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointRow {
    pub(crate) state: Vec<u8>,
    pub(crate) progress: Option<(i64, i64)>,
}

/// One row to write (or rows to delete), as a [`Change`] says.
#[derive(Debug, Clone)]
pub(crate) enum Row {
    Execution(ExecutionId, ExecutionRow),
    Plan(ExecutionId, String),
    Key {
        key: String,
        execution: ExecutionId,
        digest: [u8; 32],
    },
    Started {
        execution: ExecutionId,
        index: u32,
        attempt: i64,
        crashes: i64,
    },
    Item(ExecutionId, u32, ItemRow),
    Checkpoint(ExecutionId, u32, CheckpointRow),
    ClearCheckpoint(ExecutionId, u32),
    ClearStarts(ExecutionId),
    Meta(String, Vec<u8>),
    Delete(ExecutionId),
    Artifact {
        artifact: [u8; 32],
        bytes: Vec<u8>,
        toi_ms: i64,
        execution: ExecutionId,
    },
}

impl Row {
    /// About how many bytes the row sends (what bounds a group commit's size).
    pub(crate) fn weight(&self) -> usize {
        64 + match self {
            Row::Plan(_, plan) => plan.len(),
            Row::Item(_, _, item) => item.record.len(),
            Row::Checkpoint(_, _, checkpoint) => checkpoint.state.len(),
            Row::Meta(key, value) => key.len() + value.len(),
            Row::Artifact { bytes, .. } => bytes.len(),
            _ => 0,
        }
    }
}

fn encode_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Encode(e.to_string())
}

fn progress(progress: Option<Progress>) -> Option<(i64, i64)> {
    progress.map(|p| (big(p.done), big(p.total)))
}

/// The rows that store `changes`, in order.
pub(crate) fn encode(changes: Vec<Change>) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::with_capacity(changes.len());
    for change in changes {
        match change {
            Change::Execution { record, new } => {
                if new {
                    let plan = serde_json::to_string(&*record.plan).map_err(encode_error)?;
                    rows.push(Row::Plan(record.id, plan));
                }
                rows.push(Row::Execution(
                    record.id,
                    ExecutionRow {
                        name: text(&record.plan.name).into_owned(),
                        status: record.status.as_str(),
                        live: !record.status.is_final(),
                        created_ms: big(record.created_ms),
                        updated_ms: big(record.updated_ms),
                        resume_on_start: record.resume_on_start,
                        reason: record.reason.as_deref().map(|r| text(r).into_owned()),
                        pausing: record.pausing,
                        cancelling: record.cancelling,
                        items_total: big(record.plan.item_count() as u64),
                        items_done: record.items_done.map(big),
                    },
                ));
            }
            Change::Key { key, owner } => rows.push(Row::Key {
                key,
                execution: owner.id,
                digest: owner.digest,
            }),
            Change::Started { id, index, started } => rows.push(Row::Started {
                execution: id,
                index,
                attempt: i64::from(started.attempt),
                crashes: i64::from(started.crashes),
            }),
            Change::Item {
                id,
                index,
                state,
                first,
            } => rows.push(Row::Item(id, index, item_row(state, first)?)),
            Change::Checkpoint {
                id,
                index,
                checkpoint,
            } => rows.push(Row::Checkpoint(
                id,
                index,
                CheckpointRow {
                    state: checkpoint.state,
                    progress: progress(checkpoint.progress),
                },
            )),
            Change::ClearCheckpoint { id, index } => rows.push(Row::ClearCheckpoint(id, index)),
            Change::ClearStarts { id } => rows.push(Row::ClearStarts(id)),
            Change::Meta { key, value } => rows.push(Row::Meta(text(&key).into_owned(), value)),
            Change::Delete { id } => rows.push(Row::Delete(id)),
            Change::PutArtifact {
                id,
                artifact,
                bytes,
                now_ms,
            } => rows.push(Row::Artifact {
                artifact,
                bytes,
                toi_ms: big(now_ms),
                execution: id,
            }),
        }
    }
    Ok(rows)
}

fn item_row(state: ItemState, first: bool) -> Result<ItemRow, StoreError> {
    Ok(ItemRow {
        status: state.status.as_str(),
        attempts: i64::from(state.attempts),
        record: item_record::encode(&state)?,
        first,
    })
}

/// A read that failed.
pub(crate) fn read_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Read(e.to_string())
}

/// A status or outcome from its wire name; `what` names the record in the error.
pub(crate) fn named<T: DeserializeOwned>(
    name: &str,
    what: &dyn Fn() -> String,
) -> Result<T, StoreError> {
    use serde::de::IntoDeserializer;
    let deserializer: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        name.into_deserializer();
    T::deserialize(deserializer).map_err(|e| StoreError::Decode {
        what: what(),
        reason: e.to_string(),
    })
}

/// Column `index` of `row`; a value of the wrong type reads as a decode error of `what`.
pub(crate) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a PgRow,
    index: usize,
    what: &dyn Fn() -> String,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(|e| StoreError::Decode {
        what: what(),
        reason: e.to_string(),
    })
}

/// An execution id read back from a text column.
pub(crate) fn execution_id(text: &str) -> Result<ExecutionId, StoreError> {
    text.parse().map_err(|e| StoreError::Decode {
        what: "an execution id".to_owned(),
        reason: format!("{e}"),
    })
}

pub(crate) fn progress_of(done: Option<i64>, total: Option<i64>) -> Option<Progress> {
    Some(Progress {
        done: unbig(done?),
        total: unbig(total?),
    })
}

/// An execution's record from a row of `RECORD_COLUMNS` (starting at column 0).
pub(crate) fn execution_record(
    row: &PgRow,
    id: ExecutionId,
) -> Result<ExecutionRecord, StoreError> {
    let what = || format!("execution record {id}");
    let status: &str = column(row, 1, &what)?;
    let plan: Option<&str> = column(row, 9, &what)?;
    let Some(plan) = plan else {
        return Err(StoreError::Decode {
            what: what(),
            reason: "its plan is not stored".to_owned(),
        });
    };
    let plan: Plan = serde_json::from_str(plan).map_err(|e| StoreError::Decode {
        what: format!("plan of execution {id}"),
        reason: e.to_string(),
    })?;
    let items_done: Option<i64> = column(row, 8, &what)?;
    Ok(ExecutionRecord {
        id,
        plan: Arc::new(plan),
        status: named(status, &what)?,
        created_ms: unbig(column(row, 2, &what)?),
        updated_ms: unbig(column(row, 3, &what)?),
        resume_on_start: column(row, 4, &what)?,
        reason: column(row, 5, &what)?,
        pausing: column(row, 6, &what)?,
        cancelling: column(row, 7, &what)?,
        items_done: items_done.map(unbig),
    })
}

/// An item's index and state from a row of `ITEM_COLUMNS`.
pub(crate) fn item_state(row: &PgRow, id: ExecutionId) -> Result<(i64, ItemState), StoreError> {
    let index: i64 = column(row, 0, &|| format!("an item record of {id}"))?;
    let what = || format!("item record {id}/{index}");
    let status: &str = column(row, 1, &what)?;
    let status = named::<ItemStatus>(status, &what)?;
    let record: &[u8] = column(row, 3, &what)?;
    let state = item_record::decode(id, index, status, column(row, 2, &what)?, record)?;
    Ok((index, state))
}

/// A checkpoint's index and contents from a row of `load_checkpoints`.
pub(crate) fn checkpoint(row: &PgRow, id: ExecutionId) -> Result<(i64, Checkpoint), StoreError> {
    let index: i64 = column(row, 0, &|| format!("a checkpoint of {id}"))?;
    let what = || format!("checkpoint record {id}/{index}");
    Ok((
        index,
        Checkpoint {
            state: column(row, 1, &what)?,
            progress: progress_of(column(row, 2, &what)?, column(row, 3, &what)?),
        },
    ))
}

/// A summary from a row of the listing statements (`SUMMARY_COLUMNS`, then the count of
/// done items when the record does not say); one that does not decode lists as corrupt.
pub(crate) fn summary(row: &PgRow) -> Result<StoredSummary, StoreError> {
    let id: &str = row.try_get(0).map_err(read_error)?;
    let id = execution_id(id)?;
    match decode_summary(row, id) {
        Err(e @ StoreError::Decode { .. }) => Ok(StoredSummary::corrupt(id, e.to_string())),
        result => result,
    }
}

fn decode_summary(row: &PgRow, id: ExecutionId) -> Result<StoredSummary, StoreError> {
    let what = || format!("execution record {id}");
    let status: &str = column(row, 2, &what)?;
    let items_done: Option<i64> = column(row, 7, &what)?;
    let counted: Option<i64> = column(row, 8, &what)?;
    let updated_ms = unbig(column(row, 5, &what)?);
    let reason: Option<String> = column(row, 6, &what)?;
    Ok(StoredSummary {
        summary: ExecutionSummary {
            id,
            name: column(row, 1, &what)?,
            status: named::<ExecutionStatus>(status, &what)?,
            items_total: unbig(column(row, 3, &what)?) as usize,
            items_done: unbig(items_done.or(counted).unwrap_or(0)) as usize,
            running_progress: 0.0,
            created: time_of_ms(unbig(column(row, 4, &what)?)),
            updated: time_of_ms(updated_ms),
            error: reason.clone(),
            halting: None,
        },
        updated_ms,
        reason,
    })
}

/// A status from its stored name (for the retention list, which skips what does not
/// decode).
pub(crate) fn execution_status(name: &str) -> Option<ExecutionStatus> {
    named(name, &String::new).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_columns_lose_nul_and_nothing_else() {
        assert_eq!(text("plain"), "plain");
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
    }

    #[test]
    fn statuses_read_back_by_their_wire_names() {
        for status in [
            ExecutionStatus::Running,
            ExecutionStatus::Interrupted,
            ExecutionStatus::Completed,
            ExecutionStatus::Failed,
            ExecutionStatus::Paused,
            ExecutionStatus::Cancelled,
            ExecutionStatus::Corrupt,
        ] {
            assert_eq!(execution_status(status.as_str()), Some(status));
        }
        assert_eq!(execution_status("exploded"), None);
        let what = || "x".to_owned();
        assert_eq!(
            named::<ItemStatus>("retrying", &what).unwrap(),
            ItemStatus::Retrying
        );
        assert!(named::<ItemStatus>("", &what).is_err());
    }

    #[test]
    fn times_saturate_and_read_back() {
        assert_eq!(big(u64::MAX), i64::MAX);
        assert_eq!(unbig(big(1_733_000_000_000)), 1_733_000_000_000);
        assert_eq!(unbig(-5), 0);
        assert_eq!(count(i64::MAX), u32::MAX);
    }
}

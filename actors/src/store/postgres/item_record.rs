//! An item's record in its row: `status` and `attempts` as columns (what the statements
//! that count done items read), everything else in one `bytea`, `record`: a msgpack array
//! of the fields below, in their order.
//!
//! One column for the rest, not one per field: a group commit sends each column of its
//! items as an array, and each array is unnested and each value converted on the server
//! (version 1's thirteen columns also cast the history to `json` per row). A field a later
//! version adds goes at the end with `#[serde(default)]`, so records written before it
//! still read.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{AttemptOutcome, ExecutionId, ItemState, ItemStatus, PastAttempt, Progress};

/// One ended attempt as a history stores it: `[attempt, started_ms, ended_ms, outcome,
/// error]`.
pub(crate) type StoredAttempt<S> = (u32, Option<u64>, u64, AttemptOutcome, Option<S>);

/// A stored attempt read back.
pub(crate) fn past_attempt(stored: StoredAttempt<String>) -> PastAttempt {
    let (attempt, started_ms, ended_ms, outcome, error) = stored;
    PastAttempt {
        attempt,
        started_ms,
        ended_ms,
        outcome,
        error,
    }
}

/// The fields of `record`, borrowed from the state they encode.
#[derive(Serialize)]
struct Encoded<'a> {
    failures: u32,
    crashes: u32,
    progress: Option<(u64, u64)>,
    message: Option<&'a str>,
    #[serde(with = "serde_bytes")]
    output: Option<&'a [u8]>,
    error: Option<&'a str>,
    history: Vec<StoredAttempt<&'a str>>,
    unchanged: bool,
    maybe_changed: bool,
    refresh: bool,
}

/// The fields of `record`, read back.
#[derive(Deserialize)]
struct Decoded {
    failures: u32,
    crashes: u32,
    progress: Option<(u64, u64)>,
    message: Option<String>,
    #[serde(with = "serde_bytes")]
    output: Option<Vec<u8>>,
    error: Option<String>,
    history: Vec<StoredAttempt<String>>,
    unchanged: bool,
    maybe_changed: bool,
    refresh: bool,
}

/// `state`'s `record` column.
pub(crate) fn encode(state: &ItemState) -> Result<Vec<u8>, StoreError> {
    let encoded = Encoded {
        failures: state.failures,
        crashes: state.crashes,
        progress: state.progress.map(|p| (p.done, p.total)),
        message: state.message.as_deref(),
        output: state.output.as_deref(),
        error: state.error.as_deref(),
        history: state
            .history
            .iter()
            .map(|past| {
                (
                    past.attempt,
                    past.started_ms,
                    past.ended_ms,
                    past.outcome,
                    past.error.as_deref(),
                )
            })
            .collect(),
        unchanged: state.unchanged,
        maybe_changed: state.maybe_changed,
        refresh: state.refresh,
    };
    rmp_serde::to_vec(&encoded).map_err(|e| StoreError::Encode(e.to_string()))
}

/// The state of item `index` of execution `id` from its row's columns.
pub(crate) fn decode(
    id: ExecutionId,
    index: i64,
    status: ItemStatus,
    attempts: i64,
    record: &[u8],
) -> Result<ItemState, StoreError> {
    let decoded: Decoded = rmp_serde::from_slice(record).map_err(|e| StoreError::Decode {
        what: format!("item record {id}/{index}"),
        reason: e.to_string(),
    })?;
    Ok(ItemState {
        status,
        attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
        failures: decoded.failures,
        crashes: decoded.crashes,
        progress: decoded
            .progress
            .map(|(done, total)| Progress { done, total }),
        message: decoded.message.map(Arc::from),
        output: decoded.output.map(Arc::from),
        error: decoded.error,
        history: decoded.history.into_iter().map(past_attempt).collect(),
        started_ms: None,
        unchanged: decoded.unchanged,
        maybe_changed: decoded.maybe_changed,
        refresh: decoded.refresh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttemptOutcome;

    #[test]
    fn a_state_reads_back_as_written_nul_and_all() {
        let state = ItemState {
            status: ItemStatus::Done,
            attempts: 3,
            failures: 2,
            crashes: 1,
            progress: Some(Progress {
                done: u64::MAX,
                total: u64::MAX,
            }),
            message: Some(Arc::from("half\0way")),
            output: Some(Arc::from(&[0u8, 1, 2][..])),
            error: Some("no\0pe".to_owned()),
            history: smallvec::smallvec![PastAttempt {
                attempt: 2,
                started_ms: Some(5),
                ended_ms: 6,
                outcome: AttemptOutcome::Failed,
                error: Some("boom".to_owned()),
            }],
            started_ms: None,
            unchanged: true,
            maybe_changed: true,
            refresh: true,
        };
        let id = ExecutionId::generate();
        let record = encode(&state).unwrap();
        let back = decode(id, 4, state.status, 3, &record).unwrap();
        assert_eq!(back, state);
        let error = decode(id, 4, state.status, 3, &record[..record.len() / 2])
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("{id}/4")), "{error}");
    }
}

//! Version 1's item rows, a column per field, read once more: the migration to version 2
//! moves each into the shape `item_record` describes, in batches, inside the migration's
//! transaction, then drops the old table.

use std::sync::Arc;

use tokio_postgres::Row as PgRow;
use tokio_postgres::Transaction;

use super::item_record::{self, StoredAttempt, past_attempt};
use super::rows::{column, count, execution_id, named, progress_of, read_error};
use crate::error::StoreError;
use crate::model::{ExecutionId, ItemState, ItemStatus};

/// The columns of a version-1 item row, in the order [`item_state`] reads them.
const ITEM_COLUMNS: &str = "idx, status, attempts, failures, crashes, progress_done, \
     progress_total, message, output, error, history::text, unchanged, maybe_changed, refresh";

/// How many rows one batch of the move reads.
const BATCH: i64 = 1000;

/// Moves every row of version 1's items table (renamed `items_v1` by the migration's SQL)
/// into the new `items`, then drops it. A row that does not read fails the migration,
/// naming it: nothing is dropped then, since the transaction rolls back.
pub(crate) async fn move_items(txn: &Transaction<'_>, s: &str) -> Result<u64, StoreError> {
    let read = txn
        .prepare(&format!(
            r#"SELECT execution, {ITEM_COLUMNS} FROM "{s}".items_v1
               WHERE (execution, idx) > ($1, $2) ORDER BY execution, idx LIMIT $3"#
        ))
        .await
        .map_err(read_error)?;
    let write = txn
        .prepare(&format!(
            r#"INSERT INTO "{s}".items (execution, idx, status, attempts, record)
               SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[],
                   $5::bytea[])"#
        ))
        .await
        .map_err(read_error)?;
    let mut after = (String::new(), -1i64);
    let mut moved = 0;
    loop {
        let rows = txn
            .query(&read, &[&after.0, &after.1, &BATCH])
            .await
            .map_err(read_error)?;
        let Some(last) = rows.last() else { break };
        after = (
            last.try_get(0).map_err(read_error)?,
            last.try_get(1).map_err(read_error)?,
        );
        let mut executions = Vec::with_capacity(rows.len());
        let mut indexes = Vec::with_capacity(rows.len());
        let mut statuses = Vec::with_capacity(rows.len());
        let mut attempts = Vec::with_capacity(rows.len());
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let execution: &str = row.try_get(0).map_err(read_error)?;
            let id = execution_id(execution)?;
            let (index, state) = item_state(row, id)?;
            executions.push(execution.to_owned());
            indexes.push(index);
            statuses.push(state.status.as_str());
            attempts.push(i64::from(state.attempts));
            records.push(item_record::encode(&state)?);
        }
        txn.execute(
            &write,
            &[&executions, &indexes, &statuses, &attempts, &records],
        )
        .await
        .map_err(read_error)?;
        moved += rows.len() as u64;
    }
    txn.batch_execute(&format!(r#"DROP TABLE "{s}".items_v1"#))
        .await
        .map_err(read_error)?;
    Ok(moved)
}

/// An item's index and state from a row of [`ITEM_COLUMNS`].
fn item_state(row: &PgRow, id: ExecutionId) -> Result<(i64, ItemState), StoreError> {
    let index: i64 = column(row, 1, &|| format!("an item record of {id}"))?;
    let what = || format!("item record {id}/{index}");
    let status: &str = column(row, 2, &what)?;
    let history: &str = column(row, 11, &what)?;
    let history: Vec<StoredAttempt<String>> =
        serde_json::from_str(history).map_err(|e| StoreError::Decode {
            what: what(),
            reason: format!("its history: {e}"),
        })?;
    let message: Option<&str> = column(row, 8, &what)?;
    let output: Option<&[u8]> = column(row, 9, &what)?;
    let state = ItemState {
        status: named::<ItemStatus>(status, &what)?,
        attempts: count(column(row, 3, &what)?),
        failures: count(column(row, 4, &what)?),
        crashes: count(column(row, 5, &what)?),
        progress: progress_of(column(row, 6, &what)?, column(row, 7, &what)?),
        message: message.map(Arc::from),
        output: output.map(Arc::from),
        error: column(row, 10, &what)?,
        history: history.into_iter().map(past_attempt).collect(),
        started_ms: None,
        unchanged: column(row, 12, &what)?,
        maybe_changed: column(row, 13, &what)?,
        refresh: column(row, 14, &what)?,
    };
    Ok((index, state))
}

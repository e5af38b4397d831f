//! Reading executions back: the startup scan and one execution in full (its record, item
//! records after the recovery rule, and checkpoints, as one snapshot).

use tokio_postgres::Row as PgRow;
use tokio_postgres::types::ToSql;

use super::pool::{Db, Doing, Work, pipelined};
use super::rows::{self, execution_id, execution_record, read_error, unbig};
use crate::error::StoreError;
use crate::model::{Checkpoint, ExecutionId, ExecutionStatus, ItemState, Started, merge_started};
use crate::store::{LoadedExecution, StoredExecution};

/// Every execution whose stored status is not final, decoded as far as possible: one
/// whose record or plan does not decode is `Corrupt`, and the others are still read.
pub(crate) async fn load_live(db: &Db) -> Result<Vec<LoadedExecution>, StoreError> {
    let rows = db
        .run(Doing::Read, |client, sql| {
            Box::pin(async move {
                let statement = client.prepare_cached(&sql.load_live).await?;
                client.query(&statement, &[]).await
            })
        })
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: &str = row.try_get(0).map_err(read_error)?;
        let Ok(id) = execution_id(id) else {
            tracing::warn!(key = id, "skipping an execution row whose id is not an id");
            continue;
        };
        match execution_record(&row, id) {
            Ok(record) => {
                let counted: Option<i64> = row.try_get(10).map_err(read_error)?;
                // A record that is not `running` says how many items are done when it
                // knows (its execution's final record does); else they were counted.
                let items_done = match record.items_done {
                    Some(done) if record.status != ExecutionStatus::Running => done as usize,
                    _ => unbig(counted.unwrap_or(0)) as usize,
                };
                out.push(LoadedExecution::Sound { record, items_done });
            }
            Err(e @ StoreError::Decode { .. }) => out.push(LoadedExecution::Corrupt {
                id,
                reason: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The rows of one execution: its record, items, starts and checkpoints.
struct Rows {
    record: Vec<PgRow>,
    items: Vec<PgRow>,
    starts: Vec<PgRow>,
    checkpoints: Vec<PgRow>,
}

/// One execution with its item records (after the recovery rule) and checkpoints, read in
/// one read-only repeatable-read transaction (one snapshot), sent as one pipeline.
pub(crate) async fn load_execution(
    db: &Db,
    id: ExecutionId,
) -> Result<StoredExecution, StoreError> {
    let key = id.to_string();
    let rows = db
        .run(Doing::Read, |client, sql| {
            let key = key.clone();
            Box::pin(async move {
                let (record, items, starts, checkpoints) = futures::try_join!(
                    client.prepare_cached(&sql.load_execution),
                    client.prepare_cached(&sql.load_items),
                    client.prepare_cached(&sql.load_starts),
                    client.prepare_cached(&sql.load_checkpoints),
                )?;
                let params: &[&(dyn ToSql + Sync)] = &[&key];
                let work: Vec<Work<'_, Vec<PgRow>>> = vec![
                    Box::pin(async {
                        client
                            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                            .await
                            .map(|()| Vec::new())
                    }),
                    Box::pin(client.query(&record, params)),
                    Box::pin(client.query(&items, params)),
                    Box::pin(client.query(&starts, params)),
                    Box::pin(client.query(&checkpoints, params)),
                    Box::pin(async { client.batch_execute("COMMIT").await.map(|()| Vec::new()) }),
                ];
                let mut results = Vec::with_capacity(6);
                for result in pipelined(work).await {
                    results.push(result?);
                }
                let mut results = results.into_iter().skip(1);
                let mut next = || results.next().unwrap_or_default();
                Ok(Rows {
                    record: next(),
                    items: next(),
                    starts: next(),
                    checkpoints: next(),
                })
            })
        })
        .await?;
    let Some(row) = rows.record.first() else {
        return Err(StoreError::Missing(id));
    };
    let record = execution_record(row, id)?;
    let count = record.plan.item_count();
    let mut items: Vec<Option<ItemState>> = vec![None; count];
    for row in &rows.items {
        let (index, state) = rows::item_state(row, id)?;
        match usize::try_from(index).ok().and_then(|i| items.get_mut(i)) {
            Some(slot) => *slot = Some(state),
            None => {
                return Err(StoreError::Decode {
                    what: format!("item record {id}/{index}"),
                    reason: format!("the plan has only {count} items"),
                });
            }
        }
    }
    for row in &rows.starts {
        let index: i64 = row.try_get(0).map_err(read_error)?;
        let attempt: i64 = row.try_get(1).map_err(read_error)?;
        let crashes: i64 = row.try_get(2).map_err(read_error)?;
        let Some(slot) = usize::try_from(index).ok().and_then(|i| items.get_mut(i)) else {
            tracing::warn!(execution_id = %id, index, "a started attempt past the plan ignored");
            continue;
        };
        let started = Started {
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
            crashes: u32::try_from(crashes).unwrap_or(u32::MAX),
        };
        *slot = merge_started(slot.take(), Some(started));
    }
    let mut checkpoints: Vec<Option<Checkpoint>> = vec![None; count];
    for row in &rows.checkpoints {
        let (index, checkpoint) = rows::checkpoint(row, id)?;
        if let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| checkpoints.get_mut(i))
        {
            *slot = Some(checkpoint);
        }
    }
    Ok(StoredExecution {
        record,
        items,
        checkpoints,
    })
}

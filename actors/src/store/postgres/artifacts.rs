//! Artifacts: content-addressed `bytea` rows with a timestamp of interest, the executions
//! that reference each, and the orphan sweep; and the leftovers of deleted executions.
//!
//! No referenced artifact is ever deleted, without a lock held across statements:
//! - every write that references an artifact also writes the artifact's row (referencing
//!   touches its timestamp of interest; storing it again upserts it), in the same
//!   transaction or statement;
//! - a sweep batch is one `DELETE ... WHERE ... NOT EXISTS (reference) AND toi_ms < cutoff`
//!   statement in a `REPEATABLE READ` transaction. If a reference lands after the sweep's
//!   snapshot, the artifact's row was written after it too, and the delete of that row
//!   fails with a serialization error (PostgreSQL's rule for a row changed since the
//!   snapshot) instead of deleting it: the batch is tried again, and then sees the
//!   reference. (Under `READ COMMITTED` the delete would recheck only the row itself, with
//!   the reference check still reading the old snapshot.)
//! - a reference to an artifact the sweep deleted first finds no row, and says so.

use tokio_postgres::types::ToSql;

use super::pool::{Db, Doing, Work, pipelined};
use super::rows::{big, execution_id, read_error, unbig};
use crate::error::StoreError;
use crate::model::{ArtifactId, ExecutionId};
use crate::store::SweepBatch;

/// Execution `id` references `artifact`, touching its timestamp of interest, if it still
/// exists; `false` if the sweep deleted it. One statement: the check and the reference.
pub(crate) async fn reference(
    db: &Db,
    id: ExecutionId,
    artifact: ArtifactId,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let execution = id.to_string();
    let now = big(now_ms);
    let touched: i64 = db
        .run(Doing::Write, |client, sql| {
            let execution = execution.clone();
            Box::pin(async move {
                let statement = client.prepare_cached(&sql.reference_artifact).await?;
                client
                    .query_one(&statement, &[&artifact.0.as_slice(), &now, &execution])
                    .await?
                    .try_get(0)
            })
        })
        .await?;
    Ok(touched > 0)
}

/// An artifact's bytes, touching its timestamp of interest; `None` if it is gone.
pub(crate) async fn read(
    db: &Db,
    artifact: ArtifactId,
    now_ms: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let now = big(now_ms);
    db.run(Doing::Write, |client, sql| {
        Box::pin(async move {
            let statement = client.prepare_cached(&sql.read_artifact).await?;
            client
                .query_opt(&statement, &[&artifact.0.as_slice(), &now])
                .await?
                .map(|row| row.try_get(0))
                .transpose()
        })
    })
    .await
}

/// One batch of the orphan sweep: up to `limit` artifacts from `from` on looked at, and
/// of those the unreferenced ones older than `cutoff_ms` deleted, in one statement (see
/// the module docs for why it is safe).
pub(crate) async fn sweep_batch(
    db: &Db,
    from: Option<ArtifactId>,
    limit: usize,
    cutoff_ms: u64,
) -> Result<SweepBatch, StoreError> {
    let from: Vec<u8> = from.map_or_else(Vec::new, |a| a.0.to_vec());
    let limit = big(limit as u64);
    let cutoff = big(cutoff_ms);
    let row = db
        .run(Doing::Write, |client, sql| {
            let from = from.clone();
            Box::pin(async move {
                let statement = client.prepare_cached(&sql.sweep).await?;
                let params: &[&(dyn ToSql + Sync)] = &[&from, &limit, &cutoff];
                let work: Vec<Work<'_, Vec<tokio_postgres::Row>>> = vec![
                    Box::pin(async {
                        client
                            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                            .await
                            .map(|()| Vec::new())
                    }),
                    Box::pin(client.query(&statement, params)),
                    Box::pin(async { client.batch_execute("COMMIT").await.map(|()| Vec::new()) }),
                ];
                let mut found = Vec::new();
                for result in pipelined(work).await {
                    found.extend(result?);
                }
                Ok(found)
            })
        })
        .await?;
    let Some(row) = row.first() else {
        return Err(StoreError::Read(
            "the sweep's statement returned no row".to_owned(),
        ));
    };
    let seen: i64 = row.try_get(0).map_err(read_error)?;
    let deleted: i64 = row.try_get(1).map_err(read_error)?;
    let bytes: i64 = row.try_get(2).map_err(read_error)?;
    let next: Option<&[u8]> = row.try_get(3).map_err(read_error)?;
    let next = next
        .map(|next| {
            <[u8; 32]>::try_from(next)
                .map(ArtifactId)
                .map_err(|_| StoreError::Decode {
                    what: "an artifact id".to_owned(),
                    reason: format!("{} bytes, not 32", next.len()),
                })
        })
        .transpose()?;
    Ok(SweepBatch {
        scanned: unbig(seen.min(limit)) as usize,
        deleted: unbig(deleted) as usize,
        bytes: unbig(bytes),
        next,
    })
}

/// Executions that have records (plans, items, starts, checkpoints, keys, artifact
/// references) but no execution record: at most `LEFTOVERS_MAX` of them, the next call
/// finds the rest once these are deleted.
pub(crate) async fn leftovers(db: &Db) -> Result<Vec<ExecutionId>, StoreError> {
    let rows = db
        .run(Doing::Read, |client, sql| {
            Box::pin(async move {
                let statement = client.prepare_cached(&sql.leftovers).await?;
                client.query(&statement, &[]).await
            })
        })
        .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let text: &str = row.try_get(0).map_err(read_error)?;
        // Only a key as the writer spells it: another spelling of an id (lower case, say)
        // is no key of ours, and its deletion would delete the id's own records.
        if let Ok(id) = execution_id(text)
            && id.to_string() == text
        {
            found.push(id);
        }
    }
    Ok(found)
}

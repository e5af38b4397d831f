//! Reading executions as a listing shows them: a page newest first, those after a cursor
//! oldest first, one summary, the finished ones a retention looks at; and idempotency keys,
//! metadata and the count. Pages are read in chunks by id (an index scan each), and no
//! call holds every execution in memory.

use std::sync::Arc;

use tokio_postgres::Row as PgRow;

use super::pool::{Db, Doing};
use super::rows::{self, execution_id, execution_status, read_error, unbig};
use crate::error::StoreError;
use crate::model::{
    ExecutionId, ExecutionStatus, ExecutionSummary, KeyOwner, ListQuery, StoredSummary,
};
use crate::store::{Overlay, Page, SCAN_BUDGET};

/// How many rows a filtered page reads per statement.
const CHUNK: usize = 256;

/// The rows of `statement` for a cursor (text, or none) and a limit.
async fn rows(
    db: &Db,
    pick: fn(&super::statements::Statements) -> &str,
    cursor: Option<String>,
    limit: usize,
) -> Result<Vec<PgRow>, StoreError> {
    let limit = rows::big(limit as u64);
    db.run(Doing::Read, |client, sql| {
        let cursor = cursor.clone();
        Box::pin(async move {
            let statement = client.prepare_cached(pick(sql)).await?;
            client.query(&statement, &[&cursor, &limit]).await
        })
    })
    .await
}

/// A listed row: its id's text (the cursor of the next chunk), and the execution with its
/// summary, unless the id is not one.
fn listed(row: &PgRow) -> Result<(String, Option<(ExecutionId, StoredSummary)>), StoreError> {
    let text: String = row.try_get(0).map_err(read_error)?;
    let Ok(id) = execution_id(&text) else {
        tracing::warn!(
            key = text,
            "skipping an execution row whose id is not an id"
        );
        return Ok((text, None));
    };
    Ok((text, Some((id, rows::summary(row)?))))
}

/// Executions before `query.before`, newest first, that `query` keeps, each as `overlay`
/// knows it or as stored (see [`Backend::page`](crate::store::Backend::page)).
pub(crate) async fn page(
    db: &Db,
    query: ListQuery,
    overlay: Arc<dyn Overlay>,
) -> Result<Page, StoreError> {
    // Those statuses are all live: no finished record is read for them.
    let live_only = matches!(
        query.status,
        Some(ExecutionStatus::Running | ExecutionStatus::Interrupted | ExecutionStatus::Paused)
    );
    let pick: fn(&super::statements::Statements) -> &str = if live_only {
        |sql| &sql.page_live
    } else {
        |sql| &sql.page_all
    };
    let keep = query.keeper();
    let filtered = query.status.is_some() || query.search.is_some();
    // Unfiltered, a page takes every row it reads: one more than it lists says whether
    // there are more.
    let chunk = if filtered {
        CHUNK
    } else {
        query.limit.saturating_add(1).clamp(1, CHUNK)
    };
    let mut out: Vec<ExecutionSummary> = Vec::new();
    let mut scanned = 0;
    let mut last = None;
    let mut cursor = query.before.map(|b| b.to_string());
    loop {
        let found = rows(db, pick, cursor.clone(), chunk).await?;
        let read = found.len();
        for row in &found {
            let (text, execution) = listed(row)?;
            cursor = Some(text);
            let Some((id, stored)) = execution else {
                continue;
            };
            if out.len() == query.limit || scanned == SCAN_BUDGET {
                return Ok((out, last));
            }
            scanned += 1;
            last = Some(id);
            let summary = overlay.known(id).unwrap_or(stored.summary);
            if keep(&summary) {
                out.push(summary);
            }
        }
        if read < chunk {
            return Ok((out, None));
        }
    }
}

/// Up to `max` executions created after `after`, oldest first, each as `overlay` knows it
/// or as stored, and the cursor to go on from (`None` at the end).
pub(crate) async fn after(
    db: &Db,
    after: Option<ExecutionId>,
    max: usize,
    overlay: Arc<dyn Overlay>,
) -> Result<Page, StoreError> {
    let found = rows(
        db,
        |sql| &sql.after,
        after.map(|a| a.to_string()),
        max.saturating_add(1),
    )
    .await?;
    let mut out = Vec::new();
    let mut last = None;
    for (scanned, row) in found.iter().enumerate() {
        if scanned == max {
            return Ok((out, last));
        }
        let (_, execution) = listed(row)?;
        let Some((id, stored)) = execution else {
            continue;
        };
        last = Some(id);
        out.push(overlay.known(id).unwrap_or(stored.summary));
    }
    Ok((out, None))
}

/// One execution's summary as stored; `None` when it is not stored.
pub(crate) async fn one(db: &Db, id: ExecutionId) -> Result<Option<StoredSummary>, StoreError> {
    let key = id.to_string();
    let row = db
        .run(Doing::Read, |client, sql| {
            let key = key.clone();
            Box::pin(async move {
                let statement = client.prepare_cached(&sql.summary).await?;
                client.query_opt(&statement, &[&key]).await
            })
        })
        .await?;
    row.as_ref().map(rows::summary).transpose()
}

/// Of the `max` executions created after `after`, the finished ones (completed, failed,
/// cancelled) with when each last changed, oldest first, and the cursor to go on from.
/// Those whose status does not decode are left out.
#[allow(clippy::type_complexity)]
pub(crate) async fn finished(
    db: &Db,
    after: Option<ExecutionId>,
    max: usize,
) -> Result<(Vec<(u64, ExecutionId)>, Option<ExecutionId>), StoreError> {
    let found = rows(
        db,
        |sql| &sql.finished,
        after.map(|a| a.to_string()),
        max.saturating_add(1),
    )
    .await?;
    let mut out = Vec::new();
    let mut last = None;
    for (scanned, row) in found.iter().enumerate() {
        if scanned == max {
            return Ok((out, last));
        }
        let text: &str = row.try_get(0).map_err(read_error)?;
        let Ok(id) = execution_id(text) else { continue };
        last = Some(id);
        let status: &str = row.try_get(1).map_err(read_error)?;
        let updated_ms: i64 = row.try_get(2).map_err(read_error)?;
        if matches!(
            execution_status(status),
            Some(ExecutionStatus::Completed | ExecutionStatus::Failed | ExecutionStatus::Cancelled)
        ) {
            out.push((unbig(updated_ms), id));
        }
    }
    Ok((out, None))
}

/// Who holds idempotency key `key`.
pub(crate) async fn key_owner(db: &Db, key: String) -> Result<Option<KeyOwner>, StoreError> {
    let row = db
        .run(Doing::Read, |client, sql| {
            let key = key.clone();
            Box::pin(async move {
                let statement = client.prepare_cached(&sql.key_owner).await?;
                client.query_opt(&statement, &[&key]).await
            })
        })
        .await?;
    let Some(row) = row else { return Ok(None) };
    let bad = |why: String| StoreError::Decode {
        what: format!("the owner of idempotency key `{}`", crate::model::cut(&key)),
        reason: why,
    };
    let id: &str = row.try_get(0).map_err(|e| bad(e.to_string()))?;
    let id = execution_id(id).map_err(|e| bad(e.to_string()))?;
    let digest: &[u8] = row.try_get(1).map_err(|e| bad(e.to_string()))?;
    let digest: [u8; 32] = digest
        .try_into()
        .map_err(|_| bad(format!("a digest of {} bytes, not 32", digest.len())))?;
    Ok(Some(KeyOwner { id, digest }))
}

/// How many executions are stored.
pub(crate) async fn execution_count(db: &Db) -> Result<u64, StoreError> {
    let count: i64 = db
        .run(Doing::Read, |client, sql| {
            Box::pin(async move {
                let statement = client.prepare_cached(&sql.execution_count).await?;
                client.query_one(&statement, &[]).await?.try_get(0)
            })
        })
        .await?;
    Ok(unbig(count))
}

/// The runtime metadata value under `key`.
pub(crate) async fn meta(db: &Db, key: String) -> Result<Option<Vec<u8>>, StoreError> {
    let key = rows::text(&key).into_owned();
    db.run(Doing::Read, |client, sql| {
        let key = key.clone();
        Box::pin(async move {
            let statement = client.prepare_cached(&sql.meta).await?;
            client
                .query_opt(&statement, &[&key])
                .await?
                .map(|row| row.try_get(0))
                .transpose()
        })
    })
    .await
}

//! Checks of what lists executions: the startup scan, pages and their filters, retention's
//! list of finished executions, and deletion.

use std::collections::HashSet;
use std::sync::Arc;

use super::{CheckResult, Subject, ensure, failed, item_changes, stored};
use crate::model::{
    ArtifactId, Change, Checkpoint, ExecutionId, ExecutionStatus, ExecutionSummary, ItemState,
    ItemStatus, KeyOwner, ListQuery,
};
use crate::store::{LoadedExecution, Overlay, Store, Stored};

fn done() -> ItemState {
    ItemState {
        status: ItemStatus::Done,
        attempts: 1,
        ..ItemState::default()
    }
}

pub(super) async fn live_executions_load<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let mut unfinished = Vec::new();
    for status in [
        ExecutionStatus::Running,
        ExecutionStatus::Paused,
        ExecutionStatus::Interrupted,
    ] {
        let record = stored(&store, "unfinished", 3, status).await?;
        store
            .commit(item_changes(
                record.id,
                &[done(), ItemState::default(), done()],
            ))
            .await
            .map_err(failed("committing items"))?;
        unfinished.push(record);
    }
    for status in [
        ExecutionStatus::Completed,
        ExecutionStatus::Failed,
        ExecutionStatus::Cancelled,
    ] {
        stored(&store, "finished", 1, status).await?;
    }
    let loaded = store.load_live().await.map_err(failed("loading"))?;
    let mut found = Vec::new();
    for execution in loaded {
        match execution {
            LoadedExecution::Sound { record, items_done } => {
                ensure(items_done == 2, || {
                    format!("{} loads with {items_done} items done, not 2", record.id)
                })?;
                found.push(record);
            }
            LoadedExecution::Corrupt { id, reason } => {
                return Err(format!("{id} loads as corrupt: {reason}"));
            }
        }
    }
    found.sort_by_key(|r| r.id);
    ensure(found == unfinished, || {
        format!(
            "the scan found {:?}, not the unfinished {:?}",
            found.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(),
            unfinished
                .iter()
                .map(|r| (r.id, r.status))
                .collect::<Vec<_>>()
        )
    })?;
    // Finished, an execution leaves the scan.
    let mut finished = unfinished[0].clone();
    finished.status = ExecutionStatus::Completed;
    store
        .commit(vec![finished.change(false)])
        .await
        .map_err(failed("finishing"))?;
    let left = store.load_live().await.map_err(failed("loading"))?.len();
    ensure(left == 2, || {
        format!("{left} executions load, 2 unfinished")
    })?;
    store.close().await.map_err(failed("closing"))
}

/// Says one execution is paused and named `overlaid`, as a runtime holding it would.
struct PausedOne(ExecutionId);

impl Overlay for PausedOne {
    fn known(&self, id: ExecutionId) -> Option<ExecutionSummary> {
        (id == self.0).then(|| ExecutionSummary {
            id,
            name: "overlaid".to_owned(),
            status: ExecutionStatus::Paused,
            items_total: 1,
            items_done: 0,
            running_progress: 0.0,
            created: id.created_at(),
            updated: id.created_at(),
            error: None,
            halting: None,
        })
    }
}

/// Every page of `query` (limit 10), and whether each page was newest first.
async fn all_pages(
    store: &Store,
    query: ListQuery,
    overlay: Arc<dyn Overlay>,
) -> Result<Vec<ExecutionSummary>, String> {
    let mut all: Vec<ExecutionSummary> = Vec::new();
    let mut before = None;
    for _ in 0..100 {
        let (page, next) = store
            .page(
                ListQuery {
                    before,
                    limit: 10,
                    ..query.clone()
                },
                overlay.clone(),
            )
            .await
            .map_err(failed("reading a page"))?;
        ensure(page.len() <= 10, || {
            format!("a page of {} over its limit", page.len())
        })?;
        all.extend(page);
        match next {
            Some(next) => before = Some(next),
            None => return Ok(all),
        }
    }
    Err("paging did not end in 100 pages".to_owned())
}

pub(super) async fn pages_are_newest_first_and_filtered<S: Subject>(
    subject: &mut S,
) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let statuses = [
        ExecutionStatus::Completed,
        ExecutionStatus::Failed,
        ExecutionStatus::Running,
    ];
    let mut made = Vec::new();
    for n in 0..25 {
        let name = if n % 2 == 0 { "alpha" } else { "Beta" };
        made.push(stored(&store, &format!("{name}-{n}"), 1, statuses[n % 3]).await?);
    }
    let everything = all_pages(&store, ListQuery::default(), Arc::new(Stored)).await?;
    let ids: Vec<ExecutionId> = everything.iter().map(|s| s.id).collect();
    let newest_first: Vec<ExecutionId> = made.iter().rev().map(|r| r.id).collect();
    ensure(ids == newest_first, || {
        format!("pages list {ids:?}, not newest first {newest_first:?}")
    })?;
    for (summary, record) in everything.iter().zip(made.iter().rev()) {
        ensure(
            summary.name == record.plan.name
                && summary.status == record.status
                && summary.items_total == 1,
            || format!("{summary:?} does not say what {record:?} does"),
        )?;
    }
    // A status filter, across pages.
    let failed_ones = all_pages(
        &store,
        ListQuery {
            status: Some(ExecutionStatus::Failed),
            ..ListQuery::default()
        },
        Arc::new(Stored),
    )
    .await?;
    let expected: Vec<ExecutionId> = made
        .iter()
        .rev()
        .filter(|r| r.status == ExecutionStatus::Failed)
        .map(|r| r.id)
        .collect();
    let got: Vec<ExecutionId> = failed_ones.iter().map(|s| s.id).collect();
    ensure(got == expected, || {
        format!("the failed ones list as {got:?}, not {expected:?}")
    })?;
    // A search, ignoring case.
    let betas = all_pages(
        &store,
        ListQuery {
            search: Some("bEtA".to_owned()),
            ..ListQuery::default()
        },
        Arc::new(Stored),
    )
    .await?;
    ensure(
        betas.len() == 12 && betas.iter().all(|s| s.name.starts_with("Beta")),
        || format!("the search found {betas:?}"),
    )?;
    // The overlay's word wins over the record, filters included.
    let running = made
        .iter()
        .find(|r| r.status == ExecutionStatus::Running)
        .map(|r| r.id)
        .ok_or("no running execution made")?;
    let paused = all_pages(
        &store,
        ListQuery {
            status: Some(ExecutionStatus::Paused),
            ..ListQuery::default()
        },
        Arc::new(PausedOne(running)),
    )
    .await?;
    ensure(
        paused.len() == 1 && paused[0].id == running && paused[0].name == "overlaid",
        || format!("the paused ones list as {paused:?}"),
    )?;
    // Oldest first, from a cursor.
    let (first, next) = store
        .after(None, 10, Arc::new(Stored))
        .await
        .map_err(failed("reading the oldest"))?;
    let oldest: Vec<ExecutionId> = made.iter().take(10).map(|r| r.id).collect();
    ensure(
        first.iter().map(|s| s.id).eq(oldest.iter().copied()),
        || format!("the oldest ten list as {first:?}"),
    )?;
    let (rest, end) = store
        .after(next, 100, Arc::new(Stored))
        .await
        .map_err(failed("reading on"))?;
    ensure(rest.len() == 15 && end.is_none(), || {
        format!("after the first ten: {} and {end:?}", rest.len())
    })?;
    // One summary.
    let one = store
        .summary(made[3].id)
        .await
        .map_err(failed("reading a summary"))?;
    ensure(
        one.as_ref().is_some_and(|s| s.summary.name == "Beta-3"),
        || format!("the summary reads {one:?}"),
    )?;
    store.close().await.map_err(failed("closing"))
}

pub(super) async fn deletion_and_retention<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let finished = stored(&store, "gone", 2, ExecutionStatus::Completed).await?;
    stored(&store, "kept", 1, ExecutionStatus::Running).await?;
    let failed_one = stored(&store, "failed", 1, ExecutionStatus::Failed).await?;
    let id = finished.id;
    let mut changes = item_changes(id, &[done(), done()]);
    changes.push(Change::Checkpoint {
        id,
        index: 1,
        checkpoint: Checkpoint {
            state: vec![1],
            progress: None,
        },
    });
    changes.push(Change::Key {
        key: "gone-key".to_owned(),
        owner: KeyOwner {
            id,
            digest: [1; 32],
        },
    });
    changes.push(Change::PutArtifact {
        id,
        artifact: *ArtifactId::of(b"gone").as_bytes(),
        bytes: b"gone".to_vec(),
        now_ms: 1,
    });
    store.commit(changes).await.map_err(failed("committing"))?;
    // Retention's view: the finished ones, oldest first, with when each changed.
    let (list, next) = store
        .finished(None, 100)
        .await
        .map_err(failed("listing finished"))?;
    let ids: HashSet<ExecutionId> = list.iter().map(|(_, id)| *id).collect();
    ensure(
        next.is_none()
            && ids == HashSet::from([id, failed_one.id])
            && list
                .iter()
                .any(|&(at, i)| i == id && at == finished.updated_ms),
        || format!("finished lists {list:?} and {next:?}"),
    )?;
    let (first, next) = store
        .finished(None, 1)
        .await
        .map_err(failed("listing finished"))?;
    ensure(
        first == [(finished.updated_ms, id)] && next.is_some(),
        || format!("the first of the finished reads {first:?}, {next:?}"),
    )?;
    store
        .commit(vec![Change::Delete { id }])
        .await
        .map_err(failed("deleting"))?;
    match store.load_execution(id).await {
        Err(crate::error::StoreError::Missing(missing)) if missing == id => {}
        other => return Err(format!("a deleted execution reads as {other:?}")),
    }
    let summary = store.summary(id).await.map_err(failed("reading"))?;
    ensure(summary.is_none(), || {
        format!("its summary reads {summary:?}")
    })?;
    let key = store
        .key_owner("gone-key")
        .await
        .map_err(failed("reading"))?;
    ensure(key.is_none(), || format!("its key still reads {key:?}"))?;
    let count = store.execution_count().await.map_err(failed("counting"))?;
    ensure(count == 2, || {
        format!("{count} executions after the deletion, 2 left")
    })?;
    let left = store
        .leftovers()
        .await
        .map_err(failed("finding leftovers"))?;
    ensure(left.is_empty(), || {
        format!("the deletion left records of {left:?}")
    })?;
    // Its artifact is no longer referenced: the sweep takes it.
    let batch = store
        .sweep_artifacts(None, 100, u64::MAX)
        .await
        .map_err(failed("sweeping"))?;
    ensure(batch.deleted == 1, || {
        format!("the sweep after the deletion: {batch:?}")
    })?;
    store.close().await.map_err(failed("closing"))
}

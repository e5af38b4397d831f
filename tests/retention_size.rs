//! Retention by the store's size, compaction after a large prune, and what the runtime
//! holds in memory: only executions that are not finished, whatever is stored, and reads
//! that come from the store after a restart.

#[path = "support/helpers.rs"]
mod helpers;

use helpers::{gate, outcome, sum};
use tend::demo::Gates;
use tend::{Block, Config, ExecutionId, ExecutionStatus, ListQuery, Plan, Runtime};

fn config(retain_bytes: Option<u64>) -> Config {
    Config {
        maintenance_interval: None,
        disk_low_percent: 0.0,
        retain_bytes,
        ..Config::default()
    }
}

async fn start(dir: &std::path::Path, gates: &Gates, config: Config) -> Runtime {
    Runtime::builder()
        .data_dir(dir)
        .resource(gates.clone())
        .registry(tend::demo::registry().unwrap())
        .config(config)
        .start()
        .await
        .unwrap()
}

/// A finished execution that takes about 64 KiB of the store (its plan's name is long; the
/// record keeps a copy of it too).
async fn bulky(runtime: &Runtime, n: usize) -> ExecutionId {
    let name = format!("bulky-{n:03}-{}", "x".repeat(32 * 1024));
    let id = runtime
        .submit(Plan::new(name).block(Block::new("b").item(sum("one", 1))))
        .await
        .unwrap();
    assert!(outcome(runtime, id).await.is_completed());
    id
}

/// A `sleep` item whose every attempt fails.
fn failing(id: &str) -> tend::ItemSpec {
    let item = tend::demo::Sleep {
        fail_times: u32::MAX,
        ..tend::demo::Sleep::new(0)
    };
    tend::ItemSpec::new(id, &item).unwrap()
}

fn file_bytes(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join(tend::engine::store::DB_FILE))
        .unwrap()
        .len()
}

async fn every_id(runtime: &Runtime) -> Vec<ExecutionId> {
    let mut ids = Vec::new();
    let mut query = ListQuery::default();
    loop {
        let page = runtime.list_page(query.clone()).await.unwrap();
        ids.extend(page.executions.iter().map(|e| e.id));
        match page.next {
            Some(next) => query.before = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn retention_by_size_deletes_the_oldest_finished_and_gives_the_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let limit = 1 << 20;
    let runtime = start(dir.path(), &gates, config(Some(limit))).await;
    let mut done = Vec::new();
    for n in 0..48 {
        done.push(bulky(&runtime, n).await);
    }
    // One that can still run: never deleted for size.
    let live = runtime
        .submit(Plan::new("held").block(Block::new("b").item(gate("a", "g", 2))))
        .await
        .unwrap();
    let before = file_bytes(dir.path());
    assert!(before > 2 * limit, "the store grew to {before} bytes");
    let counts = runtime.counts().await.unwrap();
    assert_eq!(counts.stored, 49);
    assert_eq!(
        counts.in_memory, 1,
        "only the running one is held: {counts:?}"
    );

    let report = runtime.maintain(None).await.unwrap();
    let pruned = report.pruned;
    let after = file_bytes(dir.path());
    assert!(pruned > 0 && pruned < done.len(), "pruned {pruned}");
    assert!(
        after < before / 2 && after <= 2 * limit,
        "the file went from {before} to {after} bytes"
    );
    // The oldest went, the newest stayed, and so did the live one.
    let mut kept = every_id(&runtime).await;
    kept.reverse();
    let mut expected = done[pruned..].to_vec();
    expected.push(live);
    assert_eq!(kept, expected);
    for id in &done[..pruned] {
        assert!(runtime.status(*id).await.is_err());
    }
    assert_eq!(
        runtime.status(live).await.unwrap().status,
        ExecutionStatus::Running
    );
    gates.open("g");
    assert!(outcome(&runtime, live).await.is_completed());
    runtime.shutdown().await.unwrap();
    drop(runtime);

    // What was deleted stays deleted after a restart.
    let runtime = start(dir.path(), &gates, config(None)).await;
    let restarted = every_id(&runtime).await;
    assert_eq!(restarted.len(), expected.len());
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn finished_executions_are_not_held_in_memory_and_are_read_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let runtime = start(dir.path(), &gates, config(None)).await;
    let mut ids = Vec::new();
    for n in 0..30 {
        let plan = Plan::new(format!("small-{n}")).block(Block::new("b").item(sum("one", 1)));
        let id = runtime.submit(plan).await.unwrap();
        assert!(outcome(&runtime, id).await.is_completed());
        ids.push(id);
    }
    let failed = runtime
        .submit(Plan::new("fails").block(Block::new("b").item(failing("bad"))))
        .await
        .unwrap();
    assert!(!outcome(&runtime, failed).await.is_completed());
    let counts = runtime.counts().await.unwrap();
    assert_eq!((counts.stored, counts.in_memory), (31, 0), "{counts:?}");
    runtime.shutdown().await.unwrap();
    drop(runtime);

    // A restart reads none of them into memory, yet lists, reads and acts on them.
    let runtime = start(dir.path(), &gates, config(None)).await;
    let counts = runtime.counts().await.unwrap();
    assert_eq!((counts.stored, counts.in_memory), (31, 0), "{counts:?}");
    let page = runtime
        .list_page(ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.executions.len(), 10);
    assert_eq!(page.executions[0].id, failed);
    assert_eq!(page.executions[1].id, ids[29]);
    assert_eq!(page.executions[1].name, "small-29");
    assert_eq!(
        (
            page.executions[1].items_done,
            page.executions[1].items_total
        ),
        (1, 1)
    );
    let failed_only = runtime
        .list_page(ListQuery {
            status: Some(ExecutionStatus::Failed),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        failed_only
            .executions
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![failed]
    );
    assert_eq!(
        runtime.status(ids[3]).await.unwrap().status,
        ExecutionStatus::Completed
    );
    assert!(runtime.wait(ids[4]).await.unwrap().is_completed());
    assert!(matches!(
        runtime.resume(ids[5]).await,
        Err(tend::RuntimeError::InvalidState {
            action: "resume",
            ..
        })
    ));
    runtime.delete(ids[6]).await.unwrap();
    assert!(matches!(
        runtime.status(ids[6]).await,
        Err(tend::RuntimeError::UnknownExecution(_))
    ));
    // A retry takes the failed one back into memory while it runs, and lets it go after.
    runtime.retry_failed(failed).await.unwrap();
    assert!(!outcome(&runtime, failed).await.is_completed());
    let counts = runtime.counts().await.unwrap();
    assert_eq!((counts.stored, counts.in_memory), (30, 0), "{counts:?}");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn startup_compacts_only_when_a_compaction_is_due() {
    use redb::{Database, ReadableDatabase, TableDefinition};
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let runtime = start(dir.path(), &gates, config(None)).await;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(bulky(&runtime, n).await);
    }
    // Deleted one by one: no prune, so nothing compacts.
    for id in &ids[..36] {
        runtime.delete(*id).await.unwrap();
    }
    runtime.shutdown().await.unwrap();
    drop(runtime);
    let grown = file_bytes(dir.path());

    // A start with nothing due reads only what is not finished: the file stays as it is.
    let runtime = start(dir.path(), &gates, config(None)).await;
    runtime.shutdown().await.unwrap();
    drop(runtime);
    let started = file_bytes(dir.path());
    assert!(started > grown * 3 / 4, "{grown} -> {started} bytes");

    // Due (as a prune whose compaction could not run leaves it): the next start compacts,
    // and clears it.
    {
        let db = Database::create(dir.path().join(tend::engine::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("compaction_due", b"1".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let runtime = start(dir.path(), &gates, config(None)).await;
    let compacted = file_bytes(dir.path());
    assert!(compacted < grown / 2, "{grown} -> {compacted} bytes");
    assert_eq!(every_id(&runtime).await, {
        let mut kept = ids[36..].to_vec();
        kept.reverse();
        kept
    });
    runtime.shutdown().await.unwrap();
    drop(runtime);
    let db = Database::create(dir.path().join(tend::engine::store::DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    assert!(meta.get("compaction_due").unwrap().is_none());
}

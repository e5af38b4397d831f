//! The redb file: corrupt records are contained to their execution, and the group-commit
//! writer acknowledges a write only once it is committed.

#[path = "support/helpers.rs"]
mod helpers;

use helpers::*;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tend::engine::Store;
use tend::engine::store::DB_FILE;
use tend::{Block, ExecutionStatus, Plan, RuntimeError};

const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
/// Item records: the execution id's 26 characters, then the item's index in 4 big-endian
/// bytes.
const ITEMS: TableDefinition<&[u8; 30], &[u8]> = TableDefinition::new("item_records");
const CHECKPOINTS: TableDefinition<&[u8; 30], &[u8]> = TableDefinition::new("item_checkpoints");
/// Where formats 1 to 4 kept them.
const TUPLE_ITEMS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("items");
const TUPLE_CHECKPOINTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("checkpoints");

/// The key of item `index` of execution `id`.
fn item_key(id: &str, index: u32) -> [u8; 30] {
    let mut key = [0u8; 30];
    key[..26].copy_from_slice(id.as_bytes());
    key[26..].copy_from_slice(&index.to_be_bytes());
    key
}
const LIVE: TableDefinition<&str, ()> = TableDefinition::new("live_executions");

fn plan(name: &str) -> Plan {
    Plan::new(name).block(
        Block::new("b")
            .item(sum("a", 1))
            .item(sum("b", 1).after(["a"])),
    )
}

#[tokio::test]
async fn a_record_that_does_not_decode_marks_only_its_execution_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    let mut ids = Vec::new();
    for name in ["bad-item", "bad-execution", "sound"] {
        let id = rt.submit(plan(name)).await.unwrap();
        assert!(outcome(&rt, id).await.is_completed());
        ids.push(id);
    }
    rt.shutdown().await.unwrap();
    drop(rt);

    // Damage one item record of the first execution and the record of the second.
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut items = txn.open_table(ITEMS).unwrap();
            items
                .insert(&item_key(&ids[0].to_string(), 1), &[0xc1u8, 0x00][..])
                .unwrap();
            let mut executions = txn.open_table(EXECUTIONS).unwrap();
            executions
                .insert(ids[1].to_string().as_str(), &b"not msgpack"[..])
                .unwrap();
        }
        txn.commit().unwrap();
    }

    let rt = runtime(Some(dir.path()), None, 4).await;
    let list = rt.list().await.unwrap();
    assert_eq!(list.len(), 3);
    // The damaged execution record marks its execution corrupt at startup.
    assert_eq!(list[1].status, ExecutionStatus::Corrupt);
    let error = list[1].error.as_deref().unwrap();
    assert!(
        error.contains(&ids[1].to_string()),
        "the error names the record: {error}"
    );
    assert!(error.contains("execution record"), "{error}");
    // Startup does not read a finished execution's item records (its record says how many
    // are done): the damaged item record shows once the execution is read.
    assert_eq!(list[0].status, ExecutionStatus::Completed);
    assert_eq!(list[0].items_done, 2);
    assert_eq!(list[2].status, ExecutionStatus::Completed);
    assert_eq!(list[2].items_done, 2);

    let err = rt.status(ids[0]).await.unwrap_err();
    match &err {
        RuntimeError::Corrupt { id, reason } => {
            assert_eq!(*id, ids[0]);
            assert!(reason.contains("item record"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        rt.resume(ids[1]).await,
        Err(RuntimeError::Corrupt { .. })
    ));
    assert!(matches!(
        rt.wait(ids[1]).await,
        Err(RuntimeError::Corrupt { .. })
    ));
    let sound = rt.status(ids[2]).await.unwrap();
    assert_eq!(sound.item("b").unwrap().output_as::<i64>(), Some(2));
    // New work still runs beside the corrupt executions.
    let id = rt.submit(plan("new")).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_execution_left_running_by_a_crash_is_interrupted_and_resumed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    let id = rt.submit(plan("p")).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
    drop(rt);
    // Rewrites its record as a crashed process leaves it: status running.
    let crash = || {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut executions = txn.open_table(EXECUTIONS).unwrap();
            let key = id.to_string();
            let bytes = executions
                .get(key.as_str())
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            let mut record: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
            record["status"] = "running".into();
            let bytes = rmp_serde::to_vec_named(&record).unwrap();
            executions.insert(key.as_str(), bytes.as_slice()).unwrap();
            // Written with a running record, as the runtime does: the live index.
            let mut live = txn.open_table(LIVE).unwrap();
            live.insert(key.as_str(), ()).unwrap();
        }
        txn.commit().unwrap();
    };
    crash();
    // Told not to resume at start, the runtime lists it as interrupted, and records it so.
    let rt = tend::Runtime::builder()
        .data_dir(dir.path())
        .registry(tend::demo::registry().unwrap())
        .config(tend::Config {
            resume_on_start: false,
            ..tend::Config::default()
        })
        .start()
        .await
        .unwrap();
    let list = rt.list().await.unwrap();
    assert_eq!(list[0].status, ExecutionStatus::Interrupted);
    rt.shutdown().await.unwrap();
    drop(rt);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.report(id).await.unwrap().status,
        ExecutionStatus::Interrupted
    );
    store.close().await.unwrap();
    drop(store);
    // By default a crashed execution is resumed by itself: every item is done, so it
    // completes without running any.
    crash();
    let rt = runtime(Some(dir.path()), None, 4).await;
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
    drop(rt);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.report(id).await.unwrap().status,
        ExecutionStatus::Completed
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_missing_directory_is_created_and_an_unwritable_one_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c");
    let rt = runtime(Some(&nested), None, 1).await;
    assert_eq!(rt.store_path(), Some(nested.join(DB_FILE).as_path()));
    rt.shutdown().await.unwrap();

    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = tend::Runtime::builder()
        .data_dir(&file)
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("plain-file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_acknowledges_only_what_a_fresh_reader_can_see() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    rt.shutdown().await.unwrap();
    drop(rt);
    let store = Store::open(dir.path()).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16u32 {
        let store = store.clone();
        tasks.spawn(async move {
            for n in 0..25u32 {
                let key = format!("k-{task}-{n}");
                store.put_meta(&key, &n.to_le_bytes()).await.unwrap();
                // Acknowledged: a new read transaction sees it.
                assert_eq!(
                    store.meta(&key).await.unwrap(),
                    Some(n.to_le_bytes().to_vec()),
                    "{key}"
                );
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    store.close().await.unwrap();
    assert!(matches!(
        store.put_meta("late", b"x").await,
        Err(tend::StoreError::Closed)
    ));
    drop(store);
    // And it is in the file after a reopen.
    let db = Database::create(dir.path().join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn
        .open_table(TableDefinition::<&str, &[u8]>::new("meta"))
        .unwrap();
    let count = meta
        .iter()
        .unwrap()
        .filter(|e| e.as_ref().unwrap().0.value().starts_with("k-"))
        .count();
    assert_eq!(count, 16 * 25);
}

const PLANS: TableDefinition<&str, &[u8]> = TableDefinition::new("plans");

#[tokio::test]
async fn a_store_from_before_plans_were_kept_apart_is_read_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    let id = rt.submit(plan("old-format")).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
    drop(rt);

    // Rewrite it as the earlier format had it: the plan inside the execution record, no
    // `plans` entry. (Spliced at the msgpack level: a map with one more entry, `plan`.)
    let key = id.to_string();
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut executions = txn.open_table(EXECUTIONS).unwrap();
            let mut plans = txn.open_table(PLANS).unwrap();
            let status = executions
                .get(key.as_str())
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            let plan = plans
                .remove(key.as_str())
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            let entries = status[0] & 0x0f;
            assert_eq!(status[0] & 0xf0, 0x80, "a small msgpack map");
            let mut old = vec![0x80 | (entries + 1)];
            old.extend_from_slice(&status[1..]);
            old.extend_from_slice(b"\xa4plan");
            old.extend_from_slice(&plan);
            executions.insert(key.as_str(), old.as_slice()).unwrap();
            // And the format marker a store of that format has.
            let mut meta = txn
                .open_table(TableDefinition::<&str, &[u8]>::new("meta"))
                .unwrap();
            meta.insert("format", b"tend-store-1".as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    let rt = runtime(Some(dir.path()), None, 4).await;
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Completed);
    assert_eq!(report.name, "old-format");
    assert_eq!(report.items().count(), 2);
    rt.shutdown().await.unwrap();
    drop(rt);

    // The start moved the plan out: `plans` has it, the record no longer does.
    let db = Database::create(dir.path().join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let plans = txn.open_table(PLANS).unwrap();
    assert!(plans.get(key.as_str()).unwrap().is_some());
    let executions = txn.open_table(EXECUTIONS).unwrap();
    let record = executions
        .get(key.as_str())
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert!(
        !record.windows(5).any(|w| w == b"\xa4plan"),
        "the record still holds its plan"
    );
}

const STARTS: TableDefinition<&str, &[u8]> = TableDefinition::new("starts");

#[tokio::test]
async fn an_ended_execution_leaves_no_start_set_and_a_damaged_one_costs_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    let id = rt.submit(plan("starts")).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
    drop(rt);
    let key = id.to_string();
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut starts = txn.open_table(STARTS).unwrap();
            assert!(starts.get(key.as_str()).unwrap().is_none());
            // A damaged set: the execution must still read back whole.
            starts
                .insert(key.as_str(), b"\xc1 not msgpack".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let rt = runtime(Some(dir.path()), None, 4).await;
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Completed);
    assert_eq!(
        report.items().map(|i| i.attempts).collect::<Vec<_>>(),
        vec![1, 1]
    );
    rt.shutdown().await.unwrap();
}

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

#[tokio::test]
async fn a_store_of_format_4_has_its_item_records_and_checkpoints_moved_to_fixed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    let id = rt.submit(plan("tuples")).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
    drop(rt);

    // Rewrite it as format 4 had it: item records under (id, index) tuples in `items`, and
    // a checkpoint in `checkpoints` (one a crash left behind: it must move too).
    let key = id.to_string();
    // A checkpoint record as the store writes one: {"v": 1, "state": <bytes>} in msgpack.
    let mut checkpoint = b"\x82\xa1v\x01\xa5state\xc4\x05".to_vec();
    checkpoint.extend_from_slice(b"saved");
    let records = {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        let mut records = Vec::new();
        {
            let new = txn.open_table(ITEMS).unwrap();
            let mut old = txn.open_table(TUPLE_ITEMS).unwrap();
            for entry in new.iter().unwrap() {
                let (k, v) = entry.unwrap();
                let index = u32::from_be_bytes(k.value()[26..].try_into().unwrap());
                old.insert((key.as_str(), index), v.value()).unwrap();
                records.push((index, v.value().to_vec()));
            }
            let mut checkpoints = txn.open_table(TUPLE_CHECKPOINTS).unwrap();
            checkpoints
                .insert((key.as_str(), 1), checkpoint.as_slice())
                .unwrap();
        }
        txn.delete_table(ITEMS).unwrap();
        txn.delete_table(CHECKPOINTS).unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format", b"tend-store-4".as_slice())
            .unwrap();
        txn.commit().unwrap();
        records
    };
    assert_eq!(records.len(), 2, "both items had records");

    let rt = runtime(Some(dir.path()), None, 4).await;
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Completed);
    assert_eq!(
        report
            .items()
            .map(|i| (i.status, i.attempts))
            .collect::<Vec<_>>(),
        vec![(tend::ItemStatus::Done, 1), (tend::ItemStatus::Done, 1)],
        "the item records read back from their new keys"
    );
    rt.shutdown().await.unwrap();
    drop(rt);

    // The same bytes under the new keys, the tuple tables gone, the marker at 5.
    assert_eq!(format(dir.path()), b"tend-store-5");
    let db = Database::create(dir.path().join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let items = txn.open_table(ITEMS).unwrap();
    for (index, bytes) in &records {
        let moved = items.get(&item_key(&key, *index)).unwrap().unwrap();
        assert_eq!(moved.value(), bytes.as_slice());
    }
    let checkpoints = txn.open_table(CHECKPOINTS).unwrap();
    assert_eq!(
        checkpoints
            .get(&item_key(&key, 1))
            .unwrap()
            .unwrap()
            .value(),
        checkpoint.as_slice()
    );
    assert!(matches!(
        txn.open_table(TUPLE_ITEMS),
        Err(redb::TableError::TableDoesNotExist(_))
    ));
    assert!(matches!(
        txn.open_table(TUPLE_CHECKPOINTS),
        Err(redb::TableError::TableDoesNotExist(_))
    ));
}

fn set_format(dir: &std::path::Path, format: &[u8]) {
    let db = Database::create(dir.join(DB_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .insert("format", format)
        .unwrap();
    txn.commit().unwrap();
}

fn format(dir: &std::path::Path) -> Vec<u8> {
    let db = Database::create(dir.join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    meta.get("format").unwrap().unwrap().value().to_vec()
}

#[tokio::test]
async fn a_store_of_an_older_format_is_moved_on_and_one_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    rt.shutdown().await.unwrap();
    drop(rt);
    assert_eq!(format(dir.path()), b"tend-store-5");

    for older in [
        b"tend-store-1",
        b"tend-store-2",
        b"tend-store-3",
        b"tend-store-4",
    ] {
        set_format(dir.path(), older);
        let rt = runtime(Some(dir.path()), None, 4).await;
        rt.shutdown().await.unwrap();
        drop(rt);
        assert_eq!(format(dir.path()), b"tend-store-5");
    }

    set_format(dir.path(), b"tend-store-9");
    let err = tend::Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .data_dir(dir.path())
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("tend-store-9"), "{err}");
    assert!(err.contains(DB_FILE), "names the file: {err}");
    // Refused, not rewritten.
    assert_eq!(format(dir.path()), b"tend-store-9");
}

#[tokio::test]
async fn the_final_record_takes_with_it_what_a_crash_left_in_the_start_set() {
    let dir = tempfile::tempdir().unwrap();
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(Some(dir.path()), None, 4, gates.clone()).await;
    let plan = Plan::new("stale").block(
        Block::new("b")
            .item(sum("first", 1))
            .item(gate("held", "g", 1).after(["first"])),
    );
    let id = rt.submit(plan).await.unwrap();
    eventually("`held` waiting at its gate", || async {
        match gates.waiting("g") {
            1 => Ok(()),
            n => Err(format!("{n} waiting")),
        }
    })
    .await;
    rt.shutdown().await.unwrap();
    drop(rt);

    // As a crashed process may leave it: an entry for `first` (item 0), whose Done record
    // already shows its attempt, so no later write of `first` ever removes it.
    #[derive(serde::Serialize)]
    struct StartsRecord {
        v: u16,
        runs: Vec<[u32; 4]>,
    }
    let key = id.to_string();
    let stale = rmp_serde::to_vec_named(&StartsRecord {
        v: 1,
        runs: vec![[0, 1, 1, 0]],
    })
    .unwrap();
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(STARTS)
            .unwrap()
            .insert(key.as_str(), stale.as_slice())
            .unwrap();
        txn.commit().unwrap();
    }

    // The start resumes it; `held` runs again and finishes.
    let rt = gated_runtime(Some(dir.path()), None, 4, gates.clone()).await;
    gates.open("g");
    let outcome = outcome(&rt, id).await;
    assert!(outcome.is_completed(), "{outcome:?}");
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("first").unwrap().attempts, 1);
    rt.shutdown().await.unwrap();
    drop(rt);

    let db = Database::create(dir.path().join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let starts = txn.open_table(STARTS).unwrap();
    assert!(
        starts.get(key.as_str()).unwrap().is_none(),
        "the execution ended with its start set still stored"
    );
}

#[tokio::test]
async fn startup_takes_a_finished_executions_done_count_from_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 4).await;
    let id = rt.submit(plan("counted")).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
    drop(rt);

    // Its item records go: a start that read them would count none done.
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut items = txn.open_table(ITEMS).unwrap();
            let key = id.to_string();
            items
                .retain_in::<&[u8; 30], _>(
                    &item_key(&key, 0)..=&item_key(&key, u32::MAX),
                    |_, _| false,
                )
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let rt = runtime(Some(dir.path()), None, 4).await;
    let list = rt.list().await.unwrap();
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].status, ExecutionStatus::Completed);
    assert_eq!(list[0].items_done, 2, "taken from the execution record");
    rt.shutdown().await.unwrap();
}

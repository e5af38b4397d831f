//! The redb backend's own side of artifacts: a sweep batch gives way to waiting commits,
//! and a live index key without its record is a leftover. (What every backend must do with
//! artifacts is the behaviour suite's: `store::suite`.)

use crate::model::{Change, ExecutionId};
use crate::store::{Backend, RedbStore};

fn store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    (dir, store)
}

async fn commit(store: &RedbStore, changes: Vec<Change>) {
    crate::store::Store::new(store.clone())
        .commit(changes)
        .await
        .unwrap();
}

async fn put(store: &RedbStore, id: ExecutionId, bytes: Vec<u8>) -> crate::model::ArtifactId {
    crate::store::Store::new(store.clone())
        .put_artifact(id, bytes, 1)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_gives_way_to_a_waiting_commit_and_the_sweep_still_gets_through() {
    let (_dir, store) = store();
    // 40 artifacts, every other one kept by a live execution, the rest orphans.
    let (live, gone) = (ExecutionId::generate(), ExecutionId::generate());
    let mut kept = Vec::new();
    for n in 0..40u32 {
        let owner = if n % 2 == 0 { live } else { gone };
        let id = put(&store, owner, n.to_be_bytes().to_vec()).await;
        if owner == live {
            kept.push(id);
        }
    }
    commit(&store, vec![Change::Delete { id: gone }]).await;
    let db = store.database();
    // A commit waits all along: each batch gives way at its first look at the queue.
    let waiting = std::sync::atomic::AtomicUsize::new(1);
    let (mut from, mut scanned, mut deleted, mut batches) = (None, 0, 0, 0);
    loop {
        let batch = super::sweep_batch(&db, from, 128, 2, &waiting).unwrap();
        batches += 1;
        assert!(batch.scanned > 0, "every batch gets somewhere");
        assert!(batch.scanned <= 16 && batch.deleted <= 16, "{batch:?}");
        scanned += batch.scanned;
        deleted += batch.deleted;
        match batch.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    assert!(batches >= 3, "{batches}");
    assert_eq!((scanned, deleted), (40, 20), "each looked at once in all");
    // Nothing waits: one batch looks at what is left (nothing) and ends.
    waiting.store(0, std::sync::atomic::Ordering::Release);
    let batch = super::sweep_batch(&db, None, 128, 2, &waiting).unwrap();
    assert_eq!((batch.scanned, batch.deleted, batch.next), (20, 0, None));
    drop(db);
    for id in kept {
        assert!(store.read_artifact(id, 3).await.unwrap().is_some());
    }
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_live_index_key_without_its_record_is_a_leftover_its_deletion_removes() {
    let (dir, store) = store();
    store.close().await.unwrap();
    let ghost = ExecutionId::generate();
    {
        // Damage only a bug or the disk could do: the key without the record.
        let db = ::redb::Database::create(dir.path().join(crate::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(super::super::tables::LIVE)
            .unwrap()
            .insert(ghost.to_string().as_str(), ())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = RedbStore::open(dir.path()).unwrap();
    let live = store.load_live().await.unwrap();
    assert!(live.is_empty(), "nothing to run for a missing record");
    assert_eq!(store.leftovers().await.unwrap(), [ghost]);
    commit(&store, vec![Change::Delete { id: ghost }]).await;
    assert!(store.leftovers().await.unwrap().is_empty());
    let db = store.database();
    assert!(super::super::listing::live_ids(&db).unwrap().is_empty());
    drop(db);
    store.close().await.unwrap();
}

//! The page cache holds at most what `RedbOptions` asked for, in a file store and in
//! memory (the default would hold every page written here).

use ::redb::ReadableDatabase;

use crate::model::ExecutionId;
use crate::store::{RedbOptions, RedbStore, Store};

/// Writes 4 MiB of artifacts (distinct, so none is shared) and returns the cache's bytes.
async fn cached_after_writing(store: RedbStore) -> usize {
    let owner = ExecutionId::generate();
    let handle = Store::new(store.clone());
    for n in 0..64u32 {
        let mut bytes = vec![0u8; 64 << 10];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        handle.put_artifact(owner, bytes, 1).await.unwrap();
    }
    let cached = store.database().cache_stats().used_bytes();
    handle.close().await.unwrap();
    cached
}

#[tokio::test]
async fn a_file_store_caches_at_most_what_it_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    let small = RedbStore::open_with(dir.path(), RedbOptions::with_cache_bytes(1 << 20)).unwrap();
    let cached = cached_after_writing(small).await;
    assert!(
        cached <= 1 << 20,
        "{cached} bytes cached with a 1 MiB cache"
    );
    let dir = tempfile::tempdir().unwrap();
    let default = RedbStore::open(dir.path()).unwrap();
    let cached = cached_after_writing(default).await;
    assert!(
        cached > 1 << 20,
        "{cached} bytes cached with the default cache"
    );
}

#[tokio::test]
async fn a_store_in_memory_caches_at_most_what_it_was_asked() {
    let small = RedbStore::in_memory_with(RedbOptions::with_cache_bytes(1 << 20)).unwrap();
    let cached = cached_after_writing(small).await;
    assert!(
        cached <= 1 << 20,
        "{cached} bytes cached with a 1 MiB cache"
    );
}

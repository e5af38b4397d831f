//! Artifacts against a real redb file: the sweep deletes exactly the old unreferenced
//! ones, leftovers go, and a seeded race of referencing against sweeps never deletes a
//! referenced artifact.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::model::{ArtifactId, ExecutionId, now_ms};
use crate::store::{Op, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// Sweeps every batch (of `limit`) with `cutoff_ms`; (scanned, deleted).
async fn sweep(store: &Store, limit: usize, cutoff_ms: u64) -> (usize, usize) {
    let (mut scanned, mut deleted, mut from) = (0, 0, None);
    loop {
        let batch = store
            .writer()
            .sweep_batch(from, limit, cutoff_ms)
            .await
            .unwrap();
        scanned += batch.scanned;
        deleted += batch.deleted;
        match batch.next {
            Some(next) => from = Some(next),
            None => return (scanned, deleted),
        }
    }
}

#[tokio::test]
async fn the_sweep_deletes_exactly_the_old_unreferenced_artifacts() {
    let (_dir, store) = store();
    let w = store.writer();
    let (kept, dropped, young) = (
        ExecutionId::generate(),
        ExecutionId::generate(),
        ExecutionId::generate(),
    );
    let a = w.put_artifact(kept, b"kept".to_vec(), 1_000).await.unwrap();
    let b = w
        .put_artifact(dropped, b"dropped".to_vec(), 1_000)
        .await
        .unwrap();
    let c = w
        .put_artifact(young, b"young".to_vec(), 5_000)
        .await
        .unwrap();
    // The same bytes again: one artifact, two references.
    assert_eq!(
        w.put_artifact(young, b"kept".to_vec(), 1_000)
            .await
            .unwrap(),
        a
    );
    w.commit(vec![Op::Delete { id: dropped }, Op::Delete { id: young }])
        .await
        .unwrap();

    // `b` and `c` are unreferenced; only `b` is older than the cutoff. `a` is still
    // referenced by `kept` although `young` (its other reference) is gone.
    assert_eq!(sweep(&store, 2, 2_000).await, (3, 1));
    assert_eq!(w.read_artifact(b, 9_000).await.unwrap(), None);
    assert_eq!(
        w.read_artifact(a, 9_000).await.unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    // Reading `c` touched it: still young for a cutoff before the touch.
    assert!(w.read_artifact(c, 9_000).await.unwrap().is_some());
    assert_eq!(sweep(&store, 10, 8_000).await, (2, 0));
    assert_eq!(sweep(&store, 10, 10_000).await, (2, 1));
    // Referencing a deleted artifact says so; a live one works.
    assert!(!w.reference_artifact(kept, b, 11_000).await.unwrap());
    assert!(w.reference_artifact(kept, a, 11_000).await.unwrap());
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_batch_gives_way_to_a_waiting_commit_and_the_sweep_still_gets_through() {
    let (_dir, store) = store();
    let w = store.writer();
    // 40 artifacts, every other one kept by a live execution, the rest orphans.
    let (live, gone) = (ExecutionId::generate(), ExecutionId::generate());
    let mut kept = Vec::new();
    for n in 0..40u32 {
        let owner = if n % 2 == 0 { live } else { gone };
        let id = w
            .put_artifact(owner, n.to_be_bytes().to_vec(), 1)
            .await
            .unwrap();
        if owner == live {
            kept.push(id);
        }
    }
    w.commit(vec![Op::Delete { id: gone }]).await.unwrap();
    let db = store.db.get().unwrap();
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
        assert!(w.read_artifact(id, 3).await.unwrap().is_some());
    }
    store.close().await.unwrap();
}

#[tokio::test]
async fn records_of_executions_that_no_longer_exist_are_found() {
    let (_dir, store) = store();
    let w = store.writer();
    let ghost = ExecutionId::generate();
    w.commit(vec![
        Op::Item {
            id: ghost,
            index: 3,
            attempts: 1,
            record: vec![1],
        },
        Op::Checkpoint {
            id: ghost,
            index: 0,
            record: vec![2],
        },
    ])
    .await
    .unwrap();
    w.put_artifact(ghost, b"left".to_vec(), 1).await.unwrap();
    assert_eq!(store.leftovers().await.unwrap(), [ghost]);
    w.commit(vec![Op::Delete { id: ghost }]).await.unwrap();
    assert!(store.leftovers().await.unwrap().is_empty());
    // Its artifact is unreferenced now.
    assert_eq!(sweep(&store, 10, u64::MAX).await, (1, 1));
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_live_index_key_without_its_record_is_a_leftover_its_deletion_removes() {
    let (dir, store) = store();
    store.close().await.unwrap();
    let ghost = ExecutionId::generate();
    {
        // Damage only a bug or the disk could do: the key without the record.
        let db = redb::Database::create(dir.path().join(crate::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(crate::store::tables::LIVE)
            .unwrap()
            .insert(ghost.to_string().as_str(), ())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let live = store.read(|s| s.load_live()).await.unwrap();
    assert!(live.is_empty(), "nothing to run for a missing record");
    assert_eq!(store.leftovers().await.unwrap(), [ghost]);
    store
        .writer()
        .commit(vec![Op::Delete { id: ghost }])
        .await
        .unwrap();
    assert!(store.leftovers().await.unwrap().is_empty());
    let db = store.db.get().unwrap();
    assert!(crate::store::listing::live_ids(&db).unwrap().is_empty());
    drop(db);
    store.close().await.unwrap();
}

/// xorshift64*: small, seeded, replayable choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

type Model = Arc<Mutex<HashMap<ExecutionId, HashSet<ArtifactId>>>>;

/// Every reference the model holds must have its artifact in the store.
async fn check(store: &Store, model: &Model, seed: u64) {
    let pairs: Vec<(ExecutionId, ArtifactId)> = model
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(e, set)| set.iter().map(move |a| (*e, *a)))
        .collect();
    for (execution, artifact) in pairs {
        let bytes = store
            .writer()
            .read_artifact(artifact, now_ms())
            .await
            .unwrap();
        assert!(
            bytes.is_some(),
            "seed {seed}: artifact {artifact} deleted while {execution} references it"
        );
    }
}

async fn race(seed: u64) {
    let (_dir, store) = store();
    let model: Model = Arc::default();
    let known: Arc<Mutex<Vec<ArtifactId>>> = Arc::default();
    let mut tasks = Vec::new();
    for worker in 0..3u64 {
        let (store, model, known) = (store.clone(), model.clone(), known.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(worker) | 1);
            let executions: Vec<ExecutionId> = (0..3).map(|_| ExecutionId::generate()).collect();
            for _ in 0..60 {
                let execution = executions[rng.below(3) as usize];
                match rng.below(4) {
                    // Make one of eight contents (so artifacts are shared).
                    0 => {
                        let bytes = format!("content-{}", rng.below(8)).into_bytes();
                        let id = store
                            .writer()
                            .put_artifact(execution, bytes, now_ms())
                            .await
                            .unwrap();
                        model
                            .lock()
                            .unwrap()
                            .entry(execution)
                            .or_default()
                            .insert(id);
                        known.lock().unwrap().push(id);
                    }
                    // Reference one made before (it may be gone).
                    1 | 2 => {
                        let pick = {
                            let known = known.lock().unwrap();
                            (!known.is_empty())
                                .then(|| known[rng.below(known.len() as u64) as usize])
                        };
                        if let Some(id) = pick
                            && store
                                .writer()
                                .reference_artifact(execution, id, now_ms())
                                .await
                                .unwrap()
                        {
                            model
                                .lock()
                                .unwrap()
                                .entry(execution)
                                .or_default()
                                .insert(id);
                        }
                    }
                    // Delete the execution: its references go (from the model first).
                    _ => {
                        model.lock().unwrap().remove(&execution);
                        store
                            .writer()
                            .commit(vec![Op::Delete { id: execution }])
                            .await
                            .unwrap();
                    }
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let sweeper = {
        let (store, model) = (store.clone(), model.clone());
        tokio::spawn(async move {
            for _ in 0..40 {
                // Protection 0: everything unreferenced goes, in batches of 3.
                sweep(&store, 3, u64::MAX).await;
                check(&store, &model, seed).await;
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    sweeper.await.unwrap();
    check(&store, &model, seed).await;
    // In the end only what is referenced is left.
    sweep(&store, 100, u64::MAX).await;
    let referenced: HashSet<ArtifactId> =
        model.lock().unwrap().values().flatten().copied().collect();
    let (scanned, deleted) = sweep(&store, 100, u64::MAX).await;
    assert_eq!((scanned, deleted), (referenced.len(), 0), "seed {seed}");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referencing_racing_sweeps_never_loses_a_referenced_artifact() {
    let seeds: Vec<u64> = match std::env::var("TEND_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("TEND_SIM_SEED is a number")],
        Err(_) => (1..=8).collect(),
    };
    for seed in seeds {
        race(seed).await;
    }
}

//! Checks of artifacts and the orphan sweep: exactly the old unreferenced ones go, a seeded
//! race of references against sweeps never loses a referenced one, and leftovers are found.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::{CheckResult, Subject, ensure, failed};
use crate::model::{ArtifactId, Change, ExecutionId, ItemState, now_ms};
use crate::store::Store;

/// Sweeps every batch (of `limit`) with `cutoff_ms`; (scanned, deleted).
async fn sweep(store: &Store, limit: usize, cutoff_ms: u64) -> Result<(usize, usize), String> {
    let (mut scanned, mut deleted, mut from) = (0, 0, None);
    for _ in 0..100_000 {
        let batch = store
            .sweep_artifacts(from, limit, cutoff_ms)
            .await
            .map_err(failed("sweeping"))?;
        scanned += batch.scanned;
        deleted += batch.deleted;
        match batch.next {
            Some(next) => from = Some(next),
            None => return Ok((scanned, deleted)),
        }
    }
    Err("the sweep did not end in 100,000 batches".to_owned())
}

async fn put(
    store: &Store,
    id: ExecutionId,
    bytes: &[u8],
    now_ms: u64,
) -> Result<ArtifactId, String> {
    store
        .put_artifact(id, bytes.to_vec(), now_ms)
        .await
        .map_err(failed("putting an artifact"))
}

pub(super) async fn the_sweep_deletes_exactly_old_unreferenced<S: Subject>(
    subject: &mut S,
) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let (kept, dropped, young) = (
        ExecutionId::generate(),
        ExecutionId::generate(),
        ExecutionId::generate(),
    );
    let a = put(&store, kept, b"kept", 1_000).await?;
    let b = put(&store, dropped, b"dropped", 1_000).await?;
    let c = put(&store, young, b"young", 5_000).await?;
    // The same bytes again: one artifact, two references.
    let again = put(&store, young, b"kept", 1_000).await?;
    ensure(again == a, || {
        format!("the same bytes got ids {a} and {again}")
    })?;
    store
        .commit(vec![
            Change::Delete { id: dropped },
            Change::Delete { id: young },
        ])
        .await
        .map_err(failed("deleting"))?;
    // `b` and `c` are unreferenced; only `b` is older than the cutoff. `a` is still
    // referenced by `kept` although `young` (its other reference) is gone.
    let swept = sweep(&store, 2, 2_000).await?;
    ensure(swept.1 == 1, || format!("the first sweep: {swept:?}"))?;
    let read = |id| store.read_artifact(id, 9_000);
    let gone = read(b).await.map_err(failed("reading"))?;
    ensure(gone.is_none(), || {
        "the old unreferenced artifact is still there".to_owned()
    })?;
    let a_bytes = read(a).await.map_err(failed("reading"))?;
    ensure(a_bytes.as_deref() == Some(&b"kept"[..]), || {
        format!("the referenced artifact reads {a_bytes:?}")
    })?;
    // Reading `c` touched it: still young for a cutoff before the touch.
    ensure(read(c).await.map_err(failed("reading"))?.is_some(), || {
        "the young artifact is gone".to_owned()
    })?;
    let swept = sweep(&store, 10, 8_000).await?;
    ensure(swept == (2, 0), || {
        format!("a sweep before the touch: {swept:?}")
    })?;
    let swept = sweep(&store, 10, 10_000).await?;
    ensure(swept == (2, 1), || {
        format!("a sweep after the touch: {swept:?}")
    })?;
    // Referencing a deleted artifact says so; a live one works.
    let gone = store
        .reference_artifact(kept, b, 11_000)
        .await
        .map_err(failed("referencing"))?;
    ensure(!gone, || "a deleted artifact was referenced".to_owned())?;
    let live = store
        .reference_artifact(kept, a, 11_000)
        .await
        .map_err(failed("referencing"))?;
    ensure(live, || {
        "a stored artifact could not be referenced".to_owned()
    })?;
    store.close().await.map_err(failed("closing"))
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

type References = Arc<Mutex<HashMap<ExecutionId, HashSet<ArtifactId>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every reference held must have its artifact in the store.
async fn all_there(store: &Store, references: &References, seed: u64) -> CheckResult {
    let pairs: Vec<(ExecutionId, ArtifactId)> = lock(references)
        .iter()
        .flat_map(|(e, set)| set.iter().map(move |a| (*e, *a)))
        .collect();
    for (execution, artifact) in pairs {
        let bytes = store
            .read_artifact(artifact, now_ms())
            .await
            .map_err(failed("reading"))?;
        ensure(bytes.is_some(), || {
            format!("seed {seed}: artifact {artifact} deleted while {execution} references it")
        })?;
    }
    Ok(())
}

/// Three tasks put, reference and delete at random while a fourth sweeps with no
/// protection; no referenced artifact may ever be missing.
async fn race(store: Store, seed: u64) -> CheckResult {
    let references: References = Arc::default();
    let made: Arc<Mutex<Vec<ArtifactId>>> = Arc::default();
    let executions: Vec<Vec<ExecutionId>> = (0..3)
        .map(|_| (0..3).map(|_| ExecutionId::generate()).collect())
        .collect();
    let mut tasks = Vec::new();
    for (worker, executions) in executions.iter().cloned().enumerate() {
        let (store, references, made) = (store.clone(), references.clone(), made.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(worker as u64) | 1);
            for _ in 0..60 {
                let execution = executions[rng.below(3) as usize];
                match rng.below(4) {
                    // Make one of eight contents (so artifacts are shared).
                    0 => {
                        let bytes = format!("content-{}", rng.below(8)).into_bytes();
                        let id = put(&store, execution, &bytes, now_ms()).await?;
                        lock(&references).entry(execution).or_default().insert(id);
                        lock(&made).push(id);
                    }
                    // Reference one made before (it may be gone).
                    1 | 2 => {
                        let pick = {
                            let made = lock(&made);
                            (!made.is_empty()).then(|| made[rng.below(made.len() as u64) as usize])
                        };
                        if let Some(id) = pick
                            && store
                                .reference_artifact(execution, id, now_ms())
                                .await
                                .map_err(failed("referencing"))?
                        {
                            lock(&references).entry(execution).or_default().insert(id);
                        }
                    }
                    // Delete the execution: its references go (from the model first).
                    _ => {
                        lock(&references).remove(&execution);
                        store
                            .commit(vec![Change::Delete { id: execution }])
                            .await
                            .map_err(failed("deleting"))?;
                    }
                }
                tokio::task::yield_now().await;
            }
            Ok::<_, String>(())
        }));
    }
    let sweeper = {
        let (store, references) = (store.clone(), references.clone());
        tokio::spawn(async move {
            for _ in 0..40 {
                // No protection: everything unreferenced goes, in batches of 3.
                sweep(&store, 3, u64::MAX).await?;
                all_there(&store, &references, seed).await?;
            }
            Ok::<_, String>(())
        })
    };
    for task in tasks {
        task.await.map_err(|e| format!("a task failed: {e}"))??;
    }
    sweeper
        .await
        .map_err(|e| format!("the sweeper failed: {e}"))??;
    all_there(&store, &references, seed).await?;
    // In the end only what is referenced is left.
    sweep(&store, 100, u64::MAX).await?;
    let referenced: HashSet<ArtifactId> = lock(&references).values().flatten().copied().collect();
    let left = sweep(&store, 100, u64::MAX).await?;
    ensure(left == (referenced.len(), 0), || {
        format!(
            "seed {seed}: {left:?} left after the race, {} referenced",
            referenced.len()
        )
    })?;
    // The next seed starts from an empty store.
    let all = executions
        .into_iter()
        .flatten()
        .map(|id| Change::Delete { id })
        .collect();
    store.commit(all).await.map_err(failed("deleting"))?;
    let swept = sweep(&store, 100, u64::MAX).await?;
    ensure(swept.0 == swept.1, || {
        format!("seed {seed}: {swept:?} after every execution was deleted")
    })
}

pub(super) async fn references_racing_sweeps<S: Subject>(subject: &mut S) -> CheckResult {
    // TEND_SIM_SEED replays one seed.
    let seeds: Vec<u64> = match std::env::var("TEND_SIM_SEED") {
        Ok(seed) => vec![seed.parse().map_err(|_| "TEND_SIM_SEED is not a number")?],
        Err(_) => (1..=8).collect(),
    };
    let store = subject.open().await.map_err(failed("opening"))?;
    for seed in seeds {
        race(store.clone(), seed).await?;
    }
    store.close().await.map_err(failed("closing"))
}

pub(super) async fn leftovers_are_found<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let ghost = ExecutionId::generate();
    store
        .commit(vec![
            Change::Item {
                id: ghost,
                index: 3,
                state: ItemState::default(),
                first: true,
            },
            Change::Checkpoint {
                id: ghost,
                index: 0,
                checkpoint: crate::model::Checkpoint {
                    state: vec![2],
                    progress: None,
                },
            },
        ])
        .await
        .map_err(failed("committing"))?;
    put(&store, ghost, b"left", 1).await?;
    let left = store
        .leftovers()
        .await
        .map_err(failed("finding leftovers"))?;
    ensure(left == [ghost], || {
        format!("leftovers: {left:?}, not {ghost}")
    })?;
    store
        .commit(vec![Change::Delete { id: ghost }])
        .await
        .map_err(failed("deleting"))?;
    let left = store
        .leftovers()
        .await
        .map_err(failed("finding leftovers"))?;
    ensure(left.is_empty(), || {
        format!("leftovers after the deletion: {left:?}")
    })?;
    // Its artifact is unreferenced now.
    let swept = sweep(&store, 10, u64::MAX).await?;
    ensure(swept == (1, 1), || {
        format!("the sweep after the deletion: {swept:?}")
    })?;
    store.close().await.map_err(failed("closing"))
}

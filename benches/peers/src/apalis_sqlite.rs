//! apalis with its SQLite backend: no-op jobs pushed in one batch, run by one worker, each
//! acknowledged into the jobs table.
//!
//! `SqliteStorage::setup` turns `synchronous` off on the connection it runs on, which would
//! make no commit durable; so the schema is set up on a pool of its own, and the measured
//! pool opens every connection with WAL and `synchronous = FULL` (each commit synced, as
//! tend's `Durability::Immediate` is).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_sqlite::{Config, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

use crate::Measured;

/// Jobs one fetch locks at once (apalis's default is 10).
const BATCH: usize = 100;
/// Jobs the worker runs at once.
const CONCURRENCY: usize = 256;
/// Longest wait for the acknowledgements after the worker has stopped.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// Counts the jobs run and stops the worker after the last.
#[derive(Debug)]
struct Done {
    count: AtomicUsize,
    total: usize,
}

async fn noop(_job: u64, done: Data<Arc<Done>>, worker: WorkerContext) -> Result<(), BoxDynError> {
    if done.count.fetch_add(1, Ordering::SeqCst) + 1 == done.total {
        worker.stop()?;
    }
    Ok(())
}

async fn pool(path: &Path, synchronous: SqliteSynchronous) -> Result<SqlitePool, String> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous);
    SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .map_err(|e| format!("open {}: {e}", path.display()))
}

async fn done_count(pool: &SqlitePool) -> Result<i64, String> {
    sqlx::query_scalar("SELECT COUNT(*) FROM Jobs WHERE status = 'Done'")
        .fetch_one(pool)
        .await
        .map_err(|e| format!("count the done jobs: {e}"))
}

/// Runs `jobs` no-op jobs on a SQLite file in `dir`; the time from the push until every
/// job is recorded done.
pub(crate) async fn run(jobs: usize, dir: &Path) -> Result<Measured, String> {
    let path = dir.join("apalis.sqlite");
    {
        let setup = pool(&path, SqliteSynchronous::Full).await?;
        SqliteStorage::setup(&setup)
            .await
            .map_err(|e| format!("set up the schema: {e}"))?;
        setup.close().await;
    }
    let pool = pool(&path, SqliteSynchronous::Full).await?;
    let config = Config::default().queue("noop").batch_size(BATCH);
    let mut storage = SqliteStorage::<u64>::new(&pool).with_config(config);
    let done = Arc::new(Done {
        count: AtomicUsize::new(0),
        total: jobs,
    });

    let t0 = Instant::now();
    storage
        .push_bulk((0..jobs as u64).collect())
        .await
        .map_err(|e| format!("push: {e}"))?;
    let worker = WorkerBuilder::new("tend-peers")
        .backend(storage)
        .data(done.clone())
        .concurrency(CONCURRENCY)
        .build(noop);
    worker.run().await.map_err(|e| format!("worker: {e}"))?;
    // The last acknowledgements may still be on their way when the worker stops.
    let deadline = Instant::now() + ACK_WAIT;
    while done_count(&pool).await? < jobs as i64 {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {jobs} jobs recorded done after {ACK_WAIT:?}",
                done_count(&pool).await?
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = t0.elapsed();
    pool.close().await;
    Ok(Measured {
        jobs,
        took,
        settings: "apalis-sqlite 1.0, WAL, synchronous=FULL, batch 100, concurrency 256",
    })
}

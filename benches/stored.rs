//! Startup and reads with many stored finished executions, beside an empty store in the
//! same run.
//!
//! A store of `STORED_EXECUTIONS` (default 1,000,000) finished one-item executions is
//! made by copying one real execution's records under new ids (written straight into the
//! redb file, in large transactions). Each measurement runs in a fresh child process (so
//! no memory from making the store is counted): the time `start()` takes, the process's
//! resident memory once started, and the time of the first page of `list_page`, of
//! `counts`, of `status` of the oldest execution, and of a page filtered by a status no
//! execution has. Each is the median of 3 children, for the store of one execution and the
//! full one. Last, one start of each that compacts the file first (what every start did
//! before compaction was kept for after large deletions).
//!
//! `cargo bench --bench stored` (`STORED_EXECUTIONS=100000` for a quicker run).

#[path = "support/rss.rs"]
mod rss;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use rss::rss_bytes;
use tend::{Block, Config, ExecutionId, ListQuery, Plan, Runtime};

const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
const PLANS: TableDefinition<&str, &[u8]> = TableDefinition::new("plans");
/// tend's item records: keyed by the execution's 26 characters and the index in 4
/// big-endian bytes.
const ITEMS: TableDefinition<&[u8; 30], &[u8]> = TableDefinition::new("item_records");

/// The key of item 0 of execution `id` in [`ITEMS`].
fn first_item(id: &str) -> [u8; 30] {
    let mut key = [0u8; 30];
    key[..26].copy_from_slice(id.as_bytes());
    key
}
const CHILD: &str = "TEND_STORED_CHILD";
const RUNS: usize = 3;

fn config() -> Config {
    Config {
        maintenance_interval: None,
        disk_low_percent: 0.0,
        ..Config::default()
    }
}

async fn start(dir: &Path) -> Runtime {
    Runtime::builder()
        .data_dir(dir)
        .registry(tend::demo::registry().expect("demo kinds"))
        .config(config())
        .start()
        .await
        .expect("runtime starts")
}

/// Makes a store in `dir` holding `n` finished executions and returns the oldest's id.
async fn fill(dir: &Path, n: usize) -> ExecutionId {
    let runtime = start(dir).await;
    let plan = Plan::new("stored").block(
        Block::new("b").item(tend::ItemSpec::new("one", &tend::demo::Sum { add: 1 }).expect("sum")),
    );
    let first = runtime.submit(plan).await.expect("submit");
    runtime.wait(first).await.expect("wait");
    runtime.shutdown().await.expect("shutdown");
    drop(runtime);

    let db = Database::create(dir.join(tend::engine::store::DB_FILE)).expect("open the file");
    let key = first.to_string();
    let (record, plan, item) = {
        let txn = db.begin_read().expect("read");
        let get = |table: TableDefinition<&str, &[u8]>| {
            txn.open_table(table)
                .expect("table")
                .get(key.as_str())
                .expect("get")
                .expect("stored")
                .value()
                .to_vec()
        };
        let item = txn
            .open_table(ITEMS)
            .expect("items")
            .get(&first_item(&key))
            .expect("get")
            .expect("stored")
            .value()
            .to_vec();
        (get(EXECUTIONS), get(PLANS), item)
    };
    let record: serde_json::Value = rmp_serde::from_slice(&record).expect("record");
    let mut made = 1;
    while made < n {
        let mut txn = db.begin_write().expect("write");
        txn.set_durability(Durability::None).expect("durability");
        {
            let mut executions = txn.open_table(EXECUTIONS).expect("executions");
            let mut plans = txn.open_table(PLANS).expect("plans");
            let mut items = txn.open_table(ITEMS).expect("items");
            for _ in 0..(n - made).min(50_000) {
                let id = ExecutionId::generate().to_string();
                let mut record = record.clone();
                record["id"] = id.clone().into();
                let bytes = rmp_serde::to_vec_named(&record).expect("encode");
                executions
                    .insert(id.as_str(), bytes.as_slice())
                    .expect("insert");
                plans.insert(id.as_str(), plan.as_slice()).expect("insert");
                items
                    .insert(&first_item(&id), item.as_slice())
                    .expect("insert");
                made += 1;
            }
        }
        txn.commit().expect("commit");
    }
    // One durable commit makes the rest durable too.
    let txn = db.begin_write().expect("write");
    txn.commit().expect("commit");
    first
}

/// What one child measured.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Measure {
    startup: f64,
    rss_mib: f64,
    page: f64,
    counts: f64,
    status: f64,
    /// A page filtered by a status no stored execution has (it reads its scan budget).
    filtered: f64,
}

async fn child(dir: &Path, oldest: ExecutionId) {
    let began = Instant::now();
    let runtime = start(dir).await;
    let startup = began.elapsed();
    let rss = rss_bytes();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let began = Instant::now();
    let page = runtime.list_page(ListQuery::default()).await.expect("page");
    assert!(!page.executions.is_empty());
    let page_time = began.elapsed();
    let began = Instant::now();
    runtime.counts().await.expect("counts");
    let counts = began.elapsed();
    let began = Instant::now();
    runtime.status(oldest).await.expect("status");
    let status = began.elapsed();
    let began = Instant::now();
    runtime
        .list_page(ListQuery {
            status: Some(tend::ExecutionStatus::Failed),
            ..ListQuery::default()
        })
        .await
        .expect("page");
    let filtered = began.elapsed();
    let measure = Measure {
        filtered: ms(filtered),
        startup: ms(startup),
        rss_mib: rss as f64 / (1 << 20) as f64,
        page: ms(page_time),
        counts: ms(counts),
        status: ms(status),
    };
    println!("{}", serde_json::to_string(&measure).expect("json"));
    runtime.shutdown().await.expect("shutdown");
}

/// Submits (8 at a time) for `window`, with `readers` tasks reading pages and statuses
/// meanwhile; returns submits/s and reads/s.
async fn contention(
    dir: &Path,
    oldest: ExecutionId,
    readers: usize,
    window: Duration,
) -> (f64, f64) {
    let runtime = start(dir).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let plan = Plan::new("submitted").block(
        Block::new("b").item(tend::ItemSpec::new("one", &tend::demo::Sum { add: 1 }).expect("sum")),
    );
    let reads: Vec<_> = (0..readers)
        .map(|_| {
            let (runtime, stop) = (runtime.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    runtime.list_page(ListQuery::default()).await.expect("page");
                    runtime.status(oldest).await.expect("status");
                    reads += 2;
                }
                reads
            })
        })
        .collect();
    let submits: Vec<_> = (0..8)
        .map(|_| {
            let (runtime, stop, plan) = (runtime.clone(), stop.clone(), plan.clone());
            tokio::spawn(async move {
                let mut submits = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    runtime.submit(plan.clone()).await.expect("submit");
                    submits += 1;
                }
                submits
            })
        })
        .collect();
    tokio::time::sleep(window).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = (0, 0);
    for task in submits {
        total.0 += task.await.expect("submitter");
    }
    for task in reads {
        total.1 += task.await.expect("reader");
    }
    runtime.shutdown().await.expect("shutdown");
    let secs = window.as_secs_f64();
    (total.0 as f64 / secs, total.1 as f64 / secs)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn measure(dir: &Path, oldest: ExecutionId, runs: usize) -> Measure {
    let runs: Vec<Measure> = (0..runs)
        .map(|_| {
            let out = Command::new(std::env::current_exe().expect("this bench"))
                .env(CHILD, format!("{}|{oldest}", dir.display()))
                .output()
                .expect("child runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout);
            let line = line.lines().last().expect("a line");
            serde_json::from_str(line).expect("a measure")
        })
        .collect();
    let pick = |f: fn(&Measure) -> f64| median(runs.iter().map(f).collect());
    Measure {
        startup: pick(|m| m.startup),
        rss_mib: pick(|m| m.rss_mib),
        page: pick(|m| m.page),
        counts: pick(|m| m.counts),
        status: pick(|m| m.status),
        filtered: pick(|m| m.filtered),
    }
}

/// Notes in the store that a compaction is due at the next open (as a prune whose
/// compaction could not run does).
fn compaction_due(dir: &Path) {
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let db = Database::create(dir.join(tend::engine::store::DB_FILE)).expect("open the file");
    let txn = db.begin_write().expect("write");
    txn.open_table(META)
        .expect("meta")
        .insert("compaction_due", b"1".as_slice())
        .expect("insert");
    txn.commit().expect("commit");
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    if let Ok(arg) = std::env::var(CHILD) {
        let (dir, oldest) = arg.split_once('|').expect("dir|id");
        let oldest: ExecutionId = oldest.parse().expect("id");
        return runtime.block_on(child(Path::new(dir), oldest));
    }
    // Only `--bench` runs it (`cargo test --benches` passes no flag).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("STORED_EXECUTIONS")
        .ok()
        .map(|v| v.parse().expect("STORED_EXECUTIONS: a number"))
        .unwrap_or(1_000_000);
    let empty = tempfile::tempdir().expect("temp dir");
    let full = tempfile::tempdir().expect("temp dir");
    let began = Instant::now();
    let one = runtime.block_on(fill(empty.path(), 1));
    let oldest = runtime.block_on(fill(full.path(), n));
    eprintln!("made the stores in {:.1?}", began.elapsed());
    let file = std::fs::metadata(full.path().join(tend::engine::store::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let base = measure(empty.path(), one, RUNS);
    let many = measure(full.path(), oldest, RUNS);
    println!("stored/{n}: file {:.0} MiB", file as f64 / (1 << 20) as f64);
    let row = |what: &str, unit: &str, a: f64, b: f64| {
        println!(
            "stored/{what:<8} 1 execution {a:>9.2} {unit}   {n} executions {b:>9.2} {unit}   ratio {:.2}",
            b / a
        );
    };
    row("startup", "ms", base.startup, many.startup);
    row("rss", "MiB", base.rss_mib, many.rss_mib);
    row("page", "ms", base.page, many.page);
    row("counts", "ms", base.counts, many.counts);
    row("status", "ms", base.status, many.status);
    row("filtered", "ms", base.filtered, many.filtered);
    // What a start costs when it compacts (every start did, before compaction was kept
    // for after large deletions): once, on each store.
    compaction_due(empty.path());
    compaction_due(full.path());
    let base = measure(empty.path(), one, 1);
    let many = measure(full.path(), oldest, 1);
    row("compact", "ms", base.startup, many.startup);
    row("c.rss", "MiB", base.rss_mib, many.rss_mib);
    // Submits beside readers of pages and statuses, on the full store (each run adds its
    // executions to it).
    let window = Duration::from_secs(3);
    let (alone, _) = runtime.block_on(contention(full.path(), oldest, 0, window));
    let (beside, reads) = runtime.block_on(contention(full.path(), oldest, 4, window));
    println!(
        "stored/submits  alone {alone:>9.0}/s   beside 4 readers {beside:>9.0}/s ({reads:.0} reads/s)   ratio {:.2}",
        beside / alone
    );
}

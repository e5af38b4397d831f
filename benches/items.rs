//! Two groups:
//!
//! - `10k_noop_items`: 10,000 independent no-op items in one execution, through the whole
//!   runtime (in-memory store and a redb file), beside a bare tokio `JoinSet` running the
//!   same 10,000 futures; and the redb file run again with every item carrying `retry`,
//!   `delay` and `timeout` it never needs (the cost of that bookkeeping).
//! - `chain_1000_redb`: 1,000 no-op items in a chain (each `after` the one before) on a redb
//!   file, beside raw redb making 1,000 small records durable one commit after another, the
//!   floor for anything that checkpoints each step before starting the next.
//!
//! `cargo bench --bench items`

#[path = "support/noop.rs"]
mod noop;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use noop::Noop;
use redb::{Database, Durability, TableDefinition};
use tend::{Block, Config, ItemSpec, Plan, Registry, Runtime};

const ITEMS: usize = 10_000;
const CHAIN: usize = 1_000;
/// About the size of one item record: (execution id, item index) -> a short encoded state.
/// Keyed as tend keys item records: an execution's 26 characters, then the index in 4
/// big-endian bytes.
const RECORDS: TableDefinition<&[u8; 30], &[u8]> = TableDefinition::new("records");

/// The floor's key of record `i`.
fn record_key(i: u32) -> [u8; 30] {
    let mut key = [b'C'; 30];
    key[26..].copy_from_slice(&i.to_be_bytes());
    key
}
const RECORD: [u8; 60] = [0x5a; 60];

fn plan() -> Plan {
    let mut block = Block::new("all");
    for i in 0..ITEMS {
        block.push(ItemSpec::new(format!("n{i}"), &Noop).expect("a unit struct serializes"));
    }
    Plan::new("noop").block(block)
}

/// As [`plan`], every item with a retry policy and a timeout it never needs: what the
/// retry and timeout bookkeeping costs items that succeed first time.
fn plan_with_policies() -> Plan {
    let mut block = Block::new("all");
    for i in 0..ITEMS {
        block.push(
            ItemSpec::new(format!("n{i}"), &Noop)
                .expect("a unit struct serializes")
                .retry(3)
                .delay(Duration::from_secs(1))
                .timeout(Duration::from_secs(3600)),
        );
    }
    Plan::new("noop-with-policies").block(block)
}

fn chain_plan() -> Plan {
    let mut block = Block::new("chain");
    for i in 0..CHAIN {
        let mut spec = ItemSpec::new(format!("n{i}"), &Noop).expect("a unit struct serializes");
        if i > 0 {
            spec = spec.after([format!("n{}", i - 1)]);
        }
        block.push(spec);
    }
    Plan::new("chain").block(block)
}

async fn start(dir: Option<&std::path::Path>) -> Runtime {
    let mut builder = Runtime::builder()
        .registry(Registry::new().with::<Noop>().expect("one kind"))
        .config(Config {
            parallelism: 256,
            ..Config::default()
        });
    if let Some(dir) = dir {
        builder = builder.data_dir(dir);
    }
    builder.start().await.expect("runtime starts")
}

async fn run(runtime: &Runtime, plan: Plan, items: usize) {
    let id = runtime.submit(plan).await.expect("valid plan");
    let outcome = runtime.wait(id).await.expect("outcome");
    assert_eq!(outcome.done(), items);
}

/// One write transaction per record, each with `Durability::Immediate`.
fn redb_sequential_commits(db: &Database) {
    for i in 0..CHAIN as u32 {
        let mut tx = db.begin_write().expect("write transaction");
        tx.set_durability(Durability::Immediate)
            .expect("durability set before any write");
        {
            let mut table = tx.open_table(RECORDS).expect("table opens");
            table
                .insert(&record_key(i), RECORD.as_slice())
                .expect("insert");
        }
        tx.commit().expect("commit");
    }
}

fn items(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let memory = rt.block_on(start(None));
    let file = rt.block_on(start(Some(dir.path())));
    let plan = plan();

    let mut group = c.benchmark_group("10k_noop_items");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("tokio_joinset", |b| {
        b.to_async(&rt).iter(|| async {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..ITEMS {
                set.spawn(async move { black_box(i) });
            }
            while let Some(r) = set.join_next().await {
                black_box(r.expect("task"));
            }
        })
    });
    group.bench_function("tend_in_memory", |b| {
        b.to_async(&rt).iter(|| run(&memory, plan.clone(), ITEMS))
    });
    group.bench_function("tend_redb_file", |b| {
        b.to_async(&rt).iter(|| run(&file, plan.clone(), ITEMS))
    });
    let with_policies = plan_with_policies();
    group.bench_function("tend_redb_file_retry_timeout", |b| {
        b.to_async(&rt)
            .iter(|| run(&file, with_policies.clone(), ITEMS))
    });
    group.finish();
    rt.block_on(async {
        memory.shutdown().await.expect("shutdown");
        file.shutdown().await.expect("shutdown");
    });
}

fn chain(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::create(dir.path().join("raw.redb")).expect("redb file");
    let tend_dir = tempfile::tempdir().expect("temp dir");
    let file = rt.block_on(start(Some(tend_dir.path())));
    let plan = chain_plan();

    // Each iteration is about 1,000 fsyncs, from well under a second to seconds depending on
    // the disk. Flat sampling needs at least 10 iterations per benchmark where linear sampling
    // needs 55, so the group stays near 2 x (1 s warm-up + 20 s) unless fsync is slow.
    let mut group = c.benchmark_group("chain_1000_redb");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("redb_1000_sequential_commits", |b| {
        b.iter(|| redb_sequential_commits(&db))
    });
    group.bench_function("tend_chain_redb_file", |b| {
        b.to_async(&rt).iter(|| run(&file, plan.clone(), CHAIN))
    });
    group.finish();
    rt.block_on(async { file.shutdown().await.expect("shutdown") });
}

criterion_group!(benches, items, chain);
criterion_main!(benches);

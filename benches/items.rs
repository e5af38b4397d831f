//! 10,000 independent no-op items in one execution, through the whole runtime (in-memory
//! store and a redb file), beside a bare tokio `JoinSet` running the same 10,000 futures.
//!
//! `cargo bench --bench items`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use tend::{Block, Config, Item, ItemCtx, ItemError, ItemSpec, Plan, Registry, Runtime};

const ITEMS: usize = 10_000;

/// Does nothing and returns nothing.
#[derive(Serialize, Deserialize)]
struct Noop;

impl Item for Noop {
    const KIND: &'static str = "noop";
    type Output = ();

    async fn apply(&self, _cx: &mut ItemCtx) -> Result<(), ItemError> {
        Ok(())
    }
}

fn plan() -> Plan {
    let mut block = Block::new("all");
    for i in 0..ITEMS {
        block.push(ItemSpec::new(format!("n{i}"), &Noop).expect("a unit struct serializes"));
    }
    Plan::new("noop").block(block)
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

async fn run(runtime: &Runtime, plan: Plan) {
    let id = runtime.submit(plan).await.expect("valid plan");
    let outcome = runtime.wait(id).await.expect("outcome");
    assert_eq!(outcome.done(), ITEMS);
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
        b.to_async(&rt).iter(|| run(&memory, plan.clone()))
    });
    group.bench_function("tend_redb_file", |b| {
        b.to_async(&rt).iter(|| run(&file, plan.clone()))
    });
    group.finish();
    rt.block_on(async {
        memory.shutdown().await.expect("shutdown");
        file.shutdown().await.expect("shutdown");
    });
}

criterion_group!(benches, items);
criterion_main!(benches);

//! Throughput of no-op items: in memory against a `JoinSet`, on a redb file against a
//! hand-written group commit, a chain against sequential commits, and many small
//! executions against one large one.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures::future::join_all;
use redb::Database;
use tend::{Block, ItemSpec, Plan, Runtime};

use crate::figure::{Figure, Goal, median, ms};
use crate::group_commit::{GroupCommitLog, sequential_commits};
use crate::noop::Noop;
use crate::{Sizes, baseline_first, builder, noop_plan, run_plan};

/// Items a task of the group-commit floor keeps in flight, as tend's parallelism.
const IN_FLIGHT: usize = 256;

pub(crate) async fn run(sizes: &Sizes) {
    eprintln!("items:");
    in_memory(sizes).await;
    on_file(sizes).await;
    chain(sizes).await;
    many_executions(sizes).await;
    small_executions_in_memory(sizes).await;
}

/// Spawns `futures` no-op futures on a `JoinSet` and joins them.
pub(crate) async fn joinset(futures: usize) -> Duration {
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..futures {
        set.spawn(async move { black_box(i) });
    }
    while let Some(r) = set.join_next().await {
        black_box(r.expect("a no-op task"));
    }
    t0.elapsed()
}

/// `count` executions of `plan` submitted at once; the time until every one has ended.
async fn executions(runtime: &Runtime, plan: &Plan, count: usize, items_each: usize) -> Duration {
    let plans: Vec<Plan> = (0..count).map(|_| plan.clone()).collect();
    let t0 = Instant::now();
    let runs = plans.into_iter().map(|plan| async move {
        let id = runtime.submit(plan).await.expect("a valid plan");
        runtime.wait(id).await.expect("an outcome")
    });
    let outcomes = join_all(runs).await;
    let took = t0.elapsed();
    assert!(outcomes.iter().all(|o| o.done() == items_each));
    took
}

async fn in_memory(sizes: &Sizes) {
    let n = sizes.items;
    let runtime = builder(None).start().await.expect("the runtime starts");
    let plan = noop_plan(n);
    run_plan(&runtime, plan.clone(), n).await;
    joinset(n).await;
    let (mut tend, mut base) = (Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        for baseline in [baseline_first(round), !baseline_first(round)] {
            if baseline {
                base.push(ms(joinset(n).await));
            } else {
                tend.push(ms(run_plan(&runtime, plan.clone(), n).await));
            }
        }
    }
    runtime.shutdown().await.expect("shutdown");
    Figure::against(
        "noop_items_in_memory_ratio",
        "ms",
        median(&tend),
        &format!("tokio JoinSet of the same {n} no-op futures"),
        median(&base),
        Goal::AtMost(4.0),
    )
    .print();
}

async fn on_file(sizes: &Sizes) {
    let n = sizes.items;
    let dir = tempfile::tempdir().expect("a temp dir");
    let runtime = builder(Some(&dir.path().join("tend")))
        .start()
        .await
        .expect("the runtime starts");
    let floor = GroupCommitLog::create(&dir.path().join("floor.redb"));
    let plan = noop_plan(n);
    run_plan(&runtime, plan.clone(), n).await;
    floor.append(n, IN_FLIGHT).await;
    let (mut tend, mut base) = (Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        for baseline in [baseline_first(round), !baseline_first(round)] {
            if baseline {
                base.push(ms(floor.append(n, IN_FLIGHT).await));
            } else {
                tend.push(ms(run_plan(&runtime, plan.clone(), n).await));
            }
        }
    }
    runtime.shutdown().await.expect("shutdown");
    let baseline = format!(
        "tokio + redb group commit of {n} records, {IN_FLIGHT} in flight, one Durability::Immediate transaction per group"
    );
    let (tend, base) = (median(&tend), median(&base));
    Figure::against(
        "noop_items_redb_file_ratio",
        "ms",
        tend,
        &baseline,
        base,
        Goal::AtMost(1.25),
    )
    .print();
    let per_s = |took_ms: f64| n as f64 / (took_ms / 1e3);
    Figure::against(
        "noop_items_redb_file_items_per_s",
        "items/s",
        per_s(tend),
        &baseline,
        per_s(base),
        Goal::AtLeast(300_000.0),
    )
    .print();
}

fn chain_plan(items: usize) -> Plan {
    let mut block = Block::new("chain");
    for i in 0..items {
        let mut spec = ItemSpec::new(format!("n{i}"), &Noop).expect("a unit struct serializes");
        if i > 0 {
            spec = spec.after([format!("n{}", i - 1)]);
        }
        block.push(spec);
    }
    Plan::new("chain").block(block)
}

async fn chain(sizes: &Sizes) {
    let n = sizes.chain;
    let dir = tempfile::tempdir().expect("a temp dir");
    let runtime = builder(Some(&dir.path().join("tend")))
        .start()
        .await
        .expect("the runtime starts");
    let db = Database::create(dir.path().join("floor.redb")).expect("the floor's file");
    let plan = chain_plan(n);
    let mut key = 0;
    let (mut tend, mut base) = (Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        for baseline in [baseline_first(round), !baseline_first(round)] {
            if baseline {
                base.push(ms(sequential_commits(&db, key, n)));
                key += n as u64;
            } else {
                tend.push(ms(run_plan(&runtime, plan.clone(), n).await));
            }
        }
    }
    runtime.shutdown().await.expect("shutdown");
    Figure::against(
        "chain_items_redb_file_ratio",
        "ms",
        median(&tend),
        &format!("{n} sequential Durability::Immediate redb commits of one record"),
        median(&base),
        Goal::AtMost(1.25),
    )
    .print();
}

async fn many_executions(sizes: &Sizes) {
    let count = sizes.executions_100;
    let n = count * 100;
    let dir = tempfile::tempdir().expect("a temp dir");
    let runtime = builder(Some(dir.path()))
        .start()
        .await
        .expect("the runtime starts");
    let small = noop_plan(100);
    let large = noop_plan(n);
    executions(&runtime, &small, count, 100).await;
    run_plan(&runtime, large.clone(), n).await;
    let (mut tend, mut base) = (Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        for baseline in [baseline_first(round), !baseline_first(round)] {
            if baseline {
                base.push(ms(run_plan(&runtime, large.clone(), n).await));
            } else {
                tend.push(ms(executions(&runtime, &small, count, 100).await));
            }
        }
    }
    runtime.shutdown().await.expect("shutdown");
    Figure::against(
        "executions_x100_items_redb_file_ratio",
        "ms",
        median(&tend),
        &format!("the same {n} no-op items in one execution (redb file)"),
        median(&base),
        Goal::AtMost(1.3),
    )
    .print();
}

async fn small_executions_in_memory(sizes: &Sizes) {
    let count = sizes.executions_8;
    let n = count * 8;
    let runtime = builder(None).start().await.expect("the runtime starts");
    let plan = noop_plan(8);
    executions(&runtime, &plan, count, 8).await;
    joinset(n).await;
    let (mut tend, mut base) = (Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        for baseline in [baseline_first(round), !baseline_first(round)] {
            if baseline {
                base.push(ms(joinset(n).await));
            } else {
                tend.push(ms(executions(&runtime, &plan, count, 8).await));
            }
        }
    }
    runtime.shutdown().await.expect("shutdown");
    Figure::against(
        "executions_x8_items_in_memory_ratio",
        "ms",
        median(&tend),
        &format!("tokio JoinSet of the same {n} no-op futures"),
        median(&base),
        Goal::AtMost(10.0),
    )
    .print();
}

//! Allocations per item on a redb file: every allocation of the process (the runtime's
//! actors, its workers, the store's writer thread) while one execution of no-op items
//! runs, divided by its items; beside a `JoinSet` of as many no-op futures.

use std::future::Future;

use stats_alloc::Region;

use crate::figure::{Figure, Goal, median};
use crate::items::joinset;
use crate::{GLOBAL, Sizes, baseline_first, builder, noop_plan, run_plan};

/// Allocations and bytes allocated while `work` runs.
async fn counted<F: Future>(work: F) -> (f64, f64) {
    let region = Region::new(GLOBAL);
    work.await;
    let change = region.change();
    (
        (change.allocations + change.reallocations) as f64,
        change.bytes_allocated as f64,
    )
}

pub(crate) async fn run(sizes: &Sizes) {
    eprintln!("allocations:");
    let n = sizes.allocation_items;
    let dir = tempfile::tempdir().expect("a temp dir");
    let runtime = builder(Some(dir.path()))
        .start()
        .await
        .expect("the runtime starts");
    let plan = noop_plan(n);
    run_plan(&runtime, plan.clone(), n).await;
    let (mut tend, mut base) = (Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        for baseline in [baseline_first(round), !baseline_first(round)] {
            if baseline {
                base.push(counted(joinset(n)).await);
            } else {
                let plan = plan.clone();
                tend.push(counted(run_plan(&runtime, plan, n)).await);
            }
        }
    }
    runtime.shutdown().await.expect("shutdown");
    let per_item = |v: &[(f64, f64)], bytes: bool| {
        let per: Vec<f64> = v
            .iter()
            .map(|&(count, size)| if bytes { size } else { count } / n as f64)
            .collect();
        median(&per)
    };
    let baseline = format!("tokio JoinSet of {n} no-op futures, per future");
    Figure::against(
        "allocations_per_item_redb_file",
        "allocations",
        per_item(&tend, false),
        &baseline,
        per_item(&base, false),
        Goal::AtMost(8.0),
    )
    .print();
    Figure::against(
        "allocated_bytes_per_item_redb_file",
        "bytes",
        per_item(&tend, true),
        &baseline,
        per_item(&base, true),
        Goal::None,
    )
    .print();
}

//! Shared by the integration tests: a runtime over the demo kinds, plan builders, and
//! bounded waits on the event stream.
#![allow(dead_code, unreachable_pub)]

#[path = "backend.rs"]
pub mod backend;

use std::path::Path;
use std::time::Duration;

use tend::demo::{AppliedLog, Gate, Gates, Sleep, Sum};
use tend::{Config, Event, EventStream, ExecutionId, ItemSpec, ItemStatus, Runtime};

/// Every wait in the tests gives up after this long, so a broken runtime fails the test
/// instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A runtime over the demo kinds on `dir` (or in memory), logging attempts to `log`.
pub async fn runtime(dir: Option<&Path>, log: Option<&Path>, parallelism: usize) -> Runtime {
    gated_runtime(dir, log, parallelism, Gates::new()).await
}

/// As [`runtime`], with `gates` for the `gate` items: the test keeps a clone and opens them.
pub async fn gated_runtime(
    dir: Option<&Path>,
    log: Option<&Path>,
    parallelism: usize,
    gates: Gates,
) -> Runtime {
    let mut builder = Runtime::builder()
        .resource(gates)
        .registry(tend::demo::registry().unwrap())
        .config(Config {
            parallelism,
            stop_grace: Duration::from_millis(500),
            // Whatever the machine's disk: no low-disk cleanup in the tests.
            disk_low_percent: 0.0,
            ..Config::default()
        });
    builder = on_backend(builder, dir);
    if let Some(log) = log {
        builder = builder.resource(AppliedLog::open(log).unwrap());
    }
    builder.start().await.unwrap()
}

/// `builder` on the tests' backend (see `backend`): redb in `dir` (in memory without one),
/// or PostgreSQL in the schema of `dir`.
pub fn on_backend(builder: tend::RuntimeBuilder, dir: Option<&Path>) -> tend::RuntimeBuilder {
    #[cfg(feature = "postgres")]
    if let Some(url) = backend::postgres() {
        return builder.postgres_with(
            url,
            tend::engine::store::PostgresOptions {
                schema: backend::schema(dir),
                ..Default::default()
            },
        );
    }
    #[cfg(not(feature = "postgres"))]
    let _ = backend::postgres();
    match dir {
        Some(dir) => builder.data_dir(dir),
        None => builder,
    }
}

/// The store of the tests' backend in `dir` (see `on_backend`), opened for reading what a
/// runtime that stopped left there.
pub async fn open_store(dir: &Path) -> tend::engine::Store {
    #[cfg(feature = "postgres")]
    if let Some(url) = backend::postgres() {
        let options = tend::engine::store::PostgresOptions {
            schema: backend::schema(Some(dir)),
            ..Default::default()
        };
        let store = tend::engine::store::PostgresStore::connect(&url, options)
            .await
            .unwrap();
        return tend::engine::Store::new(store);
    }
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || tend::engine::Store::open(&dir))
        .await
        .unwrap()
        .unwrap()
}

/// A `sleep` item of `ms` in `steps` steps.
pub fn sleep(id: &str, ms: u64, steps: u32) -> ItemSpec {
    ItemSpec::new(id, &Sleep::new(ms).steps(steps)).unwrap()
}

/// A `gate` item of `steps` steps waiting at gate `gate`.
pub fn gate(id: &str, gate: &str, steps: u32) -> ItemSpec {
    ItemSpec::new(id, &Gate::new(gate).steps(steps)).unwrap()
}

/// A `sum` item adding `add` to its dependencies' outputs.
pub fn sum(id: &str, add: i64) -> ItemSpec {
    ItemSpec::new(id, &Sum { add }).unwrap()
}

/// Polls `probe` every 50 ms until it answers `Ok`; after PATIENCE fails the test with
/// what it waited for and the last thing the probe saw (its `Err`).
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = String::from("no answer yet");
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(seen)) => last = seen,
            Err(_) => break,
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {PATIENCE:?} waiting until {what}; last seen: {last}")
}

/// Waits for the first event matching `pred`; on timeout says which event came last.
pub async fn wait_for(events: &mut EventStream, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let mut last = None;
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.next().await {
                Some(event) if pred(&event) => return event,
                Some(event) => last = Some(event),
                None => panic!("event stream closed; last event: {last:?}"),
            }
        }
    })
    .await;
    match found {
        Ok(event) => event,
        Err(_) => panic!("timed out waiting for an event; last event: {last:?}"),
    }
}

/// Waits until `n` items of `id` have reported the status `status`.
pub async fn wait_items(events: &mut EventStream, id: ExecutionId, status: ItemStatus, n: usize) {
    let mut seen = 0;
    while seen < n {
        wait_for(events, |e| {
            matches!(e, Event::Item { execution, status: s, .. } if *execution == id && *s == status)
        })
        .await;
        seen += 1;
    }
}

/// Waits for the outcome, bounded.
pub async fn outcome(runtime: &Runtime, id: ExecutionId) -> tend::Outcome {
    tokio::time::timeout(PATIENCE, runtime.wait(id))
        .await
        .expect("timed out waiting for the outcome")
        .unwrap()
}

/// The applied log's lines as (event, execution, item).
pub fn applied(log: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let mut parts = line.split(' ');
            let mut next = || parts.next().unwrap_or_default().to_owned();
            (next(), next(), next())
        })
        .collect()
}

/// Asserts that no item was started again after it was done, and returns how many times
/// each item was done.
pub fn assert_nothing_reapplied(log: &Path) -> std::collections::HashMap<String, usize> {
    let mut done = std::collections::HashMap::new();
    for (event, _, item) in applied(log) {
        match event.as_str() {
            "start" => assert!(
                !done.contains_key(&item),
                "item {item} started again after it was done"
            ),
            "done" => *done.entry(item).or_insert(0) += 1,
            "refresh" | "satisfied" => {}
            other => panic!("unexpected line {other}"),
        }
    }
    done
}

/// Waits until `n` items wait at gate `gate`.
pub async fn waiting_at(gates: &Gates, gate: &str, n: usize) {
    eventually(&format!("{n} items wait at gate {gate}"), || async {
        match gates.waiting(gate) {
            w if w == n => Ok(()),
            w => Err(format!("{w} waiting")),
        }
    })
    .await
}

//! Shared by the integration tests: a runtime over the demo kinds, plan builders, and
//! bounded waits on the event stream.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use tend::demo::{AppliedLog, Sleep, Sum};
use tend::{Config, Event, EventStream, ExecutionId, ItemSpec, ItemStatus, Runtime};

/// Every wait in the tests gives up after this long, so a broken runtime fails the test
/// instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A runtime over the demo kinds on `dir` (or in memory), logging attempts to `log`.
pub async fn runtime(dir: Option<&Path>, log: Option<&Path>, parallelism: usize) -> Runtime {
    let mut builder = Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .config(Config {
            parallelism,
            stop_grace: Duration::from_millis(500),
            ..Config::default()
        });
    if let Some(dir) = dir {
        builder = builder.data_dir(dir);
    }
    if let Some(log) = log {
        builder = builder.resource(AppliedLog::open(log).unwrap());
    }
    builder.start().await.unwrap()
}

/// A `sleep` item of `ms` in `steps` steps.
pub fn sleep(id: &str, ms: u64, steps: u32) -> ItemSpec {
    ItemSpec::new(id, &Sleep::new(ms).steps(steps)).unwrap()
}

/// A `sum` item adding `add` to its dependencies' outputs.
pub fn sum(id: &str, add: i64) -> ItemSpec {
    ItemSpec::new(id, &Sum { add }).unwrap()
}

/// Waits for the first event matching `pred`.
pub async fn wait_for(events: &mut EventStream, mut pred: impl FnMut(&Event) -> bool) -> Event {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.next().await {
                Some(event) if pred(&event) => return event,
                Some(_) => continue,
                None => panic!("event stream closed"),
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
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
            other => panic!("unexpected line {other}"),
        }
    }
    done
}

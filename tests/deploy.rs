//! The deploy example as a real child process: SIGINT interrupts it with exit code 130, a
//! second run resumes and completes without applying a done item again; after SIGKILL a
//! second run still completes, re-running exactly the items that were in flight, once.
//!
//! The first run of each test holds layer 2 (`--hold-layer 2`): its items start and wait
//! for an interrupt, so when the signal comes, layers 0 and 1 are done and exactly the six
//! items of layer 2 are in flight, however fast or slow the machine is.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

#[path = "support/example.rs"]
mod support;

use support::{Finished, Process, example};

const ITEMS: usize = 60;
const WIDTH: usize = 6;
const HELD_LAYER: usize = 2;

fn spawn(data: &Path, log: &Path, item_ms: u64, hold_layer: Option<usize>) -> Process {
    let mut command = Command::new(example("deploy"));
    command
        .args(["--data", data.to_str().unwrap()])
        .args(["--item-ms", &item_ms.to_string()])
        .args(["--applied-log", log.to_str().unwrap()]);
    if let Some(layer) = hold_layer {
        command.args(["--hold-layer", &layer.to_string()]);
    }
    Process::spawn("the deploy example", command)
}

fn lines(log: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect()
}

fn layer(item: &str) -> usize {
    item.split_once('.').unwrap().0.parse().unwrap()
}

/// How many times each item has `event` (`start` or `done`) in `lines`.
fn counts<'a>(
    lines: impl IntoIterator<Item = &'a (String, String)>,
    event: &str,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (e, item) in lines {
        if e == event {
            *counts.entry(item.clone()).or_default() += 1;
        }
    }
    counts
}

/// Waits until layers before the held one are done and every item of the held layer has
/// started (and so is holding).
fn wait_until_held(process: &mut Process, log: &Path) {
    process.wait_until("layers 0 and 1 are done and layer 2 holds", |_| {
        let lines = lines(log);
        let done = lines.iter().filter(|(e, _)| e == "done").count();
        let held = lines
            .iter()
            .filter(|(e, item)| e == "start" && layer(item) == HELD_LAYER)
            .count();
        if done == HELD_LAYER * WIDTH && held == WIDTH {
            Ok(())
        } else {
            Err(format!(
                "{done} done, {held} of layer {HELD_LAYER} started, {} log lines",
                lines.len()
            ))
        }
    });
}

/// The execution id in the line starting with `prefix` (`started `, `resuming `, ...).
fn id_after(finished: &str, prefix: &str) -> Option<String> {
    finished
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|l| l.split(':').next())
        .map(str::to_owned)
}

fn started_id(process: &mut Process) -> String {
    process.wait_for_line("it prints the execution id", |l| id_after(l, "started "))
}

/// Each item's dependencies (the whole previous layer) were done before it started, in
/// the order the log records it.
fn assert_layers_respected(log: &Path) {
    let mut done: HashSet<String> = HashSet::new();
    for (event, item) in lines(log) {
        if event == "start" {
            let layer = layer(&item);
            if layer > 0 {
                for i in 0..WIDTH {
                    let dep = format!("{}.{i}", layer - 1);
                    assert!(done.contains(&dep), "{item} started before {dep} was done");
                }
            }
        } else {
            done.insert(item);
        }
    }
}

/// The second run resumes `id` with layers 0 and 1 done and completes it.
fn assert_resumed_and_completed(finished: &Finished, id: &str) {
    assert!(finished.status.success(), "{}", finished.describe());
    assert!(
        finished.stdout.contains(&format!(
            "resuming {id}: {}/{ITEMS} items done",
            HELD_LAYER * WIDTH
        )),
        "{}",
        finished.describe()
    );
    assert!(
        finished
            .stdout
            .contains(&format!("completed {id}: {ITEMS}/{ITEMS} items")),
        "{}",
        finished.describe()
    );
}

/// Every item was done exactly once, and started once, except the held layer's items,
/// which started again after the first run stopped them.
fn assert_each_item_applied_once(log: &Path) {
    let lines = lines(log);
    let done = counts(&lines, "done");
    assert_eq!(done.len(), ITEMS, "{done:?}");
    assert!(done.values().all(|&n| n == 1), "{done:?}");
    for (item, n) in counts(&lines, "start") {
        let expected = if layer(&item) == HELD_LAYER { 2 } else { 1 };
        assert_eq!(n, expected, "{item} started {n} times");
    }
    assert_layers_respected(log);
}

#[test]
fn sigint_interrupts_and_a_second_run_resumes_without_reapplying() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let mut first = spawn(&data, &log, 20, Some(HELD_LAYER));
    let id = started_id(&mut first);
    wait_until_held(&mut first, &log);
    first.signal("-INT");
    let finished = first.finish();
    assert_eq!(finished.status.code(), Some(130), "{}", finished.describe());
    let done = HELD_LAYER * WIDTH;
    let not_started = ITEMS - done - WIDTH;
    assert!(
        finished.stdout.contains(&format!(
            "interrupted {id}: {done} done, {WIDTH} interrupted, {not_started} not started"
        )),
        "{}",
        finished.describe()
    );

    let finished = spawn(&data, &log, 20, None).finish();
    assert_resumed_and_completed(&finished, &id);
    // Nothing started again once it was done.
    let mut done: HashSet<String> = HashSet::new();
    for (event, item) in lines(&log) {
        if event == "start" {
            assert!(
                !done.contains(&item),
                "{item} applied again after it was done"
            );
        } else {
            done.insert(item);
        }
    }
    assert_each_item_applied_once(&log);

    // A third run finds nothing unfinished and starts a new execution.
    let finished = spawn(&data, &log, 0, None).finish();
    assert!(finished.status.success(), "{}", finished.describe());
    assert!(
        finished.stdout.starts_with("started "),
        "{}",
        finished.describe()
    );
    assert!(!finished.stdout.contains(&id), "{}", finished.describe());
}

#[test]
fn after_sigkill_a_second_run_completes_rerunning_only_items_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let mut first = spawn(&data, &log, 20, Some(HELD_LAYER));
    let id = started_id(&mut first);
    wait_until_held(&mut first, &log);
    first.kill(); // SIGKILL: no interrupt, no checkpoint on the way out
    let finished = first.finish();
    assert_eq!(finished.status.code(), None, "{}", finished.describe());

    let before = lines(&log);
    let done_before = counts(&before, "done");
    let in_flight: Vec<String> = counts(&before, "start")
        .into_keys()
        .filter(|item| !done_before.contains_key(item))
        .collect();
    let held: Vec<String> = (0..WIDTH).map(|i| format!("{HELD_LAYER}.{i}")).collect();
    assert_eq!(in_flight, held);

    let finished = spawn(&data, &log, 20, None).finish();
    assert_resumed_and_completed(&finished, &id);
    // The durability contract: a crash re-runs only items whose Done record may not have
    // been durable, at most once. A layer starts only once the layer before is durably
    // done, so with layer 2 held, that is exactly the held items, each once.
    let after = &lines(&log)[before.len()..];
    let started_after = counts(after, "start");
    let rerun: Vec<&String> = started_after
        .keys()
        .filter(|item| layer(item) <= HELD_LAYER)
        .collect();
    assert_eq!(rerun, held.iter().collect::<Vec<_>>(), "{started_after:?}");
    assert_each_item_applied_once(&log);
}

//! The deploy example as a real child process: SIGINT interrupts it with exit code 130, a
//! second run resumes and completes without applying a done item again; after SIGKILL a
//! second run still completes, re-running at most the items that were in flight.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/example.rs"]
mod support;

use support::example;

fn spawn(data: &Path, log: &Path, item_ms: u64) -> Child {
    Command::new(example("deploy"))
        .args([
            "--data",
            data.to_str().unwrap(),
            "--item-ms",
            &item_ms.to_string(),
        ])
        .args(["--applied-log", log.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the deploy example is built by cargo test")
}

fn lines(log: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect()
}

fn done_count(log: &Path) -> usize {
    lines(log).iter().filter(|(e, _)| e == "done").count()
}

fn wait_for_done(log: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while done_count(log) < n {
        assert!(Instant::now() < deadline, "the example made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn finish(child: Child) -> (Output, String) {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

/// Each item's dependencies (the whole previous layer) were done before it started, in
/// the order the log records it.
fn assert_layers_respected(log: &Path) {
    let mut done: HashSet<String> = HashSet::new();
    for (event, item) in lines(log) {
        if event == "start" {
            let (layer, _) = item.split_once('.').unwrap();
            let layer: usize = layer.parse().unwrap();
            if layer > 0 {
                for i in 0..6 {
                    let dep = format!("{}.{i}", layer - 1);
                    assert!(done.contains(&dep), "{item} started before {dep} was done");
                }
            }
        } else {
            done.insert(item);
        }
    }
}

#[test]
fn sigint_interrupts_and_a_second_run_resumes_without_reapplying() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let child = spawn(&data, &log, 300);
    wait_for_done(&log, 8);
    signal(&child, "-INT");
    let (output, stdout) = finish(child);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("interrupted "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no outcome line in {stdout}"))
        .to_owned();
    let done_before = done_count(&log);
    assert!(stdout.contains(&format!("{done_before} done")), "{stdout}");

    let (output, stdout) = finish(spawn(&data, &log, 300));
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("resuming {id}: {done_before}/60 items done")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("completed {id}: 60/60 items")),
        "{stdout}"
    );

    let mut done: HashMap<String, usize> = HashMap::new();
    for (event, item) in lines(&log) {
        if event == "start" {
            assert!(
                !done.contains_key(&item),
                "{item} applied again after it was done"
            );
        } else {
            *done.entry(item).or_default() += 1;
        }
    }
    assert_eq!(done.len(), 60);
    assert!(done.values().all(|&n| n == 1));
    assert_layers_respected(&log);

    // A third run finds nothing unfinished and starts a new execution.
    let (output, stdout) = finish(spawn(&data, &log, 0));
    assert!(output.status.success());
    assert!(stdout.starts_with("started "), "{stdout}");
    assert!(!stdout.contains(&id), "{stdout}");
}

#[test]
fn after_sigkill_a_second_run_completes_rerunning_only_items_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let mut child = spawn(&data, &log, 200);
    wait_for_done(&log, 15);
    child.kill().unwrap(); // SIGKILL: no interrupt, no checkpoint on the way out
    child.wait().unwrap();
    let before: Vec<(String, String)> = lines(&log);
    let in_flight: HashSet<String> = {
        let started: Vec<&String> = before
            .iter()
            .filter(|(e, _)| e == "start")
            .map(|(_, i)| i)
            .collect();
        let done: HashSet<&String> = before
            .iter()
            .filter(|(e, _)| e == "done")
            .map(|(_, i)| i)
            .collect();
        started
            .into_iter()
            .filter(|i| !done.contains(i))
            .cloned()
            .collect()
    };

    let (output, stdout) = finish(spawn(&data, &log, 200));
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("resuming "), "{stdout}");
    assert!(stdout.contains(": 60/60 items"), "{stdout}");
    let after = &lines(&log)[before.len()..];
    let done_before: HashSet<&String> = before
        .iter()
        .filter(|(e, _)| e == "done")
        .map(|(_, i)| i)
        .collect();
    let mut done_total: HashMap<&String, usize> = HashMap::new();
    for (event, item) in before.iter().chain(after) {
        if event == "done" {
            *done_total.entry(item).or_default() += 1;
        }
    }
    assert_eq!(done_total.len(), 60);
    // The durability contract: a crash re-runs an item at most once more, and only an
    // item whose Done record may not have been durable yet. A layer starts only once the
    // layer before is durably done, so those items all belong to the last layer started.
    assert!(done_total.values().all(|&n| n <= 2), "{done_total:?}");
    let layer = |item: &str| item.split_once('.').unwrap().0.parse::<usize>().unwrap();
    let last_started = before
        .iter()
        .filter(|(e, _)| e == "start")
        .map(|(_, i)| layer(i))
        .max()
        .unwrap();
    for (item, n) in &done_total {
        if *n == 2 {
            assert!(done_before.contains(item));
            assert_eq!(
                layer(item),
                last_started,
                "{item} was durably done before the crash"
            );
        }
    }
    for item in &in_flight {
        assert_eq!(
            done_total[item], 1,
            "{item} was interrupted by the crash, done once after"
        );
    }
    assert_layers_respected(&log);
}

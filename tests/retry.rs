//! Retries, backoff and timeouts through the runtime: failed and panicking attempts are
//! retried with their errors kept, an item whose retries run out fails alone, a hung
//! attempt times out and counts as failed, and an interrupt or a shutdown ends a retry wait
//! at once.

#[path = "support/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::time::Duration;

use helpers::*;
use tend::demo::{Gates, Sleep};
use tend::{Block, Event, ExecutionStatus, InterruptStrategy, ItemSpec, ItemStatus, Plan};

/// A `sleep` item whose first `fail_times` attempts fail and next `panic_times` panic.
fn flaky(id: &str, fail_times: u32, panic_times: u32) -> ItemSpec {
    let item = Sleep {
        fail_times,
        panic_times,
        ..Sleep::new(0).output(serde_json::json!(1))
    };
    ItemSpec::new(id, &item).unwrap()
}

/// Waits until item `item` of `id` reports `status`.
async fn wait_item(
    events: &mut tend::EventStream,
    id: tend::ExecutionId,
    item: &str,
    status: ItemStatus,
) {
    wait_for(events, |e| {
        matches!(e, Event::Item { execution, item: i, status: s }
            if *execution == id && **i == *item && *s == status)
    })
    .await;
}

#[tokio::test]
async fn failed_attempts_are_retried_and_their_errors_kept() {
    let rt = runtime(None, None, 2).await;
    let mut events = rt.subscribe().await.unwrap();
    let plan = Plan::new("retried").block(
        Block::new("b")
            .item(
                flaky("flaky", 2, 0)
                    .retry(3)
                    .delay(Duration::from_millis(5)),
            )
            .item(sum("after", 1).after(["flaky"])),
    );
    let id = rt.submit(plan).await.unwrap();
    wait_item(&mut events, id, "flaky", ItemStatus::Retrying).await;
    let outcome = outcome(&rt, id).await;
    assert!(outcome.is_completed(), "{outcome:?}");
    let report = rt.status(id).await.unwrap();
    let flaky = report.item("flaky").unwrap();
    assert_eq!(flaky.status, ItemStatus::Done);
    assert_eq!(flaky.attempts, 3);
    assert_eq!(flaky.error, None);
    let errors: Vec<(u32, &str)> = flaky
        .errors
        .iter()
        .map(|e| (e.attempt, e.error.as_str()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (1, "attempt 1 fails on purpose (fail_times = 2)"),
            (2, "attempt 2 fails on purpose (fail_times = 2)"),
        ]
    );
    assert!(flaky.errors[0].at <= flaky.errors[1].at);
    assert_eq!(report.item("after").unwrap().attempts, 1);
    rt.shutdown().await.unwrap();
}

/// Issue 22, part 1: an automatic retry resumes from the checkpoint its failed attempt made
/// durable, as a resume or a restart does (before, it started over from nothing and its
/// progress went back to 0).
#[tokio::test]
async fn a_retry_resumes_from_the_failed_attempts_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 1).await;
    let mut events = rt.subscribe().await.unwrap();
    // Attempt 1 checkpoints steps 1-3, then fails; attempt 2 must go on from step 3.
    let item = Sleep {
        fail_times: 1,
        fail_at_step: 3,
        ..Sleep::new(0).steps(6).output(serde_json::json!(1))
    };
    let plan = Plan::new("resumed retry").block(
        Block::new("b").item(
            ItemSpec::new("work", &item)
                .unwrap()
                .retry(1)
                .delay(Duration::from_millis(1)),
        ),
    );
    let id = rt.submit(plan).await.unwrap();
    let mut steps = Vec::new();
    loop {
        let event = wait_for(&mut events, |e| match e {
            Event::Progress { execution, .. } | Event::Execution { execution, .. } => {
                *execution == id
            }
            _ => false,
        })
        .await;
        match event {
            Event::Progress { progress, .. } => steps.push(progress.done),
            Event::Execution { status, .. } if status != ExecutionStatus::Running => break,
            _ => {}
        }
    }
    // Every step ran once: none was redone by the retry.
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6], "progress reported");
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Completed);
    let work = report.item("work").unwrap();
    assert_eq!(work.attempts, 2);
    assert_eq!(
        work.errors
            .iter()
            .map(|e| e.error.as_str())
            .collect::<Vec<_>>(),
        vec!["attempt 1 fails on purpose (fail_times = 1)"]
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn when_retries_run_out_the_item_fails_alone() {
    let rt = runtime(None, None, 2).await;
    // `broken` panics on both of its attempts (retry 1); its dependent is skipped, the
    // independent branch finishes.
    let plan = Plan::new("isolated").block(
        Block::new("b")
            .item(flaky("broken", 0, 5).retry(1))
            .item(sum("needs-it", 0).after(["broken"]))
            .item(flaky("fine", 1, 0).retry(1))
            .item(sleep("also-fine", 0, 1).after(["fine"])),
    );
    let id = rt.submit(plan).await.unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert_eq!(
        outcome.blocks[0].failed,
        ["broken"].map(Arc::<str>::from),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.blocks[0].skipped,
        ["needs-it"].map(Arc::<str>::from),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.blocks[0].done,
        ["fine", "also-fine"].map(Arc::<str>::from),
        "{outcome:?}"
    );
    let report = rt.status(id).await.unwrap();
    let broken = report.item("broken").unwrap();
    assert_eq!(broken.attempts, 2);
    assert_eq!(broken.errors.len(), 2);
    assert!(
        broken.errors.iter().all(|e| e.error.contains("panic")),
        "{:?}",
        broken.errors
    );
    // The runtime goes on: another execution runs.
    let next = rt
        .submit(Plan::new("next").block(Block::new("b").item(sum("x", 1))))
        .await
        .unwrap();
    assert!(helpers::outcome(&rt, next).await.is_completed());
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hung_attempt_times_out_counts_as_failed_and_is_retried() {
    let gates = Gates::new();
    let rt = gated_runtime(None, None, 1, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    // The gate stays closed until the first attempt has timed out: only the timeout can
    // end that attempt. The retry finds it open, and has the same timeout to get through
    // it: a second, so that no machine is too slow for it (an attempt past its timeout
    // fails whatever it returns).
    let plan = Plan::new("hung").block(
        Block::new("b").item(
            gate("hung", "g", 1)
                .timeout(Duration::from_secs(1))
                .retry(1),
        ),
    );
    let id = rt.submit(plan).await.unwrap();
    wait_item(&mut events, id, "hung", ItemStatus::Retrying).await;
    gates.open("g");
    let outcome = outcome(&rt, id).await;
    assert!(outcome.is_completed(), "{outcome:?}");
    let hung = rt.status(id).await.unwrap();
    let hung = hung.item("hung").unwrap();
    assert_eq!(hung.attempts, 2);
    assert_eq!(hung.errors.len(), 1);
    assert_eq!(hung.errors[0].attempt, 1);
    assert_eq!(hung.errors[0].error, "timed out after 1s");
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_retries_a_timeout_fails_the_item() {
    let rt = runtime(None, None, 1).await;
    let plan = Plan::new("hung")
        .block(Block::new("b").item(gate("hung", "never", 1).timeout(Duration::from_millis(50))));
    let id = rt.submit(plan).await.unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    let report = rt.status(id).await.unwrap();
    let hung = report.item("hung").unwrap();
    assert_eq!(hung.status, ItemStatus::Failed);
    assert_eq!(hung.error.as_deref(), Some("timed out after 50ms"));
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_interrupt_or_a_shutdown_ends_a_retry_wait_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 1).await;
    let mut events = rt.subscribe().await.unwrap();
    // An hour's wait before the retry: only the interrupt can end it within the test.
    let waiting = || {
        Plan::new("waits").block(
            Block::new("b").item(
                flaky("flaky", 1, 0)
                    .retry(1)
                    .delay(Duration::from_secs(3600)),
            ),
        )
    };
    let id = rt.submit(waiting()).await.unwrap();
    wait_item(&mut events, id, "flaky", ItemStatus::Retrying).await;
    rt.interrupt(id, InterruptStrategy::FinishCurrent)
        .await
        .unwrap();
    let interrupted = outcome(&rt, id).await;
    assert_eq!(interrupted.status, ExecutionStatus::Interrupted);
    assert_eq!(
        interrupted.blocks[0].interrupted,
        ["flaky"].map(Arc::<str>::from)
    );
    // Resumed, the retry runs without the rest of the wait, and succeeds.
    rt.resume(id).await.unwrap();
    let done = outcome(&rt, id).await;
    assert!(done.is_completed(), "{done:?}");
    assert_eq!(
        rt.status(id).await.unwrap().item("flaky").unwrap().attempts,
        2
    );

    // A shutdown during a wait returns promptly; the restart resumes the execution by
    // itself, and the retry runs at once, its failure kept.
    let other = rt.submit(waiting()).await.unwrap();
    wait_item(&mut events, other, "flaky", ItemStatus::Retrying).await;
    tokio::time::timeout(PATIENCE, rt.shutdown())
        .await
        .expect("shutdown does not wait out a retry delay")
        .unwrap();
    drop(rt);
    let rt = runtime(Some(dir.path()), None, 1).await;
    assert!(outcome(&rt, other).await.is_completed());
    let report = rt.status(other).await.unwrap();
    let flaky = report.item("flaky").unwrap();
    assert_eq!(flaky.attempts, 2);
    assert_eq!(
        flaky.errors.len(),
        1,
        "the failure is kept across the restart"
    );
    rt.shutdown().await.unwrap();
}

/// Every idempotency key an attempt of `Keyed` saw, with the attempt's number.
#[derive(Debug, Default)]
struct Keys(std::sync::Mutex<Vec<(u32, String)>>);

/// Fails its first `fail_times` attempts; records its idempotency key on every attempt.
#[derive(serde::Serialize, serde::Deserialize)]
struct Keyed {
    fail_times: u32,
}

impl tend::Item for Keyed {
    const KIND: &'static str = "keyed";
    type Output = u32;

    async fn apply(&self, cx: &mut tend::ItemCtx) -> Result<u32, tend::ItemError> {
        if let Some(keys) = cx.resource::<std::sync::Arc<Keys>>() {
            let mut keys = keys.0.lock().unwrap_or_else(|p| p.into_inner());
            keys.push((cx.attempt(), cx.idempotency_key()));
        }
        if cx.attempt() <= self.fail_times {
            return Err(tend::ItemError::failed("not yet"));
        }
        Ok(cx.attempt())
    }
}

async fn keyed_runtime(dir: &std::path::Path, keys: &std::sync::Arc<Keys>) -> tend::Runtime {
    tend::Runtime::builder()
        .data_dir(dir)
        .registry(tend::Registry::new().with::<Keyed>().unwrap())
        .resource(keys.clone())
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_execution_retried_runs_its_failed_items_again_with_the_same_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = std::sync::Arc::new(Keys::default());
    let rt = keyed_runtime(dir.path(), &keys).await;
    // `flaky` fails its first three attempts: with retry 1 the execution fails, and its
    // dependent is skipped; `solid` is done and stays done.
    let plan = Plan::new("keyed").block(
        Block::new("b")
            .item(ItemSpec::new("solid", &Keyed { fail_times: 0 }).unwrap())
            .item(
                ItemSpec::new("flaky", &Keyed { fail_times: 3 })
                    .unwrap()
                    .retry(1),
            )
            .item(
                ItemSpec::new("after", &Keyed { fail_times: 0 })
                    .unwrap()
                    .after(["flaky"]),
            ),
    );
    let id = rt.submit(plan).await.unwrap();
    let failed = outcome(&rt, id).await;
    assert_eq!(failed.status, ExecutionStatus::Failed, "{failed:?}");
    assert_eq!(failed.blocks[0].skipped, ["after"].map(Arc::<str>::from));
    // Only a failed execution can be retried.
    assert!(matches!(
        rt.resume(id).await,
        Err(tend::RuntimeError::InvalidState { .. })
    ));
    // Across a restart, too.
    rt.shutdown().await.unwrap();
    drop(rt);
    let rt = keyed_runtime(dir.path(), &keys).await;
    rt.retry_failed(id).await.unwrap();
    let done = outcome(&rt, id).await;
    assert!(done.is_completed(), "{done:?}");
    let report = rt.status(id).await.unwrap();
    let flaky = report.item("flaky").unwrap();
    // Attempts 1 and 2 failed before; 3 fails again (a new budget of one retry), 4 passes.
    assert_eq!(flaky.attempts, 4);
    assert_eq!(flaky.output_as::<u32>(), Some(4));
    assert_eq!(flaky.errors.len(), 3);
    assert_eq!(report.item("solid").unwrap().attempts, 1);
    assert_eq!(report.item("after").unwrap().attempts, 1);
    assert!(matches!(
        rt.retry_failed(id).await,
        Err(tend::RuntimeError::InvalidState {
            status: ExecutionStatus::Completed,
            ..
        })
    ));
    // One key per item, the same on every attempt, restart and retry.
    let keys = keys.0.lock().unwrap().clone();
    let flaky_keys: Vec<&(u32, String)> =
        keys.iter().filter(|(_, k)| k.ends_with("/flaky")).collect();
    assert_eq!(flaky_keys.len(), 4, "{keys:?}");
    assert!(
        flaky_keys.iter().all(|(_, k)| *k == format!("{id}/flaky")),
        "{keys:?}"
    );
    rt.shutdown().await.unwrap();
}

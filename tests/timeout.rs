//! A `timeout` bounds an attempt (issue 22, part 2): past it the attempt has failed, it is
//! aborted once `timeout_grace` more has passed if it has not reached a cancellation point
//! (however long the shutdown's `stop_grace`), and what it returns after its timeout is
//! never stored nor handed to dependents.

#[path = "support/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::*;
use serde::{Deserialize, Serialize};
use tend::demo::{Gates, Sleep};
use tend::{
    Block, Config, ExecutionStatus, Item, ItemCtx, ItemError, ItemSpec, ItemStatus, Plan, Runtime,
};

/// Ignores the request to stop: once asked, it returns its output as if nothing happened.
#[derive(Debug, Serialize, Deserialize)]
struct Stubborn {
    output: i64,
}

impl Item for Stubborn {
    const KIND: &'static str = "stubborn";
    type Output = i64;

    async fn apply(&self, cx: &mut ItemCtx) -> Result<i64, ItemError> {
        cx.interrupted().await;
        Ok(self.output)
    }
}

/// A runtime whose shutdown grace is an hour, so only the timeout's own grace can end a
/// timed-out attempt within the test.
async fn runtime() -> Runtime {
    Runtime::builder()
        .resource(Gates::new())
        .registry(tend::demo::registry().unwrap().with::<Stubborn>().unwrap())
        .config(Config {
            parallelism: 2,
            stop_grace: Duration::from_secs(3600),
            timeout_grace: Duration::from_millis(50),
            disk_low_percent: 0.0,
            ..Config::default()
        })
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_attempt_that_never_reaches_a_cancellation_point_ends_at_its_timeout_plus_grace() {
    let rt = runtime().await;
    // One step of an hour: no cancellation point until it is over.
    let item = Sleep::new(3_600_000);
    let plan = Plan::new("hung").block(
        Block::new("b").item(
            ItemSpec::new("hung", &item)
                .unwrap()
                .timeout(Duration::from_millis(100))
                .retry(1)
                .delay(Duration::from_millis(1)),
        ),
    );
    let id = rt.submit(plan).await.unwrap();
    // Bounded by PATIENCE: before the fix the attempts waited for the hour (or the stop
    // grace) and this timed out.
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed, "{outcome:?}");
    let report = rt.status(id).await.unwrap();
    let hung = report.item("hung").unwrap();
    assert_eq!(hung.status, ItemStatus::Failed);
    assert_eq!(hung.attempts, 2, "retried as its metaparams say");
    let errors: Vec<&str> = hung.errors.iter().map(|e| e.error.as_str()).collect();
    assert_eq!(errors, vec!["timed out after 100ms"; 2]);
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_output_returned_after_the_timeout_is_discarded() {
    let rt = runtime().await;
    let plan = Plan::new("late").block(
        Block::new("b")
            .item(
                ItemSpec::new("late", &Stubborn { output: 7 })
                    .unwrap()
                    .timeout(Duration::from_millis(100)),
            )
            .item(sum("after", 1).after(["late"])),
    );
    let id = rt.submit(plan).await.unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Failed, "{outcome:?}");
    let report = rt.status(id).await.unwrap();
    let late = report.item("late").unwrap();
    assert_eq!(late.status, ItemStatus::Failed);
    assert_eq!(late.error.as_deref(), Some("timed out after 100ms"));
    assert_eq!(late.output, None, "the late output is not stored");
    let after = report.item("after").unwrap();
    assert_eq!(after.status, ItemStatus::Skipped, "no dependent sees it");
    assert_eq!(after.attempts, 0);
    rt.shutdown().await.unwrap();
}

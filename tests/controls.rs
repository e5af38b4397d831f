//! Graph controls seen through the runtime: check before apply, refresh notifications
//! along `notify` edges.

#[path = "support/helpers.rs"]
mod helpers;

use helpers::*;
use tend::demo::Sleep;
use tend::{Block, ItemSpec, ItemStatus, Plan};

/// The first words of the applied log's lines about `item`, in order.
fn log_of(log: &std::path::Path, item: &str) -> Vec<String> {
    applied(log)
        .into_iter()
        .filter(|(_, _, i)| i == item)
        .map(|(event, _, _)| event)
        .collect()
}

#[tokio::test]
async fn check_skips_apply_and_only_a_change_sends_a_refresh_which_lasts_until_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    let rt = runtime(Some(&dir.path().join("data")), Some(&log), 4).await;
    let flaky = Sleep {
        fail_times: 1,
        ..Sleep::new(0)
    };
    let plan = Plan::new("refresh").block(
        Block::new("b")
            .item(sleep("changes", 0, 1))
            .item(ItemSpec::new("same", &Sleep::new(0).satisfied()).unwrap())
            // Told by `changes` (a change), its first attempt fails: the retry is told too.
            .item(
                ItemSpec::new("told", &flaky)
                    .unwrap()
                    .after(["changes", "same"])
                    .notify(["changes", "same"])
                    .retry(1),
            )
            // Only `same` notifies it, and `same` changed nothing.
            .item(
                sleep("untold", 0, 1)
                    .after(["changes", "same"])
                    .notify(["same"]),
            )
            // No notify edge at all.
            .item(sleep("plain", 0, 1).after(["changes"])),
    );
    let id = rt.submit(plan).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    let report = rt.status(id).await.unwrap();
    let item = |id: &str| report.item(id).unwrap().clone();
    assert_eq!(item("changes").changed, Some(true));
    assert_eq!(item("same").changed, Some(false));
    assert_eq!(item("same").status, ItemStatus::Done);
    assert_eq!(item("same").attempts, 1);
    assert_eq!(item("told").attempts, 2);
    for id in ["told", "untold", "plain"] {
        assert!(!item(id).refresh, "{id}: cleared or never set");
    }
    assert_eq!(log_of(&log, "same"), ["satisfied"], "apply skipped");
    assert_eq!(
        log_of(&log, "told"),
        ["start", "refresh", "start", "refresh", "done"]
    );
    assert_eq!(log_of(&log, "untold"), ["start", "done"]);
    assert_eq!(log_of(&log, "plain"), ["start", "done"]);
    rt.shutdown().await.unwrap();

    // Read back from the file, the same.
    let rt = runtime(Some(&dir.path().join("data")), None, 4).await;
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("same").unwrap().changed, Some(false));
    assert_eq!(report.item("changes").unwrap().changed, Some(true));
    assert!(!report.item("told").unwrap().refresh);
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refresh_owed_to_a_skipped_item_is_delivered_when_the_failed_execution_is_retried() {
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("applied.log");
    let rt = runtime(None, Some(&log), 4).await;
    let broken = Sleep {
        fail_times: 1,
        ..Sleep::new(0)
    };
    let plan = Plan::new("skipped").block(
        Block::new("b")
            .item(sleep("changes", 0, 1))
            .item(ItemSpec::new("broken", &broken).unwrap())
            .item(
                sleep("told", 0, 1)
                    .after(["changes", "broken"])
                    .notify(["changes"]),
            ),
    );
    let id = rt.submit(plan).await.unwrap();
    assert!(!outcome(&rt, id).await.is_completed());
    let report = rt.status(id).await.unwrap();
    let told = report.item("told").unwrap();
    assert_eq!(told.status, ItemStatus::Skipped);
    assert!(told.refresh, "owed, though skipped");
    rt.retry_failed(id).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    assert_eq!(log_of(&log, "told"), ["start", "refresh", "done"]);
    rt.shutdown().await.unwrap();
}

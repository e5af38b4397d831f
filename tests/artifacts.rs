//! Artifacts through items and the runtime: content-addressed and deduplicated, kept while
//! a stored execution references them, swept once nothing does and they are older than
//! the protection time; an item that references one swept meanwhile fails with a clear
//! retryable error, and its retry makes it again.

#[path = "support/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::outcome;
use serde::{Deserialize, Serialize};
use tend::bridge::Bridge;
use tend::{
    ArtifactId, Block, Config, Item, ItemCtx, ItemError, ItemSpec, Plan, Registry, Runtime,
};

/// Stores `text` as an artifact and outputs its id.
#[derive(Debug, Serialize, Deserialize)]
struct Make {
    text: String,
}

impl Item for Make {
    const KIND: &'static str = "make";
    type Output = ArtifactId;

    async fn apply(&self, cx: &mut ItemCtx) -> Result<ArtifactId, ItemError> {
        let id = cx.put_artifact(self.text.as_bytes()).await?;
        // Read back, as a dependent would.
        assert_eq!(cx.get_artifact(id).await?, self.text.as_bytes());
        Ok(id)
    }
}

/// References `artifact`, made elsewhere; if it is gone, a retry makes it again from
/// `text` (the same bytes, so the same id).
#[derive(Debug, Serialize, Deserialize)]
struct Reuse {
    artifact: ArtifactId,
    text: String,
}

impl Item for Reuse {
    const KIND: &'static str = "reuse";
    type Output = String;

    async fn apply(&self, cx: &mut ItemCtx) -> Result<String, ItemError> {
        if cx.attempt() > 1 {
            let again = cx.put_artifact(self.text.as_bytes()).await?;
            assert_eq!(again, self.artifact);
        } else {
            cx.reference_artifact(self.artifact).await?;
        }
        let bytes = cx.get_artifact(self.artifact).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

async fn start(dir: &std::path::Path) -> Runtime {
    Runtime::builder()
        .data_dir(dir)
        .registry(
            Registry::new()
                .with::<Make>()
                .unwrap()
                .with::<Reuse>()
                .unwrap(),
        )
        .config(Config {
            orphan_sweep_interval: Duration::ZERO,
            maintenance_interval: None,
            disk_low_percent: 0.0,
            ..Config::default()
        })
        .start()
        .await
        .unwrap()
}

async fn make(runtime: &Runtime, text: &str) -> (tend::ExecutionId, ArtifactId) {
    let plan = Plan::new("make").block(
        Block::new("b").item(
            ItemSpec::new(
                "make",
                &Make {
                    text: text.to_owned(),
                },
            )
            .unwrap(),
        ),
    );
    let id = runtime.submit(plan).await.unwrap();
    assert!(outcome(runtime, id).await.is_completed());
    let artifact = runtime
        .status(id)
        .await
        .unwrap()
        .item("make")
        .and_then(|i| i.output_as::<ArtifactId>())
        .unwrap();
    (id, artifact)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_deletes_what_no_execution_references_and_a_retry_makes_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path()).await;
    let (_kept, a) = make(&runtime, "kept").await;
    let (dropped, b) = make(&runtime, "dropped").await;
    // The same bytes: the same artifact.
    let (_, a_again) = make(&runtime, "kept").await;
    assert_eq!(a_again, a);

    // Once its execution is deleted, `b` is unreferenced; the protection time keeps it
    // while it is young, and a sweep without one deletes it, and only it.
    runtime.delete(dropped).await.unwrap();
    let report = runtime.sweep_orphans(None).await.unwrap();
    assert_eq!((report.scanned, report.deleted), (2, 0), "{report:?}");
    let report = runtime.sweep_orphans(Some(Duration::ZERO)).await.unwrap();
    assert_eq!((report.scanned, report.deleted), (2, 1), "{report:?}");
    runtime.shutdown().await.unwrap();

    // After a restart, an item referencing `b` learns it is gone (a clear error), and its
    // retry makes it again; one referencing `a` just reads it.
    let runtime = start(dir.path()).await;
    let plan = Plan::new("reuse").block(
        Block::new("b")
            .item(
                ItemSpec::new(
                    "again",
                    &Reuse {
                        artifact: b,
                        text: "dropped".to_owned(),
                    },
                )
                .unwrap()
                .retry(1),
            )
            .item(
                ItemSpec::new(
                    "still",
                    &Reuse {
                        artifact: a,
                        text: "kept".to_owned(),
                    },
                )
                .unwrap(),
            ),
    );
    let id = runtime.submit(plan).await.unwrap();
    assert!(outcome(&runtime, id).await.is_completed());
    let report = runtime.status(id).await.unwrap();
    let again = report.item("again").unwrap();
    assert_eq!(again.attempts, 2);
    assert!(
        again.errors[0]
            .error
            .contains(&format!("artifact {b} no longer exists")),
        "{again:?}"
    );
    assert_eq!(again.output_as::<String>().as_deref(), Some("dropped"));
    assert_eq!(
        report
            .item("still")
            .unwrap()
            .output_as::<String>()
            .as_deref(),
        Some("kept")
    );
    // Both are referenced again: a sweep keeps them.
    let report = runtime.sweep_orphans(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(report.deleted, 0, "{report:?}");

    // Over the bridge as well.
    let bound = Bridge::new(runtime.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("http://{}/orphans/sweep", bound.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(helpers::PATIENCE)
        .build()
        .unwrap();
    let swept: serde_json::Value = client
        .post(&url)
        .json(&serde_json::json!({"protection": "0s"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(swept["scanned"], 2, "{swept}");
    assert_eq!(swept["deleted"], 0, "{swept}");
    assert_eq!(swept["protection"], "0s", "{swept}");
    let bad = client
        .post(&url)
        .json(&serde_json::json!({"protection": "never"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    runtime.shutdown().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_sweep_that_frees_much_leaves_a_compaction_to_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path()).await;
    for n in 0..40 {
        let text = format!("{n:02}{}", "a".repeat(64 * 1024));
        let (id, _) = make(&runtime, &text).await;
        runtime.delete(id).await.unwrap();
    }
    // One kept, after them in the file: the space they leave is not at its end (redb
    // gives back a free end by itself).
    make(&runtime, &"k".repeat(64 * 1024)).await;
    let report = runtime.sweep_orphans(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(report.deleted, 40);
    runtime.shutdown().await.unwrap();
    drop(runtime);
    let file = || {
        std::fs::metadata(dir.path().join(tend::engine::store::DB_FILE))
            .unwrap()
            .len()
    };
    let swept = file();
    // The sweep ran beside executions, so it did not compact; the start does.
    let runtime = start(dir.path()).await;
    let started = file();
    assert!(started < swept / 2, "{swept} -> {started} bytes");
    runtime.shutdown().await.unwrap();
}

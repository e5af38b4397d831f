//! `GET /metrics` over a real loopback socket: after executions ran (one completed, one
//! failed), the Prometheus text counts them, their attempts, the store's commits, and reads
//! the gauges at the scrape; every documented metric is there, and each is in the README.
//! Alone in its binary: a process has one metrics recorder.

#[path = "support/helpers.rs"]
mod helpers;

use std::collections::BTreeMap;

use tend::bridge::Bridge;
use tend::{Block, ItemSpec, Plan, Runtime};

/// The samples of the Prometheus text: `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_ran_and_read_the_gauges_at_the_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::builder()
        .data_dir(dir.path())
        .registry(tend::demo::registry().unwrap())
        .start()
        .await
        .unwrap();
    let bridge = Bridge::new(runtime.clone()).with_metrics().unwrap();
    // A second bridge of the same process shares the recorder.
    assert!(Bridge::new(runtime.clone()).with_metrics().is_ok());
    let bound = bridge.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", bound.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));

    let ok = Plan::new("ok").block(
        Block::new("b")
            .item(ItemSpec::new("x", &tend::demo::Sum { add: 1 }).unwrap())
            .item(
                ItemSpec::new("y", &tend::demo::Sum { add: 2 })
                    .unwrap()
                    .after(["x"]),
            ),
    );
    let id = runtime.submit(ok).await.unwrap();
    assert!(runtime.wait(id).await.unwrap().is_completed());
    let failing = tend::demo::Sleep {
        fail_times: 5,
        ..tend::demo::Sleep::new(0)
    };
    let bad = Plan::new("bad").block(Block::new("b").item(ItemSpec::new("f", &failing).unwrap()));
    let id = runtime.submit(bad).await.unwrap();
    assert!(!runtime.wait(id).await.unwrap().is_completed());

    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let seen = samples(&text);
    let value = |key: &str| {
        seen.get(key)
            .copied()
            .unwrap_or_else(|| panic!("no sample {key} in\n{text}"))
    };
    assert_eq!(
        value(r#"tend_executions_ended_total{status="completed"}"#),
        1.0
    );
    assert_eq!(
        value(r#"tend_executions_ended_total{status="failed"}"#),
        1.0
    );
    assert_eq!(value(r#"tend_attempts_total{ended="done"}"#), 2.0);
    assert_eq!(value(r#"tend_attempts_total{ended="failed"}"#), 1.0);
    assert_eq!(value("tend_attempt_duration_seconds_count"), 3.0);
    assert_eq!(value("tend_attempt_start_wait_seconds_count"), 3.0);
    assert!(value("tend_commit_duration_seconds_count") >= 3.0, "{text}");
    assert!(value("tend_commit_requests_count") >= 3.0, "{text}");
    assert_eq!(value(r#"tend_executions{status="running"}"#), 0.0);
    assert_eq!(value("tend_executions_stored"), 2.0);
    assert!(value("tend_store_bytes") > 0.0, "{text}");
    assert!(value("tend_live_actors") >= 1.0, "{text}");
    // Histograms have buckets, and everything is described.
    assert!(
        text.contains("tend_commit_duration_seconds_bucket{le="),
        "{text}"
    );
    assert!(text.contains("# HELP tend_attempts_total"), "{text}");

    let readme = include_str!("../README.md");
    for name in tend::engine::metrics::NAMES {
        assert!(text.contains(name), "{name} is not served:\n{text}");
        assert!(readme.contains(name), "README.md does not document {name}");
    }

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_metrics_enabled_the_route_says_how_to_enable_them() {
    let runtime = Runtime::builder().start().await.unwrap();
    let bound = Bridge::new(runtime.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", bound.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "metrics_off", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("with_metrics"),
        "{body}"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    runtime.shutdown().await.unwrap();
}

//! `GET /metrics`: what the runtime measured (see `tend_actors::metrics`), in Prometheus
//! text, from the recorder [`Bridge::with_metrics`](crate::bridge::Bridge::with_metrics)
//! installed. The gauges (executions by status, store size, live actors) are read at
//! each scrape, each as best it can be: one that cannot be read now (the store is being
//! reopened, say) keeps its last value, and the rest is served.

use std::sync::Mutex;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tend_actors::metrics as names;

use crate::Runtime;
use crate::bridge::error::BridgeError;
use crate::bridge::routes::AppState;

/// Histogram buckets, in seconds: from a tenth of a millisecond to a minute.
const SECONDS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
];

/// Buckets for the requests a group commit takes.
const REQUESTS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// The process's Prometheus recorder, once installed (a process has one recorder).
static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder as the process's `metrics` recorder, once; later calls
/// (from any thread) return the same handle.
pub(crate) fn install() -> Result<PrometheusHandle, BridgeError> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(handle) = &*installed {
        return Ok(handle.clone());
    }
    let failed = |e: &dyn std::fmt::Display| BridgeError::Metrics(e.to_string());
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
        .map_err(|e| failed(&e))?
        .set_buckets_for_metric(Matcher::Full(names::COMMIT_REQUESTS.to_owned()), REQUESTS)
        .map_err(|e| failed(&e))?;
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    // Fails if the process already has a recorder of the application's: then metrics go
    // there, and the application renders them itself.
    metrics::set_global_recorder(recorder).map_err(|e| failed(&e))?;
    names::describe();
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Prometheus text of everything measured, the gauges read now.
#[utoipa::path(get, path = "/metrics", operation_id = "get_metrics", tag = "runtime", responses(
    (status = 200, body = String, description = "Prometheus text exposition format", content_type = "text/plain"),
    (status = 404, description = "metrics are not enabled (`metrics_off`)", body = crate::bridge::error::ErrorBody),
))]
pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, BridgeError> {
    let Some(handle) = &s.metrics else {
        return Err(BridgeError::NotFound {
            code: "metrics_off",
            message: "metrics are not enabled: Bridge::with_metrics() serves them here".to_owned(),
        });
    };
    gauges(&s.runtime).await;
    handle.run_upkeep();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}

/// Sets the gauges from what the runtime holds now; one it cannot read keeps its value.
async fn gauges(runtime: &Runtime) {
    match runtime.counts().await {
        Ok(counts) => {
            for (status, n) in [
                ("running", counts.running),
                ("interrupted", counts.interrupted),
                ("paused", counts.paused),
                ("corrupt", counts.corrupt),
            ] {
                metrics::gauge!(names::EXECUTIONS, "status" => status).set(n as f64);
            }
            metrics::gauge!(names::EXECUTIONS_STORED).set(counts.stored as f64);
        }
        Err(e) => tracing::debug!(error = %e, "executions not counted for this scrape"),
    }
    if let Some(path) = runtime.store_path().map(ToOwned::to_owned) {
        // A stat call: on the blocking pool, not on the async worker.
        if let Ok(Ok(meta)) = tokio::task::spawn_blocking(move || std::fs::metadata(path)).await {
            metrics::gauge!(names::STORE_BYTES).set(meta.len() as f64);
        }
    }
    metrics::gauge!(names::LIVE_ACTORS).set(names::live_actors() as f64);
}

//! Latency of the debug bridge on loopback beside the same call made directly on the
//! runtime handle, in the same run: `GET /executions/{id}` against `Runtime::status`, and
//! `POST /executions` against `Runtime::submit`.
//!
//! `cargo bench --bench bridge`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tend::bridge::Bridge;
use tend::{Plan, Runtime};

fn plan() -> Plan {
    serde_json::from_value(json!({
        "name": "bench",
        "blocks": [{"name": "b", "items": [
            {"id": "a", "kind": "sum", "params": {"add": 1}},
            {"id": "b", "kind": "sum", "params": {"add": 2}, "after": ["a"]},
            {"id": "c", "kind": "sleep", "params": {"ms": 0, "output": 3}}
        ]}]
    }))
    .expect("a valid plan")
}

fn bridge(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (runtime, base, id) = rt.block_on(async {
        let runtime = Runtime::builder()
            .registry(tend::demo::registry().expect("demo kinds"))
            .start()
            .await
            .expect("runtime");
        let bound = Bridge::new(runtime.clone())
            .bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("bind");
        let base = format!("http://{}", bound.local_addr());
        tokio::spawn(bound.serve(std::future::pending()));
        let id = runtime.submit(plan()).await.expect("submit");
        runtime.wait(id).await.expect("wait");
        (runtime, base, id)
    });
    let client = reqwest::Client::new();
    let status_url = format!("{base}/executions/{id}");
    let submit_url = format!("{base}/executions");
    let direct_plan = plan();
    let body = serde_json::to_vec(&direct_plan).expect("plan encodes");

    let mut group = c.benchmark_group("bridge");
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("status_direct", |b| {
        b.to_async(&rt)
            .iter(|| async { runtime.status(id).await.expect("status") })
    });
    group.bench_function("status_http", |b| {
        b.to_async(&rt).iter(|| async {
            let response = client.get(&status_url).send().await.expect("request");
            assert!(response.status().is_success());
            response.bytes().await.expect("body")
        })
    });
    group.bench_function("submit_direct", |b| {
        b.to_async(&rt)
            .iter(|| async { runtime.submit(direct_plan.clone()).await.expect("submit") })
    });
    group.bench_function("submit_http", |b| {
        b.to_async(&rt).iter(|| async {
            let response = client
                .post(&submit_url)
                .body(body.clone())
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 201);
            response.bytes().await.expect("body")
        })
    });
    group.finish();
    rt.block_on(runtime.shutdown()).expect("shutdown");
}

criterion_group!(benches, bridge);
criterion_main!(benches);

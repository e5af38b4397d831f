//! Every route of the debug bridge, over a real loopback socket with a real HTTP client.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use futures::StreamExt;
use helpers::*;
use serde_json::{Value, json};
use served::{Served, assert_error};

fn plan(items: Value) -> Value {
    json!({"name": "p", "blocks": [{"name": "b", "items": items}]})
}

fn slow(id: &str, ms: u64, steps: u32) -> Value {
    json!({"id": id, "kind": "sleep", "params": {"ms": ms, "steps": steps}})
}

/// An item of `steps` steps that waits at gate `gate` before each: it runs until the test
/// opens the gate.
fn held(id: &str, gate: &str, steps: u32) -> Value {
    json!({"id": id, "kind": "gate", "params": {"gate": gate, "steps": steps}})
}

async fn submit(s: &Served, plan: &Value) -> String {
    let (status, body) = s.post("/executions", plan).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn plans_with_dependencies_run_and_report_outputs() {
    let s = Served::start(None, None, None).await;
    let (status, health) = s.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");

    let response = s
        .client
        .post(s.url("/executions"))
        .json(&json!({"name": "sums", "blocks": [
            {"name": "leaves", "items": [
                {"id": "two", "kind": "sleep", "params": {"ms": 20, "steps": 2, "output": 2}},
                {"id": "three", "kind": "sleep", "params": {"ms": 10, "output": 3}},
                {"id": "five", "kind": "sum", "after": ["two", "three"]}
            ]},
            {"name": "root", "items": [{"id": "fifteen", "kind": "sum", "params": {"add": 10}, "after": ["five"]}]}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(location, format!("/executions/{id}"));

    let view = s.wait_status(&id, "completed").await;
    assert_eq!(view["name"], "sums");
    assert_eq!(
        (view["items_done"].as_u64(), view["items_total"].as_u64()),
        (Some(4), Some(4))
    );
    let items = &view["blocks"][0]["items"];
    assert_eq!(items[0]["id"], "two");
    assert_eq!(items[0]["status"], "done");
    assert_eq!(items[0]["attempts"], 1);
    assert_eq!(items[0]["progress"], json!({"done": 2, "total": 2}));
    assert_eq!(items[0]["output"], 2);
    assert_eq!(items[2]["output"], 5);
    assert_eq!(view["blocks"][1]["items"][0]["output"], 15);
    assert_eq!(view["outcome"]["status"], "completed");
    assert_eq!(view["outcome"]["blocks"][1]["done"], json!(["fifteen"]));
    assert!(view["created"].as_str().unwrap().ends_with('Z'));

    let (_, list) = s.get("/executions").await;
    assert_eq!(list["executions"][0]["id"], id.as_str());
    assert_eq!(list["executions"][0]["status"], "completed");
    let (_, completed) = s.get("/executions?status=completed").await;
    assert_eq!(completed["executions"].as_array().unwrap().len(), 1);
    let (_, running) = s.get("/executions?status=running").await;
    assert_eq!(running["executions"], json!([]));
    let (status, body) = s.get("/executions?status=sleeping").await;
    assert_error(status, &body, 400, "invalid_status");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sleeping")
    );
    s.stop().await;
}

#[tokio::test]
async fn failures_and_panics_are_reported_per_item() {
    let s = Served::start(None, None, None).await;
    let id = submit(
        &s,
        &plan(json!([
            {"id": "fails", "kind": "sleep", "params": {"ms": 1, "fail_times": 1}},
            {"id": "panics", "kind": "sleep", "params": {"ms": 1, "panic_times": 1}},
            {"id": "after-fail", "kind": "sum", "after": ["fails"]},
            {"id": "fine", "kind": "sum", "params": {"add": 7}}
        ])),
    )
    .await;
    let view = s.wait_status(&id, "failed").await;
    let items = view["blocks"][0]["items"].as_array().unwrap();
    let item = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(item("fails")["status"], "failed");
    assert!(
        item("fails")["error"]
            .as_str()
            .unwrap()
            .contains("fails on purpose")
    );
    assert_eq!(item("panics")["status"], "failed");
    assert!(item("panics")["error"].as_str().unwrap().contains("panic"));
    assert_eq!(item("after-fail")["status"], "skipped");
    assert_eq!(item("fine")["output"], 7);
    assert_eq!(
        view["outcome"]["blocks"][0]["skipped"],
        json!(["after-fail"])
    );
    let (status, health) = s.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    s.stop().await;
}

#[tokio::test]
async fn every_plan_error_is_a_400_naming_its_kind_and_culprit() {
    let s = Served::start(None, None, None).await;
    let cases = [
        (
            plan(
                json!([{"id": "a", "kind": "sum", "after": ["b"]}, {"id": "b", "kind": "sum", "after": ["a"]}]),
            ),
            "cycle",
            "a",
        ),
        (
            plan(json!([{"id": "a", "kind": "sum"}, {"id": "a", "kind": "sum"}])),
            "duplicate_item",
            "a",
        ),
        (
            plan(json!([{"id": "a", "kind": "sum", "after": ["ghost"]}])),
            "unknown_dependency",
            "ghost",
        ),
        (
            plan(json!([{"id": "a", "kind": "warp"}])),
            "unknown_kind",
            "warp",
        ),
        (
            plan(json!([{"id": "a", "kind": "sleep", "params": {"ms": -1}}])),
            "bad_params",
            "a",
        ),
        (
            json!({"name": "empty", "blocks": []}),
            "empty_plan",
            "empty",
        ),
        (
            plan(json!([{"id": "a", "kind": "sum", "retry": "3"}])),
            "bad_metaparam",
            "retry",
        ),
        (
            plan(json!([{"id": "a", "kind": "sum", "limit": 5.0}])),
            "bad_metaparam",
            "burst",
        ),
        (
            plan(json!([{"id": "a", "kind": "sum", "sema": ["db:0"]}])),
            "bad_metaparam",
            "db:0",
        ),
        (
            plan(json!([{"id": "a b", "kind": "sum"}])),
            "invalid_id",
            "a b",
        ),
    ];
    for (body, code, culprit) in cases {
        let (status, error) = s.post("/executions", &body).await;
        assert_error(status, &error, 400, code);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(culprit),
            "{error}"
        );
    }
    // Malformed JSON, unknown fields and wrong types.
    let (status, error) = s.post_raw("/executions", "{\"name\": ").await;
    assert_error(status, &error, 400, "malformed_json");
    let (status, error) = s.post_raw("/executions", "").await;
    assert_error(status, &error, 400, "malformed_json");
    let (status, error) = s
        .post(
            "/executions",
            &json!({"name": "x", "blocks": [], "colour": 1}),
        )
        .await;
    assert_error(status, &error, 400, "invalid_body");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    let (status, error) = s.post("/executions", &json!({"name": 5})).await;
    assert_error(status, &error, 400, "invalid_body");
    let (status, error) = s.post("/executions", &json!([1, 2])).await;
    assert_error(status, &error, 400, "invalid_body");
    // Nothing was created by any of them.
    let (_, list) = s.get("/executions").await;
    assert_eq!(list["executions"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn size_route_method_and_id_errors_have_their_statuses() {
    let s = Served::start(None, None, None).await;
    let huge = format!(
        "{{\"name\": \"{}\", \"blocks\": []}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let (status, error) = s.post_raw("/executions", huge).await;
    assert_error(status, &error, 413, "payload_too_large");
    let (status, error) = s.get("/nowhere").await;
    assert_error(status, &error, 404, "not_found");
    let (status, error) = s.send(s.client.delete(s.url("/executions"))).await;
    assert_error(status, &error, 405, "method_not_allowed");
    let ghost = tend::ExecutionId::generate().to_string();
    for path in [
        format!("/executions/{ghost}"),
        "/executions/not-an-id".to_owned(),
    ] {
        let (status, error) = s.get(&path).await;
        assert_error(status, &error, 404, "unknown_execution");
    }
    let (status, error) = s
        .post(&format!("/executions/{ghost}/interrupt"), &json!({}))
        .await;
    assert_error(status, &error, 404, "unknown_execution");
    let (status, error) = s.post_raw(&format!("/executions/{ghost}/resume"), "").await;
    assert_error(status, &error, 404, "unknown_execution");
    s.stop().await;
}

#[tokio::test]
async fn interrupt_and_resume_over_rest_with_each_strategy_form() {
    let s = Served::start(None, None, None).await;
    // Default body: finish_current.
    let id = submit(
        &s,
        &plan(json!([
            held("a", "a", 3),
            slow("b", 10, 1)
                .as_object()
                .cloned()
                .map(|mut o| {
                    o.insert("after".into(), json!(["a"]));
                    Value::Object(o)
                })
                .unwrap()
        ])),
    )
    .await;
    let (status, accepted) = s.post_raw(&format!("/executions/{id}/interrupt"), "").await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted, json!({"id": id, "action": "interrupting"}));
    // Applied (202 comes once it is): `a` may finish now, `b` may not start.
    s.gates.open("a");
    let view = s.wait_status(&id, "interrupted").await;
    assert_eq!(view["outcome"]["blocks"][0]["done"], json!(["a"]));
    assert_eq!(view["outcome"]["blocks"][0]["not_started"], json!(["b"]));
    // Interrupting it again is a conflict; resuming it is accepted and it completes.
    let (status, error) = s
        .post(&format!("/executions/{id}/interrupt"), &json!({}))
        .await;
    assert_error(status, &error, 409, "invalid_state");
    // Resume takes no options: one sent anyway is refused, not ignored.
    for body in [r#"{"strategy": "finish_current"}"#, "[]", "3", "null"] {
        let (status, error) = s.post_raw(&format!("/executions/{id}/resume"), body).await;
        assert_error(status, &error, 400, "invalid_body");
    }
    let (status, accepted) = s.post_raw(&format!("/executions/{id}/resume"), "").await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["action"], "resuming");
    s.wait_status(&id, "completed").await;
    let (status, error) = s.post_raw(&format!("/executions/{id}/resume"), "").await;
    assert_error(status, &error, 409, "invalid_state");

    let chain = |first: Value| {
        plan(json!([
            first,
            {"id": "second", "kind": "sleep", "params": {"ms": 10}, "after": ["first"]},
            {"id": "third", "kind": "sleep", "params": {"ms": 10}, "after": ["second"]}
        ]))
    };
    // `first` runs until the interrupt: held at a gate, or in one step of a minute (no
    // cancellation point in reach, so only the abort ends it).
    let minute = json!({"id": "first", "kind": "sleep", "params": {"ms": 60_000, "steps": 1}});
    // After the interrupt is applied, the gate `open` (if any) lets `first` finish.
    for (strategy, first, open, expected) in [
        (
            json!("at_cancellation_point"),
            held("first", "never", 30),
            None,
            ["interrupted", "pending", "pending"],
        ),
        (
            json!({"immediate": {"grace": "50ms"}}),
            minute,
            None,
            ["interrupted", "pending", "pending"],
        ),
        (
            json!({"poll_next_n": 1}),
            held("first", "poll", 3),
            Some("poll"),
            ["done", "done", "pending"],
        ),
    ] {
        let id = submit(&s, &chain(first)).await;
        // Interrupt once the first item runs.
        eventually("the first item runs", || async {
            let (_, view) = s.get(&format!("/executions/{id}")).await;
            let first = &view["blocks"][0]["items"][0]["status"];
            if first == "running" {
                Ok(())
            } else {
                Err(format!("first item {first}"))
            }
        })
        .await;
        let (status, body) = s
            .post(
                &format!("/executions/{id}/interrupt"),
                &json!({"strategy": strategy}),
            )
            .await;
        assert_eq!(status, 202, "{strategy}: {body}");
        // Applied: with poll_next_n, `first` may finish now and one more item start.
        if let Some(gate) = open {
            s.gates.open(gate);
        }
        let view = s.wait_status(&id, "interrupted").await;
        let statuses: Vec<&str> = view["blocks"][0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, expected, "{strategy}: {view}");
    }
    let (status, error) = s
        .post(
            &format!("/executions/{}/interrupt", tend::ExecutionId::generate()),
            &json!({"strategy": "whenever"}),
        )
        .await;
    assert_error(status, &error, 400, "invalid_body");
    let (status, error) = s
        .post(
            &format!("/executions/{}/interrupt", tend::ExecutionId::generate()),
            &json!({"strategy": {"immediate": {"grace": "soon"}}}),
        )
        .await;
    assert_error(status, &error, 400, "invalid_body");
    assert!(error["error"]["message"].as_str().unwrap().contains("soon"));
    s.stop().await;
}

#[tokio::test]
async fn interrupt_all_answers_with_the_ids_it_reached() {
    let s = Served::start(None, None, None).await;
    let done = submit(&s, &plan(json!([{"id": "x", "kind": "sum"}]))).await;
    s.wait_status(&done, "completed").await;
    let a = submit(&s, &plan(json!([held("a", "closed", 30)]))).await;
    let b = submit(&s, &plan(json!([held("b", "closed", 30)]))).await;
    let (status, body) = s
        .post("/interrupt", &json!({"strategy": "at_cancellation_point"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let mut ids: Vec<String> = body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    s.wait_status(&a, "interrupted").await;
    s.wait_status(&b, "interrupted").await;
    let (status, body) = s.post_raw("/interrupt", "").await;
    assert_eq!((status, body), (202, json!({"ids": []})));
    s.stop().await;
}

#[tokio::test]
async fn the_event_stream_delivers_progress_and_status_changes() {
    let s = Served::start(None, None, None).await;
    let response = s.client.get(s.url("/events")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let id = submit(&s, &plan(json!([slow("a", 60, 3)]))).await;
    let mut text = String::new();
    let wanted = [
        "event: progress".to_owned(),
        format!("\"execution\":\"{id}\""),
        "\"progress\":{\"done\":3,\"total\":3}".to_owned(),
        "event: item".to_owned(),
        "\"status\":\"done\"".to_owned(),
        "\"status\":\"completed\"".to_owned(),
    ];
    tokio::time::timeout(PATIENCE, async {
        while !wanted.iter().all(|w| text.contains(w.as_str())) {
            let chunk = stream.next().await.expect("stream open").unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("missing events in {text}"));
    let progress_line = text
        .lines()
        .find(|l| l.starts_with("data:") && l.contains("\"type\":\"progress\""))
        .unwrap();
    let event: Value =
        serde_json::from_str(progress_line.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(event["item"], "a");
    drop(stream);
    s.stop().await;
}

#[tokio::test]
async fn the_tree_shows_executions_and_their_attempts() {
    let s = Served::start(None, None, None).await;
    let (status, tree) = s.get("/tree").await;
    assert_eq!(status, 200);
    assert_eq!(tree["role"], "supervisor");
    assert_eq!(tree["children"], json!([]));
    let id = submit(&s, &plan(json!([held("busy", "closed", 30)]))).await;
    let tree = eventually("the tree shows the busy attempt", || async {
        let (_, tree) = s.get("/tree").await;
        let attempt = &tree["children"][0]["children"][0];
        if attempt["status"] == "running busy" {
            Ok(tree)
        } else {
            Err(tree.to_string())
        }
    })
    .await;
    assert_eq!(tree["children"][0]["role"], "execution");
    assert_eq!(tree["children"][0]["name"], id.as_str());
    assert_eq!(tree["children"][0]["children"][0]["role"], "attempt");
    assert_eq!(tree["children"][0]["children"][0]["name"], "busy attempt 1");
    s.post(
        &format!("/executions/{id}/interrupt"),
        &json!({"strategy": "at_cancellation_point"}),
    )
    .await;
    s.wait_status(&id, "interrupted").await;
    let (_, tree) = s.get("/tree").await;
    assert_eq!(tree["children"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn restart_on_the_same_directory_then_resume_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    let s = Served::start(Some(dir.path()), Some(&log), None).await;
    let id = submit(
        &s,
        &json!({"name": "restart", "blocks": [{"name": "b", "items": [
            {"id": "one", "kind": "gate", "params": {"gate": "one", "steps": 15, "output": 1}},
            {"id": "two", "kind": "gate", "params": {"gate": "two", "steps": 15, "output": 2}},
            {"id": "three", "kind": "sum", "after": ["one", "two"]}
        ]}]}),
    )
    .await;
    // `one` goes two steps and waits; the stop finds both running.
    s.gates.release("one", 2);
    eventually("item one has checkpointed two steps", || async {
        let (_, view) = s.get(&format!("/executions/{id}")).await;
        let progress = &view["blocks"][0]["items"][0]["progress"];
        if progress["done"] == 2 {
            Ok(())
        } else {
            Err(format!("progress {progress}"))
        }
    })
    .await;
    // Interrupted on purpose before the shutdown, it waits for a resume after the restart
    // (one the shutdown stopped while it ran would resume by itself).
    let (status, _) = s
        .post(
            &format!("/executions/{id}/interrupt"),
            &json!({"strategy": "at_cancellation_point"}),
        )
        .await;
    assert_eq!(status, 202);
    s.wait_status(&id, "interrupted").await;
    s.stop().await;

    let s = Served::start(Some(dir.path()), Some(&log), None).await;
    s.gates.open("one");
    s.gates.open("two");
    let (_, list) = s.get("/executions?status=interrupted").await;
    assert_eq!(list["executions"][0]["id"], id.as_str());
    let view = s.wait_status(&id, "interrupted").await;
    let first = &view["blocks"][0]["items"][0];
    assert_eq!(first["status"], "interrupted");
    assert_eq!(first["progress"]["done"], 2, "{view}");
    let (status, _) = s.post_raw(&format!("/executions/{id}/resume"), "").await;
    assert_eq!(status, 202);
    let view = s.wait_status(&id, "completed").await;
    assert_eq!(view["blocks"][0]["items"][2]["output"], 3);
    assert_eq!(view["blocks"][0]["items"][0]["attempts"], 2);
    assert_nothing_reapplied(&log);
    s.stop().await;
}

#[tokio::test]
async fn a_failed_execution_is_retried_over_rest() {
    let s = Served::start(None, None, None).await;
    // Its first attempt fails; no retries: the execution fails.
    let id = submit(
        &s,
        &plan(json!([
            {"id": "once", "kind": "sleep", "params": {"ms": 0, "fail_times": 1}},
            {"id": "then", "kind": "sleep", "params": {"ms": 0}, "after": ["once"]}
        ])),
    )
    .await;
    let view = s.wait_status(&id, "failed").await;
    let once = &view["blocks"][0]["items"][0];
    assert_eq!(once["errors"][0]["attempt"], 1, "{view}");
    assert!(
        once["errors"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("fails on purpose")),
        "{view}"
    );
    assert!(once["errors"][0]["at"].as_str().is_some(), "{view}");
    let (status, error) = s.post_raw(&format!("/executions/{id}/resume"), "").await;
    assert_error(status, &error, 409, "invalid_state");
    let (status, error) = s
        .post(
            &format!("/executions/{id}/retry"),
            &json!({"items": ["once"]}),
        )
        .await;
    assert_error(status, &error, 400, "invalid_body");
    let (status, accepted) = s.post(&format!("/executions/{id}/retry"), &json!({})).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["action"], "retrying");
    let view = s.wait_status(&id, "completed").await;
    assert_eq!(view["blocks"][0]["items"][0]["attempts"], 2, "{view}");
    let (status, error) = s.post_raw(&format!("/executions/{id}/retry"), "").await;
    assert_error(status, &error, 409, "invalid_state");
    s.stop().await;
}

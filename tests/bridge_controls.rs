//! The bridge's side of the graph controls, over a real loopback socket: dry runs, the
//! semaphore view, and pause.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use serde_json::{Value, json};
use served::{Served, assert_error};

fn plan(items: Value) -> Value {
    json!({"name": "p", "blocks": [{"name": "b", "items": items}]})
}

#[tokio::test]
async fn a_dry_run_over_rest_reports_what_would_change_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    let s = Served::start(None, Some(&log), None).await;
    let body = plan(json!([
        {"id": "work", "kind": "sleep", "params": {"ms": 0}},
        {"id": "held", "kind": "sleep", "params": {"ms": 0, "satisfied": true}},
        {"id": "told", "kind": "sleep", "params": {"ms": 0}, "after": ["work"], "notify": true}
    ]));
    let (status, view) = s.post("/executions?dry_run=true", &body).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["would_change"], 2, "{view}");
    let items = &view["blocks"][0]["items"];
    assert_eq!(items[0]["check"], "would_apply", "{view}");
    assert_eq!(items[1]["check"], "satisfied", "{view}");
    assert_eq!(items[2]["refresh"], true, "{view}");
    let (_, list) = s.get("/executions").await;
    assert_eq!(list["executions"], json!([]), "nothing started");
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), "");

    // An invalid plan is a 400 as for a submit; so is a query it does not know.
    let bad = plan(json!([{"id": "a", "kind": "nope"}]));
    let (status, error) = s.post("/executions?dry_run=true", &bad).await;
    assert_error(status, &error, 400, "unknown_kind");
    assert!(error.to_string().contains("nope"), "{error}");
    let (status, error) = s.post("/executions?dry_run=maybe", &body).await;
    assert_error(status, &error, 400, "invalid_query");
    assert!(error.to_string().contains("dry_run=maybe"), "{error}");
    // `dry_run=false` is a submit.
    let (status, created) = s.post("/executions?dry_run=false", &body).await;
    assert_eq!(status, 201, "{created}");
    s.stop().await;
}

#[tokio::test]
async fn semaphores_show_holders_and_waiters_over_rest() {
    let s = Served::start(None, None, None).await;
    let (status, created) = s
        .post(
            "/executions",
            &plan(json!([
                {"id": "first", "kind": "gate", "params": {"gate": "g"}, "sema": "db"},
                {"id": "second", "kind": "gate", "params": {"gate": "g"}, "sema": ["db"]}
            ])),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let view = helpers::eventually("one holds db and one waits", || async {
        let (_, view) = s.get("/semaphores").await;
        let db = &view["semaphores"][0];
        if db["holders"].as_array().map(Vec::len) == Some(1)
            && db["waiters"].as_array().map(Vec::len) == Some(1)
        {
            Ok(view)
        } else {
            Err(view.to_string())
        }
    })
    .await;
    let db = &view["semaphores"][0];
    assert_eq!(db["tag"], "db", "{view}");
    assert_eq!(db["size"], 1, "{view}");
    assert_eq!(
        db["holders"][0],
        json!({"execution": id, "item": "first"}),
        "{view}"
    );
    assert_eq!(
        db["waiters"][0],
        json!({"execution": id, "item": "second"}),
        "{view}"
    );
    s.gates.open("g");
    s.wait_status(&id, "completed").await;
    let (_, view) = s.get("/semaphores").await;
    assert_eq!(view, json!({"semaphores": []}));
    s.stop().await;
}

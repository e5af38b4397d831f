//! Submit if absent (issue 22, part 4): a submit with an idempotency key that an execution
//! already has answers that execution (the same plan) or is refused (another plan), across
//! restarts, until the execution is deleted; over REST through the plan's `key` or an
//! `Idempotency-Key` header, 201 for a new execution and 200 for the one that has the key.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use helpers::*;
use serde_json::{Value, json};
use served::{Served, assert_error};
use tend::{Block, ExecutionStatus, Plan, RuntimeError, Submitted};

fn nightly(add: i64) -> Plan {
    Plan::new("nightly")
        .with_key("nightly-2026-12-07")
        .block(Block::new("b").item(sum("total", add)))
}

#[tokio::test]
async fn a_key_starts_one_execution_across_concurrent_submits_and_restarts_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path()), None, 2).await;
    // Eight at once: one creates, the others get it.
    let submits = (0..8).map(|_| rt.submit_if_absent(nightly(1)));
    let answers: Vec<Submitted> = futures::future::join_all(submits)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let id = answers[0].id;
    assert!(answers.iter().all(|a| a.id == id), "{answers:?}");
    assert_eq!(
        answers.iter().filter(|a| a.created).count(),
        1,
        "{answers:?}"
    );
    assert!(outcome(&rt, id).await.is_completed());
    assert_eq!(rt.list().await.unwrap().len(), 1);

    // Another plan under the same key is refused, naming who has it.
    let err = rt.submit_if_absent(nightly(2)).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::KeyConflict { existing, .. } if *existing == id),
        "{err:?}"
    );
    assert!(err.to_string().contains("nightly-2026-12-07"), "{err}");
    rt.shutdown().await.unwrap();

    // The key is durable: after a restart the same submit finds it.
    let rt = runtime(Some(dir.path()), None, 2).await;
    let again = rt.submit_if_absent(nightly(1)).await.unwrap();
    assert_eq!(again, Submitted { id, created: false });
    assert_eq!(rt.submit(nightly(1)).await.unwrap(), id);
    // Deleted, its key goes with it.
    rt.delete(id).await.unwrap();
    let fresh = rt.submit_if_absent(nightly(1)).await.unwrap();
    assert!(fresh.created);
    assert_ne!(fresh.id, id);
    assert_eq!(
        outcome(&rt, fresh.id).await.status,
        ExecutionStatus::Completed
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_key_that_is_not_one_is_refused() {
    let rt = runtime(None, None, 2).await;
    for key in [String::new(), "x".repeat(257), "tab\there".to_owned()] {
        let plan = Plan::new("bad key")
            .with_key(key.clone())
            .block(Block::new("b").item(sum("total", 1)));
        let err = rt.submit(plan).await.unwrap_err();
        assert!(
            matches!(&err, RuntimeError::Plan(e) if e.code() == "invalid_key"),
            "{key:?}: {err:?}"
        );
    }
    assert!(rt.list().await.unwrap().is_empty());
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn over_rest_the_header_or_the_plans_key_answer_201_then_200_and_409_for_another_plan() {
    let s = Served::start(None, None, None).await;
    let plan = |add: i64| {
        json!({"name": "nightly", "blocks": [{"name": "b", "items": [
            {"id": "total", "kind": "sum", "params": {"add": add}}
        ]}]})
    };
    let submit = |body: Value, key: Option<&str>| {
        let mut request = s.client.post(s.url("/executions")).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        s.send(request)
    };
    let (status, first) = submit(plan(1), Some("k1")).await;
    assert_eq!(status, 201, "{first}");
    let (status, second) = submit(plan(1), Some("k1")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(first["id"], second["id"]);
    // The key in the plan is the same key.
    let mut keyed = plan(1);
    keyed["key"] = json!("k1");
    let (status, third) = submit(keyed.clone(), None).await;
    assert_eq!((status, &third["id"]), (200, &first["id"]));
    let (status, same) = submit(keyed.clone(), Some("k1")).await;
    assert_eq!((status, &same["id"]), (200, &first["id"]));
    // Another plan under it: 409 naming the execution.
    let (status, body) = submit(plan(2), Some("k1")).await;
    assert_error(status, &body, 409, "key_conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(first["id"].as_str().unwrap()), "{message}");
    // Header and plan disagreeing is the client's mistake.
    let (status, body) = submit(keyed, Some("k2")).await;
    assert_error(status, &body, 400, "key_mismatch");
    let (status, body) = submit(plan(1), Some(&"x".repeat(300))).await;
    assert_error(status, &body, 400, "invalid_key");
    // Without a key every submit is new.
    let (a, _) = submit(plan(1), None).await;
    let (b, _) = submit(plan(1), None).await;
    assert_eq!((a, b), (201, 201));
    let (_, list) = s.get("/executions").await;
    assert_eq!(list["executions"].as_array().unwrap().len(), 3, "{list}");
    s.stop().await;
}

//! `POST /shutdown` over a real loopback server: refused without a token, performed with
//! one (the report as the answer), and the event stream carrying it to its end.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use helpers::PATIENCE;
use serde_json::json;
use served::Served;

#[tokio::test]
async fn shutdown_over_the_bridge_needs_a_token() {
    let s = Served::start(None, None, None).await;
    let (status, body) = s.post("/shutdown", &json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "token_required", "{body}");
    // Nothing happened: the runtime still serves.
    let (status, _) = s.get("/executions").await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test]
async fn shutdown_over_the_bridge_answers_with_the_report_and_ends_event_streams() {
    let s = Served::start(None, None, Some("s3cret")).await;
    let auth = "Bearer s3cret";
    let submit = s
        .client
        .post(s.url("/executions"))
        .header("authorization", auth)
        .json(&json!({"name": "held", "blocks": [{"name": "b", "items": [
            {"id": "a", "kind": "gate", "params": {"gate": "g", "steps": 2}}
        ]}]}));
    let (status, created) = s.send(submit).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    s.wait_status(&id, "running").await;
    let events = s.client.get(s.url("/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);

    // Without the token it is refused; a bad deadline is named.
    let (status, _) = s.post("/shutdown", &json!({})).await;
    assert_eq!(status, 401);
    let bad = s
        .client
        .post(s.url("/shutdown"))
        .header("authorization", auth)
        .json(&json!({"deadline": "soon"}));
    let (status, body) = s.send(bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("soon"),
        "{body}"
    );
    for bad in ["0s", "400000000000y"] {
        let request = s
            .client
            .post(s.url("/shutdown"))
            .header("authorization", auth)
            .json(&json!({ "deadline": bad }));
        let (status, body) = s.send(request).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    let shutdown = s
        .client
        .post(s.url("/shutdown"))
        .header("authorization", auth)
        .json(&json!({"deadline": "20s"}));
    let (status, report) = s.send(shutdown).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["reason"], "rpc", "{report}");
    assert_eq!(report["deadline"], "20s", "{report}");
    assert_eq!(report["store_flushed"], true, "{report}");
    assert_eq!(
        report["executions"][0]["execution"],
        id.as_str(),
        "{report}"
    );
    assert_eq!(
        report["executions"][0]["result"], "checkpointed",
        "{report}"
    );

    // The open stream carried the shutdown to its end, then ended; a new one, and every
    // other request, is refused.
    let text = tokio::time::timeout(PATIENCE, events.text())
        .await
        .expect("the event stream ended")
        .unwrap();
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(
        text.contains("\"kind\":\"node_shutdown\"")
            && text.contains("\"kind\":\"node_shutdown_completed\"")
            && last.contains("event: end")
            && last.contains("runtime_stopped"),
        "{text}"
    );
    let (status, body) = s.get("/events").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = s.get("/executions").await;
    assert_eq!(status, 503, "{body}");
    // The handle's own shutdown finds it done.
    s.stop().await;
}

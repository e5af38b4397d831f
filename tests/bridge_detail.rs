//! What the bridge tells the dashboard, over a real loopback socket: each item's params,
//! dependencies, times and every attempt; `interrupting` and `pausing` wherever the
//! status is; the list searched by name or id.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use helpers::eventually;
use serde_json::{Value, json};
use served::{Served, assert_error};

/// The list's line for execution `id`.
async fn line(s: &Served, id: &str) -> Value {
    let (status, list) = s.get("/executions").await;
    assert_eq!(status, 200, "{list}");
    list["executions"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["id"] == id).cloned())
        .unwrap_or_else(|| panic!("{id} is listed: {list}"))
}

fn time(text: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(text.as_str().unwrap_or_else(|| panic!("a time: {text}"))).unwrap()
}

#[tokio::test]
async fn items_show_params_dependencies_times_and_attempts_and_halting_is_reported() {
    let s = Served::start(None, None, None).await;
    let plan = json!({"name": "detailed", "parallelism": 1, "blocks": [{"name": "b", "items": [
        {"id": "held", "kind": "gate", "params": {"gate": "held", "output": 1}},
        {"id": "next", "kind": "sum", "after": ["held"], "params": {"add": 2}}
    ]}, {"name": "c", "items": [
        {"id": "last", "kind": "sum", "params": {"add": 3}}
    ]}]});
    let (status, created) = s.post("/executions", &plan).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let view = eventually("held runs", || async {
        let (_, view) = s.get(&format!("/executions/{id}")).await;
        if view["blocks"][0]["items"][0]["status"] == "running" {
            Ok(view)
        } else {
            Err(view.to_string())
        }
    })
    .await;
    let items = &view["blocks"][0]["items"];
    assert_eq!(items[0]["after"], json!([]), "{view}");
    assert_eq!(items[1]["after"], json!(["held"]), "{view}");
    assert_eq!(items[1]["params"], json!({"add": 2}), "{view}");
    // A later block's items have their own params, from the running execution too.
    let last = &view["blocks"][1]["items"][0];
    assert_eq!(
        (&last["id"], &last["params"], &last["after"]),
        (&json!("last"), &json!({"add": 3}), &json!([])),
        "{view}"
    );
    assert_eq!(
        items[0]["params"],
        json!({"gate": "held", "output": 1}),
        "{view}"
    );
    // The attempt in flight: its start, no end, how long so far.
    let started = time(&items[0]["started"]);
    assert!(items[0]["ended"].is_null(), "{view}");
    assert!(items[0]["duration"].is_string(), "{view}");
    assert_eq!(items[0]["history"], json!([]), "{view}");
    assert!(items[1]["started"].is_null(), "{view}");
    assert!(view.get("halting").is_none(), "{view}");
    assert!(line(&s, &id).await.get("halting").is_none());

    // Interrupted with `finish_current` while `held` waits at its gate: it stays running,
    // and the list and the detail say it is interrupting until it has stopped.
    let (status, body) = s
        .post(
            &format!("/executions/{id}/interrupt"),
            &json!({"strategy": "finish_current"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let listed = line(&s, &id).await;
    assert_eq!(
        (&listed["status"], &listed["halting"]),
        (&json!("running"), &json!("interrupting")),
        "{listed}"
    );
    let (_, view) = s.get(&format!("/executions/{id}")).await;
    assert_eq!(view["halting"], "interrupting", "{view}");
    assert_eq!(view["status"], "running", "{view}");

    s.gates.open("held");
    let view = s.wait_status(&id, "interrupted").await;
    assert!(view.get("halting").is_none(), "{view}");
    assert!(line(&s, &id).await.get("halting").is_none());
    let held = &view["blocks"][0]["items"][0];
    assert_eq!(held["status"], "done", "{view}");
    let history = held["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{view}");
    assert_eq!(history[0]["attempt"], 1, "{view}");
    assert_eq!(history[0]["outcome"], "done", "{view}");
    assert!(history[0]["error"].is_null(), "{view}");
    assert_eq!(history[0]["started"], held["started"], "{view}");
    assert_eq!(history[0]["ended"], held["ended"], "{view}");
    assert_eq!(time(&held["started"]), started, "{view}");
    time(&held["ended"]);
    humantime::parse_duration(history[0]["duration"].as_str().unwrap()).unwrap();

    // A resume runs `next`, with its own times.
    let (status, body) = s
        .post(&format!("/executions/{id}/resume"), &json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    let view = s.wait_status(&id, "completed").await;
    let next = &view["blocks"][0]["items"][1];
    assert_eq!(next["history"][0]["outcome"], "done", "{view}");
    time(&next["started"]);

    // A pause is reported as `pausing` the same way.
    let (_, created) = s
        .post(
            "/executions",
            &json!({"name": "paused-one", "blocks": [{"name": "b", "items": [
                {"id": "p", "kind": "gate", "params": {"gate": "p"}},
                {"id": "later", "kind": "gate", "after": ["p"], "params": {"gate": "p"}}
            ]}]}),
        )
        .await;
    let paused = created["id"].as_str().unwrap().to_owned();
    s.wait_tree_status(&paused, "running").await;
    let (status, body) = s
        .post(&format!("/executions/{paused}/pause"), &json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(line(&s, &paused).await["halting"], "pausing");
    s.gates.open("p");
    let view = s.wait_status(&paused, "paused").await;
    assert!(view.get("halting").is_none(), "{view}");
    s.stop().await;
}

#[tokio::test]
async fn the_list_is_searched_by_name_or_id() {
    let s = Served::start(None, None, None).await;
    let mut ids = Vec::new();
    for name in ["deploy-web", "deploy-api", "nightly-report"] {
        let (status, created) = s
            .post(
                "/executions",
                &json!({"name": name, "blocks": [{"name": "b", "items": [
                    {"id": "a", "kind": "sum", "params": {"add": 1}}
                ]}]}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        s.wait_status(id, "completed").await;
    }
    let found = |list: &Value| -> Vec<String> {
        list["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, list) = s.get("/executions?q=DEPLOY").await;
    assert_eq!(found(&list), ["deploy-api", "deploy-web"], "{list}");
    let (_, list) = s.get("/executions?q=report&status=completed").await;
    assert_eq!(found(&list), ["nightly-report"], "{list}");
    let (_, list) = s.get("/executions?q=report&status=failed").await;
    assert_eq!(found(&list), Vec::<String>::new(), "{list}");
    // By a part of its id, in either case.
    let tail = ids[1][18..].to_lowercase();
    let (_, list) = s.get(&format!("/executions?q={tail}")).await;
    assert_eq!(found(&list), ["deploy-api"], "{list}");
    // Paged: one at a time, the search holds across the cursor.
    let (_, first) = s.get("/executions?q=deploy&limit=1").await;
    assert_eq!(found(&first), ["deploy-api"], "{first}");
    let next = first["next"].as_str().unwrap();
    let (_, second) = s
        .get(&format!("/executions?q=deploy&limit=1&cursor={next}"))
        .await;
    assert_eq!(found(&second), ["deploy-web"], "{second}");
    // An empty search lists everything; one too long is refused, naming the key.
    let (_, list) = s.get("/executions?q=").await;
    assert_eq!(found(&list).len(), 3, "{list}");
    let (status, error) = s.get(&format!("/executions?q={}", "x".repeat(129))).await;
    assert_error(status, &error, 400, "invalid_query");
    assert!(
        error["error"]["message"].as_str().unwrap().contains("`q`"),
        "{error}"
    );
    s.stop().await;
}

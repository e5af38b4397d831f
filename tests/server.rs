//! The example server as a real child process: it prints its address, serves the bridge,
//! shuts down gracefully on SIGTERM, and a restart on the same directory resumes over REST.

#[path = "support/example.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Finished, PATIENCE, Process};

struct Server {
    process: Process,
    base: String,
}

/// Starts the server on `data` with `extra` flags and waits for its address, which must be
/// the first line it prints.
fn start(data: &Path, log: &Path, env_token: Option<&str>, extra: &[&str]) -> Server {
    let mut command = Command::new(support::example("server"));
    command
        .args(support::backend::server_store_args(data))
        .args(["--bind", "127.0.0.1:0"])
        .args(["--applied-log", log.to_str().unwrap()])
        .args(extra)
        .env_remove("TEND_BRIDGE_TOKEN")
        // Whatever the machine's free disk space: no low-disk warning in `/health`.
        .env("TEND_DISK_LOW_PERCENT", "0");
    if let Some(token) = env_token {
        command.env("TEND_BRIDGE_TOKEN", token);
    }
    let mut process = Process::spawn("the server", command);
    let first = process.wait_for_line("the server prints its first line", |l| Some(l.to_owned()));
    let base = match first.strip_prefix("listening on ") {
        Some(base) => base.to_owned(),
        None => panic!("unexpected first line {first:?}\n{}", process.describe()),
    };
    Server { process, base }
}

impl Server {
    /// Sends `signal` and waits (bounded) for the server to exit.
    fn stop(mut self, signal: &str) -> Finished {
        self.process.signal(signal);
        self.process.finish()
    }

    /// POSTs `plan` and returns the new execution's id.
    async fn submit(&self, client: &reqwest::Client, plan: &Value) -> String {
        let response = client
            .post(self.url("/executions"))
            .json(plan)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` as JSON; fails the test with the server's output if that fails.
    async fn get(&mut self, client: &reqwest::Client, path: &str) -> Value {
        match get(client, &self.url(path)).await {
            Ok(view) => view,
            Err(e) => panic!("GET {path}: {e}\n{}", self.process.describe()),
        }
    }

    /// Polls GET `path` until `pred` holds; fails the test after PATIENCE, or as soon as
    /// the server exits, with the last answer and the server's output.
    async fn wait_for(
        &mut self,
        client: &reqwest::Client,
        path: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = match get(client, &self.url(path)).await {
                Ok(view) if pred(&view) => return view,
                Ok(view) => view.to_string(),
                Err(e) => e,
            };
            if self.process.try_status().is_some() || Instant::now() >= deadline {
                panic!(
                    "gave up waiting until {what}; last GET {path}: {seen}\n{}",
                    self.process.describe()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_and_a_restart_resumes_what_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = client();

    // Gate `a` lets two steps through in this run, so `a` holds at step 2 of 20 until
    // the shutdown interrupts it.
    let (mut server, id) = held_at_step_two(&data, &log, &client).await;
    let view = server.get(&client, &format!("/executions/{id}")).await;
    assert_eq!(view["status"], "running", "{view}");
    let finished = server.stop("-TERM");
    assert_eq!(
        finished.status.code(),
        Some(0),
        "graceful shutdown exits 0\n{}",
        finished.describe()
    );
    assert!(
        finished.stderr.contains("stopped"),
        "{}",
        finished.describe()
    );
    // It printed its shutdown report: the signal, the execution checkpointed, the store
    // flushed.
    let report: Value = finished
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("shutdown report: "))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| panic!("no shutdown report\n{}", finished.describe()));
    assert_eq!(report["reason"], "signal", "{report}");
    assert_eq!(report["store_flushed"], true, "{report}");
    let stopped = report["executions"].as_array().unwrap();
    assert_eq!(stopped.len(), 1, "{report}");
    assert_eq!(stopped[0]["execution"], id.as_str(), "{report}");
    assert_eq!(stopped[0]["result"], "checkpointed", "{report}");
    assert_eq!(stopped[0]["status"], "interrupted", "{report}");

    // The restart opens gate `a`. The shutdown stopped the execution while it ran, so the
    // restart resumes it by itself, and `a` runs its last 18 steps through.
    let mut server = start(&data, &log, None, &["--gate-open", "a"]);
    let list = server.get(&client, "/executions").await;
    let executions = list["executions"].as_array().unwrap();
    assert_eq!(executions.len(), 1, "{list}");
    assert_eq!(executions[0]["id"], id.as_str(), "{list}");
    let view = server
        .wait_for(
            &client,
            &format!("/executions/{id}"),
            "the execution completes",
            |v| v["status"] == "completed",
        )
        .await;
    assert_eq!(view["blocks"][0]["items"][0]["output"], 4, "{view}");
    assert_eq!(view["blocks"][0]["items"][1]["output"], 5, "{view}");
    let finished = server.stop("-INT");
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());

    // The applied log has the execution id; `a` started twice (interrupted, resumed) and
    // finished once; nothing started after it was done.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("start {id} a"),
            format!("start {id} a"),
            format!("done {id} a"),
            format!("start {id} b"),
            format!("done {id} b"),
        ]
    );
}

/// How many attempts of `item` the applied log shows starting.
fn starts(log: &Path, id: &str, item: &str) -> usize {
    let wanted = format!("start {id} {item}");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == wanted)
        .count()
}

/// Starts the server with `a` held at step 2 (of 20), submits `a` and `b` after it, and
/// waits until `a`'s checkpoint of step 2 is durable. Returns the server and the id.
async fn held_at_step_two(data: &Path, log: &Path, client: &reqwest::Client) -> (Server, String) {
    let mut server = start(data, log, None, &HELD);
    let plan = json!({"name": "killed", "blocks": [{"name": "b", "items": [
        {"id": "a", "kind": "gate", "params": {"gate": "a", "steps": 20, "output": 4}},
        {"id": "b", "kind": "sum", "params": {"add": 1}, "after": ["a"]}
    ]}]});
    let id = server.submit(client, &plan).await;
    // The message comes once the checkpoint of step 2 is durable.
    server
        .wait_for(
            client,
            &format!("/executions/{id}"),
            "item a waits for step 3",
            |v| {
                v["blocks"][0]["items"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("for step 3 of 20"))
            },
        )
        .await;
    (server, id)
}

/// Every run lets two steps of `a` through: the first attempt checkpoints two steps and
/// holds, each later one resumes at step 2 and holds, until a SIGKILL ends it.
const HELD: [&str; 2] = ["--gate-release", "a=2"];

/// SIGKILLs the server, starts it again with `flags` and waits until the execution the
/// crash left running has been resumed by the runtime itself and `a`'s attempt number
/// `attempt` has started.
async fn kill_and_restart(
    server: Server,
    data: &Path,
    log: &Path,
    client: &reqwest::Client,
    id: &str,
    flags: &[&str],
    attempt: usize,
) -> Server {
    let finished = server.stop("-KILL");
    assert_eq!(finished.status.code(), None, "{}", finished.describe());
    let mut server = start(data, log, None, flags);
    let (log, id_owned) = (log.to_owned(), id.to_owned());
    server
        .wait_for(
            client,
            &format!("/executions/{id}"),
            "the crashed execution resumes by itself",
            move |_| starts(&log, &id_owned, "a") == attempt,
        )
        .await;
    server
}

#[tokio::test]
async fn after_repeated_sigkills_executions_resume_by_themselves_and_attempts_count_every_start() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = client();
    let (mut server, id) = held_at_step_two(&data, &log, &client).await;
    let path = format!("/executions/{id}");
    // Two kills: fewer than the crash limit (3), so `a` runs again each time.
    const KILLS: usize = 2;
    for kill in 1..=KILLS {
        let flags: &[&str] = if kill == KILLS {
            &["--gate-open", "a"]
        } else {
            &HELD
        };
        server = kill_and_restart(server, &data, &log, &client, &id, flags, kill + 1).await;
        if kill < KILLS {
            // Every attempt that started is counted, none twice, and `a` shows the
            // progress of its durable checkpoint.
            let view = server.get(&client, &path).await;
            let a = &view["blocks"][0]["items"][0];
            assert_eq!(view["status"], "running", "{view}");
            assert_eq!(a["attempts"], kill + 1, "{view}");
            assert_eq!(a["progress"], json!({"done": 2, "total": 20}), "{view}");
        }
    }
    let view = server
        .wait_for(&client, &path, "the execution completes", |v| {
            v["status"] == "completed"
        })
        .await;
    let a = &view["blocks"][0]["items"][0];
    assert_eq!(a["attempts"], KILLS + 1, "{view}");
    assert_eq!(starts(&log, &id, "a"), KILLS + 1);
    assert_eq!(a["progress"], json!({"done": 20, "total": 20}), "{view}");
    assert_eq!(view["blocks"][0]["items"][1]["attempts"], 1, "{view}");
    assert_eq!(view["blocks"][0]["items"][1]["output"], 5, "{view}");
    let finished = server.stop("-TERM");
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());
}

#[tokio::test]
async fn an_item_the_process_keeps_dying_under_is_failed_instead_of_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = client();
    let (mut server, id) = held_at_step_two(&data, &log, &client).await;
    let path = format!("/executions/{id}");
    // The process dies under `a` three times in a row (the default crash limit).
    for kill in 1..3 {
        server = kill_and_restart(server, &data, &log, &client, &id, &HELD, kill + 1).await;
    }
    let finished = server.stop("-KILL");
    assert_eq!(finished.status.code(), None, "{}", finished.describe());
    let mut server = start(&data, &log, None, &HELD);
    let view = server
        .wait_for(&client, &path, "the execution fails", |v| {
            v["status"] == "failed"
        })
        .await;
    let a = &view["blocks"][0]["items"][0];
    assert_eq!(a["status"], "failed", "{view}");
    assert_eq!(
        a["error"], "the process stopped during 3 attempts in a row; not started again",
        "{view}"
    );
    assert_eq!(view["blocks"][0]["items"][1]["status"], "skipped", "{view}");
    assert_eq!(starts(&log, &id, "a"), 3, "not started a fourth time");
    let finished = server.stop("-TERM");
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());
}

#[tokio::test]
async fn the_token_can_come_from_the_environment_and_off_loopback_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = client();
    let server = start(&data, &log, Some("from-env"), &[]);
    let plan =
        json!({"name": "t", "blocks": [{"name": "b", "items": [{"id": "a", "kind": "sum"}]}]});
    let url = server.url("/executions");
    let denied = client.post(&url).json(&plan).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let allowed = client
        .post(&url)
        .bearer_auth("from-env")
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 201);
    let finished = server.stop("-TERM");
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());

    // Refused before anything is bound.
    let mut command = Command::new(support::example("server"));
    command
        .args(["--data", data.to_str().unwrap(), "--bind", "0.0.0.0:0"])
        .env_remove("TEND_BRIDGE_TOKEN");
    let finished = Process::spawn("the server off loopback", command).finish();
    assert!(!finished.status.success(), "{}", finished.describe());
    assert!(
        finished.stderr.contains("without a token"),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn a_refresh_survives_a_sigkill_between_the_upstream_done_and_the_dependent_start() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = client();
    let mut server = start(&data, &log, None, &[]);
    // One item at a time. Block `one`: `changes` does its work; `same` finds its goal
    // state held. Block `two`: `hold` takes the only slot and waits at a closed gate, so
    // `told` and `untold` (each after both, `notify`) have not started when the kill comes.
    let plan = json!({"name": "refresh", "parallelism": 1, "blocks": [
        {"name": "one", "items": [
            {"id": "changes", "kind": "sleep", "params": {"ms": 0}},
            {"id": "same", "kind": "sleep", "params": {"ms": 0, "satisfied": true}}
        ]},
        {"name": "two", "items": [
            {"id": "hold", "kind": "gate", "params": {"gate": "hold"}},
            {"id": "told", "kind": "sleep", "params": {"ms": 0},
             "after": ["changes", "same"], "notify": true},
            {"id": "untold", "kind": "sleep", "params": {"ms": 0},
             "after": ["changes", "same"], "notify": ["same"]}
        ]}
    ]});
    let id = server.submit(&client, &plan).await;
    let path = format!("/executions/{id}");
    let view = server
        .wait_for(&client, &path, "`hold` runs after block one", |v| {
            v["blocks"][1]["items"][0]["status"] == "running"
        })
        .await;
    let one = &view["blocks"][0]["items"];
    assert_eq!(one[0]["changed"], true, "{view}");
    assert_eq!(one[1]["changed"], false, "{view}");
    let two = &view["blocks"][1]["items"];
    assert_eq!(two[1]["status"], "pending", "{view}");
    assert_eq!(two[1]["refresh"], true, "{view}");
    assert_eq!(two[2]["refresh"], false, "{view}");

    let finished = server.stop("-KILL");
    assert_eq!(finished.status.code(), None, "{}", finished.describe());
    let mut server = start(&data, &log, None, &["--gate-open", "hold"]);
    let view = server
        .wait_for(&client, &path, "the resumed execution completes", |v| {
            v["status"] == "completed"
        })
        .await;
    let two = &view["blocks"][1]["items"];
    assert_eq!(two[1]["refresh"], false, "cleared by its success: {view}");
    let finished = server.stop("-TERM");
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // What the log says of `item`, in order: the first word of each of its lines.
    let of = |item: &str| -> Vec<&str> {
        let tail = format!(" {id} {item}");
        lines
            .iter()
            .filter_map(|l| l.strip_suffix(tail.as_str()))
            .collect()
    };
    assert_eq!(of("changes"), ["start", "done"], "{text}");
    assert_eq!(of("same"), ["satisfied"], "check skipped apply: {text}");
    assert_eq!(of("told"), ["start", "refresh", "done"], "{text}");
    assert_eq!(
        of("untold"),
        ["start", "done"],
        "`same` changed nothing: {text}"
    );
}

/// Issue 22, part 4: an idempotency key is durable with the execution's record, so an
/// application that submits the same work again after a SIGKILL (at startup, say) gets the
/// execution it already has, not a second one.
#[tokio::test]
async fn a_submit_with_an_idempotency_key_is_answered_with_the_same_execution_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = client();
    let server = start(&data, &log, None, &HELD);
    let plan = json!({"name": "at startup", "blocks": [{"name": "b", "items": [
        {"id": "a", "kind": "gate", "params": {"gate": "a", "steps": 20, "output": 4}}
    ]}]});
    let submit = |server: &Server| {
        client
            .post(server.url("/executions"))
            .header("Idempotency-Key", "startup-work")
            .json(&plan)
            .send()
    };
    let response = submit(&server).await.unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"].clone();
    let finished = server.stop("-KILL");
    assert_eq!(finished.status.code(), None, "{}", finished.describe());

    let mut server = start(&data, &log, None, &HELD);
    let response = submit(&server).await.unwrap();
    assert_eq!(response.status(), 200, "the key outlived the kill");
    assert_eq!(response.json::<Value>().await.unwrap()["id"], id);
    let list = server.get(&client, "/executions").await;
    assert_eq!(list["executions"].as_array().unwrap().len(), 1, "{list}");
    let finished = server.stop("-TERM");
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());
}

/// Issue 22, part 3: a cancel is durable before it is answered, so a SIGKILL before the
/// execution quiesced leaves it cancelled, not resumed.
#[tokio::test]
async fn a_cancel_asked_over_rest_holds_across_a_sigkill_before_it_quiesced() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = client();
    let (mut server, id) = held_at_step_two(&data, &log, &client).await;
    let path = format!("/executions/{id}");
    let cancel = server.url(&format!("{path}/cancel"));
    let body = json!({"strategy": "finish_current"});
    let response = client.post(&cancel).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<Value>().await.unwrap()["action"],
        "cancelling"
    );
    // `a` still holds at its gate: the cancel has not quiesced when the kill comes.
    let view = server.get(&client, &path).await;
    assert_eq!(view["status"], "running", "{view}");
    assert_eq!(view["halting"], "cancelling", "{view}");

    let finished = server.stop("-KILL");
    assert_eq!(finished.status.code(), None, "{}", finished.describe());
    let mut server = start(&data, &log, None, &["--gate-open", "a"]);
    let view = server.get(&client, &path).await;
    assert_eq!(view["status"], "cancelled", "cancelled for good: {view}");
    assert_eq!(starts(&log, &id, "a"), 1, "nothing ran again");
    let again = client
        .post(server.url(&format!("{path}/cancel")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let deleted = client.delete(server.url(&path)).send().await.unwrap();
    assert_eq!(deleted.status(), 204, "a cancelled execution is finished");
    let finished = server.stop("-TERM");
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());
}

#[tokio::test]
async fn a_pause_asked_over_rest_holds_across_a_sigkill_before_it_quiesced() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = client();
    let (mut server, id) = held_at_step_two(&data, &log, &client).await;
    let path = format!("/executions/{id}");
    let pause = server.url(&format!("{path}/pause"));
    let body = json!({"strategy": "finish_current"});
    let response = client.post(&pause).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap()["action"], "pausing");
    // `a` still holds at its gate: the pause has not quiesced when the kill comes.
    let view = server.get(&client, &path).await;
    assert_eq!(view["status"], "running", "{view}");

    let finished = server.stop("-KILL");
    assert_eq!(finished.status.code(), None, "{}", finished.describe());
    let mut server = start(&data, &log, None, &["--gate-open", "a"]);
    let view = server.get(&client, &path).await;
    assert_eq!(
        view["status"], "paused",
        "asked to pause, so not resumed: {view}"
    );
    assert_eq!(starts(&log, &id, "a"), 1, "nothing ran again");
    let pause = server.url(&format!("{path}/pause"));
    let again = client.post(&pause).json(&body).send().await.unwrap();
    assert_eq!(again.status(), 409);
    let error = again.json::<Value>().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("paused"),
        "{error}"
    );
    let health = server.get(&client, "/health").await;
    assert_eq!(
        health["status"], "ok",
        "a pause on request is no fault: {health}"
    );

    let resume = client
        .post(server.url(&format!("{path}/resume")))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resume.status(), 202);
    let view = server
        .wait_for(&client, &path, "the resumed execution completes", |v| {
            v["status"] == "completed"
        })
        .await;
    assert_eq!(view["blocks"][0]["items"][1]["output"], 5, "{view}");
    let finished = server.stop("-TERM");
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());
}

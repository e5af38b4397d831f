//! The example server's log, as an operator reads it: JSON lines on stderr with an access
//! log (a request id per request, 4xx not logged as errors, no query string), each
//! attempt's start and end with its duration, and an item's own `info!` inside a span
//! that names its execution, item and attempt.

#[path = "support/example.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Finished, PATIENCE, Process};

/// The JSON log lines of `stderr` (other lines, such as the server's own messages, are
/// skipped).
fn log_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("level").is_some())
        .collect()
}

/// The field `name` of the span `span` that `line` was logged in (its own span, or one of
/// the spans it is in), or else of the line itself.
fn field<'a>(line: &'a Value, span: &str, name: &str) -> Option<&'a Value> {
    let spans = line["spans"].as_array().into_iter().flatten();
    std::iter::once(&line["span"])
        .chain(spans)
        .filter(|s| s["name"] == span)
        .find_map(|s| s.get(name))
        .or_else(|| line["fields"].get(name))
}

/// What one run of the server logged: it runs a chain `x` -> `y` of two `sum` items
/// (submitted with request id `mine-7`), answers one 404, and is stopped by SIGTERM.
struct Run {
    finished: Finished,
    lines: Vec<Value>,
    /// The execution's id.
    id: String,
    /// The request id the bridge gave the 404.
    numbered: String,
}

/// Runs the server with JSON logs and `--log filter`, or with no filter given at all.
async fn run(filter: Option<&str>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(support::example("server"));
    command
        .args([
            "--data",
            dir.path().to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json"])
        .env_remove("RUST_LOG")
        .env_remove("TEND_BRIDGE_TOKEN")
        // Whatever the machine's free disk space: no low-disk events in the log or stream.
        .env("TEND_DISK_LOW_PERCENT", "0");
    if let Some(filter) = filter {
        command.args(["--log", filter]);
    }
    let mut server = Process::spawn("the server", command);
    let first = server.wait_for_line("the server prints its address", |l| Some(l.to_owned()));
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();

    let plan = json!({"name": "logged", "blocks": [{"name": "b", "items": [
        {"id": "x", "kind": "sum", "params": {"add": 2}},
        {"id": "y", "kind": "sum", "params": {"add": 3}, "after": ["x"]}
    ]}]});
    let created = client
        .post(format!("{base}/executions"))
        .json(&plan)
        .header("x-request-id", "mine-7")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        created.headers()["x-request-id"],
        "mine-7",
        "its own id, echoed"
    );
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let view: Value = client
            .get(format!("{base}/executions/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "never completed: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing = client
        .get(format!("{base}/executions/not-an-id?token=secret-in-query"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let numbered = missing.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        numbered.parse::<u64>().is_ok(),
        "a number of the bridge's: {numbered}"
    );

    // A runtime's refusal (an execution it does not know) is a 4xx, not an error.
    let unknown = client
        .post(format!(
            "{base}/executions/{}/interrupt",
            tend::ExecutionId::generate()
        ))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // A request id a log line could be confused by is not taken: the bridge numbers it.
    for unfit in ["1 status=200 path=/forged", &"a".repeat(65)] {
        let health = client
            .get(format!("{base}/health"))
            .header("x-request-id", unfit)
            .send()
            .await
            .unwrap();
        let given = health.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            given.parse::<u64>().is_ok(),
            "{unfit:?} answered as {given:?}"
        );
    }

    server.signal("-TERM");
    let finished = server.finish();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());
    assert!(
        !finished.stderr.contains("forged"),
        "an unfit request id stays out of the log\n{}",
        finished.describe()
    );
    assert!(
        !finished.stderr.contains("secret-in-query"),
        "the query string stays out of the log\n{}",
        finished.describe()
    );
    let lines = log_lines(&finished.stderr);
    Run {
        finished,
        lines,
        id,
        numbered,
    }
}

#[tokio::test]
async fn at_the_default_level_the_log_has_each_request_and_what_items_log_in_their_spans() {
    let Run {
        finished,
        lines,
        id,
        numbered,
    } = run(None).await;
    let describe = || finished.describe();

    // The access log: the submit's response, at info, in a span with its request id.
    let responses: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "finished processing request")
        .collect();
    let submit = responses
        .iter()
        .find(|l| field(l, "request", "request_id") == Some(&json!("mine-7")))
        .unwrap_or_else(|| panic!("no response logged for mine-7\n{}", describe()));
    assert_eq!(submit["level"], "INFO", "{submit}");
    assert_eq!(field(submit, "request", "method"), Some(&json!("POST")));
    assert_eq!(submit["fields"]["status"], 201, "{submit}");
    assert!(submit["fields"].get("latency").is_some(), "{submit}");
    // The 404: logged, with the bridge's number, and not as an error.
    let refused = responses
        .iter()
        .find(|l| field(l, "request", "request_id") == Some(&json!(numbered)))
        .unwrap_or_else(|| panic!("no response logged for the 404\n{}", describe()));
    assert_eq!(refused["fields"]["status"], 404, "{refused}");
    assert!(
        lines.iter().all(|l| l["level"] != "ERROR"),
        "nothing here is a server error\n{}",
        describe()
    );

    // The item's own `info!` (the demo `sum` logs its total), in the attempt's span.
    let summed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "summed" && l["fields"]["total"] == 5)
        .unwrap_or_else(|| panic!("no `summed` line for y\n{}", describe()));
    assert_eq!(summed["level"], "INFO", "{summed}");
    assert_eq!(field(summed, "attempt", "execution_id"), Some(&json!(id)));
    assert_eq!(field(summed, "attempt", "item_id"), Some(&json!("y")));
    assert_eq!(field(summed, "attempt", "attempt"), Some(&json!(1)));
}

#[tokio::test]
async fn at_debug_the_log_has_each_attempts_start_and_end_with_its_duration() {
    let Run {
        finished,
        lines,
        id,
        numbered: _,
    } = run(Some("info,tend_actors=debug")).await;
    let describe = || finished.describe();
    // Each attempt's start and end at debug, the end with its duration.
    for item in ["x", "y"] {
        let of_item = |message: &str| {
            lines.iter().find(|l| {
                l["fields"]["message"] == message
                    && field(l, "attempt", "item_id") == Some(&json!(item))
            })
        };
        let started = of_item("attempt started")
            .unwrap_or_else(|| panic!("no start of {item}\n{}", describe()));
        assert_eq!(started["level"], "DEBUG", "{started}");
        assert_eq!(field(started, "attempt", "execution_id"), Some(&json!(id)));
        let ended =
            of_item("attempt ended").unwrap_or_else(|| panic!("no end of {item}\n{}", describe()));
        assert_eq!(ended["level"], "DEBUG", "{ended}");
        assert_eq!(ended["fields"]["ended"], "done", "{ended}");
        assert!(ended["fields"].get("duration").is_some(), "{ended}");
    }
}

/// Starts the server on `data` with text logs at the default level and a health check
/// every 100 ms; returns it and its address.
fn start_text(data: &std::path::Path, extra: &[&str]) -> (Process, String) {
    let mut command = Command::new(support::example("server"));
    command
        .args(["--data", data.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .args(["--health-interval", "100ms"])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("TEND_BRIDGE_TOKEN")
        // Whatever the machine's free disk space: no low-disk events in the log or stream.
        .env("TEND_DISK_LOW_PERCENT", "0");
    let mut server = Process::spawn("the server", command);
    let first = server.wait_for_line("the server prints its address", |l| Some(l.to_owned()));
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (server, base)
}

/// Issue 22, part 10: the log as a person reads it in a file. No terminal colours when
/// stderr is not a terminal; the periodic health check, which says nothing new, at debug;
/// and a start after a clean shutdown says the shutdown checkpointed what it resumes, not
/// that an unclean stop left it running.
#[tokio::test]
async fn the_text_log_has_no_colours_no_periodic_noise_and_tells_a_clean_stop_from_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let (mut server, base) = start_text(dir.path(), &[]);
    let plan = json!({"name": "held", "blocks": [{"name": "b", "items": [
        {"id": "a", "kind": "gate", "params": {"gate": "hold", "steps": 1}}
    ]}]});
    let created = client
        .post(format!("{base}/executions"))
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Two health checks apart: at least one came on the interval.
    let checked_at = || async {
        let health: Value = client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        health["check"]["checked_at"].clone()
    };
    let first = checked_at().await;
    let deadline = Instant::now() + PATIENCE;
    while checked_at().await == first {
        assert!(Instant::now() < deadline, "no periodic health check came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal("-TERM");
    let stopped = server.finish();
    assert!(stopped.status.success(), "{}", stopped.describe());

    let (mut server, base) = start_text(dir.path(), &["--gate-open", "hold"]);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let view: Value = client
            .get(format!("{base}/executions/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "never resumed: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal("-TERM");
    let restarted = server.finish();
    assert!(restarted.status.success(), "{}", restarted.describe());

    for run in [&stopped, &restarted] {
        assert!(
            !run.stderr.contains('\u{1b}'),
            "no terminal escapes in a file: {}",
            run.describe()
        );
        assert!(
            !run.stderr.contains("health_check"),
            "the periodic health check is not logged at info: {}",
            run.describe()
        );
        assert!(
            run.stderr.contains("node_startup_completed"),
            "lifecycle events still are: {}",
            run.describe()
        );
    }
    assert!(
        restarted
            .stderr
            .contains("resuming the executions the last shutdown checkpointed while they ran"),
        "{}",
        restarted.describe()
    );
    assert!(
        !restarted.stderr.contains("unclean"),
        "a clean shutdown is no unclean stop: {}",
        restarted.describe()
    );
}

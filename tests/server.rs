//! The example server as a real child process: it prints its address, serves the bridge,
//! shuts down gracefully on SIGTERM, and a restart on the same directory resumes over REST.

#[path = "support/example.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

struct Server {
    child: Child,
    base: String,
}

fn start(data: &Path, log: &Path, env_token: Option<&str>) -> Server {
    let mut command = Command::new(support::example("server"));
    command
        .args(["--data", data.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .args(["--applied-log", log.to_str().unwrap()])
        .env_remove("TEND_BRIDGE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(token) = env_token {
        command.env("TEND_BRIDGE_TOKEN", token);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, base }
}

impl Server {
    fn stop(mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn get(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

async fn wait_for(client: &reqwest::Client, url: String, pred: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let view = get(client, url.clone()).await;
            if pred(&view) {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("timed out")
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_and_a_restart_resumes_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();

    let server = start(&data, &log, None);
    let plan = json!({"name": "over-rest", "blocks": [{"name": "b", "items": [
        {"id": "a", "kind": "sleep", "params": {"ms": 2000, "steps": 20, "output": 4}},
        {"id": "b", "kind": "sum", "params": {"add": 1}, "after": ["a"]}
    ]}]});
    let response = client
        .post(format!("{}/executions", server.base))
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&client, format!("{}/executions/{id}", server.base), |v| {
        v["blocks"][0]["items"][0]["progress"]["done"].as_u64() >= Some(2)
    })
    .await;
    let status = server.stop("-TERM");
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");

    let server = start(&data, &log, None);
    let list = get(&client, format!("{}/executions", server.base)).await;
    assert_eq!(list["executions"][0]["id"], id.as_str());
    assert_eq!(list["executions"][0]["status"], "interrupted");
    let response = client
        .post(format!("{}/executions/{id}/resume", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let view = wait_for(&client, format!("{}/executions/{id}", server.base), |v| {
        v["status"] == "completed"
    })
    .await;
    assert_eq!(view["blocks"][0]["items"][1]["output"], 5);
    assert_eq!(server.stop("-INT").code(), Some(0));

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

#[tokio::test]
async fn the_token_can_come_from_the_environment_and_off_loopback_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let server = start(&data, &log, Some("from-env"));
    let plan =
        json!({"name": "t", "blocks": [{"name": "b", "items": [{"id": "a", "kind": "sum"}]}]});
    let url = format!("{}/executions", server.base);
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
    assert_eq!(server.stop("-TERM").code(), Some(0));

    // Refused before anything is bound.
    let output = Command::new(support::example("server"))
        .args(["--data", data.to_str().unwrap(), "--bind", "0.0.0.0:0"])
        .env_remove("TEND_BRIDGE_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");
}

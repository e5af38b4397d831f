//! The OpenAPI document is one that client generators accept, and a client generated from
//! it drives an operator's session against a real bridge on loopback:
//!
//! - openapi-spec-validator finds it valid OpenAPI 3.1, with a token and without;
//! - openapi-python-client generates a client from the served document without a warning,
//!   and `tests/openapi_client/session.py` drives a session through it (submit, list
//!   through every page, each interrupt strategy, pause, resume, retry, delete,
//!   maintenance, sweep, health, the 4xx answers), validating every request and response
//!   against the document with openapi-core.
//!
//! The tools are pinned in `tests/openapi_client/requirements.txt`; `scripts/test.sh`
//! installs them into a venv at `target/openapi-client`. Where it is not installed the
//! tests say SKIPPED and why.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use served::Served;

/// The longest a generator or a session may run before it is killed.
const BOUND: Duration = Duration::from_secs(240);

/// The venv's `bin`, if the tools are installed.
fn tools() -> Option<PathBuf> {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/openapi-client/bin");
    ["python", "openapi-python-client", "openapi-spec-validator"]
        .iter()
        .all(|tool| bin.join(tool).exists())
        .then_some(bin)
}

fn skip() {
    println!(
        "SKIPPED: the OpenAPI client tools are not installed in target/openapi-client (scripts/test.sh installs them with pip from tests/openapi_client/requirements.txt)"
    );
}

/// `PATH` with the venv's `bin` first (the generator runs `ruff` from it).
fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// Kills process `pid` after `BOUND` unless `done` is dropped first.
fn watchdog(pid: u32) -> std::sync::mpsc::Sender<()> {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(BOUND) {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    done
}

/// Runs `command` to its end (bounded), returning whether it succeeded and what it printed.
async fn run(mut command: Command) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tool starts");
        let _watchdog = watchdog(child.id());
        let output = child.wait_with_output().expect("the tool's output");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_with_a_token_and_without() {
    let Some(bin) = tools() else {
        return skip();
    };
    let dir = tempfile::tempdir().unwrap();
    for token in [None, Some("s3cret")] {
        let s = Served::start(None, None, token).await;
        let (status, doc) = s.get("/openapi.json").await;
        assert_eq!(status, 200);
        assert_eq!(doc["openapi"], "3.1.0");
        let file = dir.path().join("openapi.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        let mut command = Command::new(bin.join("openapi-spec-validator"));
        command.arg(&file);
        let (ok, text) = run(command).await;
        assert!(ok && text.contains("OK"), "token {token:?}: {text}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_drives_an_operators_session() {
    let Some(bin) = tools() else {
        return skip();
    };
    let token = "s3cret";
    let s = Served::start(None, None, Some(token)).await;
    let dir = tempfile::tempdir().unwrap();

    // Generated as a user would: from the served document, failing on any warning.
    let mut generate = Command::new(bin.join("openapi-python-client"));
    generate
        .current_dir(dir.path())
        .args(["generate", "--url", &s.url("/openapi.json")])
        .args(["--meta", "none", "--fail-on-warning"])
        .env("PATH", path_with(&bin));
    let (ok, text) = run(generate).await;
    assert!(
        ok && !text.to_lowercase().contains("warning"),
        "openapi-python-client: {text}"
    );
    let package = dir.path().join("tend_debug_bridge_client");
    assert!(package.join("client.py").exists(), "{text}");

    // The session, opening gates when it asks.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openapi_client/session.py");
    let mut session = Command::new(bin.join("python"));
    session
        .arg(script)
        .env("PYTHONPATH", dir.path())
        .env("TEND_BASE", &s.base)
        .env("TEND_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let gates = s.gates.clone();
    let (ok, lines, errors) = tokio::task::spawn_blocking(move || {
        let mut child = session.spawn().expect("python starts");
        let _watchdog = watchdog(child.id());
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let Ok(line) = line else { break };
            if let Ok(asked) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(gate) = asked["open"].as_str()
            {
                gates.open(gate);
                // The session may have ended meanwhile: its own error then says why.
                let _ = writeln!(stdin, "opened").and_then(|()| stdin.flush());
            }
            lines.push(line);
        }
        let status = child.wait().expect("python ends");
        (status.success(), lines, errors.join().unwrap_or_default())
    })
    .await
    .unwrap();
    let said = lines.join("\n");
    assert!(ok, "the session failed:\n{said}\n{errors}");
    let done: serde_json::Value = lines
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    println!("{said}");
    let requests = done["done"]["requests"].as_u64().unwrap_or(0);
    assert!(
        requests >= 60 && done["done"]["validated"] == requests,
        "the session's last line: {said}\n{errors}"
    );
    s.stop().await;
}

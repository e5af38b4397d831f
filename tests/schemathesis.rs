//! The OpenAPI document matches what the bridge serves: schemathesis (installed by
//! `scripts/test.sh` into `target/schemathesis`) generates requests for every operation,
//! with and without a token, and checks every answer: no server error, every status and
//! body as documented, a request the document refuses refused (negative data), a request
//! it takes not refused (positive data), a wrong method answered 405, a wrong or missing
//! token refused. Its stateful phase follows the document's links from `POST /executions`
//! with the ids of executions it created.
//!
//! A plan the schema takes must also name kinds the runtime has and ids its items know:
//! `tests/schemathesis/hooks.py` makes each plan generated as valid runnable in just those
//! respects, so the positive check holds the rest of the plan's schema to the server.
//!
//! Where schemathesis is not installed, the test says SKIPPED and why.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use served::Served;

fn st() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/st");
    path.exists().then_some(path)
}

/// Runs schemathesis against `base` (bounded in time) and fails the test with its
/// output unless it finds nothing.
async fn run(st: PathBuf, base: String, token: Option<&'static str>) {
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(st);
        command
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args([
                "--max-examples",
                "15",
                "--seed",
                "20261202",
                "--workers",
                "1",
            ])
            // It would stop the server under test; tests/bridge_lifecycle.rs covers it.
            .args(["--exclude-path", "/shutdown"])
            .args(["--no-color"])
            .env("SCHEMATHESIS_HOOKS", "hooks")
            .env(
                "PYTHONPATH",
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = token {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        let child = command.spawn().expect("schemathesis starts");
        // Bounded: a hung run is killed, and the test fails with what it printed.
        let id = child.id();
        let watchdog = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(300));
            let pid = nix::unistd::Pid::from_raw(id as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        });
        let output = child.wait_with_output().expect("schemathesis output");
        drop(watchdog);
        output
    })
    .await
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems (token {token:?}):\n{text}"
    );
    assert!(text.contains("passed"), "{text}");
    // The stateful phase ran, following links with the ids POST /executions answered.
    assert!(text.contains("✅ Stateful"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_matches_what_is_served() {
    let Some(st) = st() else {
        println!(
            "SKIPPED: schemathesis is not installed in target/schemathesis (scripts/test.sh installs it with pip)"
        );
        return;
    };
    let open = Served::start(None, None, None).await;
    run(st.clone(), open.base.clone(), None).await;
    open.stop().await;
    let guarded = Served::start(None, None, Some("s3cret")).await;
    run(st, guarded.base.clone(), Some("s3cret")).await;
    guarded.stop().await;
}

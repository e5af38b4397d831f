//! Example binaries as child processes: built once per test process, run with their output
//! captured, waited for with a bound, and killed if a test fails while they run.
#![allow(dead_code, unreachable_pub)]

#[path = "backend.rs"]
pub mod backend;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every wait on a child process gives up after this long: far more than any run needs, so
/// only a broken example (or a hung one) reaches it, and the failure says what it saw.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

/// How much of a captured stream a failure message shows.
const TAIL_BYTES: usize = 2000;

/// The path of example `name`, freshly built. `cargo test` builds examples too, but
/// `cargo test --test x` does not, and a stale binary from an earlier build would test old
/// code; `cargo build` is a quick no-op when it is up to date.
///
/// The test binary is `<target>/<profile>/deps/<test>-<hash>`, so the example is built
/// into that same `<target>` with that same profile and found in
/// `<target>/<profile>/examples/<name>`, whichever profile and target dir `cargo test` used.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in <target>/<profile>/deps");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory lives in a target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected profile directory {}", profile_dir.display()),
    };
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "--example", name, "--profile", profile]);
    // The example with the features this test was built with.
    if cfg!(feature = "postgres") {
        build.args(["--features", "postgres"]);
    }
    let status = build
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building the {name} example failed");
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    built.insert(name.to_owned(), path.clone());
    path
}

/// A running child process whose stdout and stderr are captured as they come. Dropped
/// while it runs (a test failed), it is killed and reaped.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    stdout: Captured,
    stderr: Captured,
    readers: Vec<JoinHandle<()>>,
    /// Set once the child has exited and been reaped.
    status: Option<ExitStatus>,
}

/// Everything a child wrote to one stream so far.
type Captured = Arc<Mutex<String>>;

/// How a child process ended, and all it wrote.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Both streams, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "exit: {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

fn capture(stream: impl Read + Send + 'static, into: Captured) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => into
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&String::from_utf8_lossy(&line)),
            }
        }
    })
}

fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

impl Process {
    /// Spawns `command` with stdin closed and stdout and stderr captured; `name` is what
    /// failure messages call it.
    pub fn spawn(name: &str, mut command: Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        let (stdout, stderr) = (Captured::default(), Captured::default());
        let readers = vec![
            capture(child.stdout.take().expect("piped stdout"), stdout.clone()),
            capture(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Process {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
            readers,
            status: None,
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the child wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Its state and the tails of both streams, for failure messages.
    pub fn describe(&mut self) -> String {
        let state = match self.try_status() {
            Some(status) => format!("exited: {status}"),
            None => "still running".to_owned(),
        };
        format!(
            "{} ({state})\nstdout:\n{}\nstderr:\n{}",
            self.name,
            tail(&self.stdout()),
            tail(&self.stderr())
        )
    }

    /// The exit status if the child has exited, reaping it.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.name));
        }
        self.status
    }

    /// Sends signal `name` (as `kill` spells it: `-TERM`, `-INT`) to the child, which must
    /// still be running.
    pub fn signal(&mut self, name: &str) {
        assert!(
            self.try_status().is_none(),
            "{name} for a process that already exited: {}",
            self.describe()
        );
        use nix::sys::signal::{Signal, kill};
        let signal = match name {
            "-TERM" => Signal::SIGTERM,
            "-INT" => Signal::SIGINT,
            "-KILL" => Signal::SIGKILL,
            "-HUP" => Signal::SIGHUP,
            other => panic!("unknown signal {other}"),
        };
        let pid = nix::unistd::Pid::from_raw(self.id() as i32);
        kill(pid, signal).unwrap_or_else(|e| panic!("kill {name} {}: {e}", self.id()));
    }

    /// SIGKILL: the child gets no chance to do anything on the way out.
    pub fn kill(&mut self) {
        assert!(
            self.try_status().is_none(),
            "SIGKILL for a process that already exited: {}",
            self.describe()
        );
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("killing {}: {e}", self.name));
    }

    /// Polls `probe` until it answers `Ok`. Fails the test if the child exits first or
    /// after PATIENCE, with what the probe saw last (its `Err`) and the child's output.
    pub fn wait_until<T>(
        &mut self,
        what: &str,
        mut probe: impl FnMut(&Self) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = match probe(self) {
                Ok(value) => return value,
                Err(seen) => seen,
            };
            if self.try_status().is_some() {
                // It may have done what we wait for just before exiting.
                if let Ok(value) = probe(self) {
                    return value;
                }
                panic!(
                    "exited before {what}; last seen: {seen}\n{}",
                    self.describe()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {PATIENCE:?} waiting until {what}; last seen: {seen}\n{}",
                    self.describe()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until a line the child wrote to stdout maps to `Some` under `find`, and returns
    /// that.
    pub fn wait_for_line<T>(&mut self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        self.wait_until(what, |process| {
            let stdout = process.stdout();
            // Only whole lines: the last one may still be half written.
            let whole = stdout.rsplit_once('\n').map_or("", |(whole, _)| whole);
            whole
                .lines()
                .find_map(&find)
                .ok_or_else(|| format!("stdout {:?}", tail(&stdout)))
        })
    }

    /// Waits (up to PATIENCE) for the child to exit and for its streams to close, and
    /// returns how it ended and all it wrote.
    pub fn finish(mut self) -> Finished {
        let status = self.wait_until("it exits", |process| {
            process.status.ok_or_else(|| "still running".to_owned())
        });
        // The streams close when the child exits, unless a grandchild holds them; the
        // examples start none, so the readers end promptly.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // No panics here: this runs while a failed test unwinds.
        if self.status.is_none() && !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

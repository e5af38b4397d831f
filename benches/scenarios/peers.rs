//! Durable no-op jobs per second: tend (one execution of that many no-op items on a redb
//! file) against peer job queues on SQLite files, each peer a child process built from
//! `benches/peers/` (apalis) and `benches/peers/effectum/` (a workspace of its own).
//! tend's runs and the peer's take turns.
//!
//! A peer that cannot be built (no network for its crates, say) or that fails is a JSON
//! line with `skipped` saying why; the bench goes on.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::figure::{Figure, Goal, median};
use crate::{Sizes, baseline_first, builder, noop_plan, run_plan};

/// One peer: how to build it and run it.
struct Peer {
    /// The figure's name.
    figure: &'static str,
    /// The baseline's description.
    label: &'static str,
    /// The manifest to build, from the workspace root.
    manifest: &'static str,
    /// `-p` for a workspace member.
    package: Option<&'static str>,
    binary: &'static str,
    /// Arguments before `--jobs N --dir D`.
    args: &'static [&'static str],
}

static PEERS: [Peer; 2] = [
    Peer {
        figure: "durable_noop_jobs_vs_apalis_sqlite_ratio",
        label: "apalis 1.0 with apalis-sqlite 1.0 (SQLite file, WAL, synchronous=FULL), jobs/s",
        manifest: "Cargo.toml",
        package: Some("tend-peers"),
        binary: "tend-peers",
        args: &["apalis"],
    },
    Peer {
        figure: "durable_noop_jobs_vs_effectum_ratio",
        label: "effectum 0.7 (SQLite file, its own settings), jobs/s",
        manifest: "benches/peers/effectum/Cargo.toml",
        package: None,
        binary: "tend-peers-effectum",
        args: &[],
    },
];

/// What a peer's binary prints.
#[derive(Debug, Deserialize)]
struct PeerRun {
    jobs_per_s: f64,
    settings: String,
}

/// The target dir this bench was built in: `CARGO_TARGET_DIR`, else the one holding
/// `.../release/deps/scenarios-*`.
fn target_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no target dir above {}", exe.display()))
}

/// Builds `peer` in release mode in this bench's target dir; its binary's path.
fn build(peer: &Peer) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = target_dir()?;
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root.join(peer.manifest))
        .arg("--target-dir")
        .arg(&target);
    if let Some(package) = peer.package {
        command.args(["-p", package]);
    }
    let output = command
        .output()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "cargo build of {} failed ({}): {}",
            peer.binary,
            output.status,
            tail.join(" | ")
        ));
    }
    Ok(target.join("release").join(peer.binary))
}

/// One run of the peer's binary on a fresh temp dir.
fn run_peer(binary: &Path, peer: &Peer, jobs: usize) -> Result<PeerRun, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a temp dir: {e}"))?;
    let output = Command::new(binary)
        .args(peer.args)
        .args(["--jobs", &jobs.to_string(), "--dir"])
        .arg(dir.path())
        .output()
        .map_err(|e| format!("could not run {}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            peer.binary,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("{} printed {line:?}: {e}", peer.binary))
}

pub(crate) async fn run(sizes: &Sizes) {
    eprintln!("peers:");
    for peer in &PEERS {
        if sizes.jobs == 0 {
            Figure::skipped(
                peer.figure,
                "jobs/s",
                peer.label,
                Goal::AtLeast(100.0),
                "not in a smoke run",
            )
            .print();
            continue;
        }
        match measure(peer, sizes).await {
            Ok(figure) => figure.print(),
            Err(why) => Figure::skipped(
                peer.figure,
                "jobs/s",
                peer.label,
                Goal::AtLeast(100.0),
                &why,
            )
            .print(),
        }
    }
}

async fn measure(peer: &'static Peer, sizes: &Sizes) -> Result<Figure, String> {
    let jobs = sizes.jobs;
    eprintln!("  building {} ...", peer.binary);
    let binary = tokio::task::spawn_blocking(move || build(peer))
        .await
        .map_err(|e| format!("the build task: {e}"))??;
    let dir = tempfile::tempdir().map_err(|e| format!("a temp dir: {e}"))?;
    let runtime = builder(Some(dir.path()))
        .start()
        .await
        .map_err(|e| format!("tend's runtime: {e}"))?;
    let plan = noop_plan(jobs);
    run_plan(&runtime, plan.clone(), jobs).await;
    let (mut tend, mut base) = (Vec::new(), Vec::new());
    let mut settings = String::new();
    for round in 0..sizes.rounds {
        for baseline in [baseline_first(round), !baseline_first(round)] {
            if baseline {
                let binary = binary.clone();
                let ran = tokio::task::spawn_blocking(move || run_peer(&binary, peer, jobs))
                    .await
                    .map_err(|e| format!("the peer's task: {e}"))??;
                base.push(ran.jobs_per_s);
                settings = ran.settings;
            } else {
                let took = run_plan(&runtime, plan.clone(), jobs).await;
                tend.push(jobs as f64 / took.as_secs_f64());
            }
        }
    }
    runtime
        .shutdown()
        .await
        .map_err(|e| format!("tend's shutdown: {e}"))?;
    eprintln!("  ({}: {settings})", peer.binary);
    Ok(Figure::against(
        peer.figure,
        "jobs/s",
        median(&tend),
        &format!("{} ({jobs} jobs a run)", peer.label),
        median(&base),
        Goal::AtLeast(100.0),
    ))
}

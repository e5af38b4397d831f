//! A full disk, for real: the store lives on a small tmpfs that the test fills. A commit
//! that cannot be written fails every waiter of its batch and acknowledges nothing; the
//! execution it belonged to stops `interrupted` and says why; `GET /health` answers
//! `degraded` with the reason; the rest keeps being served. Once there is room again the
//! store is usable without a restart and the execution resumes to the end.
//!
//! Mounting needs root (CAP_SYS_ADMIN); where the mount fails the test prints why and
//! passes without running.

#[path = "support/bridge.rs"]
mod bridge;
#[path = "support/helpers.rs"]
mod helpers;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use bridge::Served;
use helpers::*;
use serde_json::json;
use tend::demo::Gate;
use tend::{Block, ExecutionStatus, ItemSpec, ItemStatus, Plan};

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tend-test"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            path: path.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes `path` until the filesystem is full; returns how many bytes went in.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
                break;
            }
        }
    }
    // Whatever is left below a page.
    let _ = file.write_all(&[0u8; 512]);
    written
}

#[tokio::test]
async fn a_full_disk_fails_the_commit_says_so_and_the_store_recovers() {
    let scratch = tempfile::tempdir().unwrap();
    let mount = scratch.path().join("disk");
    let _tmpfs = match Tmpfs::mount(&mount, "24m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!(
                "SKIPPED a_full_disk_fails_the_commit_says_so_and_the_store_recovers: {reason}"
            );
            return;
        }
    };
    let data = mount.join("data");
    let served = Served::start(Some(&data), None, None).await;
    let rt = served.runtime.clone();

    // An execution that finishes while there is room.
    let before = rt
        .submit(Plan::new("before").block(Block::new("b").item(sum("one", 1))))
        .await
        .unwrap();
    assert!(outcome(&rt, before).await.is_completed());

    // One held at a gate; its output (2 MiB) needs new pages when it is recorded.
    let big = "x".repeat(2 * 1024 * 1024);
    let held = ItemSpec::new("held", &Gate::new("g").output(json!(big))).unwrap();
    let plan = Plan::new("filled").block(
        Block::new("b")
            .item(held)
            .item(sleep("after", 0, 1).after(["held"])),
    );
    let id = rt.submit(plan).await.unwrap();
    eventually("`held` waiting at its gate", || async {
        match served.gates.waiting("g") {
            1 => Ok(()),
            n => Err(format!("{n} waiting")),
        }
    })
    .await;

    let filler = mount.join("filler");
    assert!(fill(&filler) > 0);
    served.gates.open("g");

    // Its Done record could not be written: nothing claims it is done.
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Interrupted, "{outcome:?}");
    let report = rt.status(id).await.unwrap();
    let held = report.item("held").unwrap();
    assert_ne!(held.status, ItemStatus::Done);
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("store write failed") && reason.contains("No space left on device"),
        "reason: {reason}"
    );
    let listed = rt.list().await.unwrap();
    let summary = listed.iter().find(|e| e.id == id).unwrap();
    assert_eq!(summary.error.as_deref(), Some(reason.as_str()));

    let (code, health) = served.get("/health").await;
    assert_eq!(code, 200);
    assert_eq!(health["status"], "degraded", "{health}");
    let reasons = health["reasons"].to_string();
    assert!(
        reasons.contains("1 execution(s) stopped by a failed store write"),
        "{health}"
    );

    // The rest is still served while the disk is full.
    let (code, listing) = served.get("/executions").await;
    assert_eq!(code, 200, "{listing}");
    assert_eq!(
        rt.status(before).await.unwrap().status,
        ExecutionStatus::Completed
    );

    // Room again: the store works without a restart, and the execution runs to the end.
    std::fs::remove_file(&filler).unwrap();
    rt.resume(id).await.unwrap();
    let outcome = helpers::outcome(&rt, id).await;
    assert!(outcome.is_completed(), "{outcome:?}");
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("held").unwrap().attempts, 2);
    assert_eq!(report.reason, None);
    let (_, health) = served.get("/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    drop(rt);
    served.stop().await;

    // And what was acknowledged is there after a restart.
    let served = Served::start(Some(&data), None, None).await;
    let report = served.runtime.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Completed);
    let output = report
        .item("held")
        .unwrap()
        .output
        .clone()
        .unwrap_or_default();
    assert!(
        output.len() > 2 * 1024 * 1024,
        "output of {} bytes",
        output.len()
    );
    served.stop().await;
}

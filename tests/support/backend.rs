//! Which store the tests' runtimes and servers use: redb (a file in the test's directory,
//! or memory) unless `TEND_TEST_BACKEND=postgres`, then the PostgreSQL server of
//! `TEND_TEST_POSTGRES_URL`, in a schema named after the test's directory (so a restart on
//! the same directory finds the same executions) or a fresh one. `scripts/test.sh` runs the
//! suites that matter once per backend.
#![allow(dead_code, unreachable_pub)]

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The PostgreSQL URL to run on, when the tests are asked to (`TEND_TEST_BACKEND=postgres`).
/// Asked to without a server, or without the `postgres` feature, the test fails: it must
/// not pass on redb while claiming PostgreSQL.
pub fn postgres() -> Option<String> {
    match std::env::var("TEND_TEST_BACKEND").as_deref() {
        Ok("postgres") => {}
        Ok("redb") | Err(_) => return None,
        Ok(other) => panic!("TEND_TEST_BACKEND={other}: not a backend (redb or postgres)"),
    }
    if !cfg!(feature = "postgres") {
        panic!("TEND_TEST_BACKEND=postgres needs the tests built with --features postgres");
    }
    match std::env::var("TEND_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!("TEND_TEST_BACKEND=postgres but TEND_TEST_POSTGRES_URL is unset"),
    }
}

/// The schema of the test's directory `dir` (the same for the same directory), or a fresh
/// one for a test without a directory.
pub fn schema(dir: Option<&Path>) -> String {
    match dir {
        Some(dir) => {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            dir.hash(&mut hasher);
            format!("t{:016x}", hasher.finish())
        }
        None => {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            format!(
                "m_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            )
        }
    }
}

/// The example server's flags for where it checkpoints: `--data DIR`, or the PostgreSQL
/// database and the schema of `dir`.
pub fn server_store_args(dir: &Path) -> Vec<String> {
    match postgres() {
        Some(url) => vec![
            "--postgres".to_owned(),
            url,
            "--postgres-schema".to_owned(),
            schema(Some(dir)),
        ],
        None => vec![
            "--data".to_owned(),
            dir.to_str().expect("a UTF-8 path").to_owned(),
        ],
    }
}

//! [`CommitHealth`]: what went wrong with a backend's last commit, until one succeeds: what
//! `Backend::failure` answers, kept the same way by every backend.

use std::sync::Mutex;
use std::time::SystemTime;

use crate::store::StoreFailure;

/// A backend's commit failures in a row, and the last one's reason.
#[derive(Debug, Default)]
pub(crate) struct CommitHealth {
    failure: Mutex<Option<StoreFailure>>,
}

impl CommitHealth {
    /// A commit failed with `reason`.
    pub(crate) fn failed(&self, reason: &str) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        match failure.as_mut() {
            Some(f) => {
                f.reason = reason.to_owned();
                f.failed_commits += 1;
            }
            None => {
                *failure = Some(StoreFailure {
                    since: SystemTime::now(),
                    reason: reason.to_owned(),
                    failed_commits: 1,
                });
            }
        }
    }

    /// A commit succeeded: the store is healthy.
    pub(crate) fn succeeded(&self) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The last commit's failure, unless a commit has succeeded since.
    pub(crate) fn failure(&self) -> Option<StoreFailure> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

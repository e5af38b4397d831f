//! What an item is after a crash: the one rule the store's load, the runtime's resume and
//! the simulation all read records back by.
//!
//! Two steps. [`merge_started`]: an item's durable record, and the attempt that had started
//! and that the record does not show yet (the process stopped under it), read as the item's
//! record: that attempt, running. [`resumed`]: a record read back becomes the state the core
//! starts from: done, failed and skipped stay settled, anything else runs again (as
//! interrupted once it has started or has a checkpoint), and an attempt that was running
//! counts a crash.

use crate::model::{ItemState, ItemStatus, Progress, Started};

/// An item's record as a restart reads it: `record` as durable, and `started`, the attempt
/// that had started, if any. A started attempt newer than the record reads as that attempt
/// running, with nothing of the record's output or error; an older one is already in the
/// record and changes nothing.
pub fn merge_started(record: Option<ItemState>, started: Option<Started>) -> Option<ItemState> {
    match started {
        Some(started) if record.as_ref().is_none_or(|r| r.attempts < started.attempt) => {
            let record = record.unwrap_or_default();
            Some(ItemState {
                status: ItemStatus::Running,
                attempts: started.attempt,
                crashes: started.crashes,
                output: None,
                error: None,
                ..record
            })
        }
        _ => record,
    }
}

/// The state an item resumes from, given its record as read back (after
/// [`merge_started`]), whether a checkpoint of it is stored, and the progress to show.
///
/// A record that still says `running` is an attempt the process stopped under: it counts a
/// crash, and once `crash_limit` of those come in a row (0: never) the item is failed
/// instead of started again, so an item that takes the whole process down cannot do so
/// forever. It may have applied: its next success counts as a change.
pub fn resumed(
    record: Option<ItemState>,
    checkpointed: bool,
    progress: Option<Progress>,
    crash_limit: u32,
) -> ItemState {
    let record = record.unwrap_or_default();
    let was_running = record.status == ItemStatus::Running;
    let crashes = if was_running {
        record.crashes.saturating_add(1)
    } else {
        record.crashes
    };
    let mut error = record.error;
    let status = match record.status {
        s @ (ItemStatus::Done | ItemStatus::Failed | ItemStatus::Skipped) => s,
        ItemStatus::Running if crash_limit > 0 && crashes >= crash_limit => {
            error = Some(format!(
                "the process stopped during {crashes} attempts in a row; not started again"
            ));
            ItemStatus::Failed
        }
        _ if checkpointed || record.attempts > 0 => ItemStatus::Interrupted,
        _ => ItemStatus::Pending,
    };
    ItemState {
        status,
        crashes,
        progress,
        error,
        maybe_changed: record.maybe_changed || was_running,
        started_ms: None,
        ..record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(attempts: u32) -> ItemState {
        ItemState {
            status: ItemStatus::Done,
            attempts,
            output: Some(vec![1u8].into()),
            ..ItemState::default()
        }
    }

    #[test]
    fn a_started_attempt_newer_than_the_record_reads_as_running() {
        let started = Started {
            attempt: 3,
            crashes: 1,
        };
        let merged = merge_started(Some(done(2)), Some(started)).unwrap();
        assert_eq!(merged.status, ItemStatus::Running);
        assert_eq!(merged.attempts, 3);
        assert_eq!(merged.crashes, 1);
        assert_eq!(merged.output, None);
        // Already in the record: nothing changes.
        let kept = merge_started(Some(done(3)), Some(started)).unwrap();
        assert_eq!(kept, done(3));
        // No record: the attempt alone.
        let alone = merge_started(None, Some(started)).unwrap();
        assert_eq!((alone.status, alone.attempts), (ItemStatus::Running, 3));
        assert_eq!(merge_started(None, None), None);
    }

    #[test]
    fn a_running_record_resumes_interrupted_with_a_crash_until_the_limit() {
        let running = ItemState {
            status: ItemStatus::Running,
            attempts: 2,
            crashes: 1,
            ..ItemState::default()
        };
        let once = resumed(Some(running.clone()), false, None, 3);
        assert_eq!(once.status, ItemStatus::Interrupted);
        assert_eq!(once.crashes, 2);
        assert!(once.maybe_changed);
        let failed = resumed(Some(running), false, None, 2);
        assert_eq!(failed.status, ItemStatus::Failed);
        assert!(failed.error.unwrap().contains("2 attempts in a row"));
        assert_eq!(
            resumed(Some(done(1)), true, None, 1).status,
            ItemStatus::Done
        );
        assert_eq!(resumed(None, true, None, 1).status, ItemStatus::Interrupted);
        assert_eq!(resumed(None, false, None, 1).status, ItemStatus::Pending);
    }
}

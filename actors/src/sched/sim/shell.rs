//! The simulation's shell: it performs the core's effects as the Execution actor would,
//! checking each (commit ids, decisions within an interrupt's allowance, cancels and
//! aborts of running attempts only, nothing published before it is durable).

use super::{Sim, Write};
use crate::model::ItemStatus;
use crate::sched::run::{Effect, Publish};

impl Sim {
    /// Performs the core's effects as a shell would, checking each.
    pub(super) fn drain(&mut self) -> Result<(), String> {
        if let Some(why) = self.violation.take() {
            return Err(why);
        }
        while let Some(effect) = self.run.poll_effect() {
            self.note(format!("  -> {effect:?}"));
            match effect {
                Effect::Commit { id, writes } => {
                    if let Some((last, _)) = self.pending.back() {
                        check!(id > *last, "commit ids go up: {id} after {last}");
                    }
                    for write in &writes {
                        if let Write::Started { index, .. } = write {
                            self.decided += 1;
                            self.decided_at(*index)?;
                        }
                    }
                    if let Some(cap) = self.cap {
                        check!(
                            self.decided <= cap,
                            "{} attempts decided, the interrupt allows {cap}",
                            self.decided
                        );
                    }
                    self.pending.push_back((id, writes));
                }
                Effect::Start {
                    index,
                    attempt,
                    resume,
                } => self.started(index, attempt, resume)?,
                Effect::Acquire { index, ticket } => self.acquire(index, ticket)?,
                Effect::Release { index, ticket } => self.release(index, ticket)?,
                Effect::Take { index } => self.take(index)?,
                Effect::Cancel { index, attempt } => {
                    let running = self.running.get_mut(&index);
                    check!(
                        running.as_ref().is_some_and(|r| r.attempt == attempt),
                        "cancel of {index}/{attempt}, which is not running"
                    );
                    if let Some(r) = running {
                        r.cancelled = true;
                    }
                }
                Effect::Abort { index, attempt } => {
                    let running = self.running.get_mut(&index);
                    check!(
                        running
                            .as_ref()
                            .is_some_and(|r| r.attempt == attempt && r.cancelled),
                        "abort of {index}/{attempt}, which is not running and cancelled"
                    );
                    if let Some(r) = running {
                        r.aborted = true;
                    }
                }
                Effect::Publish(Publish::Item { index, status }) => {
                    if matches!(status, ItemStatus::Done | ItemStatus::Failed) {
                        check!(
                            self.durable.status(index) == Some(status),
                            "item {index} published {status} before its record was durable"
                        );
                    }
                }
                Effect::Publish(Publish::Progress { .. }) => {}
                Effect::HaltRecorded { durable } => {
                    check!(
                        !durable
                            || self.durable.pausing
                            || self.durable.cancelling
                            || self.durable.execution.is_some(),
                        "a pause or cancel was answered durable, but the store has no request"
                    );
                }
                Effect::Ended { status, error } => self.ended(status, error)?,
            }
        }
        self.check_permits()
    }
}

//! What an execution publishes as it goes: item and progress events on the bus, and the
//! counts its listing shows (`tally`).

use crate::execution::ExecutionState;
use crate::model::{Event, now_ms};
use crate::sched::run::Publish;

impl ExecutionState {
    pub(super) fn publish(&mut self, publish: Publish) {
        let event = match publish {
            Publish::Item { index, status } => {
                if status == crate::model::ItemStatus::Done {
                    self.tally.item_done();
                }
                if !matches!(status, crate::model::ItemStatus::Running) {
                    self.tally.item_ended(now_ms());
                    if let Some(share) = self.partial.remove(&index) {
                        self.tally.running_moved(share, 0);
                    }
                }
                Event::Item {
                    execution: self.record.id,
                    item: self.plan.items[index as usize].id.clone(),
                    status,
                }
            }
            Publish::Progress {
                index,
                progress,
                message,
            } => {
                // (Progress with no total counts as none.)
                let share = progress
                    .done
                    .min(progress.total)
                    .saturating_mul(1000)
                    .checked_div(progress.total)
                    .unwrap_or(0) as u16;
                let before = self.partial.insert(index, share).unwrap_or(0);
                self.tally.running_moved(before, share);
                Event::Progress {
                    execution: self.record.id,
                    item: self.plan.items[index as usize].id.clone(),
                    progress,
                    message,
                }
            }
        };
        let _ = self.events.send(event);
    }
}

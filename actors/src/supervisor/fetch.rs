//! Requests about an execution the Supervisor does not hold in memory (a finished one):
//! it is read from the store, off the handler, and the request handled once it is back.

use ractor::ActorRef;

use crate::error::RuntimeError;
use crate::model::{ExecutionId, ExecutionStatus};

/// How many times a read that found a stale status is made again.
const FETCH_TRIES: u32 = 3;
use crate::supervisor::entry::Entry;
use crate::supervisor::{Internal, SupervisorInternal, SupervisorMsg, SupervisorState};

impl SupervisorMsg {
    /// The execution a request is about, for requests that need it in memory.
    pub(super) fn execution(&self) -> Option<ExecutionId> {
        match self {
            SupervisorMsg::Status(id, _)
            | SupervisorMsg::Interrupt(id, _, _)
            | SupervisorMsg::Pause(id, _, _)
            | SupervisorMsg::Cancel(id, _, _)
            | SupervisorMsg::Resume(id, _)
            | SupervisorMsg::RetryFailed(id, _)
            | SupervisorMsg::Wait(id, _)
            | SupervisorMsg::Delete(id, _)
            | SupervisorMsg::FailExecution(id, _, _) => Some(*id),
            _ => None,
        }
    }

    /// Answers a request about an execution with `error`.
    pub(super) fn refuse(self, error: RuntimeError) {
        match self {
            SupervisorMsg::Status(_, reply) => {
                let _ = reply.send(Err(error));
            }
            SupervisorMsg::Wait(_, reply) => {
                let _ = reply.send(Err(error));
            }
            SupervisorMsg::Interrupt(_, _, reply)
            | SupervisorMsg::Pause(_, _, reply)
            | SupervisorMsg::Cancel(_, _, reply)
            | SupervisorMsg::Resume(_, reply)
            | SupervisorMsg::RetryFailed(_, reply)
            | SupervisorMsg::Delete(_, reply)
            | SupervisorMsg::FailExecution(_, _, reply) => {
                let _ = reply.send(Err(error));
            }
            _ => {}
        }
    }
}

impl SupervisorState {
    /// Reads execution `id` from the store for `msg`, which is handled once it is back.
    pub(super) fn fetch(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        msg: SupervisorMsg,
        tries: u32,
    ) {
        let store = self.store.clone();
        let myself = myself.clone();
        tokio::spawn(async move {
            let found = store.summary(id).await.map_err(RuntimeError::from);
            drop(store);
            let fetched = Internal::Fetched {
                id,
                found,
                msg: Box::new(msg),
                tries,
            };
            // Stopped meanwhile: the request is answered, not dropped.
            if let Err(ractor::MessagingErr::SendErr(SupervisorMsg::Internal(
                SupervisorInternal(Internal::Fetched { msg, .. }),
            ))) = myself.cast(SupervisorMsg::Internal(SupervisorInternal(fetched)))
            {
                msg.refuse(RuntimeError::ShuttingDown);
            }
        });
    }

    /// Execution `id` is back from the store: taken into memory, unless something took it
    /// meanwhile or it is being deleted. Returns `msg` when it is to be handled now; it has
    /// been answered otherwise.
    pub(super) fn fetched(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        found: Result<Option<crate::model::StoredSummary>, RuntimeError>,
        msg: SupervisorMsg,
        tries: u32,
    ) -> Option<SupervisorMsg> {
        if self.entries.contains_key(&id) {
            return Some(msg);
        }
        // Every execution that is not finished is in memory: a stored status that says
        // otherwise was read before it ended here, and is read again.
        if let Ok(Some(listed)) = &found
            && !matches!(
                listed.summary.status,
                ExecutionStatus::Completed
                    | ExecutionStatus::Failed
                    | ExecutionStatus::Cancelled
                    | ExecutionStatus::Corrupt
            )
        {
            if tries < FETCH_TRIES {
                self.fetch(myself, id, msg, tries + 1);
            } else {
                msg.refuse(RuntimeError::Actor(format!(
                    "execution {id} changed while it was read; try again"
                )));
            }
            return None;
        }
        match found {
            Ok(Some(listed)) if !self.deleting_ids.contains(&id) => {
                if std::sync::Arc::strong_count(&self.prune_token) > 1 {
                    // A prune's scan may have chosen it before this request came.
                    self.touched.insert(id);
                }
                self.entries.insert(id, Entry::listed(listed));
                Some(msg)
            }
            // Not stored (or being deleted): the request gets `UnknownExecution`.
            Ok(_) => Some(msg),
            Err(e) => {
                msg.refuse(e);
                None
            }
        }
    }
}

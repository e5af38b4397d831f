//! [`Op`]: one write as the writer thread applies it, its record already encoded (on the
//! caller's thread) into the bytes a table holds; [`Ops`]: one batch of them.

use std::ops::Range;

use crate::model::{ExecutionId, KeyOwner};

/// One batch of writes, and the item records they store, encoded one after another into
/// one buffer (an item record is written per attempt: one buffer per batch, not one per
/// record).
#[derive(Debug, Default)]
pub(crate) struct Ops {
    pub(crate) ops: Vec<Op>,
    /// The item records, each [`Op::Item`] naming its range.
    pub(crate) records: Vec<u8>,
}

impl From<Vec<Op>> for Ops {
    fn from(ops: Vec<Op>) -> Self {
        Ops {
            ops,
            records: Vec::new(),
        }
    }
}

impl Ops {
    /// Item record `range`'s bytes; `None` for a range outside the buffer, which only an
    /// `Op::Item` built for another batch could name (`encode_changes` builds each batch's
    /// own).
    pub(crate) fn record(&self, range: &Range<usize>) -> Option<&[u8]> {
        self.records.get(range.clone())
    }
}

/// One write.
#[derive(Debug)]
pub(crate) enum Op {
    /// Insert or replace an execution record; `live` when its status is not final (it is
    /// then in the live index, which startup reads instead of every record).
    Execution {
        id: ExecutionId,
        record: Vec<u8>,
        live: bool,
    },
    /// Insert an execution's plan.
    Plan { id: ExecutionId, plan: Vec<u8> },
    /// Give an idempotency key to the execution `owner` names (with its record).
    Key { key: String, owner: KeyOwner },
    /// Attempt `attempt` of an item starts (see `starts`).
    Started {
        id: ExecutionId,
        index: u32,
        attempt: u32,
        crashes: u32,
    },
    /// Insert or replace an item record that counts `attempts` attempts; the record is
    /// `record` in its batch's [`Ops::records`].
    Item {
        id: ExecutionId,
        index: u32,
        attempts: u32,
        record: Range<usize>,
    },
    /// Insert or replace an intra-item checkpoint.
    Checkpoint {
        id: ExecutionId,
        index: u32,
        record: Vec<u8>,
    },
    /// Forget the execution's start set: it has ended and every attempt it started has its
    /// item record.
    ClearStarts { id: ExecutionId },
    /// Remove an intra-item checkpoint (the item is done).
    ClearCheckpoint { id: ExecutionId, index: u32 },
    /// Insert or replace a runtime metadata value.
    Meta { key: String, value: Vec<u8> },
    /// Remove every record of a finished execution: its record, plan, start set, item
    /// records, checkpoints and artifact references.
    Delete { id: ExecutionId },
    /// Store an artifact (once: the same bytes have the same id), referenced by
    /// execution `id`, with its timestamp of interest set to `now_ms`.
    PutArtifact {
        id: ExecutionId,
        artifact: [u8; 32],
        bytes: Vec<u8>,
        now_ms: u64,
    },
}

impl Op {
    pub(crate) fn is_artifacts(&self) -> bool {
        matches!(self, Op::Delete { .. } | Op::PutArtifact { .. })
    }
}

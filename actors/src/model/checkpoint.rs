//! [`Checkpoint`]: an item's intra-item checkpoint, as the store keeps it and as an attempt
//! resumes from it.

use crate::model::Progress;

/// The state an item saved with `ItemCtx::checkpoint` (msgpack) and the progress it had
/// reported when it saved it. Every attempt of the item starts from the latest one that is
/// durable: after an interrupt, a restart, a crash, and a retry alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The state the item saved (msgpack).
    pub state: Vec<u8>,
    /// The progress it had reported when it saved it.
    pub progress: Option<Progress>,
}

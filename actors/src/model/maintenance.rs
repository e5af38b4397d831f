//! What a maintenance run is asked to do, as the seed's `DataMaintenance` says it: an
//! operation (flush, cleanup or both), an urgency, and for a cleanup the age past which
//! data goes.

use std::time::Duration;

use crate::model::{MaintenanceOperation, Urgency};

/// What a maintenance run does. A target age belongs to a cleanup only, so a flush has
/// none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceWork {
    /// The modules write what they have pending, and the store commits what it holds.
    Flush,
    /// The finished executions the retention no longer keeps are deleted.
    Cleanup {
        /// Replaces the retention's age (`retention`) for this run.
        target_age: Option<Duration>,
    },
    /// The flush, then the cleanup.
    Both {
        /// Replaces the retention's age (`retention`) for this run.
        target_age: Option<Duration>,
    },
}

impl MaintenanceWork {
    /// Its name on the wire and in `DataMaintenance`.
    pub fn operation(&self) -> MaintenanceOperation {
        match self {
            MaintenanceWork::Flush => MaintenanceOperation::Flush,
            MaintenanceWork::Cleanup { .. } => MaintenanceOperation::Cleanup,
            MaintenanceWork::Both { .. } => MaintenanceOperation::Both,
        }
    }

    /// The age that replaces the retention's, for a cleanup.
    pub fn target_age(&self) -> Option<Duration> {
        match self {
            MaintenanceWork::Flush => None,
            MaintenanceWork::Cleanup { target_age } | MaintenanceWork::Both { target_age } => {
                *target_age
            }
        }
    }

    /// Whether it flushes.
    pub fn flushes(&self) -> bool {
        matches!(self, MaintenanceWork::Flush | MaintenanceWork::Both { .. })
    }

    /// Whether it cleans up.
    pub fn cleans_up(&self) -> bool {
        !matches!(self, MaintenanceWork::Flush)
    }
}

/// A maintenance run asked for (`Runtime::maintain_with` in `tend`, `POST /maintenance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceRequest {
    /// What it does.
    pub work: MaintenanceWork,
    /// How soon. With `high` the modules are given `lifecycle_timeout` to answer, and
    /// their answers are in the report; otherwise nobody waits for them.
    pub urgency: Urgency,
}

impl MaintenanceRequest {
    /// A cleanup of medium urgency, `target_age` replacing the retention's age: what the
    /// runtime's `maintain(target_age)` asks for.
    pub fn cleanup(target_age: Option<Duration>) -> Self {
        MaintenanceRequest {
            work: MaintenanceWork::Cleanup { target_age },
            urgency: Urgency::Medium,
        }
    }
}

impl Default for MaintenanceRequest {
    /// A cleanup of medium urgency with the configured retention.
    fn default() -> Self {
        MaintenanceRequest::cleanup(None)
    }
}

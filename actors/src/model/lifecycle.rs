//! The host's lifecycle as events: startup, shutdown, maintenance, health and resource
//! warnings. Modules subscribe to the kinds they care about (see
//! [`LifecycleBus`](crate::lifecycle::LifecycleBus)); the events that need an answer
//! collect one from every subscriber, until their timeout.
//!
//! On the wire every event is an object whose `kind` names it (`node_shutdown`, ...) and
//! whose durations are humantime strings (`"30s"`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why the runtime shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShutdownReason {
    /// The application asked for it (`Runtime::shutdown`).
    Graceful,
    /// A SIGINT or SIGTERM.
    Signal,
    /// A request over the bridge (`POST /shutdown`).
    Rpc,
    /// The application is stopping because something failed.
    Error,
}

/// What a `DataMaintenance` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceOperation {
    /// Write what is pending to disk.
    Flush,
    /// Delete old data.
    Cleanup,
    /// Both.
    Both,
}

/// How soon a `DataMaintenance` must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Periodic: whenever convenient.
    Low,
    /// Scheduled: soon.
    Medium,
    /// Shutdown or low disk: within the event's timeout. Subscribers answer.
    High,
}

/// Why a `DataMaintenance` is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceReason {
    /// On the Janitor's schedule.
    Periodic,
    /// The runtime is shutting down.
    Shutdown,
    /// The data directory's volume is low on space.
    LowDisk,
    /// Someone asked (the handle or `POST /maintenance`).
    Manual,
}

/// What a maintenance run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceType {
    /// A copy of the data.
    Backup,
    /// Writing what is pending to disk.
    Flush,
    /// Deleting what is no longer needed (retention, orphans).
    Cleanup,
    /// Pruning old executions.
    Prune,
}

/// What triggered a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckType {
    /// On the Janitor's schedule.
    Periodic,
    /// Someone asked.
    Manual,
    /// Right after startup.
    Startup,
}

/// A resource a `ResourceLimitWarning` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// The process's resident memory.
    Memory,
    /// The store's file.
    Disk,
    /// Stored executions.
    Executions,
}

/// Which event a subscriber wants; [`LifecycleEvent::kind`] names an event's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LifecycleKind {
    /// [`LifecycleEvent::NodeStartupCompleted`].
    NodeStartupCompleted,
    /// [`LifecycleEvent::NodeShutdown`].
    NodeShutdown,
    /// [`LifecycleEvent::NodeShutdownCompleted`].
    NodeShutdownCompleted,
    /// [`LifecycleEvent::DataMaintenance`].
    DataMaintenance,
    /// [`LifecycleEvent::MaintenanceStarted`].
    MaintenanceStarted,
    /// [`LifecycleEvent::MaintenanceCompleted`].
    MaintenanceCompleted,
    /// [`LifecycleEvent::HealthCheck`].
    HealthCheck,
    /// [`LifecycleEvent::DiskSpaceLow`].
    DiskSpaceLow,
    /// [`LifecycleEvent::ResourceLimitWarning`].
    ResourceLimitWarning,
}

impl LifecycleKind {
    /// Every kind, for a subscriber that wants them all.
    pub const ALL: [LifecycleKind; 9] = [
        LifecycleKind::NodeStartupCompleted,
        LifecycleKind::NodeShutdown,
        LifecycleKind::NodeShutdownCompleted,
        LifecycleKind::DataMaintenance,
        LifecycleKind::MaintenanceStarted,
        LifecycleKind::MaintenanceCompleted,
        LifecycleKind::HealthCheck,
        LifecycleKind::DiskSpaceLow,
        LifecycleKind::ResourceLimitWarning,
    ];

    /// Its place in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The wire name (`node_shutdown`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            LifecycleKind::NodeStartupCompleted => "node_startup_completed",
            LifecycleKind::NodeShutdown => "node_shutdown",
            LifecycleKind::NodeShutdownCompleted => "node_shutdown_completed",
            LifecycleKind::DataMaintenance => "data_maintenance",
            LifecycleKind::MaintenanceStarted => "maintenance_started",
            LifecycleKind::MaintenanceCompleted => "maintenance_completed",
            LifecycleKind::HealthCheck => "health_check",
            LifecycleKind::DiskSpaceLow => "disk_space_low",
            LifecycleKind::ResourceLimitWarning => "resource_limit_warning",
        }
    }
}

impl std::fmt::Display for LifecycleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened in the life of the runtime and its host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// The runtime is up: the store is open, the executions are loaded and recovery has
    /// begun.
    NodeStartupCompleted {
        /// How long starting took.
        #[serde(with = "crate::model::serde_millis")]
        duration: Duration,
        /// What was started, in order.
        components: Vec<String>,
        /// When it was up (RFC 3339), so a late listener can say "up since".
        #[serde(
            with = "humantime_serde",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        at: Option<std::time::SystemTime>,
    },
    /// The runtime is shutting down; save state, close connections, flush. Subscribers
    /// answer within `timeout`.
    NodeShutdown {
        /// Why.
        reason: ShutdownReason,
        /// The whole shutdown's deadline.
        #[serde(with = "humantime_serde")]
        timeout: Duration,
    },
    /// The shutdown is over: every execution is checkpointed (or reported abandoned) and
    /// the store is flushed.
    NodeShutdownCompleted {
        /// How long it took.
        #[serde(with = "crate::model::serde_millis")]
        duration: Duration,
    },
    /// Flush and/or clean up data. With `urgency: high` subscribers answer within
    /// `timeout`.
    DataMaintenance {
        /// What to do.
        operation: MaintenanceOperation,
        /// How soon.
        urgency: Urgency,
        /// Why.
        reason: MaintenanceReason,
        /// For a cleanup: data older than this goes.
        #[serde(with = "humantime_serde", default)]
        target_age: Option<Duration>,
        /// For a high-urgency run: how long subscribers have.
        #[serde(with = "humantime_serde", default)]
        timeout: Option<Duration>,
    },
    /// A maintenance run began.
    MaintenanceStarted {
        /// What it does.
        maintenance_type: MaintenanceType,
        /// How long it is expected to take, when known.
        #[serde(with = "humantime_serde", default)]
        estimated_duration: Option<Duration>,
    },
    /// A maintenance run ended.
    MaintenanceCompleted {
        /// What it did.
        maintenance_type: MaintenanceType,
        /// Whether all of it succeeded.
        success: bool,
        /// How long it took.
        #[serde(with = "crate::model::serde_millis")]
        duration: Duration,
        /// What it did, in numbers (pruned executions, deleted artifacts, ...).
        results: serde_json::Value,
    },
    /// A health check: subscribers answer with their own report.
    HealthCheck {
        /// What triggered it.
        check_type: HealthCheckType,
        /// Whether the runtime itself is healthy.
        node_healthy: bool,
        /// The runtime's own report.
        report: serde_json::Value,
    },
    /// The data directory's volume is low on space.
    DiskSpaceLow {
        /// Bytes free for this process.
        available_bytes: u64,
        /// The volume's size.
        total_bytes: u64,
        /// `available_bytes` as a percentage of `total_bytes`.
        percent_free: f64,
        /// The data directory.
        path: PathBuf,
    },
    /// A resource is near its configured limit.
    ResourceLimitWarning {
        /// Which.
        resource: ResourceKind,
        /// `current` as a percentage of `limit`.
        usage_percent: f64,
        /// Its use now.
        current: u64,
        /// Its configured limit.
        limit: u64,
        /// The percentage of `limit` past which this warning is published.
        threshold_percent: f64,
    },
}

impl LifecycleEvent {
    /// Which kind of event this is.
    pub fn kind(&self) -> LifecycleKind {
        match self {
            LifecycleEvent::NodeStartupCompleted { .. } => LifecycleKind::NodeStartupCompleted,
            LifecycleEvent::NodeShutdown { .. } => LifecycleKind::NodeShutdown,
            LifecycleEvent::NodeShutdownCompleted { .. } => LifecycleKind::NodeShutdownCompleted,
            LifecycleEvent::DataMaintenance { .. } => LifecycleKind::DataMaintenance,
            LifecycleEvent::MaintenanceStarted { .. } => LifecycleKind::MaintenanceStarted,
            LifecycleEvent::MaintenanceCompleted { .. } => LifecycleKind::MaintenanceCompleted,
            LifecycleEvent::HealthCheck { .. } => LifecycleKind::HealthCheck,
            LifecycleEvent::DiskSpaceLow { .. } => LifecycleKind::DiskSpaceLow,
            LifecycleEvent::ResourceLimitWarning { .. } => LifecycleKind::ResourceLimitWarning,
        }
    }

    /// Whether the publisher waits for every subscriber's answer (shutdown, high-urgency
    /// maintenance, health checks).
    pub fn needs_answer(&self) -> bool {
        match self {
            LifecycleEvent::NodeShutdown { .. } | LifecycleEvent::HealthCheck { .. } => true,
            LifecycleEvent::DataMaintenance { urgency, .. } => *urgency == Urgency::High,
            _ => false,
        }
    }
}

/// A subscriber's answer to an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Done with what the event asked.
    Acknowledged,
    /// Done, with a report (a health check's answer).
    Report {
        /// The module's own report.
        report: serde_json::Value,
    },
    /// Could not do what the event asked.
    Failed {
        /// Why.
        error: String,
    },
}

/// What the publisher heard from one subscriber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModuleAnswer {
    /// The subscriber's name.
    pub module: String,
    /// The event it was asked about (`node_shutdown`, ...).
    pub event: LifecycleKind,
    /// What it said.
    pub result: Heard,
    /// Its report, for `reported`: any JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub report: Option<serde_json::Value>,
    /// Why, for `failed` and `unanswered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The gist of a [`ModuleAnswer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Heard {
    /// It acknowledged in time.
    Acknowledged,
    /// It answered with a report in time.
    Reported,
    /// It answered that it failed.
    Failed,
    /// It did not answer before the timeout; nobody waits for it any longer.
    TimedOut,
    /// It can never answer: it dropped the event without answering, it had stopped, or it
    /// was so far behind that its queue was full.
    Unanswered,
}

impl ModuleAnswer {
    /// What `module` said about `event`.
    pub fn new(module: &str, event: LifecycleKind, answer: Result<Answer, Heard>) -> Self {
        let mut this = ModuleAnswer {
            module: module.to_owned(),
            event,
            result: Heard::Acknowledged,
            report: None,
            error: None,
        };
        match answer {
            Ok(Answer::Acknowledged) => {}
            Ok(Answer::Report { report }) => {
                this.result = Heard::Reported;
                this.report = Some(report);
            }
            Ok(Answer::Failed { error }) => {
                this.result = Heard::Failed;
                this.error = Some(error);
            }
            Err(heard) => this.result = heard,
        }
        this
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_by_kind_and_durations_are_text() {
        let event = LifecycleEvent::NodeShutdown {
            reason: ShutdownReason::Signal,
            timeout: Duration::from_secs(30),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "node_shutdown", "reason": "signal", "timeout": "30s"})
        );
        assert_eq!(event.kind().as_str(), "node_shutdown");
        let back: LifecycleEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn only_shutdown_health_and_urgent_maintenance_need_answers() {
        let maintenance = |urgency| LifecycleEvent::DataMaintenance {
            operation: MaintenanceOperation::Flush,
            urgency,
            reason: MaintenanceReason::Shutdown,
            target_age: None,
            timeout: Some(Duration::from_secs(1)),
        };
        assert!(maintenance(Urgency::High).needs_answer());
        assert!(!maintenance(Urgency::Low).needs_answer());
        assert!(
            !LifecycleEvent::NodeShutdownCompleted {
                duration: Duration::ZERO
            }
            .needs_answer()
        );
        for (i, kind) in LifecycleKind::ALL.into_iter().enumerate() {
            let wire = serde_json::to_value(kind).unwrap();
            assert_eq!(wire, serde_json::Value::from(kind.as_str()));
            assert_eq!(kind.index(), i, "{kind}");
        }
    }
}

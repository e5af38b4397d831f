//! The Janitor actor: maintenance and health checks, each on its interval and on request.
//!
//! Maintenance: a run announces itself
//! (`MaintenanceStarted`), asks the modules to clean up (`DataMaintenance {cleanup}`),
//! prunes the finished executions the retention no longer keeps, and reports
//! (`MaintenanceCompleted` with the numbers). Runs never overlap: the actor takes one at a
//! time, and a tick that comes while one runs waits behind it.
//!
//! Orphan sweeps (`sweep`): unreferenced artifacts past their protection time deleted in
//! small batches, then the leftovers of executions that no longer exist. Sweeps never
//! overlap each other, maintenance or health checks: one actor runs them all.
//!
//! Health checks (`health`): the monitors measured, their warnings published
//! (`DiskSpaceLow`, which also runs an urgent cleanup, and `ResourceLimitWarning`), then a
//! `HealthCheck` whose answers make the report `GET /health` serves.

mod health;
mod sweep;

pub use health::HealthSettings;
pub use sweep::{SweepReport, SweepSettings};

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use crate::lifecycle::LifecycleBus;
use crate::model::{
    LifecycleEvent, MaintenanceOperation, MaintenanceReason, MaintenanceType, Urgency,
};
use crate::supervisor::{Retention, SupervisorMsg};

/// The Janitor actor.
#[derive(Debug, Default)]
pub struct Janitor;

/// What the Janitor starts from.
#[derive(Debug)]
pub struct JanitorArgs {
    /// Whose executions it prunes.
    pub supervisor: ActorRef<SupervisorMsg>,
    /// Where it announces its runs.
    pub bus: Arc<LifecycleBus>,
    /// What the store keeps of finished executions.
    pub retention: Retention,
    /// How often it runs by itself; `None`: only on request.
    pub interval: Option<Duration>,
    /// Its health checks (and the store it watches and sweeps).
    pub health: HealthSettings,
    /// Its orphan sweeps.
    pub orphans: SweepSettings,
}

/// Messages the Janitor handles.
#[derive(Debug)]
pub enum JanitorMsg {
    /// Run maintenance now; `target_age` (if set) prunes executions that ended longer ago
    /// than it, instead of the configured age.
    Run {
        /// Why.
        reason: MaintenanceReason,
        /// Overrides the retention's age for this run.
        target_age: Option<Duration>,
        /// Told what the run did.
        reply: Option<RpcReplyPort<MaintenanceReport>>,
    },
    /// Sweep orphan artifacts now; `protection` overrides the configured protection
    /// time for this sweep.
    Sweep {
        /// Unreferenced artifacts younger than this are kept.
        protection: Option<Duration>,
        /// Told what the sweep did.
        reply: Option<RpcReplyPort<SweepReport>>,
    },
    /// Check health now.
    Check {
        /// What triggered it.
        check_type: crate::model::HealthCheckType,
        /// Told the report.
        reply: Option<RpcReplyPort<crate::monitor::HealthReport>>,
    },
}

/// What one maintenance run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceReport {
    /// Why it ran.
    pub reason: MaintenanceReason,
    /// Finished executions deleted with their records.
    pub pruned: usize,
    /// Whether all of it succeeded.
    pub success: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took.
    #[serde(with = "crate::model::serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "12ms"))]
    pub duration: Duration,
}

/// The Janitor's state.
#[derive(Debug)]
pub struct JanitorState {
    _live: crate::metrics::LiveActor,
    args: JanitorArgs,
}

impl Actor for Janitor {
    type Msg = JanitorMsg;
    type State = JanitorState;
    type Arguments = JanitorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<JanitorMsg>,
        args: JanitorArgs,
    ) -> Result<JanitorState, ActorProcessingErr> {
        // A zero interval would never tick: it means "only on request".
        if let Some(interval) = args.interval.filter(|i| !i.is_zero()) {
            myself.send_interval(interval, || JanitorMsg::Run {
                reason: MaintenanceReason::Periodic,
                target_age: None,
                reply: None,
            });
        }
        if let Some(interval) = args.orphans.interval.filter(|i| !i.is_zero()) {
            myself.send_interval(interval, || JanitorMsg::Sweep {
                protection: None,
                reply: None,
            });
        }
        if let Some(interval) = args.health.interval.filter(|i| !i.is_zero()) {
            myself.send_interval(interval, || JanitorMsg::Check {
                check_type: crate::model::HealthCheckType::Periodic,
                reply: None,
            });
        }
        Ok(JanitorState {
            args,
            _live: crate::metrics::LiveActor::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<JanitorMsg>,
        msg: JanitorMsg,
        state: &mut JanitorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            JanitorMsg::Run {
                reason,
                target_age,
                reply,
            } => {
                let report = state.run(reason, target_age).await;
                if let Some(reply) = reply {
                    let _ = reply.send(report);
                }
            }
            JanitorMsg::Sweep { protection, reply } => {
                let report = state.sweep(protection).await;
                if let Some(reply) = reply {
                    let _ = reply.send(report);
                }
            }
            JanitorMsg::Check { check_type, reply } => {
                let report = state.check(check_type).await;
                if let Some(reply) = reply {
                    let _ = reply.send(report);
                }
            }
        }
        Ok(())
    }
}

impl JanitorState {
    async fn run(
        &self,
        reason: MaintenanceReason,
        target_age: Option<Duration>,
    ) -> MaintenanceReport {
        let began = Instant::now();
        let bus = &self.args.bus;
        bus.publish(LifecycleEvent::MaintenanceStarted {
            maintenance_type: MaintenanceType::Cleanup,
            estimated_duration: None,
        });
        let retention = Retention {
            older_than: target_age.or(self.args.retention.older_than),
            ..self.args.retention
        };
        bus.publish(LifecycleEvent::DataMaintenance {
            operation: MaintenanceOperation::Cleanup,
            urgency: match reason {
                MaintenanceReason::Periodic => Urgency::Low,
                _ => Urgency::Medium,
            },
            reason,
            target_age: retention.older_than,
            timeout: None,
        });
        let pruned = self
            .args
            .supervisor
            .call(|reply| SupervisorMsg::Prune(retention, reply), None)
            .await;
        let (pruned, error) = match pruned {
            Ok(CallResult::Success(Ok(n))) => (n, None),
            Ok(CallResult::Success(Err(e))) => (0, Some(e.to_string())),
            _ => (0, Some("the supervisor did not answer".to_owned())),
        };
        let report = MaintenanceReport {
            reason,
            pruned,
            success: error.is_none(),
            error,
            duration: began.elapsed(),
        };
        bus.publish(LifecycleEvent::MaintenanceCompleted {
            maintenance_type: MaintenanceType::Cleanup,
            success: report.success,
            duration: report.duration,
            results: serde_json::json!({ "pruned": report.pruned }),
        });
        report
    }
}

//! The Janitor actor: maintenance and health checks, each on its interval and on request.
//!
//! Maintenance: a run announces itself (`MaintenanceStarted`), asks the modules for what
//! it does (`DataMaintenance {operation, urgency, target_age}`: flush, cleanup or both;
//! the periodic run is a low-urgency cleanup), does its own part (flushes the store,
//! prunes the finished executions the retention no longer keeps) while a high-urgency
//! run waits for the modules' answers, and reports (`MaintenanceCompleted` with the
//! numbers). Runs never overlap: the actor takes one at a time, and a tick that comes
//! while one runs waits behind it.
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
    LifecycleEvent, MaintenanceOperation, MaintenanceReason, MaintenanceRequest, MaintenanceType,
    MaintenanceWork, ModuleAnswer, Urgency,
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
    /// Run maintenance now, as `request` says.
    Run {
        /// Why.
        reason: MaintenanceReason,
        /// What it does, and how soon (a cleanup's target age overrides the retention's).
        request: MaintenanceRequest,
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
    /// What it did: `flush`, `cleanup` or `both`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "cleanup"))]
    pub operation: MaintenanceOperation,
    /// How soon it was asked for: `low`, `medium` or `high`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "medium"))]
    pub urgency: Urgency,
    /// For a cleanup, the age past which finished executions were deleted (the target
    /// age asked for, else the configured `retention`; none: no age limit).
    #[serde(
        with = "humantime_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "7d"))]
    pub target_age: Option<Duration>,
    /// Finished executions deleted with their records.
    pub pruned: usize,
    /// Whether the store committed everything it held (a flush); false when not asked.
    pub flushed: bool,
    /// Each module's answer to a high-urgency run's `DataMaintenance` (nobody waits for
    /// the answers to others).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<ModuleAnswer>,
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
                request: MaintenanceRequest {
                    urgency: Urgency::Low,
                    ..MaintenanceRequest::default()
                },
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
                request,
                reply,
            } => {
                let report = state.run(reason, request).await;
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
        request: MaintenanceRequest,
    ) -> MaintenanceReport {
        let began = Instant::now();
        let bus = &self.args.bus;
        let MaintenanceRequest { work, urgency } = request;
        let maintenance_type = match work {
            MaintenanceWork::Flush => MaintenanceType::Flush,
            MaintenanceWork::Cleanup { .. } | MaintenanceWork::Both { .. } => {
                MaintenanceType::Cleanup
            }
        };
        bus.publish(LifecycleEvent::MaintenanceStarted {
            maintenance_type,
            estimated_duration: None,
        });
        let retention = Retention {
            older_than: work.target_age().or(self.args.retention.older_than),
            ..self.args.retention
        };
        let target_age = retention.older_than.filter(|_| work.cleans_up());
        let within = self.args.health.answer_within;
        let urgent = urgency == Urgency::High;
        let asked = bus.publish(LifecycleEvent::DataMaintenance {
            operation: work.operation(),
            urgency,
            reason,
            target_age,
            timeout: urgent.then_some(within),
        });
        // The modules answer (when urgent) while the runtime does its own part.
        let answers = async move {
            if urgent {
                asked.answers(within).await
            } else {
                Vec::new()
            }
        };
        let own = async {
            let mut errors = Vec::new();
            let flushed = if work.flushes() {
                match self.args.health.store.flush().await {
                    Ok(()) => true,
                    Err(e) => {
                        errors.push(format!("the store did not flush: {e}"));
                        false
                    }
                }
            } else {
                false
            };
            let mut pruned = 0;
            if work.cleans_up() {
                match self
                    .args
                    .supervisor
                    .call(|reply| SupervisorMsg::Prune(retention, reply), None)
                    .await
                {
                    Ok(CallResult::Success(Ok(n))) => pruned = n,
                    Ok(CallResult::Success(Err(e))) => errors.push(e.to_string()),
                    _ => errors.push("the supervisor did not answer".to_owned()),
                }
            }
            (flushed, pruned, errors)
        };
        let (modules, (flushed, pruned, errors)) = tokio::join!(answers, own);
        let report = MaintenanceReport {
            reason,
            operation: work.operation(),
            urgency,
            target_age,
            pruned,
            flushed,
            modules,
            success: errors.is_empty(),
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            duration: began.elapsed(),
        };
        bus.publish(LifecycleEvent::MaintenanceCompleted {
            maintenance_type,
            success: report.success,
            duration: report.duration,
            results: serde_json::json!({ "pruned": report.pruned, "flushed": report.flushed }),
        });
        report
    }
}

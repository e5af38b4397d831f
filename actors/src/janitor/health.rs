//! The Janitor's health checks: measure, warn, ask the modules, keep the report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::rpc::CallResult;

use crate::janitor::JanitorState;
use crate::model::{
    HealthCheckType, LifecycleEvent, MaintenanceOperation, MaintenanceReason, Urgency,
};
use crate::monitor::{self, HealthReport, MonitorLimits};
use crate::store::Store;
use crate::supervisor::SupervisorMsg;

/// How the Janitor checks health.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// Whose size, volume and failures it reports.
    pub store: Store,
    /// The limits the measures are held against.
    pub limits: MonitorLimits,
    /// How often it checks by itself; `None`: at startup and on request only.
    pub interval: Option<Duration>,
    /// How long modules get to answer the `HealthCheck` (and an urgent cleanup).
    pub answer_within: Duration,
    /// Where the last report is kept, for whoever serves it.
    pub last: Arc<Mutex<Option<HealthReport>>>,
}

impl JanitorState {
    /// Measures, publishes what the measures call for, asks the modules, and keeps the
    /// report.
    pub(super) async fn check(&self, check_type: HealthCheckType) -> HealthReport {
        let settings = &self.args.health;
        let bus = &self.args.bus;
        let mut warnings = Vec::new();
        let executions = match settings.store.execution_count().await {
            Ok(n) => Some(n),
            Err(e) => {
                warnings.push(format!("the stored executions could not be counted: {e}"));
                None
            }
        };
        let file = settings.store.path().map(ToOwned::to_owned);
        let measures =
            tokio::task::spawn_blocking(move || monitor::measure(file.as_deref(), executions))
                .await
                .unwrap_or_else(|_| monitor::measure(None, executions));
        let events = monitor::warnings(&measures, &settings.limits);
        let mut disk_low = false;
        for event in events {
            warnings.push(describe(&event));
            disk_low |= matches!(event, LifecycleEvent::DiskSpaceLow { .. });
            bus.publish(event);
        }
        if disk_low {
            self.urgent_cleanup().await;
        }
        let failure = settings.store.failure();
        let node_healthy = failure.is_none() && !disk_low;
        let checked_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let published = bus.publish(LifecycleEvent::HealthCheck {
            check_type,
            node_healthy,
            report: serde_json::json!({
                "measures": &measures,
                "warnings": &warnings,
                "store_failure": failure.map(|f| f.reason),
            }),
        });
        let modules = published.answers(settings.answer_within).await;
        let report = HealthReport {
            check_type,
            checked_at,
            node_healthy,
            measures,
            warnings,
            modules,
        };
        match settings.last.lock() {
            Ok(mut last) => *last = Some(report.clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(report.clone()),
        }
        report
    }

    /// Low on disk: the modules are asked to flush and clean up at once, and the
    /// executions the retention no longer keeps are pruned.
    async fn urgent_cleanup(&self) {
        let within = self.args.health.answer_within;
        let asked = self.args.bus.publish(LifecycleEvent::DataMaintenance {
            operation: MaintenanceOperation::Both,
            urgency: Urgency::High,
            reason: MaintenanceReason::LowDisk,
            target_age: self.args.retention.older_than,
            timeout: Some(within),
        });
        let _ = asked.answers(within).await;
        let retention = self.args.retention;
        let pruned = self
            .args
            .supervisor
            .call(|reply| SupervisorMsg::Prune(retention, reply), None)
            .await;
        if let Ok(CallResult::Success(Ok(n))) = pruned {
            tracing::warn!(
                pruned = n,
                "low on disk: pruned what the retention no longer keeps"
            );
        }
    }
}

fn describe(event: &LifecycleEvent) -> String {
    match event {
        LifecycleEvent::DiskSpaceLow {
            percent_free, path, ..
        } => format!("{} has {percent_free:.1}% free", path.display()),
        LifecycleEvent::ResourceLimitWarning {
            resource,
            usage_percent,
            current,
            limit,
            ..
        } => format!("{resource:?} at {usage_percent:.1}% of its limit ({current} of {limit})"),
        other => other.kind().to_string(),
    }
}

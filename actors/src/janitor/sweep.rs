//! The orphan sweep: artifacts that no stored execution references and whose timestamp of
//! interest is older than the protection time are deleted, in small batches (one short
//! transaction each, beside the executions' commits, paced so that it pauses as long as
//! its batches took, and so takes about half of the writer at most), then the records of
//! executions that no longer exist.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::janitor::JanitorState;
use crate::model::Change;
use crate::model::now_ms;

/// Artifacts looked at per batch (one transaction, well under a millisecond; a batch
/// also gives way to a commit that waits behind it): 128 kept the submits' p99 nearer
/// their own than 64 or 256 did (BENCHMARKS.md).
const BATCH: usize = 128;

/// The sweep pauses once it owes this much: tokio's timer rounds every sleep up to the next
/// millisecond, so a pause after each sub-millisecond batch would cost more than the batch.
const PAUSE_AT: Duration = Duration::from_millis(2);

/// How the Janitor sweeps orphans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepSettings {
    /// An unreferenced artifact is kept until its timestamp of interest is this old.
    pub protection: Duration,
    /// How often it sweeps by itself; `None`: only on request.
    pub interval: Option<Duration>,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings {
            protection: Duration::from_secs(24 * 3600),
            interval: Some(Duration::from_secs(3600)),
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SweepReport {
    /// Artifacts looked at.
    pub scanned: usize,
    /// Artifacts deleted. (A crash before the next durable commit can bring some back;
    /// they are orphans still, and the next sweep deletes them.)
    pub deleted: usize,
    /// Executions whose leftover records were deleted.
    pub leftovers: usize,
    /// The protection time it used.
    #[serde(with = "humantime_serde")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "24h"))]
    pub protection: Duration,
    /// How long it took.
    #[serde(with = "crate::model::serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "3ms"))]
    pub duration: Duration,
    /// Why it stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JanitorState {
    /// Sweeps once, with `protection` (or the configured one).
    pub(super) async fn sweep(&self, protection: Option<Duration>) -> SweepReport {
        let began = Instant::now();
        let protection = protection.unwrap_or(self.args.orphans.protection);
        let store = &self.args.health.store;
        let cutoff =
            now_ms().saturating_sub(u64::try_from(protection.as_millis()).unwrap_or(u64::MAX));
        let mut report = SweepReport {
            scanned: 0,
            deleted: 0,
            leftovers: 0,
            protection,
            duration: Duration::ZERO,
            error: None,
        };
        let mut from = None;
        let mut freed = 0;
        // Time owed: what the batches took, less what the sweep has paused since.
        let mut owed = Duration::ZERO;
        loop {
            let batch_began = Instant::now();
            match store.sweep_artifacts(from, BATCH, cutoff).await {
                Ok(batch) => {
                    // As long in pauses as in batches: the sweep takes at most about half of
                    // the writer thread (and of a core). Pausing longer measured no better
                    // p99 beside submits, at a lower rate (BENCHMARKS.md).
                    owed += batch_began.elapsed();
                    if owed >= PAUSE_AT {
                        let paused = Instant::now();
                        tokio::time::sleep(owed).await;
                        owed = owed.saturating_sub(paused.elapsed());
                    }
                    report.scanned += batch.scanned;
                    report.deleted += batch.deleted;
                    freed += batch.bytes;
                    match batch.next {
                        Some(next) => from = Some(next),
                        None => break,
                    }
                }
                Err(e) => {
                    report.error = Some(e.to_string());
                    break;
                }
            }
        }
        if report.error.is_none() {
            match store.leftovers().await {
                Ok(ids) => {
                    for chunk in ids.chunks(256) {
                        let changes = chunk.iter().map(|&id| Change::Delete { id }).collect();
                        if let Err(e) = store.commit(changes).await {
                            report.error = Some(e.to_string());
                            break;
                        }
                        report.leftovers += chunk.len();
                    }
                }
                Err(e) => report.error = Some(e.to_string()),
            }
        }
        // One durable commit, so the batches' deletions (not fsynced on their own) are
        // durable too; it records when the last sweep ran.
        if let Err(e) = store
            .put_meta("last_orphan_sweep_ms", &now_ms().to_be_bytes())
            .await
        {
            report.error.get_or_insert(e.to_string());
        }
        // Much deleted: the space goes back to the file system at the next start (a sweep
        // runs beside executions, and compacting would hold up their commits).
        if let Err(e) = store.reclaim(freed, false).await {
            report.error.get_or_insert(e.to_string());
        }
        report.duration = began.elapsed();
        if report.deleted > 0 || report.leftovers > 0 {
            tracing::info!(
                deleted = report.deleted,
                scanned = report.scanned,
                leftovers = report.leftovers,
                "orphan sweep"
            );
        }
        report
    }
}

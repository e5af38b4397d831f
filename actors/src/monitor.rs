//! What the Janitor watches: free space on the data directory's volume, the store's size,
//! the process's memory and the number of stored executions. [`measure`] reads them (cheap
//! system calls); [`warnings`] decides, with no I/O, which lifecycle events they call for.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::{LifecycleEvent, ModuleAnswer, ResourceKind};

/// The limits the measures are held against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorLimits {
    /// Below this percentage of free space on the data directory's volume,
    /// `DiskSpaceLow` is published (and an urgent cleanup run).
    pub disk_low_percent: f64,
    /// The store's file may grow to this many bytes.
    pub max_store_bytes: Option<u64>,
    /// The process's resident memory may grow to this many bytes.
    pub max_memory_bytes: Option<u64>,
    /// At most this many executions are meant to be stored.
    pub max_executions: Option<u64>,
    /// Past this percentage of a limit, `ResourceLimitWarning` is published.
    pub warn_percent: f64,
}

impl Default for MonitorLimits {
    fn default() -> Self {
        MonitorLimits {
            disk_low_percent: 5.0,
            max_store_bytes: None,
            max_memory_bytes: None,
            max_executions: None,
            warn_percent: 90.0,
        }
    }
}

/// Space on a volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskSpace {
    /// The directory measured.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub path: PathBuf,
    /// Bytes this process may still write.
    pub available_bytes: u64,
    /// The volume's size.
    pub total_bytes: u64,
}

impl DiskSpace {
    /// `available_bytes` as a percentage of `total_bytes` (100 for an empty volume).
    pub fn percent_free(&self) -> f64 {
        if self.total_bytes == 0 {
            return 100.0;
        }
        self.available_bytes as f64 * 100.0 / self.total_bytes as f64
    }
}

/// One reading of everything watched; what could not be read is `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Measures {
    /// The data directory's volume (`None` in memory).
    pub disk: Option<DiskSpace>,
    /// The store's file size (`None` in memory).
    pub store_bytes: Option<u64>,
    /// The process's resident memory (Linux).
    pub memory_bytes: Option<u64>,
    /// Executions stored (`None`: the store could not count them; the report's warnings
    /// say why).
    pub executions: Option<u64>,
}

/// Reads the measures for a store at `file` (none in memory). Blocking, but only stat
/// calls and one small read of `/proc`.
pub fn measure(file: Option<&Path>, executions: Option<u64>) -> Measures {
    let dir = file.and_then(Path::parent);
    Measures {
        disk: dir.and_then(disk_space),
        store_bytes: file
            .and_then(|f| std::fs::metadata(f).ok())
            .map(|m| m.len()),
        memory_bytes: resident_memory(),
        executions,
    }
}

#[cfg(unix)]
// The field types are the platform's (u32 on some, u64 on others).
#[allow(clippy::useless_conversion)]
fn disk_space(dir: &Path) -> Option<DiskSpace> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    let block = u64::from(stat.fragment_size()).max(1);
    Some(DiskSpace {
        path: dir.to_owned(),
        available_bytes: u64::from(stat.blocks_available()).saturating_mul(block),
        total_bytes: u64::from(stat.blocks()).saturating_mul(block),
    })
}

#[cfg(not(unix))]
fn disk_space(_dir: &Path) -> Option<DiskSpace> {
    None
}

/// Resident set size from `/proc/self/statm` (its second field, in pages).
#[cfg(unix)]
fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    Some(pages.saturating_mul(page))
}

#[cfg(not(unix))]
fn resident_memory() -> Option<u64> {
    None
}

/// The events `measures` call for under `limits`: `DiskSpaceLow` when the volume is below
/// its free-space floor, a `ResourceLimitWarning` per resource past `warn_percent` of its
/// limit.
pub fn warnings(measures: &Measures, limits: &MonitorLimits) -> Vec<LifecycleEvent> {
    let mut events = Vec::new();
    if let Some(disk) = &measures.disk
        && disk.percent_free() < limits.disk_low_percent
    {
        events.push(LifecycleEvent::DiskSpaceLow {
            available_bytes: disk.available_bytes,
            total_bytes: disk.total_bytes,
            percent_free: disk.percent_free(),
            path: disk.path.clone(),
        });
    }
    let watched = [
        (
            ResourceKind::Disk,
            measures.store_bytes,
            limits.max_store_bytes,
        ),
        (
            ResourceKind::Memory,
            measures.memory_bytes,
            limits.max_memory_bytes,
        ),
        (
            ResourceKind::Executions,
            measures.executions,
            limits.max_executions,
        ),
    ];
    for (resource, current, limit) in watched {
        let (Some(current), Some(limit)) = (current, limit) else {
            continue;
        };
        let usage_percent = if limit == 0 {
            100.0
        } else {
            current as f64 * 100.0 / limit as f64
        };
        if usage_percent >= limits.warn_percent {
            events.push(LifecycleEvent::ResourceLimitWarning {
                resource,
                usage_percent,
                current,
                limit,
                threshold_percent: limits.warn_percent,
            });
        }
    }
    events
}

/// The last health check: what was measured, what it warned of, what the modules said.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthReport {
    /// What triggered it: `startup`, `periodic` or `manual`.
    pub check_type: crate::model::HealthCheckType,
    /// When, as an RFC 3339 time.
    pub checked_at: String,
    /// No store failure and enough disk space.
    pub node_healthy: bool,
    /// The readings.
    pub measures: Measures,
    /// The warnings published, one sentence each.
    pub warnings: Vec<String>,
    /// Each module's answer to the `HealthCheck` event.
    pub modules: Vec<ModuleAnswer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measures(available: u64, store: u64, memory: u64, executions: u64) -> Measures {
        Measures {
            disk: Some(DiskSpace {
                path: PathBuf::from("/data"),
                available_bytes: available,
                total_bytes: 1000,
            }),
            store_bytes: Some(store),
            memory_bytes: Some(memory),
            executions: Some(executions),
        }
    }

    #[test]
    fn nothing_is_said_within_the_limits() {
        let limits = MonitorLimits {
            max_store_bytes: Some(100),
            max_memory_bytes: Some(100),
            max_executions: Some(100),
            ..MonitorLimits::default()
        };
        assert!(warnings(&measures(500, 10, 10, 10), &limits).is_empty());
        // No limit, no warning, however large.
        let unlimited = MonitorLimits::default();
        assert!(warnings(&measures(500, u64::MAX, u64::MAX, u64::MAX), &unlimited).is_empty());
    }

    #[test]
    fn low_disk_and_each_resource_past_its_threshold_are_named() {
        let limits = MonitorLimits {
            disk_low_percent: 10.0,
            max_store_bytes: Some(100),
            max_memory_bytes: Some(1000),
            max_executions: Some(10),
            warn_percent: 90.0,
        };
        let events = warnings(&measures(50, 95, 10, 10), &limits);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(
            &events[0],
            LifecycleEvent::DiskSpaceLow { available_bytes: 50, percent_free, .. } if (*percent_free - 5.0).abs() < 1e-9
        ));
        assert!(matches!(
            &events[1],
            LifecycleEvent::ResourceLimitWarning {
                resource: ResourceKind::Disk,
                current: 95,
                limit: 100,
                ..
            }
        ));
        assert!(matches!(
            &events[2],
            LifecycleEvent::ResourceLimitWarning { resource: ResourceKind::Executions, usage_percent, .. } if (*usage_percent - 100.0).abs() < 1e-9
        ));
    }

    #[test]
    fn a_real_directory_and_this_process_can_be_measured() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("store.file");
        std::fs::write(&file, vec![0u8; 4096]).unwrap();
        let measured = measure(Some(&file), Some(3));
        assert_eq!(measured.store_bytes, Some(4096));
        assert_eq!(measured.executions, Some(3));
        let disk = measured.disk.expect("statvfs works on a temp dir");
        assert!(disk.total_bytes > 0 && disk.available_bytes <= disk.total_bytes);
        #[cfg(target_os = "linux")]
        assert!(measured.memory_bytes.unwrap_or(0) > 0);
    }
}

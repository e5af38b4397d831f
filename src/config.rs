//! Runtime configuration, read from TOML. Durations are humantime strings ("30s", "24h").
//!
//! ```toml
//! parallelism = 64       # items of one execution that may run at once
//! stop_grace = "10s"     # on shutdown, how long attempts get to reach a cancellation point
//! timeout_grace = "1s"   # past its `timeout`, how long an attempt gets to reach one
//! shutdown_timeout = "30s" # the deadline of `Runtime::shutdown` (and of a SIGTERM's)
//! shutdown_strategy = "at_cancellation_point" # how shutdown interrupts executions
//! lifecycle_timeout = "5s" # how long lifecycle subscribers get to answer an event
//! maintenance_interval = "1h" # how often the Janitor runs maintenance ("0s": never)
//! retention = "30d"      # maintenance deletes executions finished longer ago (absent: none)
//! retain_max = 10000     # ... and all but the newest this many finished (absent: no limit)
//! retain_bytes = 1073741824 # ... and the oldest finished until the store is this small
//! health_interval = "30s" # how often the Janitor checks health ("0s": at startup only)
//! disk_low_percent = 5.0 # below this much free space on the data volume: DiskSpaceLow
//! max_store_bytes = 10737418240 # limits warned of past warn_percent (absent: none)
//! max_memory_bytes = 4294967296
//! max_executions = 1000000
//! warn_percent = 90.0    # ResourceLimitWarning past this percentage of a limit
//! orphan_protection_time = "24h" # unreferenced artifacts younger than this are kept
//! orphan_sweep_interval = "1h"   # how often the Janitor sweeps orphans ("0s": never)
//! event_capacity = 1024  # events buffered per subscriber before it lags
//! resume_on_start = true # resume what an unclean stop left running
//! recovery_concurrency = 64 # ... that many at a time
//! crash_limit = 3        # fail an item the process stopped under this often in a row (0: never)
//! max_restarts = 3       # restarts of a failed Execution actor allowed within ...
//! restart_window = "1m"  # ... this window; one more pauses the execution
//! max_items = 100000     # a submitted plan may have at most this many items ...
//! max_parallelism = 1024 # ... and ask for at most this much parallelism
//! store_cache_bytes = 67108864 # the redb store's page cache (absent: 64 MiB)
//!
//! [[limiters]]           # a rate limiter shared by every execution (any number)
//! name = "api"
//! limit = 10.0           # attempt starts a second, on average ...
//! burst = 5              # ... and at most this many at once
//! kinds = ["call"]       # it applies to items of these kinds
//! tags = ["api:100"]     # and to items with exactly one of these `sema` tags (each also
//!                        # a semaphore: `:100` gives it room, so it only paces)
//! ```

mod settings;

pub use settings::{SETTINGS, Setting};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tend_actors::InterruptStrategy;

/// The smallest page cache `store_cache_bytes` may ask for.
const MIN_STORE_CACHE_BYTES: u64 = 1 << 20;

/// The configuration could not be read or is invalid.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TOML does not parse or has unknown keys.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of range.
    #[error("invalid config value for `{field}`: {reason}")]
    Invalid {
        /// The key.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A `[[limiters]]` entry is malformed; the message names it.
    #[error("invalid config: {0}")]
    Limiter(String),
}

/// A named rate limiter: a token bucket shared by every execution, for the items of
/// `kinds` and those carrying one of `tags` (their `sema` tags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterConfig {
    /// Its name, for people and error messages.
    pub name: String,
    /// Attempt starts a second, on average (above 0).
    pub limit: f64,
    /// Attempt starts at once, at most (at least 1).
    pub burst: u32,
    /// Item kinds it applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Item tags it applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// How the runtime runs executions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Items of one execution that may run at once, unless its plan sets `parallelism`.
    pub parallelism: usize,
    /// On shutdown, how long running attempts get to reach a cancellation point before
    /// they are aborted.
    #[serde(with = "humantime_serde")]
    pub stop_grace: Duration,
    /// Past its `timeout`, how long an attempt gets to reach a cancellation point before it
    /// is aborted (it has failed at the timeout either way).
    #[serde(with = "humantime_serde")]
    pub timeout_grace: Duration,
    /// The deadline of [`Runtime::shutdown`](crate::Runtime::shutdown): past it what still
    /// runs is abandoned (its last durable records stand, as after a crash).
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How a shutdown interrupts the executions still running (attempts still running
    /// after `stop_grace` are aborted whatever it says).
    pub shutdown_strategy: InterruptStrategy,
    /// How long lifecycle subscribers get to answer an event that needs an answer (a
    /// shutdown's, a health check's), within the shutdown's deadline.
    #[serde(with = "humantime_serde")]
    pub lifecycle_timeout: Duration,
    /// How often the Janitor runs maintenance by itself (pruning what `retention` and
    /// `retain_max` no longer keep); `"0s"`, only when asked.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub maintenance_interval: Option<Duration>,
    /// Maintenance deletes finished (completed, failed or cancelled) executions that ended longer
    /// ago than this, with their records; absent, none for their age. (Corrupt ones are
    /// only deleted by hand: they may be a newer build's.)
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
    /// Maintenance deletes all but the newest this many finished executions; absent, no
    /// limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_max: Option<usize>,
    /// Maintenance deletes the oldest finished executions (by when they ended) until the
    /// store's pages take at most this many bytes, and compacts the file; absent, no
    /// limit. Executions that are not finished are never deleted for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_bytes: Option<u64>,
    /// How often the Janitor checks health (free space, store size, memory, the modules'
    /// `HealthCheck` answers; `GET /health` serves the last report); `"0s"`, at startup
    /// only.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Below this percentage of free space on the data directory's volume, the Janitor
    /// publishes `DiskSpaceLow` and runs an urgent cleanup.
    pub disk_low_percent: f64,
    /// The store's file size warned of (`ResourceLimitWarning`) past `warn_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_store_bytes: Option<u64>,
    /// The process's resident memory warned of past `warn_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
    /// The number of stored executions warned of past `warn_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_executions: Option<u64>,
    /// The percentage of a limit past which it is warned of.
    pub warn_percent: f64,
    /// The orphan sweep keeps an unreferenced artifact until its timestamp of interest
    /// (set when it is made, touched when it is referenced or read) is this old; `"0s"`
    /// keeps none.
    #[serde(with = "humantime_serde")]
    pub orphan_protection_time: Duration,
    /// How often the Janitor sweeps orphans by itself; `"0s"`, only when asked.
    #[serde(with = "humantime_serde")]
    pub orphan_sweep_interval: Duration,
    /// Events buffered for each subscriber; one that falls further behind receives
    /// `Event::Lagged`.
    pub event_capacity: usize,
    /// At start, resume the executions that were running when the process stopped (a
    /// shutdown checkpointed them, or a crash or a SIGKILL cut them short). Executions
    /// interrupted on purpose wait for `resume`.
    pub resume_on_start: bool,
    /// How many of those are started at once, so a large backlog does not hold up new
    /// submits. Each start reads its execution back and writes its running record; 64 at
    /// once share the store's group commits (10,000 executions resumed in about 0.6 s
    /// where 4 at once took 2.7 s, BENCHMARKS.md), and a submit still goes out in the
    /// next group commit beside them.
    pub recovery_concurrency: usize,
    /// An item whose attempts the process stopped under this many times in a row is
    /// failed ("the process stopped during N attempts in a row") instead of started
    /// again; 0 never gives up.
    pub crash_limit: u32,
    /// An execution whose Execution actor fails (a bug, not an item's failure) is restarted
    /// from its durable state, at most this many times within `restart_window`; the next
    /// failure pauses it (status `paused`, with the reason) until someone resumes it.
    pub max_restarts: u32,
    /// The window `max_restarts` counts in.
    #[serde(with = "humantime_serde")]
    pub restart_window: Duration,
    /// A submitted plan (or a dry run) may have at most this many items.
    pub max_items: usize,
    /// A submitted plan may ask for at most this much `parallelism`.
    pub max_parallelism: usize,
    /// The most bytes the redb store's page cache holds (pages read and written); absent,
    /// 64 MiB. The cache fills as the store grows, so this bounds what finished executions
    /// cost a running process in memory. At least 1 MiB. Refused with a store that is not
    /// redb (PostgreSQL, or one the caller opened), which it would not apply to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_cache_bytes: Option<u64>,
    /// Rate limiters shared by every execution.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limiters: Vec<LimiterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            parallelism: 64,
            stop_grace: Duration::from_secs(10),
            timeout_grace: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(30),
            shutdown_strategy: InterruptStrategy::AtCancellationPoint,
            lifecycle_timeout: Duration::from_secs(5),
            maintenance_interval: Some(Duration::from_secs(3600)),
            retention: None,
            retain_max: None,
            retain_bytes: None,
            health_interval: Duration::from_secs(30),
            disk_low_percent: 5.0,
            max_store_bytes: None,
            max_memory_bytes: None,
            max_executions: None,
            warn_percent: 90.0,
            orphan_protection_time: Duration::from_secs(24 * 3600),
            orphan_sweep_interval: Duration::from_secs(3600),
            event_capacity: 1024,
            resume_on_start: true,
            recovery_concurrency: 64,
            crash_limit: 3,
            max_restarts: 3,
            restart_window: Duration::from_secs(60),
            max_items: 100_000,
            max_parallelism: 1024,
            store_cache_bytes: None,
            limiters: Vec::new(),
        }
    }
}

impl Config {
    /// Parses and validates TOML text; absent keys keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_layered(Some(path), std::iter::empty::<(&str, &str)>())
    }

    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.parallelism == 0 {
            return Err(ConfigError::Invalid {
                field: "parallelism",
                reason: "must be at least 1",
            });
        }
        if self.recovery_concurrency == 0 {
            return Err(ConfigError::Invalid {
                field: "recovery_concurrency",
                reason: "must be at least 1",
            });
        }
        if self.restart_window.is_zero() {
            return Err(ConfigError::Invalid {
                field: "restart_window",
                reason: "must be longer than 0s",
            });
        }
        if self.max_items == 0 {
            return Err(ConfigError::Invalid {
                field: "max_items",
                reason: "must be at least 1",
            });
        }
        if self.max_parallelism == 0 {
            return Err(ConfigError::Invalid {
                field: "max_parallelism",
                reason: "must be at least 1",
            });
        }
        if self.shutdown_timeout.is_zero()
            || self.shutdown_timeout > crate::runtime::MAX_SHUTDOWN_DEADLINE
        {
            return Err(ConfigError::Invalid {
                field: "shutdown_timeout",
                reason: "must be longer than 0s and at most 24h",
            });
        }
        if self.lifecycle_timeout > crate::runtime::MAX_SHUTDOWN_DEADLINE {
            return Err(ConfigError::Invalid {
                field: "lifecycle_timeout",
                reason: "must be at most 24h",
            });
        }
        if !(0.0..=100.0).contains(&self.disk_low_percent) {
            return Err(ConfigError::Invalid {
                field: "disk_low_percent",
                reason: "must be from 0 to 100",
            });
        }
        if !(self.warn_percent > 0.0 && self.warn_percent <= 100.0) {
            return Err(ConfigError::Invalid {
                field: "warn_percent",
                reason: "must be above 0 and at most 100",
            });
        }
        if self
            .store_cache_bytes
            .is_some_and(|bytes| bytes < MIN_STORE_CACHE_BYTES)
        {
            return Err(ConfigError::Invalid {
                field: "store_cache_bytes",
                reason: "must be at least 1048576 (1 MiB)",
            });
        }
        if self.event_capacity == 0 {
            return Err(ConfigError::Invalid {
                field: "event_capacity",
                reason: "must be at least 1",
            });
        }
        self.build_limiters()?;
        Ok(())
    }

    /// The redb store's options: its page cache.
    pub(crate) fn redb_options(&self) -> tend_actors::store::RedbOptions {
        match self.store_cache_bytes {
            // (A cache larger than the address space could not be had anyway.)
            Some(bytes) => tend_actors::store::RedbOptions::with_cache_bytes(
                usize::try_from(bytes).unwrap_or(usize::MAX),
            ),
            None => tend_actors::store::RedbOptions::default(),
        }
    }

    /// The named rate limiters as the engine runs them.
    pub(crate) fn build_limiters(&self) -> Result<tend_actors::Limiters, ConfigError> {
        let specs = self
            .limiters
            .iter()
            .map(|l| tend_actors::LimiterSpec {
                name: l.name.clone(),
                limit: l.limit,
                burst: l.burst,
                kinds: l.kinds.clone(),
                tags: l.tags.clone(),
            })
            .collect();
        tend_actors::Limiters::new(specs).map_err(ConfigError::Limiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_config() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        assert_eq!(
            Config::from_toml("").unwrap().maintenance_interval,
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn reads_humantime_durations_and_keeps_defaults() {
        let config = Config::from_toml("stop_grace = \"1m 30s\"\nparallelism = 8\n").unwrap();
        assert_eq!(config.stop_grace, Duration::from_secs(90));
        assert_eq!(config.parallelism, 8);
        assert_eq!(config.event_capacity, Config::default().event_capacity);
    }

    #[test]
    fn bad_values_name_the_culprit() {
        let err = Config::from_toml("stop_grace = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
        let err = Config::from_toml("paralelism = 3").unwrap_err();
        assert!(err.to_string().contains("paralelism"), "{err}");
        let err = Config::from_toml("parallelism = 0").unwrap_err();
        assert!(err.to_string().contains("parallelism"), "{err}");
    }

    #[test]
    fn limiters_are_read_and_bad_ones_named() {
        let config = Config::from_toml(
            "[[limiters]]\nname = \"api\"\nlimit = 2.5\nburst = 3\nkinds = [\"call\"]\n",
        )
        .unwrap();
        assert_eq!(config.limiters[0].limit, 2.5);
        assert_eq!(config.limiters[0].kinds, ["call"]);
        for (text, says) in [
            (
                "name = \"api\"\nlimit = 0.0\nburst = 1\nkinds = [\"k\"]",
                "above 0",
            ),
            (
                "name = \"api\"\nlimit = 1.0\nburst = 0\nkinds = [\"k\"]",
                "burst",
            ),
            (
                "name = \"api\"\nlimit = 1.0\nburst = 1",
                "applies to nothing",
            ),
        ] {
            let err = Config::from_toml(&format!("[[limiters]]\n{text}\n")).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains("api") && message.contains(says),
                "{message}"
            );
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let config = Config {
            stop_grace: Duration::from_millis(1500),
            ..Config::default()
        };
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("1s 500ms"), "{text}");
        assert_eq!(Config::from_toml(&text).unwrap(), config);
    }
}

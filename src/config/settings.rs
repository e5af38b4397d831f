//! Settings given one at a time, the way a command-line flag or an environment variable
//! gives them: every key of [`Config`] that one value sets, what it means, and how its
//! text becomes the value ([`Config::layered`]).

use std::path::Path;

use crate::config::{Config, ConfigError};

/// One key of [`Config`], settable by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The TOML key (`stop_grace`).
    pub key: &'static str,
    /// What it means (its default is [`Setting::default_text`]).
    pub help: &'static str,
}

impl Setting {
    /// Its command-line flag, without the dashes (`stop-grace`).
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// Its environment variable (`TEND_STOP_GRACE`).
    pub fn env(&self) -> String {
        format!("TEND_{}", self.key.to_ascii_uppercase())
    }

    /// Its default, as a flag would spell it (`10s`, `64`, `at_cancellation_point`), or
    /// `none` for an optional one: read from [`Config::default`].
    pub fn default_text(&self) -> String {
        let value = toml::Value::try_from(Config::default())
            .ok()
            .and_then(|config| config.get(self.key).cloned());
        match value {
            Some(toml::Value::String(text)) => text,
            Some(value) => value.to_string(),
            None => "none".to_owned(),
        }
    }
}

const fn s(key: &'static str, help: &'static str) -> Setting {
    Setting { key, help }
}

/// Every key of [`Config`] but `limiters` (a list of tables, read from a file only).
pub const SETTINGS: &[Setting] = &[
    s(
        "parallelism",
        "Items of one execution that may run at once, unless its plan sets `parallelism`",
    ),
    s(
        "stop_grace",
        "On shutdown, how long running attempts get to reach a cancellation point before they are aborted",
    ),
    s(
        "timeout_grace",
        "Past its timeout, how long an attempt gets to reach a cancellation point before it is aborted",
    ),
    s(
        "shutdown_timeout",
        "The deadline of a shutdown (and a SIGTERM's): past it, what still runs is abandoned",
    ),
    s(
        "shutdown_strategy",
        "How a shutdown interrupts executions: at_cancellation_point, finish_current, or an inline table such as { immediate = { grace = \"1s\" } }",
    ),
    s(
        "lifecycle_timeout",
        "How long lifecycle subscribers get to answer an event that needs an answer",
    ),
    s(
        "maintenance_interval",
        "How often the Janitor runs maintenance (pruning); 0s: only when asked",
    ),
    s(
        "retention",
        "Maintenance deletes finished executions that ended longer ago than this",
    ),
    s(
        "retain_max",
        "Maintenance deletes all but the newest this many finished executions",
    ),
    s(
        "retain_bytes",
        "Maintenance deletes the oldest finished executions until the store takes at most this many bytes",
    ),
    s(
        "health_interval",
        "How often the Janitor checks health; 0s: at startup only",
    ),
    s(
        "disk_low_percent",
        "Below this percentage of free space on the data volume: DiskSpaceLow and an urgent cleanup",
    ),
    s(
        "max_store_bytes",
        "A store file size warned of (ResourceLimitWarning) past warn_percent",
    ),
    s(
        "max_memory_bytes",
        "A resident memory warned of past warn_percent",
    ),
    s(
        "max_executions",
        "A number of stored executions warned of past warn_percent",
    ),
    s(
        "warn_percent",
        "The percentage of a limit past which it is warned of",
    ),
    s(
        "orphan_protection_time",
        "The orphan sweep keeps an unreferenced artifact until it is this old; 0s keeps none",
    ),
    s(
        "orphan_sweep_interval",
        "How often the Janitor sweeps orphans; 0s: only when asked",
    ),
    s(
        "event_capacity",
        "Events buffered per subscriber before it lags",
    ),
    s(
        "resume_on_start",
        "At start, resume what an unclean stop left running",
    ),
    s("recovery_concurrency", "How many of those start at once"),
    s(
        "crash_limit",
        "Fail an item the process stopped under this many attempts in a row; 0: never",
    ),
    s(
        "max_restarts",
        "Restarts of a failed Execution actor allowed within restart_window; one more pauses it",
    ),
    s(
        "restart_window",
        "The window in which max_restarts are counted",
    ),
    s(
        "max_items",
        "A submitted plan may have at most this many items",
    ),
    s(
        "max_parallelism",
        "A submitted plan may ask for at most this much parallelism",
    ),
    s(
        "store_cache_bytes",
        "The most bytes the redb store's page cache holds (none: 64 MiB); not with PostgreSQL",
    ),
];

impl Config {
    /// [`Config::layered`] over a TOML file (or, without one, over the defaults).
    pub fn load_layered<K, V>(
        file: Option<&Path>,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let text = match file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            })?,
            None => String::new(),
        };
        Self::layered(&text, settings)
    }

    /// The configuration of TOML text (a file's; empty for none) with `settings` over
    /// it, each `(key, text)` as a flag or an environment variable gives it. Text that is
    /// a TOML value (`8`, `true`, `2.5`, `"30s"`, an inline table) is read as that; any
    /// other as a string (`30s`, `at_cancellation_point`); a duration's is always a
    /// string (`0` is `"0"`); empty text is as if the setting were not given. The result is
    /// validated like a file: an unknown key, a wrong type or a value out of range is an
    /// error that names the key.
    pub fn layered<K, V>(
        toml_text: &str,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let settings: Vec<(K, V)> = settings
            .into_iter()
            .filter(|(_, text)| !text.as_ref().is_empty())
            .collect();
        if settings.is_empty() {
            // The file as written, so an error's line and column are the file's.
            return Config::from_toml(toml_text);
        }
        let mut table: toml::Table =
            toml::from_str(toml_text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        for (key, text) in &settings {
            let (key, text) = (key.as_ref(), text.as_ref());
            if !SETTINGS.iter().any(|s| s.key == key) {
                return Err(ConfigError::Parse(format!(
                    "unknown setting `{}` (limiters are set in the config file)",
                    cut(key)
                )));
            }
            let value = match value_of(text) {
                toml::Value::String(text) => toml::Value::String(text),
                _ if DURATIONS.contains(&key) => toml::Value::String(text.to_owned()),
                value => value,
            };
            table.insert(key.to_owned(), value);
        }
        let text = toml::to_string(&table).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Config::from_toml(&text)
    }
}

/// The settings that are durations: humantime strings, whatever they look like.
const DURATIONS: &[&str] = &[
    "stop_grace",
    "timeout_grace",
    "shutdown_timeout",
    "lifecycle_timeout",
    "maintenance_interval",
    "retention",
    "health_interval",
    "orphan_protection_time",
    "orphan_sweep_interval",
    "restart_window",
];

/// At most 64 characters of `text`, for an error message.
fn cut(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// The TOML value `text` spells, or else `text` as a string.
fn value_of(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut one) if one.len() == 1 => one
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_owned())),
        _ => toml::Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::config::LimiterConfig;

    #[test]
    fn every_key_of_the_config_is_a_setting_but_the_limiters() {
        // Every optional key set, so the serialized form names them all.
        let full = Config {
            maintenance_interval: Some(Duration::from_secs(1)),
            retention: Some(Duration::from_secs(1)),
            retain_max: Some(1),
            retain_bytes: Some(1),
            max_store_bytes: Some(1),
            max_memory_bytes: Some(1),
            max_executions: Some(1),
            store_cache_bytes: Some(1 << 20),
            limiters: vec![LimiterConfig {
                name: "l".into(),
                limit: 1.0,
                burst: 1,
                kinds: vec!["k".into()],
                tags: Vec::new(),
            }],
            ..Config::default()
        };
        let table: toml::Table = toml::from_str(&toml::to_string(&full).unwrap()).unwrap();
        let keys: BTreeSet<&str> = table.keys().map(String::as_str).collect();
        let mut settings: BTreeSet<&str> = SETTINGS.iter().map(|s| s.key).collect();
        settings.insert("limiters");
        assert_eq!(keys, settings);
    }

    #[test]
    fn the_readme_shows_every_key_with_its_default() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("```toml\n").nth(1))
            .and_then(|block| block.split("```").next())
            .expect("README.md has a Configuration section with a TOML block");
        for setting in SETTINGS {
            assert!(
                section.contains(&format!("{} = ", setting.key)),
                "README.md's Configuration section lacks `{}`",
                setting.key
            );
        }
        // The keys it sets (the optional ones are commented out) are the defaults.
        let defaults = section.split("[[limiters]]").next().unwrap_or_default();
        assert_eq!(Config::from_toml(defaults).unwrap(), Config::default());
    }

    #[test]
    fn defaults_are_read_from_the_default_config() {
        let of = |key: &str| {
            SETTINGS
                .iter()
                .find(|s| s.key == key)
                .unwrap()
                .default_text()
        };
        assert_eq!(of("parallelism"), "64");
        assert_eq!(of("stop_grace"), "10s");
        assert_eq!(of("shutdown_strategy"), "at_cancellation_point");
        assert_eq!(of("resume_on_start"), "true");
        assert_eq!(of("retention"), "none");
    }

    #[test]
    fn settings_go_over_the_file_and_are_read_as_their_type() {
        let config = Config::layered(
            "parallelism = 3\nstop_grace = \"5s\"\nretain_max = 10\n",
            [
                ("stop_grace", "7s"),
                ("resume_on_start", "false"),
                ("warn_percent", "80"),
                ("shutdown_strategy", "finish_current"),
                ("retention", "30d"),
            ],
        )
        .unwrap();
        assert_eq!(config.parallelism, 3, "the file's, not set over it");
        assert_eq!(config.stop_grace, Duration::from_secs(7));
        assert!(!config.resume_on_start);
        assert_eq!(config.warn_percent, 80.0);
        assert_eq!(
            config.shutdown_strategy,
            tend_actors::InterruptStrategy::FinishCurrent
        );
        assert_eq!(config.retention, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(config.retain_max, Some(10));
        let immediate = Config::layered(
            "",
            [("shutdown_strategy", "{ immediate = { grace = \"2s\" } }")],
        )
        .unwrap();
        assert!(matches!(
            immediate.shutdown_strategy,
            tend_actors::InterruptStrategy::Immediate { .. }
        ));
    }

    #[test]
    fn a_duration_is_a_string_whatever_it_looks_like_and_empty_is_not_given() {
        let config = Config::layered(
            "",
            [
                ("stop_grace", "0"),
                ("maintenance_interval", "0s"),
                ("retention", ""),
            ],
        )
        .unwrap();
        assert_eq!(config.stop_grace, Duration::ZERO);
        assert_eq!(config.maintenance_interval, Some(Duration::ZERO));
        assert_eq!(config.retention, None);
        // Every duration the config holds is one of DURATIONS.
        let table: toml::Table =
            toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
        for (key, value) in &table {
            let humantime = value
                .as_str()
                .is_some_and(|t| humantime::parse_duration(t).is_ok());
            assert_eq!(humantime, DURATIONS.contains(&key.as_str()), "{key}");
        }
    }

    #[test]
    fn a_file_s_errors_name_its_own_lines() {
        let err = Config::layered(
            "parallelism = 2\n\nstop_grace = 5\n",
            Vec::<(&str, &str)>::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn a_bad_setting_is_refused_naming_it() {
        for (key, text, says) in [
            ("parallelism", "many", "parallelism"),
            ("parallelism", "0", "parallelism"),
            ("stop_grace", "soon", "soon"),
            ("paralelism", "3", "paralelism"),
            ("limiters", "[]", "limiters"),
        ] {
            let err = Config::layered("", [(key, text)]).unwrap_err().to_string();
            assert!(err.contains(says), "{key}={text}: {err}");
        }
    }
}

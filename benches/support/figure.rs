//! One figure of the `scenarios` bench: what tend measured, beside its baseline from the
//! same run, printed as one JSON line on stdout (and a line for people on stderr).
//!
//! The JSON keys are `name`, `value`, `unit`, `baseline`, `baseline_value`, `ratio` and
//! `target`; a figure that could not be measured has `value: null` and a `skipped` key
//! saying why. `ratio` is `value / baseline_value`, each the median of its rounds. A name
//! ending in `_ratio` compares `target` with `ratio`; any other name compares it with
//! `value` (in `unit`).

use std::time::Duration;

use serde::Serialize;

/// Whether a target is a ceiling or a floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Goal {
    /// Met when the compared number is at most the target.
    AtMost(f64),
    /// Met when the compared number is at least the target.
    AtLeast(f64),
    /// No target: reported for context.
    None,
}

impl Goal {
    fn target(self) -> Option<f64> {
        match self {
            Goal::AtMost(t) | Goal::AtLeast(t) => Some(t),
            Goal::None => None,
        }
    }

    fn met(self, compared: f64) -> Option<bool> {
        match self {
            Goal::AtMost(t) => Some(compared <= t),
            Goal::AtLeast(t) => Some(compared >= t),
            Goal::None => None,
        }
    }
}

/// One JSON line.
#[derive(Debug, Serialize)]
pub(crate) struct Figure {
    name: String,
    value: Option<f64>,
    unit: String,
    baseline: Option<String>,
    baseline_value: Option<f64>,
    ratio: Option<f64>,
    target: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    #[serde(skip)]
    goal: Goal,
}

impl Figure {
    /// `value` beside `baseline_value` (same unit); the ratio is theirs.
    pub(crate) fn against(
        name: &str,
        unit: &str,
        value: f64,
        baseline: &str,
        baseline_value: f64,
        goal: Goal,
    ) -> Self {
        Figure {
            name: name.to_owned(),
            value: Some(round(value)),
            unit: unit.to_owned(),
            baseline: Some(baseline.to_owned()),
            baseline_value: Some(round(baseline_value)),
            ratio: Some(round(value / baseline_value)),
            target: goal.target(),
            skipped: None,
            goal,
        }
    }

    /// `value` with no baseline.
    pub(crate) fn alone(name: &str, unit: &str, value: f64, goal: Goal) -> Self {
        Figure {
            name: name.to_owned(),
            value: Some(round(value)),
            unit: unit.to_owned(),
            baseline: None,
            baseline_value: None,
            ratio: None,
            target: goal.target(),
            skipped: None,
            goal,
        }
    }

    /// A figure that was not measured, and why.
    pub(crate) fn skipped(name: &str, unit: &str, baseline: &str, goal: Goal, why: &str) -> Self {
        Figure {
            name: name.to_owned(),
            value: None,
            unit: unit.to_owned(),
            baseline: Some(baseline.to_owned()),
            baseline_value: None,
            ratio: None,
            target: goal.target(),
            skipped: Some(why.to_owned()),
            goal,
        }
    }

    /// Prints the JSON line on stdout and a readable one on stderr.
    pub(crate) fn print(&self) {
        println!(
            "{}",
            serde_json::to_string(self).expect("a figure serializes")
        );
        let compared = if self.name.ends_with("_ratio") {
            self.ratio
        } else {
            self.value
        };
        let verdict = match (compared.and_then(|c| self.goal.met(c)), self.goal) {
            (_, Goal::None) => String::new(),
            (Some(true), _) => "  met".to_owned(),
            (Some(false), _) => "  MISSED".to_owned(),
            (None, _) => "  not measured".to_owned(),
        };
        let target = match self.goal {
            Goal::AtMost(t) => format!(" (target <= {t})"),
            Goal::AtLeast(t) => format!(" (target >= {t})"),
            Goal::None => String::new(),
        };
        match (&self.skipped, self.value) {
            (Some(why), _) => eprintln!("  {}: skipped: {why}", self.name),
            (None, Some(value)) => match (self.baseline_value, self.ratio) {
                (Some(b), Some(r)) => eprintln!(
                    "  {}: {value} {} against {b}: ratio {r}{target}{verdict}",
                    self.name, self.unit
                ),
                _ => eprintln!("  {}: {value} {}{target}{verdict}", self.name, self.unit),
            },
            (None, None) => eprintln!("  {}: no value", self.name),
        }
    }
}

/// Four significant digits: enough for a figure that moves by percents between runs.
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "a median of no rounds");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The `q` quantile of `values` (nearest rank).
pub(crate) fn quantile(values: &[f64], q: f64) -> f64 {
    assert!(!values.is_empty(), "a quantile of nothing");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds, the unit of most timings here.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

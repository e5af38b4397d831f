//! Measured durations as a person reads them: to the millisecond. `humantime` spells every
//! nanosecond ("1s 234ms 567us 891ns"), which says nothing more to anyone and is hard to read
//! in a report or a log line.

use std::time::Duration;

/// `d` to the millisecond (rounded down).
pub fn to_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `d` to the millisecond, as humantime spells it ("1s 234ms").
pub fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(to_millis(d))
}

/// `#[serde(with = "...")]` for a measured duration: written as humantime to the
/// millisecond, read as any humantime string.
pub(crate) mod serde_millis {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::human(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        humantime_serde::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_read_to_the_millisecond() {
        let d = Duration::new(1, 234_567_891);
        assert_eq!(super::human(d).to_string(), "1s 234ms");
        assert_eq!(super::human(Duration::from_micros(999)).to_string(), "0s");
        let json = serde_json::to_string(&Wrapped(d)).unwrap();
        assert_eq!(json, r#""1s 234ms""#);
    }

    #[derive(serde::Serialize)]
    struct Wrapped(#[serde(with = "super::serde_millis")] Duration);
}

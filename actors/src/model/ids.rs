//! Execution ids: ULIDs, unique and sorted by creation time.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use ulid::{Generator, Ulid};

/// Identifies one execution. Ids made in one process sort by creation time, also within one
/// millisecond; their text form is the 26-character ULID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutionId(Ulid);

static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

impl ExecutionId {
    /// A new id, greater than every id made before it in this process.
    pub fn generate() -> Self {
        loop {
            // A poisoned lock only means another thread panicked while generating; the
            // generator's state (the last id) is still valid.
            let mut generator = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(id) = generator.generate() {
                return ExecutionId(id);
            }
            // The random part overflowed within this millisecond: wait for the next one.
            drop(generator);
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// The id's text form in `buf`, without allocating; used as a store key.
    pub(crate) fn as_key<'b>(&self, buf: &'b mut [u8; ulid::ULID_LEN]) -> &'b str {
        self.0.array_to_str(buf)
    }

    /// 64 bits of the id, to seed what must differ between executions but replay the
    /// same for one (retry jitter).
    pub(crate) fn seed(&self) -> u64 {
        let bits: u128 = self.0.into();
        (bits as u64) ^ ((bits >> 64) as u64)
    }

    /// When the id was generated.
    pub fn created_at(&self) -> std::time::SystemTime {
        self.0.datetime()
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ulid::ULID_LEN];
        f.write_str(self.0.array_to_str(&mut buf))
    }
}

impl fmt::Debug for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecutionId({self})")
    }
}

/// A string is not an execution id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an execution id (expected a 26-character ULID)")]
pub struct ParseIdError(pub String);

impl FromStr for ExecutionId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(s)
            .map(ExecutionId)
            .map_err(|_| ParseIdError(s.chars().take(64).collect()))
    }
}

impl serde::Serialize for ExecutionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ExecutionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_round_trip() {
        let ids: Vec<ExecutionId> = (0..1000).map(|_| ExecutionId::generate()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let text = ids[7].to_string();
        assert_eq!(text.len(), 26);
        assert_eq!(text.parse::<ExecutionId>().unwrap(), ids[7]);
        assert!(ids.windows(2).all(|w| w[0].to_string() < w[1].to_string()));
    }

    #[test]
    fn bad_text_is_a_clear_error() {
        let err = "not-an-id".parse::<ExecutionId>().unwrap_err();
        assert!(err.to_string().contains("not-an-id"));
    }
}

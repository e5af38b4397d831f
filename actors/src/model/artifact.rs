//! Artifact ids: the SHA-256 of an artifact's bytes, so the same bytes are stored once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Names an artifact by its content: 64 lower-case hex digits of its SHA-256. An item's
/// output may carry it (it is a string on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactId(pub(crate) [u8; 32]);

impl ArtifactId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        ArtifactId(sha2::Sha256::digest(bytes).into())
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactId({self})")
    }
}

/// The text is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an artifact id is 64 hex digits (a SHA-256)")]
pub struct ParseArtifactIdError;

impl FromStr for ArtifactId {
    type Err = ParseArtifactIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(ParseArtifactIdError);
        }
        let mut id = [0u8; 32];
        for (slot, pair) in id.iter_mut().zip(bytes.chunks_exact(2)) {
            let digit = |b: u8| (b as char).to_digit(16).ok_or(ParseArtifactIdError);
            *slot = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Ok(ArtifactId(id))
    }
}

impl Serialize for ArtifactId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ArtifactId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_have_the_same_id_and_it_round_trips_as_hex() {
        let id = ArtifactId::of(b"hello");
        assert_eq!(id, ArtifactId::of(b"hello"));
        assert_ne!(id, ArtifactId::of(b"hello!"));
        let text = id.to_string();
        assert_eq!(
            text,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(text.parse::<ArtifactId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<ArtifactId>(&json).unwrap(), id);
        assert!("xyz".parse::<ArtifactId>().is_err());
        assert!("zz".repeat(32).parse::<ArtifactId>().is_err());
    }
}

//! Ids of organisations, users, projects, keys and records: 12 bytes shown as 24 lowercase hex
//! characters, the shape of a MongoDB ObjectId, because clients of the contract validate it.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 24-hex-character id. Newly made ids sort roughly by creation time (seconds, then a
/// per-process counter), so the id is a fair tie-breaker after a timestamp.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

/// The text given is not 24 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 24 lowercase hexadecimal characters")]
pub struct InvalidId;

impl ObjectId {
    /// A fresh id: 4 bytes of Unix seconds, 5 random bytes fixed per process, 3 counter bytes.
    pub fn generate() -> Self {
        static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
        static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
        let process = PROCESS.get_or_init(rand::random);
        let counter =
            COUNTER.get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0x00ff_ffff)).fetch_add(1, Ordering::Relaxed);
        let seconds = time::OffsetDateTime::now_utc().unix_timestamp() as u32;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(process);
        bytes[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        ObjectId(bytes)
    }

    /// Parses exactly 24 lowercase hex characters.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        if text.len() != 24 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(InvalidId);
        }
        let mut bytes = [0u8; 12];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| InvalidId)?;
        Ok(ObjectId(bytes))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectId::parse(s)
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ObjectId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_differ() {
        let a = ObjectId::generate();
        let b = ObjectId::generate();
        assert_ne!(a, b);
        assert_eq!(ObjectId::parse(&a.to_string()), Ok(a));
        assert_eq!(a.to_string().len(), 24);
    }

    #[test]
    fn rejects_wrong_shapes() {
        for bad in [
            "",
            "abc",
            "5f0c6bc4ad4f8b0011b2e0e",
            "5F0C6BC4AD4F8B0011B2E0E1",
            "5f0c6bc4ad4f8b0011b2e0eg",
            "5f0c6bc4ad4f8b0011b2e0e12",
        ] {
            assert_eq!(ObjectId::parse(bad), Err(InvalidId), "{bad}");
        }
        assert!(ObjectId::parse("5f0c6bc4ad4f8b0011b2e0e1").is_ok());
    }
}

//! Where an import stopped, kept beside the store after every stored batch, so that running the
//! same import again goes on from there. Rows are stored idempotently (a row already stored is a
//! duplicate, not a second copy), so a checkpoint a batch behind costs time, never data.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How far a source has been read and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Position {
    /// A file: the byte after the last row stored, and the line (or, in a JSON array, the row) it
    /// is at.
    Offset { byte: u64, line: u64 },
    /// An OData feed: the key of the last entity stored (its properties' literals), in key order.
    Key(Vec<String>),
}

/// A checkpoint file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// What is imported, in words: the file's path or the feed's address, and the collection.
    pub source: String,
    pub position: Position,
    /// Rows read so far.
    pub rows: u64,
}

/// The checkpoint of one import, named after its source, in `dir`.
pub struct Checkpoints {
    path: PathBuf,
    source: String,
}

impl Checkpoints {
    pub fn new(dir: &Path, source: String) -> Checkpoints {
        let digest = Sha256::digest(source.as_bytes());
        let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Checkpoints { path: dir.join("imports").join(format!("{name}.json")), source }
    }

    /// Where an earlier run of the same import stopped, if it did not finish.
    pub fn load(&self) -> Result<Option<Checkpoint>, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                    format!("the checkpoint {} is damaged ({e}); remove it to start over", self.path.display())
                })?;
                Ok((checkpoint.source == self.source).then_some(checkpoint))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read the checkpoint {}: {e}", self.path.display())),
        }
    }

    /// Keeps where the import is, replacing the file whole (never half-written).
    pub fn save(&self, position: &Position, rows: u64) -> Result<(), String> {
        let checkpoint = Checkpoint { source: self.source.clone(), position: position.clone(), rows };
        let failed = |e: std::io::Error| format!("cannot write the checkpoint {}: {e}", self.path.display());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let partial = self.path.with_extension("json.partial");
        std::fs::write(&partial, serde_json::to_vec_pretty(&checkpoint).unwrap_or_default()).map_err(failed)?;
        std::fs::rename(&partial, &self.path).map_err(failed)
    }

    /// The import finished: the next run of it starts from the beginning.
    pub fn clear(&self) -> Result<(), String> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove the checkpoint {}: {e}", self.path.display())),
        }
    }
}

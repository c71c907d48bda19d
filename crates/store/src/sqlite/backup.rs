//! A copy of the embedded store while it runs, and putting one back while it does not.
//!
//! - [`backup`] copies the database with SQLite's online backup in one step: one read
//!   transaction, so the copy is the store as it was when the step began (every write answered
//!   before then, nothing half-applied), while the server keeps writing to its WAL.
//! - [`restore`] puts a copy in place of a stopped store's file, keeping the file it replaces.
//! - [`DataDirLock`] is what tells them apart: a running server holds it, and `restore` refuses to
//!   run without it.
//!
//! Each writes to a file beside its target first and renames it into place when it is complete
//! and on disk, so an interruption leaves the target as it was.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// The lock file in a data directory that a running server holds.
const LOCK_FILE: &str = "parley.lock";

/// An exclusive hold on a data directory's store, released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of the directory (created if missing), or says that another process has it.
    pub fn take(dir: &Path) -> Result<DataDirLock, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(format!("the store in {} is in use by a running parley; stop it first", dir.display()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

/// What a backup copied.
#[derive(Debug, Clone, Copy)]
pub struct Copied {
    pub bytes: u64,
    pub took: Duration,
}

/// Copies the store at `database` into `target` (replaced if it exists), consistently, while
/// other processes read and write the store.
pub fn backup(database: &Path, target: &Path) -> Result<Copied, String> {
    let started = Instant::now();
    if !database.is_file() {
        return Err(format!("there is no store at {}", database.display()));
    }
    let source = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open {}: {e}", database.display()))?;
    source.busy_timeout(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let partial = partial_copy(target);
    let _ = std::fs::remove_file(&partial);
    let copied = (|| -> rusqlite::Result<()> {
        let mut copy = Connection::open(&partial)?;
        {
            let backup = Backup::new(&source, &mut copy)?;
            // Every page in one step: one read transaction, one moment of the store. A step the
            // store is too busy for is tried again.
            while backup.step(-1)? != StepResult::Done {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // A copy that needs no WAL beside it: one file.
        copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
        copy.close().map_err(|(_, e)| e)
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("cannot copy {}: {e}", database.display()));
    }
    put_in_place(&partial, target)?;
    let bytes = std::fs::metadata(target).map(|m| m.len()).unwrap_or_default();
    Ok(Copied { bytes, took: started.elapsed() })
}

/// Puts the copy `source` in place of the store at `database`, whose directory the caller holds
/// locked. The file it replaces (and its WAL) is kept beside it, named `….before-restore`.
pub fn restore(source: &Path, database: &Path, _lock: &DataDirLock) -> Result<Option<PathBuf>, String> {
    check(source)?;
    let incoming = beside(database, "restoring");
    std::fs::copy(source, &incoming).map_err(|e| format!("cannot copy {}: {e}", source.display()))?;
    File::open(&incoming).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
    let kept = if database.exists() {
        let kept = beside(database, "before-restore");
        std::fs::rename(database, &kept).map_err(|e| format!("cannot move {} aside: {e}", database.display()))?;
        // The old file's WAL and index belong to it, never to the copy.
        for suffix in ["wal", "shm"] {
            let side = with_suffix(database, &format!("-{suffix}"));
            if side.exists() {
                let _ = std::fs::rename(&side, with_suffix(&kept, &format!("-{suffix}")));
            }
        }
        Some(kept)
    } else {
        None
    };
    put_in_place(&incoming, database)?;
    Ok(kept)
}

/// Whether a file is a copy of a parley store that SQLite finds whole.
fn check(source: &Path) -> Result<(), String> {
    let not = |why: String| format!("{} is not a parley backup: {why}", source.display());
    let connection =
        Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| not(e.to_string()))?;
    let versions: i64 = connection
        .query_row("SELECT COUNT(*) FROM parley_migrations", [], |row| row.get(0))
        .map_err(|e| not(e.to_string()))?;
    if versions == 0 {
        return Err(not("it has no schema".into()));
    }
    let verdict: String =
        connection.query_row("PRAGMA quick_check", [], |row| row.get(0)).map_err(|e| not(e.to_string()))?;
    if verdict != "ok" {
        return Err(not(format!("SQLite finds it damaged ({verdict})")));
    }
    Ok(())
}

/// Moves a complete file into place, on disk before and after.
fn put_in_place(from: &Path, to: &Path) -> Result<(), String> {
    File::open(from).and_then(|f| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", from.display()))?;
    std::fs::rename(from, to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Where a backup to `target` is written until it is whole; an interrupted backup removes it.
pub fn partial_copy(target: &Path) -> PathBuf {
    beside(target, "partial")
}

fn beside(path: &Path, what: &str) -> PathBuf {
    with_suffix(path, &format!(".{what}"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::take(dir.path()).unwrap();
        assert!(DataDirLock::take(dir.path()).unwrap_err().contains("in use by a running parley"));
        drop(first);
        DataDirLock::take(dir.path()).unwrap();
    }

    #[test]
    fn a_file_that_is_no_store_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DataDirLock::take(dir.path()).unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database at all, just text").unwrap();
        let database = dir.path().join("parley.db");
        let error = restore(&junk, &database, &lock).unwrap_err();
        assert!(error.contains("is not a parley backup"), "{error}");
        assert!(!database.exists(), "nothing was put in place");
        // A database, but not parley's: without its migrations, or with none applied.
        let other = dir.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let error = restore(&other, &database, &lock).unwrap_err();
        assert!(error.contains("is not a parley backup: no such table: parley_migrations"), "{error}");
        let empty = dir.path().join("empty.db");
        Connection::open(&empty).unwrap().execute_batch("CREATE TABLE parley_migrations (version INTEGER)").unwrap();
        let error = restore(&empty, &database, &lock).unwrap_err();
        assert!(error.contains("it has no schema"), "{error}");
        assert!(!database.exists(), "nothing was put in place");
        let error = backup(&dir.path().join("missing.db"), &dir.path().join("copy.db")).unwrap_err();
        assert!(error.contains("there is no store"), "{error}");
    }
}

//! The embedded engine's connections: one writer thread that commits concurrent writes together
//! in groups (one fsync for many requests), a checkpointer thread that copies the write-ahead log
//! back into the database off the writer's path, and a small pool of read connections used from
//! blocking tasks. WAL lets readers run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use parley_core::Cause;

use crate::error::{Constraint, StoreError, StoreResult};
use crate::migrations::{Migration, SQLITE};

/// The most writes committed in one transaction.
const MAX_GROUP: usize = 1024;

/// When the write-ahead log is copied back into the database, in log pages.
#[derive(Debug, Clone, Copy)]
struct Checkpoints {
    /// The checkpointer thread is woken once the log holds this many.
    background: i32,
    /// The writer checkpoints by itself past this many: background checkpoints copy most of the
    /// log, but under a steady stream of commits they never find it complete, and only a
    /// complete checkpoint lets the log start again from its beginning. Each time costs the
    /// writer a pause (the pages the checkpointer has not reached, and an fsync of the
    /// database), so it is rare: 32 000 pages is 128 MiB of log.
    writer: i32,
}

const CHECKPOINTS: Checkpoints = Checkpoints { background: 1000, writer: 32_000 };

/// The writer's settings beyond durability: a page cache of 32 MiB (negative: KiB), so that the
/// index pages updates and inserts touch are found in memory rather than read back from the
/// file; and savepoint journals in memory, since every write runs under a savepoint and each page
/// it first changes is copied there (to a temporary file otherwise).
const WRITER_SETTINGS: &str = "PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;";

/// Prepared statements each connection keeps: one per shape of update, list query and so on.
const STATEMENT_CACHE: usize = 256;

/// A write, run inside the group's transaction under its own savepoint (or not at all when it is
/// given no connection because the transaction could not begin); it returns the function that
/// answers its caller once the group's commit has (or has not) succeeded.
type Job = Box<dyn FnOnce(Option<&mut Connection>) -> Box<dyn FnOnce(Option<StoreError>) + Send> + Send>;

/// What the writer thread is sent.
enum Message {
    Job(Job),
    /// Finish what is queued, refuse the rest, checkpoint, and answer once the thread is done.
    Close(oneshot::Sender<()>),
}

/// Connections to one SQLite file.
pub struct Engine {
    path: PathBuf,
    writer: mpsc::UnboundedSender<Message>,
    readers: Arc<Mutex<Vec<Connection>>>,
    counters: Arc<Counters>,
}

/// The upper bounds, in seconds, of the buckets of commit durations.
pub const COMMIT_BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0];

/// What the writer has done since the engine opened: how well writes are grouped, and how long
/// their transactions took from `BEGIN` to a durable `COMMIT`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Transactions committed (one fsync of the log each).
    pub groups: u64,
    /// Writes committed in them.
    pub writes: u64,
    /// How many committed transactions took at most each bound of [`COMMIT_BUCKETS`] (not
    /// cumulative; longer ones are in none).
    pub commit_buckets: [u64; COMMIT_BUCKETS.len()],
    /// The time all of them took, in microseconds.
    pub commit_micros: u64,
}

#[derive(Default)]
struct Counters {
    groups: AtomicU64,
    writes: AtomicU64,
    commit_buckets: [AtomicU64; COMMIT_BUCKETS.len()],
    commit_micros: AtomicU64,
}

impl Engine {
    /// Opens (creating if needed) the database file, applies migrations and starts the writer.
    pub fn open(path: &Path) -> StoreResult<Engine> {
        Engine::open_with(path, CHECKPOINTS)
    }

    fn open_with(path: &Path, checkpoints: Checkpoints) -> StoreResult<Engine> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut writer = Connection::open(path).map_err(|e| cannot_open(path, e))?;
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                 PRAGMA secure_delete = ON;",
            )
            ?;
        writer.execute_batch(WRITER_SETTINGS)?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&mut writer, SQLITE)?;
        refresh_statistics(&writer);
        let checkpointer = start_checkpointer(&mut writer, path, checkpoints)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let written = Arc::clone(&counters);
        thread::Builder::new()
            .name("parley-sqlite-writer".into())
            .spawn(move || write_loop(writer, checkpointer, receiver, &written))
            .map_err(|e| StoreError::internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Engine { path: path.to_owned(), writer: sender, readers: Arc::new(Mutex::new(Vec::new())), counters })
    }

    /// Groups and writes committed so far.
    pub fn stats(&self) -> WriteStats {
        WriteStats {
            groups: self.counters.groups.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            commit_buckets: std::array::from_fn(|i| self.counters.commit_buckets[i].load(Ordering::Relaxed)),
            commit_micros: self.counters.commit_micros.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` in the writer's next group; answers once the group is durable.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn: Option<&mut Connection>| {
            let result = match conn.map(|conn| {
                let begun = run(conn, "SAVEPOINT job");
                (conn, begun)
            }) {
                Some((conn, Ok(()))) => {
                    let result = work(conn);
                    let end = match &result {
                        Ok(_) => run(conn, "RELEASE job"),
                        Err(_) => run(conn, "ROLLBACK TO job").and_then(|()| run(conn, "RELEASE job")),
                    };
                    end.map_err(StoreError::from).and(result)
                }
                Some((_, Err(e))) => Err(StoreError::from(e)),
                None => Err(StoreError::unavailable("the write transaction could not begin")),
            };
            Box::new(move |commit_failure: Option<StoreError>| {
                let _ = answer.send(match commit_failure {
                    Some(failure) => Err(failure),
                    None => result,
                });
            })
        });
        self.writer.send(Message::Job(job)).map_err(|_| StoreError::unavailable("the writer has stopped"))?;
        answered.await.map_err(|_| StoreError::unavailable("the writer has stopped"))?
    }

    /// Lets the writer commit every write sent before this call, then stops it: later writes
    /// fail as unavailable. The write-ahead log is folded into the database file on the way out.
    /// Returns once the writer thread has finished; at once when it already has.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.writer.send(Message::Close(done)).is_ok() {
            let _ = finished.await;
        }
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }

    /// Runs `work` on a read connection in a blocking task.
    pub async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().map_err(|_| StoreError::internal("reader pool poisoned"))?.pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&path)?,
            };
            let result = work(&mut conn);
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::internal(format!("read task failed: {e}")))?
    }
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| cannot_open(path, e))?;
    conn.execute_batch("PRAGMA busy_timeout = 10000;")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    super::functions::register(&conn)?;
    Ok(conn)
}

/// The database file could not be opened.
fn cannot_open(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(format!("cannot open {}: {error}", path.display()))
}

/// Runs a statement without parameters or rows through the statement cache: the writer runs
/// the same few transaction statements for every write, and parsing them each time showed in
/// profiles.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Starts the checkpointer: a thread with its own connection, woken by the writer's log hook
/// once the log holds `checkpoints.background` pages, that copies the log into the database while
/// the writer goes on committing. Replaces SQLite's automatic checkpoint, which would do that
/// work, and its extra fsync, on the writer's thread inside a commit. The thread ends once the
/// hook is dropped (see [`write_loop`] on closing).
///
/// Only a checkpoint that copies the whole log lets the log start again from its beginning, and
/// under a steady stream of commits the checkpointer never finds it whole; so the writer does
/// that last step itself once the log passes `checkpoints.writer` pages, copying what the
/// checkpointer has not reached and syncing the database file. SQLite syncs that file only at
/// the end of a checkpoint that reaches the end of the log, so the checkpointer's passes left
/// the pages they copied unwritten in the OS cache and the writer's sync had to write all of
/// them: about 100 ms for a 128 MiB log, seen as the p99.9 of updates. In the last quarter
/// before the threshold the checkpointer therefore syncs the file after each pass itself.
/// Syncing after every pass would write often-changed pages again and again and slow the
/// writer's own syncs (raw-engine updates fell by a fifth).
fn start_checkpointer(
    writer: &mut Connection,
    path: &Path,
    checkpoints: Checkpoints,
) -> StoreResult<thread::JoinHandle<()>> {
    let checkpointer = Connection::open(path).map_err(|e| cannot_open(path, e))?;
    checkpointer.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;")?;
    let database = std::fs::File::open(path).map_err(|e| cannot_open(path, e))?;
    let sync_from = i64::from(checkpoints.writer) * 3 / 4;
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    let thread = thread::Builder::new()
        .name("parley-sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                // The row: busy, pages in the log, pages copied back.
                let outcome = checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(1));
                match outcome {
                    Ok(log) if log >= sync_from => {
                        if let Err(e) = database.sync_data() {
                            tracing::warn!(error = %e, "syncing the database after a checkpoint failed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "background checkpoint failed; the writer will checkpoint"),
                }
                // Lets a few commits through before the next pass rather than chasing each one.
                thread::sleep(Duration::from_millis(20));
            }
        })
        .map_err(|e| StoreError::internal(format!("cannot start the checkpoint thread: {e}")))?;
    writer.wal_hook(Some(move |wal: &mut Wal, pages: i32| {
        if pages >= checkpoints.writer {
            // Busy while the checkpointer runs; then the next commit tries again. An error
            // returned from this hook would fail a commit that has happened, so none is.
            if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                tracing::debug!(error = %e, "writer checkpoint deferred");
            }
        } else if pages >= checkpoints.background {
            let _ = wake.try_send(());
        }
        Ok(())
    }))?;
    Ok(thread)
}

/// How often, at most, the writer checks whether the planner's statistics need refreshing.
const STATISTICS_EVERY: Duration = Duration::from_secs(600);

/// Refreshes the query planner's statistics of the tables that were never analysed or whose size
/// changed many times over since (SQLite's `PRAGMA optimize`), so that it runs rarely: the
/// analysis reads whole indexes (about 1.5 s for a million records) and holds up writes meanwhile.
/// A sampled analysis is no substitute: it misjudges how many records a project has. OData reads
/// span several projects and have several indexes to choose from (by project, by time, by
/// intent); without statistics SQLite takes the per-project one and sorts every record of those
/// projects for each page, with them it reads the index by time or by intent in order.
fn refresh_statistics(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA optimize = 0x10002;") {
        tracing::warn!(error = %e, "refreshing the planner's statistics failed");
    }
}

/// Takes every write waiting, runs them in one transaction, commits once, then answers them all.
/// On [`Message::Close`] it refuses further messages, still runs those already queued, stops the
/// checkpointer (by dropping the hook that wakes it, then waiting for its last pass: a checkpoint
/// running elsewhere would make the writer's own one give up), folds the whole log in, and ends.
/// Now and then, after a commit, it refreshes the planner's statistics.
fn write_loop(
    mut conn: Connection,
    checkpointer: thread::JoinHandle<()>,
    mut messages: mpsc::UnboundedReceiver<Message>,
    counters: &Counters,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut closers = Vec::new();
    let mut refreshed = Instant::now();
    let mut take =
        |message: Message, group: &mut Vec<Job>, messages: &mut mpsc::UnboundedReceiver<Message>| match message {
            Message::Job(job) => group.push(job),
            Message::Close(done) => {
                messages.close();
                closers.push(done);
            }
        };
    while let Some(first) = messages.blocking_recv() {
        take(first, &mut group, &mut messages);
        while group.len() < MAX_GROUP {
            match messages.try_recv() {
                Ok(message) => take(message, &mut group, &mut messages),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            commit_group(&mut conn, &mut group, counters);
        }
        if refreshed.elapsed() >= STATISTICS_EVERY {
            refresh_statistics(&conn);
            refreshed = Instant::now();
        }
    }
    if let Err(e) = conn.wal_hook(None::<fn(&mut Wal, i32) -> rusqlite::Result<()>>) {
        tracing::warn!(error = %e, "could not stop the checkpointer");
    } else if checkpointer.join().is_err() {
        tracing::warn!("the checkpointer thread panicked");
    }
    // The row's first column is 1 when the checkpoint could not finish (SQLITE_BUSY).
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0)) {
        Ok(0) => {}
        Ok(_) => tracing::warn!("could not fold the whole write-ahead log into the database on close: busy"),
        Err(e) => tracing::warn!(error = %e, "could not fold the write-ahead log into the database on close"),
    }
    drop(conn);
    for done in closers {
        let _ = done.send(());
    }
}

fn commit_group(conn: &mut Connection, group: &mut Vec<Job>, counters: &Counters) {
    let began = std::time::Instant::now();
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        let failure = StoreError::from(e);
        for job in group.drain(..) {
            job(None)(Some(failure.clone()));
        }
        return;
    }
    let answers: Vec<_> = group.drain(..).map(|job| job(Some(&mut *conn))).collect();
    let failure = run(conn, "COMMIT").err().map(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        StoreError::from(e)
    });
    if failure.is_none() {
        let took = began.elapsed();
        counters.groups.fetch_add(1, Ordering::Relaxed);
        counters.writes.fetch_add(answers.len() as u64, Ordering::Relaxed);
        counters.commit_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if let Some(bucket) = COMMIT_BUCKETS.iter().position(|bound| took.as_secs_f64() <= *bound) {
            counters.commit_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
    }
    for answer in answers {
        answer(failure.clone());
    }
}

/// Applies every migration the database has not recorded, oldest first, each in its own
/// transaction (see [`crate::migrations`] on gaps between versions).
pub fn migrate(conn: &mut Connection, migrations: &[Migration]) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS parley_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    ?;
    let applied = applied_versions(conn)?;
    for migration in crate::migrations::missing(migrations, &applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration.sql)
            .map_err(|e| StoreError::internal(format!("migration {} failed: {e}", migration.name)))?;
        tx.execute(
            "INSERT INTO parley_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                migration.version,
                migration.name,
                parley_core::value::unix_millis(parley_core::value::now())
            ],
        )?;
        tx.commit()?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    Ok(())
}

/// The versions recorded as applied.
pub fn applied_versions(conn: &Connection) -> StoreResult<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT version FROM parley_migrations ORDER BY version")?;
    stmt.query_map([], |row| row.get(0)).and_then(|rows| rows.collect()).map_err(StoreError::from)
}

/// Sorts an SQLite error by its code: a constraint violation is a conflict (the rules check the
/// uniqueness a client can run into themselves, so this one is a clash of generated values), a
/// busy or unreachable file is unavailability, a full disk is fullness, the rest is internal.
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let code = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
            _ => None,
        };
        if let rusqlite::Error::SqliteFailure(_, Some(message)) = &error
            && let Some(reason) = message.strip_prefix(super::functions::EVALUATION_PREFIX)
        {
            return StoreError::Evaluation(reason.to_owned());
        }
        match code {
            Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(Constraint::Other(error.to_string())),
            Some(ErrorCode::DiskFull) => StoreError::Full(Cause::with_source("", error)),
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure,
            ) => StoreError::Unavailable(Cause::with_source("", error)),
            _ => StoreError::Internal(Cause::with_source("", error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(version: i64, sql: &'static str) -> Migration {
        Migration { version, name: "test", sql }
    }

    /// Writes about `pages` pages of log from eight concurrent writers; every write must succeed.
    async fn fill(engine: &Arc<Engine>, pages: usize) {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let engine = Arc::clone(engine);
                tokio::spawn(async move {
                    for _ in 0..pages / 25 / 8 {
                        engine
                            .write(|conn| {
                                conn.execute("INSERT INTO filler (data) VALUES (zeroblob(100000))", [])
                                    .map(drop)
                                    .map_err(StoreError::from)
                            })
                            .await
                            .expect("a write");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("every write succeeds");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_copied_back_off_the_writer_and_writes_are_grouped() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("parley.db");
        // Smaller thresholds than in service, so that the test writes megabytes, not hundreds.
        let checkpoints = Checkpoints { background: 500, writer: 4000 };
        let engine = Arc::new(Engine::open_with(&path, checkpoints).expect("the engine opens"));
        engine
            .write(|conn| conn.execute_batch("CREATE TABLE filler (data BLOB)").map_err(StoreError::from))
            .await
            .expect("a table");
        let before = std::fs::metadata(&path).expect("the file").len();
        fill(&engine, 2 * checkpoints.background as usize).await;
        // Nothing but the checkpointer moves pages from the log into the file, below the
        // writer's own threshold.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).expect("the file").len() < before + 2 * 1024 * 1024 {
            assert!(Instant::now() < deadline, "no checkpoint copied the log back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Past the writer's own threshold, while the checkpointer is busy too: no write may fail,
        // and the log starts again from its beginning rather than growing: the file holds well
        // under the pages written.
        fill(&engine, 4 * checkpoints.writer as usize).await;
        let log_pages = std::fs::metadata(path.with_file_name("parley.db-wal")).expect("the log").len() / 4096;
        assert!(log_pages < 2 * checkpoints.writer as u64, "the log grew to {log_pages} pages");

        let stats = engine.stats();
        let writes: Vec<_> = (0..50)
            .map(|i| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    engine
                        .write(move |conn| {
                            conn.execute("INSERT INTO filler (data) VALUES (?1)", [i]).map_err(StoreError::from)
                        })
                        .await
                })
            })
            .collect();
        for write in writes {
            write.await.expect("a task").expect("a write");
        }
        let after = engine.stats();
        assert_eq!(after.writes - stats.writes, 50);
        assert!(after.groups - stats.groups < 50, "50 concurrent writes took {} commits", after.groups - stats.groups);

        // Closing stops the checkpointer and folds the whole log into the file.
        engine.close().await;
        let log = path.with_file_name("parley.db-wal");
        assert_eq!(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0), 0, "the log is empty after closing");
        let count: i64 = Connection::open(&path)
            .and_then(|conn| conn.query_row("SELECT count(*) FROM filler", [], |row| row.get(0)))
            .expect("the file reads");
        assert!(count > 50, "the rows are in the file: {count}");
    }

    #[test]
    fn a_missing_version_is_applied_after_newer_ones() {
        let mut conn = Connection::open_in_memory().unwrap();
        let one = migration(1, "CREATE TABLE a (x INTEGER)");
        let four = migration(4, "CREATE TABLE d (x INTEGER)");
        migrate(&mut conn, &[one, four]).unwrap();
        let two = migration(2, "CREATE TABLE b (x INTEGER)");
        migrate(&mut conn, &[one, two, four]).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM parley_migrations ORDER BY version")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(versions, [1, 2, 4]);
        conn.execute("INSERT INTO b (x) VALUES (1)", []).unwrap();
        migrate(&mut conn, &[one, two, four]).unwrap();
    }
}

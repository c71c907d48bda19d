//! The PostgreSQL engine's connections: a deadpool pool of tokio-postgres clients, each with its
//! own cache of prepared statements; the migration runner; and the one mapping of driver errors
//! to storage errors.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, NoTls};

use parley_core::Cause;

use crate::error::{Constraint, StoreError, StoreResult};
use crate::migrations::Migration;

/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection before it is told the store is unavailable.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Statements cached per connection before the cache is emptied. Record statements vary with the
/// sort, the filter and the fields an update names, so their number has no fixed bound.
const STATEMENT_CACHE_LIMIT: usize = 512;
/// The advisory lock that serialises schema migration and bootstrap between nodes ("parley").
pub const LOCK_KEY: i64 = 0x7061_726c_6579;

/// A pool of connections to one database.
pub struct Engine {
    pool: Pool,
    target: String,
}

impl Engine {
    /// Parses the URL and builds a pool of at most `pool_size` connections. Connections are made
    /// on demand; a connection found closed when it is taken from the pool is replaced, so the
    /// pool recovers by itself once the database is back.
    pub fn new(url: &str, pool_size: usize) -> StoreResult<Engine> {
        let mut config: Config =
            url.parse().map_err(|e| StoreError::internal(format!("invalid PostgreSQL URL: {}", one_line(&e))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("parley");
        }
        let target = describe(&config);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::internal(format!("cannot build the connection pool: {e}")))?;
        Ok(Engine { pool, target })
    }

    /// `host:port` of the database, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes the pool: connections in use finish what they run, then every call is unavailable.
    /// The pool's connections now.
    pub fn pool_telemetry(&self) -> crate::traits::PoolTelemetry {
        let status = self.pool.status();
        crate::traits::PoolTelemetry { size: status.size, available: status.available, max_size: status.max_size }
    }

    pub fn close(&self) {
        self.pool.close();
    }

    /// A connection from the pool.
    pub async fn get(&self) -> StoreResult<Object> {
        let client = self.pool.get().await.map_err(|e| pool_error(e, &self.target))?;
        if client.statement_cache.size() > STATEMENT_CACHE_LIMIT {
            client.statement_cache.clear();
        }
        Ok(client)
    }
}

/// Creates the database `url` names unless it exists, through the server's `postgres`
/// database; answers whether it was created. The role needs the right to create databases.
pub async fn create_database(url: &str) -> StoreResult<bool> {
    let config: Config =
        url.parse().map_err(|e| StoreError::internal(format!("invalid PostgreSQL URL: {}", one_line(&e))))?;
    let name = match (config.get_dbname(), config.get_user()) {
        (Some(name), _) | (None, Some(name)) => name.to_owned(),
        (None, None) => return Err(StoreError::internal("the PostgreSQL URL names no database")),
    };
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    if maintenance.get_connect_timeout().is_none() {
        maintenance.connect_timeout(CONNECT_TIMEOUT);
    }
    let target = describe(&config);
    let (client, connection) = maintenance.connect(NoTls).await.map_err(|e| {
        StoreError::internal(format!("cannot connect to PostgreSQL at {target}: {}", postgres_said(&e)))
    })?;
    let connection = tokio::spawn(connection);
    let exists: bool =
        client.query_one("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", &[&name]).await?.get(0);
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
            .map_err(|e| StoreError::internal(format!("cannot create the database {quoted}: {}", postgres_said(&e))))?;
    }
    drop(client);
    let _ = connection.await;
    Ok(!exists)
}

/// The hosts and ports a configuration names, as `host:port[,host:port…]`.
fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What PostgreSQL itself said, in one line: its message, code, detail and hint, and what to do
/// about the mistakes a first start makes (a database or role that does not exist, a wrong
/// password); the driver's own words otherwise, with their cause ("db error" alone says nothing).
pub(super) fn postgres_said(error: &tokio_postgres::Error) -> String {
    let Some(db) = error.as_db_error() else {
        let mut text = one_line(error);
        let mut cause = std::error::Error::source(error);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&one_line(e));
            cause = e.source();
        }
        return text;
    };
    let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(detail) = db.detail() {
        text.push_str(&format!("; {detail}"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    let advice = match db.code() {
        c if *c == SqlState::INVALID_CATALOG_NAME => Some(
            "create it with `parley migrate --create-database` (the role needs CREATEDB) or `createdb`, \
             then start again",
        ),
        c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            Some("check the user in the database URL, or create the role (`createuser`)")
        }
        c if *c == SqlState::INVALID_PASSWORD => Some("check the password in the database URL"),
        _ => None,
    };
    if let Some(advice) = advice {
        text.push_str(&format!(": {advice}"));
    }
    one_line(&text)
}

/// Applies every migration the database has not recorded, oldest first, each in its own
/// transaction (see [`crate::migrations`] on gaps between versions). An advisory lock keeps nodes
/// that start together from applying the same migration twice.
pub async fn migrate(client: &mut Object, migrations: &[Migration]) -> StoreResult<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS parley_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)",
    )
    .await
    ?;
    tx.commit().await?;
    for migration in migrations {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
        let applied: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM parley_migrations WHERE version = $1)", &[&migration.version])
            .await?
            .get(0);
        if applied {
            tx.commit().await?;
            continue;
        }
        tx.batch_execute(migration.sql)
            .await
            .map_err(|e| StoreError::internal(format!("migration {} failed: {}", migration.name, postgres_said(&e))))?;
        tx.execute(
            "INSERT INTO parley_migrations (version, name, applied_at) VALUES ($1, $2, now())",
            &[&migration.version, &migration.name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
    super::citus::lay_out(&tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The versions recorded as applied.
pub async fn applied_versions(client: &Object) -> StoreResult<Vec<i64>> {
    let statement = client.prepare_cached("SELECT version FROM parley_migrations ORDER BY version").await?;
    Ok(client.query(&statement, &[]).await?.iter().map(|row| row.get(0)).collect())
}

/// Sorts a driver error by its kind and SQLSTATE: a unique violation is a conflict named by its
/// constraint; a lost or refused connection, a server shutting down or out of connections, and
/// a transaction the server asks to retry are unavailability; the rest is internal. The error
/// stays the source of the one-line description.
impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        match classify(&error) {
            Class::Conflict(constraint) => StoreError::Conflict(constraint),
            Class::Evaluation => {
                StoreError::Evaluation(error.as_db_error().map(|db| db.message().to_owned()).unwrap_or_default())
            }
            Class::Unsupported => {
                StoreError::Unsupported(error.as_db_error().map(|db| db.message().to_owned()).unwrap_or_default())
            }
            Class::Unavailable => StoreError::Unavailable(Cause::with_source(postgres_said(&error), error)),
            Class::Full => StoreError::Full(Cause::with_source(postgres_said(&error), error)),
            Class::Internal => StoreError::Internal(Cause::with_source(postgres_said(&error), error)),
        }
    }
}

enum Class {
    Conflict(Constraint),
    /// A query's arithmetic failed on the values (division by zero, a number or date-time out
    /// of range, a pattern the server's regular expressions refuse).
    Evaluation,
    /// The server cannot plan the query (feature_not_supported, as Citus answers some
    /// correlated subqueries).
    Unsupported,
    Unavailable,
    Full,
    Internal,
}

fn classify(error: &tokio_postgres::Error) -> Class {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return Class::Conflict(match db.constraint() {
                Some(name) => Constraint::named(name),
                None => Constraint::Other(one_line(&db.message())),
            });
        }
        let evaluation = [
            SqlState::DIVISION_BY_ZERO,
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            SqlState::DATETIME_FIELD_OVERFLOW,
            SqlState::INTERVAL_FIELD_OVERFLOW,
            SqlState::INVALID_REGULAR_EXPRESSION,
        ];
        if evaluation.contains(code) {
            return Class::Evaluation;
        }
        if *code == SqlState::FEATURE_NOT_SUPPORTED {
            return Class::Unsupported;
        }
        // disk_full (53100); out of memory and too many connections are passing shortages.
        if *code == SqlState::DISK_FULL {
            return Class::Full;
        }
        let retry = [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ];
        if code.code().starts_with("08") || retry.contains(code) {
            return Class::Unavailable;
        }
        return Class::Internal;
    }
    if error.is_closed() || lost_connection(error) {
        return Class::Unavailable;
    }
    Class::Internal
}

/// Whether an I/O error is among the causes, as when the connection breaks or cannot be made.
fn lost_connection(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = error.source();
    while let Some(e) = cause {
        if e.is::<std::io::Error>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn pool_error(error: PoolError, target: &str) -> StoreError {
    match error {
        PoolError::Backend(e) => {
            let message = format!("cannot connect to PostgreSQL at {target}: {}", postgres_said(&e));
            match classify(&e) {
                Class::Unavailable => StoreError::Unavailable(Cause::with_source(message, e)),
                _ => StoreError::Internal(Cause::with_source(message, e)),
            }
        }
        PoolError::Timeout(kind) => {
            StoreError::unavailable(format!("no connection to PostgreSQL at {target} in time ({kind:?})"))
        }
        PoolError::Closed => StoreError::unavailable("the connection pool is closed"),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => StoreError::internal(one_line(&error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_every_host_with_its_port() {
        let config: Config = "postgres://u@db1:6000,db2/x".parse().unwrap();
        assert_eq!(describe(&config), "db1:6000,db2:5432");
        let config: Config = "host=db1,db2 port=7000 user=u".parse().unwrap();
        assert_eq!(describe(&config), "db1:7000,db2:7000");
        let config: Config = "postgres://u@localhost/x".parse().unwrap();
        assert_eq!(describe(&config), "localhost:5432");
    }

    #[test]
    fn a_bad_url_is_refused_before_connecting() {
        assert!(matches!(Engine::new("postgres://u@host:notaport/x", 2), Err(StoreError::Internal(_))));
    }
}

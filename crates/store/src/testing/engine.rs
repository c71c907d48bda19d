use super::postgres::{CITUS_URL, CITUS_WORKERS, POSTGRES_URL, PostgresDatabase};

/// The engine a test runs on.
#[derive(Debug, Clone)]
pub enum Engine {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh database on the PostgreSQL server this URL names.
    Postgres { admin_url: String },
    /// A fresh database on a Citus cluster: its coordinator, and its workers as `host:port`.
    Citus { admin_url: String, workers: Vec<String> },
}

impl Engine {
    /// PostgreSQL when `PARLEY_TEST_POSTGRES_URL` is set. Unset, the PostgreSQL variant of a test
    /// has nothing to run on and returns; in CI (`CI` set) that is a failure, never a skip.
    pub fn postgres() -> Option<Engine> {
        match std::env::var(POSTGRES_URL).ok().filter(|url| !url.is_empty()) {
            Some(admin_url) => Some(Engine::Postgres { admin_url }),
            None if std::env::var_os("CI").is_some() => panic!("{POSTGRES_URL} must be set in CI"),
            None => None,
        }
    }

    /// Citus when `PARLEY_TEST_CITUS_URL` names a coordinator, with the workers of
    /// `PARLEY_TEST_CITUS_WORKERS` (default: those of the cluster script, `127.0.0.1:55434` and
    /// `127.0.0.1:55435`). Unset, the Citus variant of a test returns at once, in CI too: a
    /// machine without Citus still runs every other variant.
    pub fn citus() -> Option<Engine> {
        let admin_url = std::env::var(CITUS_URL).ok().filter(|url| !url.is_empty())?;
        let workers = std::env::var(CITUS_WORKERS).unwrap_or_else(|_| "127.0.0.1:55434,127.0.0.1:55435".into());
        let workers = workers.split(',').map(str::trim).filter(|w| !w.is_empty()).map(str::to_owned).collect();
        Some(Engine::Citus { admin_url, workers })
    }

    /// A database of the test's own on a server engine, dropped with the value; `None` for SQLite,
    /// whose file the caller makes.
    pub async fn database(&self) -> Option<PostgresDatabase> {
        match self {
            Engine::Sqlite => None,
            Engine::Postgres { admin_url } => Some(PostgresDatabase::create(admin_url).await),
            Engine::Citus { admin_url, workers } => Some(PostgresDatabase::create_on_citus(admin_url, workers).await),
        }
    }
}

/// Runs each named test, an `async fn`, on a two-worker runtime once on SQLite (in a module
/// `on_sqlite`), once on PostgreSQL (in a module `on_postgres`, when [`Engine::postgres`] names
/// one) and once on Citus (in a module `on_citus`, when [`Engine::citus`] names a cluster).
///
/// `on_both_engines!(a, b)` gives each test the [`Engine`] itself.
/// `on_both_engines!(|engine| argument; a, b)` gives it what the expression `argument` makes of
/// the engine, such as a database opened on it.
#[macro_export]
macro_rules! on_both_engines {
    (|$engine:ident| $argument:expr; $($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let $engine = $crate::testing::Engine::Sqlite;
                    super::$test($argument).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some($engine) = $crate::testing::Engine::postgres() {
                        super::$test($argument).await
                    }
                }
            )*
        }
        mod on_citus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some($engine) = $crate::testing::Engine::citus() {
                        super::$test($argument).await
                    }
                }
            )*
        }
    };
    ($($test:ident),* $(,)?) => {
        $crate::on_both_engines!(|engine| engine; $($test),*);
    };
}

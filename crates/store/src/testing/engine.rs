use super::postgres::POSTGRES_URL;

/// The engine a test runs on.
#[derive(Debug, Clone)]
pub enum Engine {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh database on the PostgreSQL server this URL names.
    Postgres { admin_url: String },
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
}

/// Runs each named test, an `async fn`, on a two-worker runtime once on SQLite (in a module
/// `on_sqlite`) and once on PostgreSQL (in a module `on_postgres`, when [`Engine::postgres`] names
/// one).
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
    };
    ($($test:ident),* $(,)?) => {
        $crate::on_both_engines!(|engine| engine; $($test),*);
    };
}

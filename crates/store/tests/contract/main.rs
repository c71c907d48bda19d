//! The storage contract. Every test runs on SQLite (a file of its own) and, when
//! `PARLEY_TEST_POSTGRES_URL` names a PostgreSQL server, on PostgreSQL too (a database of its own,
//! created for the test and dropped after it). When the variable is set, a server that cannot be
//! reached fails the PostgreSQL tests. Where both engines run, one test also checks that they give
//! the very same answers to the same calls.

mod engines;
mod fixtures;
mod identity;
mod lifecycle;
mod odata;
mod paging;
mod pending;
mod projects;
mod records;
mod sessions;

use std::sync::Arc;

use parley_store::Store;
use parley_store::testing::{Engine, PostgresDatabase};

/// A fresh database for one test, and the store opened on it.
struct TestDb {
    store: Arc<dyn Store>,
    url: String,
    /// Whether the database is distributed (Citus), whose planner refuses some queries.
    distributed: bool,
    /// Declared last, so that the store closes before its database goes.
    _backing: Backing,
}

/// What holds the database: the SQLite file's directory, or the PostgreSQL database.
enum Backing {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { _database: PostgresDatabase },
}

impl TestDb {
    async fn open(engine: Engine) -> TestDb {
        let distributed = matches!(engine, Engine::Citus { .. });
        let (url, backing) = match engine.database().await {
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                (format!("sqlite://{}", dir.path().join("parley.db").display()), Backing::Sqlite { _dir: dir })
            }
            Some(database) => (database.url().to_owned(), Backing::Postgres { _database: database }),
        };
        TestDb { store: open(&url).await, url, distributed, _backing: backing }
    }

    /// Closes the store and opens the same database again, as a restart does.
    async fn reopen(&self) -> Arc<dyn Store> {
        self.store.close().await;
        open(&self.url).await
    }
}

async fn open(url: &str) -> Arc<dyn Store> {
    match parley_store::open(url, 4).await {
        Ok(store) => store,
        Err(e) => panic!("cannot open the store at {url}: {e}"),
    }
}

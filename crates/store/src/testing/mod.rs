//! Test support shared by the storage and HTTP test suites (feature `test-support`): the engines
//! a test runs on, a PostgreSQL database of its own per test, a proxy that cuts the database off,
//! and the fixtures every suite uses.

mod engine;
mod fixtures;
mod postgres;
mod proxy;

pub use engine::Engine;
pub use fixtures::{Rng, eventually, record, sqlite_connection};
pub use postgres::{PostgresDatabase, postgres_address, postgres_client, with_address, with_database};
pub use proxy::Proxy;

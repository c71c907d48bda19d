//! Versioned schema migrations, one list per engine, kept in step: both lists hold the same
//! versions with the same names (a test checks it).

/// One migration: its version, its name, and the SQL that applies it.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The embedded engine's migrations, oldest first.
pub static SQLITE: &[Migration] =
    &[Migration { version: 1, name: "initial", sql: include_str!("../migrations/sqlite/0001_initial.sql") }];

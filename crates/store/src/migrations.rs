//! Versioned schema migrations, one list per engine, kept in step: both lists hold the same
//! versions with the same names (a test checks it).

/// One migration: its version, its name, and the SQL that applies it.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The embedded engine's migrations, oldest first. Versions 2 and 3 are taken by work on other
/// branches; a version missing from a database is applied whatever newer ones it has.
pub static SQLITE: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/sqlite/0001_initial.sql") },
    Migration { version: 4, name: "odata_indexes", sql: include_str!("../migrations/sqlite/0004_odata_indexes.sql") },
];

/// The PostgreSQL engine's migrations, oldest first.
pub static POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/postgres/0001_initial.sql") },
    Migration { version: 4, name: "odata_indexes", sql: include_str!("../migrations/postgres/0004_odata_indexes.sql") },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(list: &[Migration]) -> Vec<(i64, &'static str)> {
        list.iter().map(|m| (m.version, m.name)).collect()
    }

    #[test]
    fn both_engines_have_the_same_migrations() {
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }

    #[test]
    fn versions_start_at_one_and_rise_strictly() {
        for list in [SQLITE, POSTGRES] {
            assert_eq!(list.first().map(|m| m.version), Some(1));
            assert!(list.windows(2).all(|pair| pair[0].version < pair[1].version));
        }
    }
}

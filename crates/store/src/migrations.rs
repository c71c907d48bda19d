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
pub static SQLITE: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/sqlite/0001_initial.sql") },
    Migration { version: 2, name: "lifecycle", sql: include_str!("../migrations/sqlite/0002_lifecycle.sql") },
];

/// The PostgreSQL engine's migrations, oldest first.
pub static POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/postgres/0001_initial.sql") },
    Migration { version: 2, name: "lifecycle", sql: include_str!("../migrations/postgres/0002_lifecycle.sql") },
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
    fn versions_rise_strictly_from_one() {
        for list in [SQLITE, POSTGRES] {
            let numbers: Vec<i64> = list.iter().map(|m| m.version).collect();
            let expected: Vec<i64> = (1..=list.len() as i64).collect();
            assert_eq!(numbers, expected);
        }
    }
}

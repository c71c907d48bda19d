//! Versioned schema migrations, one list per engine, kept in step: both lists hold the same
//! versions with the same names (a test checks it).
//!
//! Versions may have gaps: changes developed side by side reserve their numbers, and whichever
//! lands first leaves a hole for the other. The runners therefore apply every version that a
//! database has not recorded, oldest first, rather than only those above its highest one; a
//! migration must not depend on one with a higher number.

/// One migration: its version, its name, and the SQL that applies it.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The embedded engine's migrations, oldest first. A version missing from a database is applied
/// whatever newer ones it has, so that changes developed side by side can land in any order.
pub static SQLITE: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/sqlite/0001_initial.sql") },
    Migration { version: 2, name: "lifecycle", sql: include_str!("../migrations/sqlite/0002_lifecycle.sql") },
    Migration { version: 3, name: "identity", sql: include_str!("../migrations/sqlite/0003_identity.sql") },
    Migration { version: 4, name: "odata_indexes", sql: include_str!("../migrations/sqlite/0004_odata_indexes.sql") },
    Migration { version: 5, name: "project_keys", sql: include_str!("../migrations/sqlite/0005_project_keys.sql") },
    Migration {
        version: 6,
        name: "project_profile",
        sql: include_str!("../migrations/sqlite/0006_project_profile.sql"),
    },
    Migration { version: 7, name: "conversations", sql: include_str!("../migrations/sqlite/0007_conversations.sql") },
    Migration { version: 8, name: "steps", sql: include_str!("../migrations/sqlite/0008_steps.sql") },
    Migration { version: 9, name: "escalations", sql: include_str!("../migrations/sqlite/0009_escalations.sql") },
    Migration { version: 10, name: "goals", sql: include_str!("../migrations/sqlite/0010_goals.sql") },
    Migration { version: 11, name: "message_words", sql: include_str!("../migrations/sqlite/0011_message_words.sql") },
    Migration { version: 12, name: "goal_events", sql: include_str!("../migrations/sqlite/0012_goal_events.sql") },
    Migration { version: 13, name: "insights", sql: include_str!("../migrations/sqlite/0013_insights.sql") },
];

/// The PostgreSQL engine's migrations, oldest first.
pub static POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/postgres/0001_initial.sql") },
    Migration { version: 2, name: "lifecycle", sql: include_str!("../migrations/postgres/0002_lifecycle.sql") },
    Migration { version: 3, name: "identity", sql: include_str!("../migrations/postgres/0003_identity.sql") },
    Migration { version: 4, name: "odata_indexes", sql: include_str!("../migrations/postgres/0004_odata_indexes.sql") },
    Migration { version: 5, name: "project_keys", sql: include_str!("../migrations/postgres/0005_project_keys.sql") },
    Migration {
        version: 6,
        name: "project_profile",
        sql: include_str!("../migrations/postgres/0006_project_profile.sql"),
    },
    Migration { version: 7, name: "conversations", sql: include_str!("../migrations/postgres/0007_conversations.sql") },
    Migration { version: 8, name: "steps", sql: include_str!("../migrations/postgres/0008_steps.sql") },
    Migration { version: 9, name: "escalations", sql: include_str!("../migrations/postgres/0009_escalations.sql") },
    Migration { version: 10, name: "goals", sql: include_str!("../migrations/postgres/0010_goals.sql") },
    Migration {
        version: 11,
        name: "message_words",
        sql: include_str!("../migrations/postgres/0011_message_words.sql"),
    },
    Migration { version: 12, name: "goal_events", sql: include_str!("../migrations/postgres/0012_goal_events.sql") },
    Migration { version: 13, name: "insights", sql: include_str!("../migrations/postgres/0013_insights.sql") },
];

/// The migrations of `list` that a database with the `applied` versions still needs, oldest first.
pub fn missing<'a>(list: &'a [Migration], applied: &[i64]) -> impl Iterator<Item = &'a Migration> {
    list.iter().filter(move |m| !applied.contains(&m.version))
}

/// Whether a database with the `applied` versions has every migration of `list`: unavailable
/// (not ready) otherwise.
pub fn check_applied(list: &[Migration], applied: &[i64]) -> crate::StoreResult<()> {
    let lacking: Vec<i64> = missing(list, applied).map(|m| m.version).collect();
    if lacking.is_empty() {
        Ok(())
    } else {
        Err(crate::StoreError::unavailable(format!("the schema lacks migrations {lacking:?}")))
    }
}

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
            assert!(list.windows(2).all(|pair| pair[0].version < pair[1].version), "{:?}", versions(list));
        }
    }

    #[test]
    fn every_unrecorded_version_is_missing_even_below_the_highest() {
        let list = [
            Migration { version: 1, name: "one", sql: "" },
            Migration { version: 2, name: "two", sql: "" },
            Migration { version: 3, name: "three", sql: "" },
        ];
        let names = |applied: &[i64]| missing(&list, applied).map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(&[]), ["one", "two", "three"]);
        assert_eq!(names(&[1, 3]), ["two"]);
        assert_eq!(names(&[1, 2, 3]), Vec::<&str>::new());
    }
}

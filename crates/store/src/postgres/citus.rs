//! parley's layout on Citus (distributed PostgreSQL), applied by itself after the migrations
//! whenever the database has the `citus` extension, and a no-op on plain PostgreSQL.
//!
//! The rule, for every table of the schema that Citus does not hold yet: a table with a
//! `project_id` column holds a project's data and is distributed by it, co-located with
//! `records`, so that every statement about one project (an ingest with its pending updates, an
//! update, an erasure batch) stays on one shard; any other table is small and shared by every
//! project, and becomes a reference table, copied to every node. A later migration that adds a
//! table is laid out the same way the next time parley starts or migrates, with nothing to list.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::GenericClient;

use crate::error::{StoreError, StoreResult};

/// The table every project-owned table is co-located with.
const ANCHOR: &str = "records";
/// parley's own bookkeeping, read only on the coordinator.
const LOCAL: &[&str] = &["parley_migrations"];

/// How one table is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    Reference,
    ByProject,
}

/// Lays out every table Citus does not hold yet, in an order Citus accepts: a table after the
/// tables its foreign keys name, and `records` before the tables co-located with it.
pub async fn lay_out(client: &impl GenericClient) -> StoreResult<()> {
    let citus: bool =
        client.query_one("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')", &[]).await?.get(0);
    if !citus {
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT c.relname::text, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                 AND a.attname = 'project_id' AND NOT a.attisdropped) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
               AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid = c.oid)",
            &[],
        )
        .await?;
    let tables: BTreeMap<String, Layout> = rows
        .iter()
        .map(|row| {
            let by_project: bool = row.get(1);
            (row.get::<_, String>(0), if by_project { Layout::ByProject } else { Layout::Reference })
        })
        .filter(|(name, _)| !LOCAL.contains(&name.as_str()))
        .collect();
    if tables.is_empty() {
        return Ok(());
    }
    let edges = client
        .query(
            "SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c \
             WHERE c.contype = 'f' AND c.conrelid <> c.confrelid",
            &[],
        )
        .await?;
    let edges: Vec<(String, String)> = edges.iter().map(|edge| (edge.get(0), edge.get(1))).collect();
    for (name, layout) in order(tables, &edges)? {
        let statement = match layout {
            Layout::Reference => "SELECT create_reference_table($1::text::regclass)",
            Layout::ByProject if name == ANCHOR => "SELECT create_distributed_table($1::text::regclass, 'project_id')",
            Layout::ByProject => {
                "SELECT create_distributed_table($1::text::regclass, 'project_id', colocate_with => 'records')"
            }
        };
        client.query(statement, &[&name]).await.map_err(|e| {
            StoreError::internal(format!("laying out {name} on Citus failed: {}", super::engine::postgres_said(&e)))
        })?;
        tracing::info!(table = %name, layout = ?layout, "laid the table out on Citus");
    }
    Ok(())
}

/// The tables to lay out, in an order Citus accepts: each after the tables its foreign keys name
/// (`edges`: table, referenced table) among those still to lay out, and `records` before the
/// tables co-located with it. Foreign keys that form a cycle cannot be laid out.
fn order(mut pending: BTreeMap<String, Layout>, edges: &[(String, String)]) -> StoreResult<Vec<(String, Layout)>> {
    let mut needs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (table, target) in edges {
        needs.entry(table.clone()).or_default().insert(target.clone());
    }
    if pending.get(ANCHOR) == Some(&Layout::ByProject) {
        for (name, layout) in &pending {
            if *layout == Layout::ByProject && name != ANCHOR {
                needs.entry(name.clone()).or_default().insert(ANCHOR.to_owned());
            }
        }
    }
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready: Vec<String> = pending
            .keys()
            .filter(|name| needs.get(*name).is_none_or(|targets| targets.iter().all(|t| !pending.contains_key(t))))
            .cloned()
            .collect();
        if ready.is_empty() {
            let left: Vec<&String> = pending.keys().collect();
            return Err(StoreError::internal(format!(
                "cannot lay out {left:?} on Citus: their foreign keys form a cycle"
            )));
        }
        for name in ready {
            if let Some(layout) = pending.remove(&name) {
                ordered.push((name, layout));
            }
        }
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(list: &[(&str, Layout)]) -> BTreeMap<String, Layout> {
        list.iter().map(|(name, layout)| ((*name).to_owned(), layout.clone())).collect()
    }

    fn edges(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    fn position(ordered: &[(String, Layout)], name: &str) -> usize {
        ordered.iter().position(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} in {ordered:?}"))
    }

    #[test]
    fn referenced_tables_come_first_and_records_before_its_neighbours() {
        let pending = tables(&[
            ("tasks", Layout::ByProject),
            ("records", Layout::ByProject),
            ("projects", Layout::Reference),
            ("organisations", Layout::Reference),
            ("pending_updates", Layout::ByProject),
        ]);
        let fks = edges(&[
            ("projects", "organisations"),
            ("tasks", "projects"),
            ("tasks", "organisations"),
            ("pending_updates", "projects"),
        ]);
        let ordered = order(pending, &fks).unwrap();
        assert_eq!(ordered.len(), 5);
        assert!(position(&ordered, "organisations") < position(&ordered, "projects"));
        assert!(position(&ordered, "projects") < position(&ordered, "tasks"));
        assert!(position(&ordered, "records") < position(&ordered, "tasks"));
        assert!(position(&ordered, "records") < position(&ordered, "pending_updates"));
        assert_eq!(ordered[position(&ordered, "records")].1, Layout::ByProject);
    }

    #[test]
    fn tables_already_laid_out_do_not_hold_others_back() {
        let ordered = order(tables(&[("steps", Layout::ByProject)]), &edges(&[("steps", "projects")])).unwrap();
        assert_eq!(ordered, vec![("steps".to_owned(), Layout::ByProject)]);
    }

    #[test]
    fn a_cycle_of_foreign_keys_is_an_error_naming_the_tables() {
        let pending = tables(&[("a", Layout::Reference), ("b", Layout::Reference), ("c", Layout::Reference)]);
        let error = order(pending, &edges(&[("a", "b"), ("b", "a")])).unwrap_err().to_string();
        assert!(error.contains(r#"["a", "b"]"#) && error.contains("cycle"), "{error}");
    }
}

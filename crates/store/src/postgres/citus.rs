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
    let mut pending: BTreeMap<String, Layout> = rows
        .iter()
        .map(|row| {
            let by_project: bool = row.get(1);
            (row.get::<_, String>(0), if by_project { Layout::ByProject } else { Layout::Reference })
        })
        .filter(|(name, _)| !LOCAL.contains(&name.as_str()))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let edges = client
        .query(
            "SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c \
             WHERE c.contype = 'f' AND c.conrelid <> c.confrelid",
            &[],
        )
        .await?;
    let mut needs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for edge in &edges {
        needs.entry(edge.get(0)).or_default().insert(edge.get(1));
    }
    if pending.get(ANCHOR) == Some(&Layout::ByProject) {
        for (name, layout) in &pending {
            if *layout == Layout::ByProject && name != ANCHOR {
                needs.entry(name.clone()).or_default().insert(ANCHOR.to_owned());
            }
        }
    }
    while !pending.is_empty() {
        let ready: Vec<(String, Layout)> = pending
            .iter()
            .filter(|(name, _)| needs.get(*name).is_none_or(|targets| targets.iter().all(|t| !pending.contains_key(t))))
            .map(|(name, layout)| (name.clone(), layout.clone()))
            .collect();
        if ready.is_empty() {
            let left: Vec<&String> = pending.keys().collect();
            return Err(StoreError::internal(format!(
                "cannot lay out {left:?} on Citus: their foreign keys form a cycle"
            )));
        }
        for (name, layout) in ready {
            let statement = match layout {
                Layout::Reference => "SELECT create_reference_table($1::text::regclass)",
                Layout::ByProject if name == ANCHOR => {
                    "SELECT create_distributed_table($1::text::regclass, 'project_id')"
                }
                Layout::ByProject => {
                    "SELECT create_distributed_table($1::text::regclass, 'project_id', colocate_with => 'records')"
                }
            };
            client.query(statement, &[&name]).await.map_err(|e| {
                StoreError::internal(format!("laying out {name} on Citus failed: {}", super::engine::one_line(&e)))
            })?;
            tracing::info!(table = %name, layout = ?layout, "laid the table out on Citus");
            pending.remove(&name);
        }
    }
    Ok(())
}

//! `parley demo`, `parley import` and `parley export`, run as an operator runs them: the binary,
//! on the database of a running test server, whose API then shows what they did.

mod demo;
mod feeds;
mod files;

use std::path::Path;

use serde_json::Value as Json;

use crate::helpers::{Engine, TestApp, odata_values, spawn_app_on};

/// What a run of the binary did.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ok: {}\n--- stdout\n{}--- stderr\n{}", self.ok, self.stdout, self.stderr)
    }
}

/// `parley ARGS` on the app's database and data directory.
pub fn command(app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"));
    command
        .args(args)
        .args(["--database", app.database_url(), "--data-dir", &app.data_dir().display().to_string()])
        .env_remove("PARLEY_DATABASE_URL")
        .env_remove("PARLEY_DATA_DIR")
        .env_remove("PARLEY_CONFIG")
        .env_remove("PARLEY_IMPORT_APIKEY")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `parley ARGS` to its end.
pub async fn parley(app: &TestApp, args: &[&str]) -> Run {
    let output = command(app, args).output().await.expect("parley runs");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `parley ARGS`, which must succeed.
pub async fn parley_ok(app: &TestApp, args: &[&str]) -> Run {
    let run = parley(app, args).await;
    assert!(run.ok, "parley {}: {run:?}", args.join(" "));
    run
}

/// The rows of an NDJSON file.
pub fn ndjson(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// Rows as two installations can agree on them: without what each sets itself (ids, the
/// organisation, the project, bookkeeping times), ordered by `key`.
pub fn comparable(rows: Vec<Json>, key: &str) -> Vec<Json> {
    const OWN: [&str; 8] =
        ["id", "organisation", "organisationId", "projectId", "projectName", "updatedAt", "expiresAt", "lastChanged"];
    let mut rows: Vec<Json> = rows
        .into_iter()
        .map(|mut row| {
            let object = row.as_object_mut().expect("an object");
            for name in OWN {
                object.remove(name);
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| a[key].as_str().cmp(&b[key].as_str()));
    rows
}

/// How many entities an OData set holds in a project.
pub async fn count(app: &TestApp, set: &str, project: &str) -> u64 {
    let path = format!("/v2.4/{set}?$apply=filter(projectId%20eq%20'{project}')/aggregate($count%20as%20n)");
    let rows = odata_values(app, &path).await;
    rows.first().map_or(0, |row| row["n"].as_u64().expect("a count"))
}

/// A new app with the demo loaded (`records` over 30 days), and the demo's first (largest) project.
pub async fn demo_app(engine: Engine, records: u64) -> (TestApp, String) {
    let app = spawn_app_on(engine).await;
    let run = parley_ok(&app, &["demo", "--records", &records.to_string(), "--days", "30"]).await;
    let project = run.stdout.lines().find_map(|l| l.strip_prefix("project ")).unwrap().split(':').next().unwrap();
    (app, project.to_owned())
}

/// Exports a collection of a project as NDJSON into `dir`, answering the file.
pub async fn export(app: &TestApp, collection: &str, project: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let file = dir.join(format!("{name}.ndjson"));
    let output = file.display().to_string();
    parley_ok(app, &["export", "--collection", collection, "--project", project, "--output", &output]).await;
    file
}

/// Asserts that the rows that arrived are those that left, as [`comparable`] sees them, naming the
/// first row and property that differ.
#[track_caller]
pub fn assert_arrived(arrived: Vec<Json>, left: Vec<Json>, key: &str, what: &str) {
    let (arrived, left) = (comparable(arrived, key), comparable(left, key));
    for (a, b) in arrived.iter().zip(&left) {
        if a != b {
            let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
            let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            let differ: Vec<String> = names
                .into_iter()
                .filter(|n| a.get(*n) != b.get(*n))
                .map(|n| format!("{n}: {:?} != {:?}", a.get(n), b.get(n)))
                .collect();
            panic!("{what}: a row differs: {}", differ.join("; "));
        }
    }
    assert_eq!(arrived.len(), left.len(), "{what}: as many rows");
}

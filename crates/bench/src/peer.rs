//! The peer: SAP CAP serving the same records as an OData v4 entity, with `PATCH` by key. Its
//! model is made from parley's field catalogue, its data from the same generated records (CSV
//! initial data, loaded by `cds deploy`), and it runs on SQLite with synchronous=FULL like parley.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use parley_core::{RECORD_FIELDS, Value};

#[path = "../peer/cds.rs"]
mod cds;

use crate::Result;
use crate::process::Server;
use crate::workload::Workload;

/// Where the peer is installed: `target/bench-peer`.
pub fn directory(target: &Path) -> PathBuf {
    std::env::var_os("PARLEY_BENCH_PEER_DIR").map_or_else(|| target.join("bench-peer"), PathBuf::from)
}

/// Runs the setup script (installs CAP from npm unless installed already).
pub fn setup(dir: &Path) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peer/setup.sh");
    let status = Command::new("bash").arg(&script).env("PARLEY_BENCH_PEER_DIR", dir).status()?;
    if status.success() { Ok(()) } else { Err(format!("{} failed ({status})", script.display()).into()) }
}

/// The key of the peer's entity: the same pair that identifies an input in parley.
const KEYS: [&str; 2] = ["projectId", "inputId"];

/// The CDS model: every field of the record, keyed by project and input.
fn schema() -> String {
    cds::model("parley.bench", "Records", RECORD_FIELDS, &KEYS)
}

const SERVICE: &str = "using parley.bench as db from '../db/schema';\n\n\
service AnalyticsService @(path: '/odata/v4/analytics') {\n  entity Records as projection on db.Records;\n}\n";

/// The text of a value in CAP's CSV initial data (empty for null).
fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Text(text) => text.clone(),
        other => match other.to_json() {
            serde_json::Value::String(text) => text,
            json => json.to_string(),
        },
    }
}

/// Writes the model and the records, and loads them with `cds deploy` into a fresh database.
pub fn prepare(dir: &Path, workload: &Workload) -> Result<Duration> {
    std::fs::create_dir_all(dir.join("db/data"))?;
    std::fs::create_dir_all(dir.join("srv"))?;
    std::fs::write(dir.join("db/schema.cds"), schema())?;
    std::fs::write(dir.join("srv/service.cds"), SERVICE)?;
    for stale in ["db.sqlite", "db.sqlite-wal", "db.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let organisation = parley_core::ObjectId::generate();
    let settings = parley_core::ProjectSettings::default();
    let now = parley_core::value::now();
    let file = std::fs::File::create(dir.join("db/data/parley.bench-Records.csv"))?;
    let mut csv = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let order: Vec<usize> = KEYS
        .iter()
        .filter_map(|k| parley_core::field_index(k))
        .chain((0..RECORD_FIELDS.len()).filter(|&i| !KEYS.contains(&RECORD_FIELDS[i].name)))
        .collect();
    csv.write_record(order.iter().map(|&i| RECORD_FIELDS[i].name))?;
    for record in workload.data.arriving() {
        let json = record.to_json(&workload.project_ids[record.project]);
        let stamped = parley_core::NewRecord::parse(json)
            .map_err(|e| format!("a generated record is invalid: {e}"))?
            .stamp(organisation, &settings, now);
        csv.write_record(order.iter().map(|&i| csv_cell(stamped.get(i))))?;
    }
    csv.into_inner().map_err(|e| e.to_string())?.flush()?;

    let started = Instant::now();
    let status = Command::new("node")
        .arg("node_modules/@sap/cds/bin/deploy.js")
        .current_dir(dir)
        .env("NODE_ENV", "production")
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("cds deploy failed ({status})").into());
    }
    // The same secondary indexes parley has, so that the reads compare query engines, not a
    // missing index.
    let index = Command::new("node")
        .arg("-e")
        .arg(
            "const db = new (require('better-sqlite3'))('db.sqlite');\
             db.exec('CREATE INDEX records_contact ON parley_bench_Records (projectId, contactId, sessionId, inputId);\
                      CREATE INDEX records_timestamp ON parley_bench_Records (projectId, timestamp);');\
             db.close();",
        )
        .current_dir(dir)
        .status()?;
    if !index.success() {
        return Err("indexing the peer's table failed".into());
    }
    Ok(started.elapsed())
}

/// Starts CAP in production mode, bound to 127.0.0.1 by the preload script.
pub fn start(dir: &Path) -> Result<Server> {
    let mut command = Command::new("node");
    command
        .args(["-r", "./preload.js", "node_modules/@sap/cds/bin/serve.js", "all"])
        .current_dir(dir)
        .env("NODE_ENV", "production");
    Server::start("SAP CAP", command, "peer listening on", Duration::from_secs(120))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_has_every_field_once_and_the_keys_first() {
        let model = schema();
        for field in RECORD_FIELDS {
            assert_eq!(model.matches(&format!(" {} : ", field.name)).count(), 1, "{}", field.name);
        }
        assert!(model.contains("  key projectId : String(24);\n  key inputId : String(1024);\n"));
    }
}

//! `parley import --from-odata`: from parley's own OData service (`/v2.4`, and `/v2.3` with its
//! `_id` key), in windows of keyset pages, resumed after an interruption; and from SAP CAP, a
//! second OData v4 producer that pages by `@odata.nextLink` and keys its entities by two
//! properties.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parley_core::RECORD_FIELDS;

#[path = "../../../../bench/peer/cds.rs"]
mod cds;

use super::{assert_arrived, command, count, demo_app, ndjson, parley, parley_ok};
use crate::helpers::{Engine, TestApp, on_both_engines, spawn_app, spawn_app_on};

on_both_engines!(parleys_own_feed_arrives_whole,);

async fn export(app: &TestApp, collection: &str, project: &str, dir: &Path, name: &str) -> Vec<serde_json::Value> {
    ndjson(&super::export(app, collection, project, dir, name).await)
}

async fn parleys_own_feed_arrives_whole(engine: Engine) {
    let (source, from) = demo_app(engine.clone(), 700).await;
    let target = spawn_app_on(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let root = source.url("/v2.4");
    for (collection, key) in
        [("records", "inputId"), ("messages", "messageId"), ("steps", "executionId"), ("escalations", "escalationId")]
    {
        let to = target.create_project().await;
        let feed = format!("{root}?$filter=projectId eq '{from}'");
        let run = parley_ok(
            &target,
            &[
                "import",
                "--collection",
                collection,
                "--from-odata",
                &feed,
                "--apikey",
                &source.api_key,
                "--project",
                &to,
                "--batch",
                "250",
            ],
        )
        .await;
        let left = export(&source, collection, &from, dir.path(), &format!("{collection}-out")).await;
        assert!(run.stdout.contains(&format!("{} inserted", left.len())), "{collection}: {run:?}");
        let arrived = export(&target, collection, &to, dir.path(), &format!("{collection}-in")).await;
        assert_arrived(arrived, left, key, collection);
    }

    // The older service calls the key `_id`; its address may name the entity set and filter it.
    let to = target.create_project().await;
    let feed = format!("{}/Analytics?$filter=projectId eq '{from}' and channel eq 'whatsapp'", source.url("/v2.3"));
    parley_ok(
        &target,
        &["import", "--from-odata", &feed, "--apikey", &source.api_key, "--project", &to, "--batch", "10"],
    )
    .await;
    let left: Vec<_> = export(&source, "records", &from, dir.path(), "v23-out")
        .await
        .into_iter()
        .filter(|r| r["channel"] == "whatsapp")
        .collect();
    assert!(left.len() > 20, "several windows: {}", left.len());
    let arrived = export(&target, "records", &to, dir.path(), "v23-in").await;
    assert_arrived(arrived, left, "inputId", "records");

    // A wrong key is the feed's answer, in words.
    let run = parley(&target, &["import", "--from-odata", &root, "--apikey", "wrong", "--project", &to]).await;
    assert!(!run.ok && run.stderr.contains("answered 401"), "{run:?}");
}

/// An import from a feed, interrupted, goes on after the last entity it stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_feed_import_goes_on_after_its_last_key() {
    let (source, from) = demo_app(Engine::Sqlite, 3000).await;
    let target = spawn_app().await;
    let to = target.create_project().await;
    let feed = format!("{}?$filter=projectId eq '{from}'", source.url("/v2.4"));
    let args = ["import", "--from-odata", &feed, "--apikey", &source.api_key, "--project", &to, "--batch", "50"];
    let checkpoints = target.data_dir().join("imports");
    let child = command(&target, &args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let waited = async {
        while !std::fs::read_dir(&checkpoints).is_ok_and(|mut d| d.next().is_some()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), waited).await.expect("a first batch");
    let pid = child.id().unwrap();
    std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let first = count(&target, "Analytics", &to).await;
    let total = count(&source, "Analytics", &from).await;
    assert!(first > 0 && first < total, "{first} of {total}");

    let run = parley_ok(&target, &args).await;
    assert!(run.stderr.contains("going on where an earlier import stopped"), "{run:?}");
    assert!(run.stdout.contains(&format!("{} inserted, 0 duplicates", total - first)), "{run:?}");
    let dir = tempfile::tempdir().unwrap();
    let left = export(&source, "records", &from, dir.path(), "out").await;
    let arrived = export(&target, "records", &to, dir.path(), "in").await;
    assert_arrived(arrived, left, "inputId", "records");
}

/// SAP CAP, installed from npm by the benchmark's setup script, serving records exported from
/// parley as an entity keyed by project and input.
struct Cap {
    child: std::process::Child,
    url: String,
}

impl Drop for Cap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_cap(records_csv: &Path) -> Cap {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cap-feed");
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/peer/setup.sh");
    let status = std::process::Command::new("bash").arg(setup).env("PARLEY_BENCH_PEER_DIR", &dir).status().unwrap();
    assert!(status.success(), "CAP installs");
    std::fs::create_dir_all(dir.join("db/data")).unwrap();
    std::fs::create_dir_all(dir.join("srv")).unwrap();
    let model = cds::model("parley.feed", "Records", RECORD_FIELDS, &["projectId", "inputId"]);
    std::fs::write(dir.join("db/schema.cds"), model).unwrap();
    std::fs::write(
        dir.join("srv/service.cds"),
        "using parley.feed as db from '../db/schema';\n\nservice Feed @(path: '/odata/v4/feed') {\n  entity Analytics as projection on db.Records;\n  entity Records as projection on db.Records;\n}\n",
    )
    .unwrap();
    // CAP reads initial data from CSV named after the entity.
    for stale in std::fs::read_dir(dir.join("db/data")).unwrap() {
        std::fs::remove_file(stale.unwrap().path()).unwrap();
    }
    std::fs::copy(records_csv, dir.join("db/data/parley.feed-Records.csv")).unwrap();
    for stale in ["db.sqlite", "db.sqlite-wal", "db.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let deployed = std::process::Command::new("node")
        .arg("node_modules/@sap/cds/bin/deploy.js")
        .current_dir(&dir)
        .env("NODE_ENV", "production")
        .output()
        .unwrap();
    assert!(deployed.status.success(), "cds deploy: {}", String::from_utf8_lossy(&deployed.stderr));
    let mut child = std::process::Command::new("node")
        .args(["-r", "./preload.js", "node_modules/@sap/cds/bin/serve.js", "all"])
        .current_dir(&dir)
        .env("NODE_ENV", "production")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("CAP starts").unwrap();
        if let Some(url) = line.strip_prefix("peer listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Cap { child, url }
}

/// Records from SAP CAP: its pages end with `@odata.nextLink`, its key is two properties, and its
/// JSON-valued fields are strings; they arrive as they left parley.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_arrive_from_sap_cap() {
    let (source, from) = demo_app(Engine::Sqlite, 2600).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("records.csv");
    parley_ok(&source, &["export", "--project", &from, "--output", &csv.display().to_string()]).await;
    let cap = tokio::task::spawn_blocking(move || start_cap(&csv)).await.unwrap();
    let target = spawn_app().await;
    let to = target.create_project().await;
    let feed = format!("{}/odata/v4/feed", cap.url);
    let page: serde_json::Value =
        reqwest::get(format!("{feed}/Analytics?$top=5000")).await.unwrap().json().await.unwrap();
    assert!(page["@odata.nextLink"].is_string(), "CAP pages by next links: the import must follow them");
    let run = parley_ok(&target, &["import", "--from-odata", &feed, "--project", &to]).await;
    let left = export(&source, "records", &from, dir.path(), "out").await;
    assert!(run.stdout.contains(&format!("read {} rows", left.len())), "{run:?}");
    let arrived = export(&target, "records", &to, dir.path(), "in").await;
    assert_arrived(arrived, left.clone(), "inputId", "records");

    // Windows smaller than CAP's pages, so that the next window starts after a two-part key; and
    // an entity set of another name, named in the address.
    let again = target.create_project().await;
    let records = format!("{feed}/Records");
    parley_ok(&target, &["import", "--from-odata", &records, "--project", &again, "--batch", "700"]).await;
    let arrived = export(&target, "records", &again, dir.path(), "again").await;
    assert_eq!(arrived.len(), left.len());
}

//! `parley backup` and `parley restore`, run as an operator runs them: the binary, next to a real
//! `parley serve` process that keeps taking writes while the copy is made.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::Mutex;

use crate::helpers::record;

const KEY: &str = "backup-test-admin-key-0123456789abcdef";
/// Records a batch holds; each batch is one session, written in one request.
const BATCH: usize = 40;

/// A `parley serve` process over a data directory, on a free port.
struct Served {
    child: tokio::process::Child,
    base: String,
    client: reqwest::Client,
}

impl Served {
    async fn start(data_dir: &Path) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address = format!("127.0.0.1:{port}");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
            .args(["serve", "--listen", &address, "--data-dir", &data_dir.display().to_string()])
            .env("PARLEY_ADMIN_API_KEY", KEY)
            .env("PARLEY_RATE_LIMIT_PER_MINUTE", "0")
            .env_remove("PARLEY_DATABASE_URL")
            .env_remove("PARLEY_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("parley starts");
        let base = format!("http://{address}");
        let ready = async {
            while reqwest::get(format!("{base}/health/ready")).await.map_or(true, |r| !r.status().is_success()) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), ready).await.expect("the server starts");
        Served { child, base, client: reqwest::Client::new() }
    }

    /// Stops it as an operator does (SIGTERM), and waits until it has.
    async fn stop(mut self) {
        let pid = self.child.id().expect("running");
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.expect("it stops");
        assert!(exit.unwrap().success(), "a clean stop");
    }

    async fn create_project(&self) -> String {
        let response = self
            .client
            .post(format!("{}/new/v2.0/projects", self.base))
            .header("x-api-key", KEY)
            .json(&json!({"name": "backed up"}))
            .send()
            .await
            .unwrap();
        let body: Json = response.json().await.unwrap();
        body["_id"].as_str().expect("a project").to_owned()
    }

    /// The number of records of each session (batch), read over OData.
    async fn batches(&self) -> BTreeMap<String, u64> {
        let url = format!("{}/v2.4/Analytics?$apply=groupby((sessionId),aggregate($count%20as%20n))", self.base);
        let body: Json = self.client.get(url).header("apikey", KEY).send().await.unwrap().json().await.unwrap();
        body["value"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|row| (row["sessionId"].as_str().unwrap().to_owned(), row["n"].as_u64().unwrap()))
            .collect()
    }
}

/// Runs the binary with `args`; answers whether it succeeded and what it printed.
async fn parley(args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(args)
        .env_remove("PARLEY_DATABASE_URL")
        .env_remove("PARLEY_CONFIG")
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[tokio::test]
async fn a_backup_under_load_holds_every_write_answered_before_it_began() {
    let (dir, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = dir.path().join("data");
    let data_dir = data.display().to_string();
    let server = Served::start(&data).await;
    let project = server.create_project().await;

    // A writer that sends batch after batch and notes each one the server answered.
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (answered, stop, client, base) =
            (Arc::clone(&answered), Arc::clone(&stop), server.client.clone(), server.base.clone());
        let project = project.clone();
        tokio::spawn(async move {
            let mut batch = 0;
            while !stop.load(Ordering::Relaxed) {
                let session = format!("b{batch:05}");
                let records: Vec<Json> =
                    (0..BATCH).map(|k| record(&project, "c1", &session, &format!("{session}-{k:02}"))).collect();
                let response = client
                    .post(format!("{base}/new/v2.0/analytics/records"))
                    .header("x-api-key", KEY)
                    .json(&records)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
                answered.lock().await.push(session);
                batch += 1;
            }
        })
    };
    while answered.lock().await.len() < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The backup, while the writer goes on: every batch answered before it began is in it.
    let before: Vec<String> = answered.lock().await.clone();
    let copy = elsewhere.path().join("copy.db").display().to_string();
    let (ok, text) = parley(&["backup", "--data-dir", &data_dir, &copy]).await;
    assert!(ok && text.starts_with("backed up ") && text.contains(&copy), "{text}");
    let during = answered.lock().await.len();
    while answered.lock().await.len() < during + 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let all = answered.lock().await.clone();

    // A store in use is not overwritten.
    let (ok, text) = parley(&["restore", "--data-dir", &data_dir, &copy]).await;
    assert!(!ok && text.contains("is in use by a running parley; stop it first"), "{text}");
    assert_eq!(server.batches().await.len(), all.len(), "the running store is untouched");
    server.stop().await;

    // Restored into a new directory, the copy holds whole batches, and every one answered
    // before the backup began.
    let restored = elsewhere.path().join("restored");
    let restored_dir = restored.display().to_string();
    let (ok, text) = parley(&["restore", "--data-dir", &restored_dir, &copy]).await;
    assert!(ok && text.contains("restored"), "{text}");
    let server = Served::start(&restored).await;
    let batches = server.batches().await;
    for session in &before {
        assert_eq!(batches.get(session), Some(&(BATCH as u64)), "{session} was answered before the backup");
    }
    assert!(batches.values().all(|n| *n == BATCH as u64), "no batch is in part: {batches:?}");
    assert!(batches.keys().all(|session| all.contains(session)), "nothing that was not written");
    assert!(batches.len() < all.len(), "the batches answered after the backup ended are not in it");
    server.stop().await;

    // Restored over the stopped original, which is kept beside it; the server then has the copy.
    let (ok, text) = parley(&["restore", "--data-dir", &data_dir, &copy]).await;
    assert!(ok && text.contains("the store it replaced is kept as"), "{text}");
    assert!(data.join("parley.db.before-restore").is_file());
    let server = Served::start(&data).await;
    assert_eq!(server.batches().await, batches);
    server.stop().await;
}

#[tokio::test]
async fn what_cannot_be_backed_up_or_restored_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let copy = dir.path().join("copy.db").display().to_string();
    let (ok, text) = parley(&["backup", "--data-dir", &data_dir, &copy]).await;
    assert!(!ok && text.contains("there is no store at"), "{text}");
    let (ok, text) = parley(&["backup", "--database", "postgres://parley@127.0.0.1:1/parley", &copy]).await;
    assert!(!ok && text.contains("on PostgreSQL use the database's own tools (pg_dump"), "{text}");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "no database").unwrap();
    let (ok, text) = parley(&["restore", "--data-dir", &data_dir, &junk.display().to_string()]).await;
    assert!(!ok && text.contains("is not a parley backup"), "{text}");
    let (ok, text) = parley(&["backup", "--help"]).await;
    assert!(ok && text.contains("Example: parley backup --data-dir ./parley-data"), "{text}");
}

//! The embedded store's disk filling up under load (docs/operations.md, "Storage"): writes are
//! refused with 503 and a detail that says why, reads and probes go on, nothing acknowledged is
//! lost, nothing refused is half-written, the file stays sound, and writes work again as soon as
//! space is freed, without a restart.
//!
//! The disk is a small tmpfs mounted for the test, which needs the right to mount (root, as in
//! CI); without it the test says so and does nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::helpers::{Engine, spawn_app_with};

const MB: u64 = 1024 * 1024;

/// A tmpfs of a fixed size, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        mounted.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes still free on it.
    fn free(&self) -> u64 {
        let output = Command::new("df").args(["--output=avail", "-B1"]).arg(self.path()).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines().nth(1).and_then(|n| n.trim().parse().ok()).expect("df prints the free bytes")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).output();
    }
}

/// What the writers saw.
#[derive(Default)]
struct Seen {
    acknowledged: BTreeSet<String>,
    refused: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_what_was_acknowledged_and_recovers() {
    let Some(disk) = SmallDisk::mount(32 * MB) else {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let db: PathBuf = disk.path().join("parley.db");
    let url = format!("sqlite://{}", db.display());
    let mut app = spawn_app_with(Engine::Sqlite, |config| {
        config.database_url = Some(url.clone());
        config.rate_limit_per_minute = 0;
    })
    .await;
    let project = app.create_project().await;
    // Leave about 3 MB: the ballast is what is freed later.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![7u8; (disk.free() - 3 * MB) as usize]).unwrap();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (client, url, key, project, seen) = (
                app.client.clone(),
                app.url("/new/v2.0/analytics/records"),
                app.api_key.clone(),
                project.clone(),
                Arc::clone(&seen),
            );
            tokio::spawn(async move {
                let mut refusals = 0;
                for batch in 0.. {
                    let ids: Vec<String> = (0..20).map(|n| format!("w{writer}-b{batch}-{n}")).collect();
                    let body: String = ids
                        .iter()
                        .map(|id| {
                            let record = json!({"projectId": project, "contactId": "c", "sessionId": "s",
                                                "inputId": id, "inputText": "x".repeat(4000)});
                            format!("{record}\n")
                        })
                        .collect();
                    let response = client
                        .post(&url)
                        .header("X-API-Key", &key)
                        .header("Content-Type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await
                        .expect("an answer");
                    let status = response.status().as_u16();
                    let answer: Json = response.json().await.expect("a JSON answer");
                    let mut seen = seen.lock().unwrap();
                    match status {
                        200 | 201 => seen.acknowledged.extend(ids),
                        503 => {
                            assert!(
                                answer["detail"].as_str().is_some_and(|d| d.contains("its disk is full")),
                                "{answer}"
                            );
                            seen.refused.extend(ids);
                            refusals += 1;
                            if refusals == 3 {
                                return;
                            }
                        }
                        _ => panic!("a write answered {status}: {answer}"),
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let (acknowledged, refused) = {
        let seen = seen.lock().unwrap();
        (seen.acknowledged.clone(), seen.refused.clone())
    };
    assert!(acknowledged.len() >= 100, "the disk filled only after some writes: {}", acknowledged.len());

    // While full: reads and probes answer.
    let live = app.anonymous(Method::GET, "/health/live").send().await.unwrap();
    assert_eq!(live.json::<Json>().await.unwrap(), json!({"status": "ok"}));
    let count = app.get(&format!("/v2.4/Analytics/$count?$filter=projectId eq '{project}'")).send().await.unwrap();
    assert_eq!(count.text().await.unwrap(), acknowledged.len().to_string(), "every acknowledged write is read back");

    // Space returns: writes work again at once.
    std::fs::remove_file(&ballast).unwrap();
    let after = json!({"projectId": project, "contactId": "c", "sessionId": "s", "inputId": "after"});
    let response = app.ingest(&[after]).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);

    app.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let mut stmt = conn.prepare("SELECT input_id FROM records").unwrap();
    let stored: BTreeSet<String> = stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
    let mut expected = acknowledged;
    expected.insert("after".into());
    assert_eq!(stored.len(), expected.len());
    assert_eq!(stored, expected, "exactly the acknowledged writes are stored");
    assert!(stored.is_disjoint(&refused), "nothing of a refused batch was written");
}

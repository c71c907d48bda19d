//! Durability of the `parley` binary itself: killed with SIGKILL under load it keeps every write
//! it acknowledged, and stopped with SIGTERM it finishes requests in flight and exits 0. These
//! tests run the binary as a child process, so they have a runner of their own instead of the
//! in-process server of the API tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use parley_store::testing::{eventually, record, sqlite_connection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The bootstrap admin's API key of every server these tests start.
const ADMIN_KEY: &str = "crash-test-admin-key-0123456789";

/// The `parley` binary serving the SQLite store in `data_dir`, with its log lines.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[]).await
    }

    /// Like [`Server::start`], with more settings in the environment.
    async fn start_with(data_dir: &Path, settings: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .arg("serve")
            .env_clear()
            .envs(settings.iter().copied())
            .env("PARLEY_LISTEN", "127.0.0.1:0")
            .env("PARLEY_DATA_DIR", data_dir)
            .env("PARLEY_ADMIN_API_KEY", ADMIN_KEY)
            .env("PARLEY_LOG_FORMAT", "json")
            .env("PARLEY_LOG", "info")
            // The load here is the point of the test; no credential limit should shape it.
            .env("PARLEY_RATE_LIMIT_PER_MINUTE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the parley binary starts");
        // Read the log continuously, so that the server never blocks on a full pipe.
        let (lines, mut log) = mpsc::unbounded_channel();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let line = log.recv().await.expect("the server logs that it listens before it exits");
                let Ok(event) = serde_json::from_str::<Json>(&line) else { continue };
                if let Some(address) =
                    event["message"].as_str().and_then(|m| m.strip_prefix("parley listening on http://"))
                {
                    return address.parse::<SocketAddr>().expect("a socket address in the log line");
                }
            }
        })
        .await
        .expect("the server listens within 30 s");
        Server { child, addr, log }
    }

    /// SIGKILL: no chance to flush anything.
    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    fn terminate(&self) {
        let pid = self.child.id().expect("the server runs").to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
    }

    async fn wait_for_log(&mut self, fragment: &str) {
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = self.log.recv().await {
                if line.contains(fragment) {
                    return;
                }
            }
            panic!("the server exited before logging '{fragment}'");
        })
        .await
        .unwrap_or_else(|_| panic!("no log line with '{fragment}' within 30 s"));
    }

    async fn exit_status(mut self) -> ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.expect("the server exits").unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/new/v2.0{path}", self.addr)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn create_project(server: &Server) -> String {
    let response = client()
        .post(server.url("/projects"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"name": "crash"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Json>().await.unwrap()["_id"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// SIGKILL

/// What a writer knows about one input: the record it sent, whether the ingest was
/// acknowledged, and the values `custom1` and `custom3` may have (one when every write that
/// touched them was answered; two when the last one was cut off by the kill).
#[derive(Debug, Clone)]
struct Input {
    sent: Json,
    ingest_acknowledged: bool,
    custom1: Vec<Json>,
    custom3: Vec<Json>,
}

/// One writer's inputs; writers own disjoint contacts, so their expectations never mix.
#[derive(Debug, Clone, Default)]
struct Writer {
    id: usize,
    inputs: BTreeMap<String, Input>,
    next: usize,
}

impl Writer {
    fn contact(&self) -> String {
        format!("c{}", self.id)
    }

    fn fresh_record(&mut self, project: &str) -> (String, Json) {
        let n = self.next;
        self.next += 1;
        let input = format!("w{}-{n}", self.id);
        let sent = json!({
            "projectId": project, "contactId": self.contact(), "sessionId": format!("s{}", n % 3), "inputId": input,
            "timestamp": parley_core::value::format_time(
                time::macros::datetime!(2024-05-01 12:00 UTC) + time::Duration::milliseconds((self.id * 1_000_000 + n) as i64)
            ),
            "inputText": format!("text of {input} ✓"), "intent": format!("intent-{}", n % 7),
            "custom2": input, "rating": n as f64 / 7.0,
        });
        (input, sent)
    }
}

/// A request the kill interrupted: its effect may or may not be stored.
struct Interrupted;

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, Interrupted> {
    request.header("x-api-key", ADMIN_KEY).send().await.map_err(|_| Interrupted)
}

/// Mixed load from one writer until the server dies: ingests of fresh records, updates of
/// acknowledged ones, and updates sent before their record (pending updates).
async fn drive(mut writer: Writer, addr: SocketAddr, project: String, seed: u64) -> Writer {
    let http = client();
    let url = |path: &str| format!("http://{addr}/new/v2.0{path}");
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let acknowledged: Vec<String> =
            writer.inputs.iter().filter(|(_, i)| i.ingest_acknowledged).map(|(k, _)| k.clone()).collect();
        let choice = rng.random_range(0..10);
        if choice < 4 || acknowledged.is_empty() {
            let batch: Vec<(String, Json)> =
                (0..rng.random_range(1..=5)).map(|_| writer.fresh_record(&project)).collect();
            for (input, sent) in &batch {
                let entry = Input {
                    sent: sent.clone(),
                    ingest_acknowledged: false,
                    custom1: vec![Json::Null],
                    custom3: vec![Json::Null],
                };
                writer.inputs.insert(input.clone(), entry);
            }
            let body = Json::Array(batch.iter().map(|(_, sent)| sent.clone()).collect());
            let Ok(response) = send(http.post(url("/analytics/records")).json(&body)).await else { return writer };
            assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap_or_default());
            for (input, _) in &batch {
                writer.inputs.get_mut(input).unwrap().ingest_acknowledged = true;
            }
        } else if choice < 8 {
            let input = acknowledged[rng.random_range(0..acknowledged.len())].clone();
            let value = json!(format!("{input} update {}", rng.random::<u32>()));
            let body = json!({"projectId": project, "contactId": writer.contact(), "inputId": input, "properties": {"custom1": value}});
            writer.inputs.get_mut(&input).unwrap().custom1.push(value.clone());
            let Ok(response) = send(http.patch(url("/analytics")).json(&body)).await else { return writer };
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            assert_eq!(response.headers()["x-matched-records"], "1");
            writer.inputs.get_mut(&input).unwrap().custom1 = vec![value];
        } else {
            let (input, sent) = writer.fresh_record(&project);
            let value = json!(format!("{input} early"));
            writer.inputs.insert(
                input.clone(),
                Input {
                    sent: sent.clone(),
                    ingest_acknowledged: false,
                    custom1: vec![Json::Null],
                    custom3: vec![Json::Null, value.clone()],
                },
            );
            let body = json!({"projectId": project, "contactId": writer.contact(), "inputId": input, "properties": {"custom3": value}});
            let Ok(response) = send(http.patch(url("/analytics")).json(&body)).await else { return writer };
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            assert_eq!(response.headers().get("x-update-deferred").map(|v| v.to_str().unwrap()), Some("true"));
            writer.inputs.get_mut(&input).unwrap().custom3 = vec![value];
            let Ok(response) = send(http.post(url("/analytics/records")).json(&json!([sent]))).await else {
                return writer;
            };
            assert_eq!(response.status(), StatusCode::CREATED);
            writer.inputs.get_mut(&input).unwrap().ingest_acknowledged = true;
        }
    }
}

/// The fields of a record as the client sent them, compared exactly.
const SENT_FIELDS: [&str; 9] =
    ["projectId", "contactId", "sessionId", "inputId", "timestamp", "inputText", "intent", "custom2", "rating"];

/// Every record of one contact, by input.
async fn stored_records(server: &Server, project: &str, contact: &str) -> BTreeMap<String, Json> {
    let mut stored = BTreeMap::new();
    let mut next: Option<String> = None;
    loop {
        let mut query =
            vec![("projectId", project.to_owned()), ("contactId", contact.to_owned()), ("limit", "100".into())];
        query.extend(next.take().map(|cursor| ("next", cursor)));
        let response = client()
            .get(server.url("/analytics"))
            .header("x-api-key", ADMIN_KEY)
            .header("accept", "application/json")
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Json = response.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            stored.insert(item["inputId"].as_str().unwrap().to_owned(), item.clone());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => return stored,
        }
    }
}

/// Checks a restarted server against what the writers know, then makes their knowledge exact:
/// records whose ingest was cut off are ingested now (a pending update acknowledged before the
/// kill must then apply), and every field takes the value found. Returns how many records it
/// checked.
async fn verify(server: &Server, project: &str, writers: &mut [Writer]) -> usize {
    let mut checked = 0;
    for writer in writers.iter_mut() {
        let contact = writer.contact();
        let mut stored = stored_records(server, project, &contact).await;
        for key in stored.keys() {
            assert!(writer.inputs.contains_key(key), "a record nobody sent: {key}");
        }
        let mut absent = Vec::new();
        for (key, input) in &writer.inputs {
            if !stored.contains_key(key) {
                assert!(!input.ingest_acknowledged, "acknowledged record {key} is missing after the kill");
                absent.push(input.sent.clone());
            }
        }
        if !absent.is_empty() {
            let response = client()
                .post(server.url("/analytics/records"))
                .header("x-api-key", ADMIN_KEY)
                .json(&absent)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            stored = stored_records(server, project, &contact).await;
        }
        for (key, input) in writer.inputs.iter_mut() {
            let record = &stored[key];
            for field in SENT_FIELDS {
                // Numbers compare by value: a whole number comes back without a fraction.
                match (&record[field], &input.sent[field]) {
                    (Json::Number(stored), Json::Number(sent)) => {
                        assert_eq!(stored.as_f64(), sent.as_f64(), "{key}.{field}")
                    }
                    (stored, sent) => assert_eq!(stored, sent, "{key}.{field}"),
                }
            }
            for (field, allowed) in [("custom1", &mut input.custom1), ("custom3", &mut input.custom3)] {
                assert!(
                    allowed.contains(&record[field]),
                    "{key}.{field} is {} but may only be {allowed:?}",
                    record[field]
                );
                *allowed = vec![record[field].clone()];
            }
            input.ingest_acknowledged = true;
            checked += 1;
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    const ROUNDS: usize = 5;
    const WRITERS: usize = 4;
    let seed: u64 = std::env::var("PARLEY_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("acknowledged_writes_survive_sigkill: PARLEY_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut writers: Vec<Writer> = (0..WRITERS).map(|id| Writer { id, ..Writer::default() }).collect();
    let mut project = None;
    for round in 0..ROUNDS {
        let server = Server::start(dir.path()).await;
        let project = match &project {
            Some(project) => project,
            None => project.insert(create_project(&server).await),
        };
        let checked = verify(&server, project, &mut writers).await;
        let load: Vec<_> = writers
            .drain(..)
            .map(|writer| tokio::spawn(drive(writer, server.addr, project.clone(), rng.random())))
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        server.kill().await;
        for task in load {
            writers.push(task.await.expect("a writer's expectations hold while it writes"));
        }
        let known: usize = writers.iter().map(|w| w.inputs.len()).sum();
        eprintln!("round {round}: {checked} records checked after restart, {known} known after the kill");
    }
    let mut server = Server::start(dir.path()).await;
    let project = project.unwrap();
    let checked = verify(&server, &project, &mut writers).await;
    assert!(checked > 0, "the load wrote something");
    server.terminate();
    server.wait_for_log("stopped: requests finished, writes flushed").await;
    assert!(server.exit_status().await.success());
    let db = sqlite_connection(&dir.path().join("parley.db"));
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let count: i64 = db.query_row("SELECT COUNT(*) FROM records", [], |row| row.get(0)).unwrap();
    assert_eq!(count as usize, checked);
}

// ---------------------------------------------------------------------------------------------
// SIGKILL during the background deletions

/// Ingests `count` records of `contact` in `project` as NDJSON, input ids `{prefix}{n}`.
async fn ingest_many(server: &Server, project: &str, contact: &str, prefix: &str, count: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let body: String = chunk
            .iter()
            .map(|n| format!("{}\n", record(project, contact, &format!("s{}", n % 40), &format!("{prefix}{n}"))))
            .collect();
        let response = client()
            .post(server.url("/analytics/records"))
            .header("x-api-key", ADMIN_KEY)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

/// Kills `server` with SIGKILL as soon as `begun` holds, looked at every few milliseconds.
async fn kill_once(server: Server, begun: impl Fn() -> bool) {
    eventually(Duration::from_secs(30), || async { begun().then_some(()) }).await;
    server.kill().await;
}

/// Records of `project` (and of `contact`, when given) in the file, read beside the server.
fn stored(dir: &Path, project: &str, contact: Option<&str>) -> i64 {
    let db = sqlite_connection(&dir.join("parley.db"));
    let sql = "SELECT COUNT(*) FROM records WHERE project_id = ?1 AND (?2 IS NULL OR contact_id = ?2)";
    db.query_row(sql, rusqlite::params![project, contact], |row| row.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_and_a_purge_killed_midway_finish_after_the_restart() {
    // Small batches, so that both run long enough to be cut off in their middle.
    let settings = [("PARLEY_DELETE_BATCH_SIZE", "5"), ("PARLEY_RETENTION_INTERVAL_SECS", "1")];
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &settings).await;
    let erased = create_project(&server).await;
    ingest_many(&server, &erased, "gone", "g", 3000).await;
    ingest_many(&server, &erased, "kept", "k", 500).await;
    let response = client()
        .post(server.url("/projects"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"name": "short-lived", "settings": {"retentionDays": 1}}))
        .send()
        .await
        .unwrap();
    let purged = response.json::<Json>().await.unwrap()["_id"].as_str().unwrap().to_owned();
    ingest_many(&server, &purged, "r", "r", 8000).await;
    server.kill().await;
    // A day cannot pass in a test: 6000 of those records expire now, in the file.
    let past = parley_core::value::unix_millis(parley_core::value::now()) - 1;
    let moved = sqlite_connection(&dir.path().join("parley.db"))
        .execute(
            "UPDATE records SET expires_at = ?1 WHERE project_id = ?2 AND CAST(substr(input_id, 2) AS INTEGER) < 6000",
            rusqlite::params![past, purged],
        )
        .unwrap();
    assert_eq!(moved, 6000);

    // The purge starts with the server: killed once it has deleted some of the expired records.
    let server = Server::start_with(dir.path(), &settings).await;
    kill_once(server, || stored(dir.path(), &purged, None) < 8000).await;
    let purge_left = stored(dir.path(), &purged, None);
    assert!(2000 < purge_left && purge_left < 8000, "the kill came in the middle of the purge: {purge_left} left");

    // The erasure: killed once it has deleted some of the contact's records.
    let server = Server::start_with(dir.path(), &settings).await;
    let response = client()
        .delete(server.url(&format!("/analytics/{erased}")))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"contactIds": ["gone"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let task = response.json::<Json>().await.unwrap()["_id"].as_str().unwrap().to_owned();
    kill_once(server, || stored(dir.path(), &erased, Some("gone")) < 3000).await;
    let gone_left = stored(dir.path(), &erased, Some("gone"));
    assert!(0 < gone_left && gone_left < 3000, "the kill came in the middle of the erasure: {gone_left} left");
    eprintln!("killed with {purge_left} of 8000 records of the purge and {gone_left} of 3000 of the erasure left");

    // After the restart both finish by themselves (in batches of the default size now), and
    // delete nothing else.
    let mut server = Server::start_with(dir.path(), &[("PARLEY_RETENTION_INTERVAL_SECS", "1")]).await;
    let status = eventually(Duration::from_secs(60), || async {
        let response =
            client().get(server.url(&format!("/tasks/{task}"))).header("x-api-key", ADMIN_KEY).send().await.ok()?;
        let task: Json = response.json().await.ok()?;
        (task["status"] == "done").then_some(task)
    })
    .await;
    assert_eq!(status["status"], "done");
    eventually(Duration::from_secs(60), || async {
        let count = client()
            .get(format!("http://{}/v2.4/Analytics/$count?$filter=projectId eq '{purged}'", server.addr))
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (count == "2000").then_some(())
    })
    .await;
    server.terminate();
    server.wait_for_log("stopped: requests finished, writes flushed").await;
    assert!(server.exit_status().await.success());
    assert_eq!(stored(dir.path(), &erased, Some("gone")), 0);
    assert_eq!(stored(dir.path(), &erased, Some("kept")), 500);
    assert_eq!(stored(dir.path(), &purged, None), 2000);
    let db = sqlite_connection(&dir.path().join("parley.db"));
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}

// ---------------------------------------------------------------------------------------------
// SIGTERM

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path()).await;
    let project = create_project(&server).await;
    let ingest = client()
        .post(server.url("/analytics/records"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!([record(&project, "c1", "s1", "i1")]))
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), StatusCode::CREATED);

    // A slow client: headers first, the body only once the server has begun reading it (it says
    // so with 100 Continue) and has been told to stop.
    let body = json!({"projectId": project, "contactId": "c1", "inputId": "i1", "properties": {"custom1": "drained"}})
        .to_string();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "PATCH /new/v2.0/analytics HTTP/1.1\r\nHost: {}\r\nX-API-Key: {ADMIN_KEY}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        server.addr,
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(slow);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    reader.read_line(&mut line).await.unwrap();

    server.terminate();
    server.wait_for_log("shutting down").await;
    // New connections are refused once the server stops accepting.
    eventually(Duration::from_secs(10), || async { TcpStream::connect(server.addr).await.is_err().then_some(()) })
        .await;

    reader.get_mut().write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    reader.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("x-matched-records: 1"), "{answer}");

    server.wait_for_log("stopped: requests finished, writes flushed").await;
    let status = server.exit_status().await;
    assert_eq!(status.code(), Some(0), "{status:?}");

    let db = sqlite_connection(&dir.path().join("parley.db"));
    let custom1: String =
        db.query_row("SELECT custom1 FROM records WHERE input_id = 'i1'", [], |row| row.get(0)).unwrap();
    assert_eq!(custom1, "drained");
    let wal = std::fs::metadata(dir.path().join("parley.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "the write-ahead log is folded into the database on a clean stop");
}

//! HTTP tests of the data lifecycle: pending updates, erasure tasks, retention, masking and
//! collection settings, and durability across crashes and shutdowns. Each test starts its own
//! server the way `main` does (`parley_server::start`), on port 0, with a fresh data directory;
//! the crash tests run the `parley` binary itself as a child process.

mod crash;
mod erasure;
mod pending;
mod protection;
mod retention;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use parley_server::{Config, Running};
use reqwest::{Response, StatusCode};
use serde_json::{Value as Json, json};

/// The bootstrap admin's API key in every test server.
pub const ADMIN_KEY: &str = "lifecycle-test-admin-key-0123456789";

/// A server running in this process on a fresh database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub config: Config,
    pub dir: tempfile::TempDir,
    running: Option<Running>,
    _postgres: Option<TestDatabase>,
}

impl TestApp {
    /// A server with the default configuration on SQLite.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// A server on SQLite whose configuration `adjust` changes first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::launch(adjust, None).await
    }

    /// A server on a fresh PostgreSQL database when `PARLEY_TEST_POSTGRES_URL` is set.
    pub async fn spawn_on_postgres() -> Option<TestApp> {
        let database = TestDatabase::create().await?;
        Some(TestApp::launch(|_| {}, Some(database)).await)
    }

    async fn launch(adjust: impl FnOnce(&mut Config), postgres: Option<TestDatabase>) -> TestApp {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            database_url: postgres.as_ref().map(|db| db.url.clone()),
            database_pool_size: 8,
            admin_api_key: Some(ADMIN_KEY.into()),
            ..Config::default()
        };
        adjust(&mut config);
        let running = parley_server::start(&config).await.expect("the server starts");
        TestApp {
            addr: running.addr,
            client: reqwest::Client::new(),
            config,
            dir,
            running: Some(running),
            _postgres: postgres,
        }
    }

    /// Stops the server the way a signal does: drains requests, stops background work, closes
    /// the store.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("a clean stop");
        }
    }

    /// Stops the server and starts it again on the same database (on a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = parley_server::start(&self.config).await.expect("the server starts again");
        self.addr = running.addr;
        self.running = Some(running);
    }

    /// The SQLite file of the server.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("parley.db")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/new/v2.0{path}", self.addr)
    }

    /// A request with the admin's key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).header("x-api-key", ADMIN_KEY).header("accept", "application/json")
    }

    pub async fn create_project(&self, settings: Json) -> String {
        let response = self
            .request(reqwest::Method::POST, "/projects")
            .json(&json!({"name": "lifecycle", "settings": settings}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Json>().await.unwrap()["_id"].as_str().unwrap().to_owned()
    }

    pub async fn ingest(&self, records: Json) -> Response {
        self.request(reqwest::Method::POST, "/analytics/records").json(&records).send().await.unwrap()
    }

    /// Ingests and expects every record to be stored.
    pub async fn ingest_ok(&self, records: Json) {
        let count = records.as_array().unwrap().len();
        let response = self.ingest(records).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.json::<Json>().await.unwrap()["inserted"], json!(count));
    }

    pub async fn patch(&self, body: Json) -> Response {
        self.request(reqwest::Method::PATCH, "/analytics").json(&body).send().await.unwrap()
    }

    /// Every record of a project (and contact, when given), in timestamp order.
    pub async fn records(&self, project: &str, contact: Option<&str>) -> Vec<Json> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut query = vec![("projectId", project.to_owned()), ("limit", "100".to_owned())];
            if let Some(contact) = contact {
                query.push(("contactId", contact.to_owned()));
            }
            if let Some(cursor) = &next {
                query.push(("next", cursor.clone()));
            }
            let response = self.request(reqwest::Method::GET, "/analytics").query(&query).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let page: Json = response.json().await.unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => return items,
            }
        }
    }

    /// The one record of a project with this input.
    pub async fn record(&self, project: &str, input: &str) -> Option<Json> {
        let mut found = self.records(project, None).await.into_iter().filter(|r| r["inputId"] == json!(input));
        let record = found.next();
        assert!(found.next().is_none(), "one record per input");
        record
    }

    /// A user of the admin's organisation who has only `roles` in `project`; returns their key.
    /// No endpoint manages members yet, so this writes the rows into the SQLite file.
    pub fn add_member(&self, project: &str, roles: &[&str]) -> String {
        let db = sqlite(&self.db_path());
        let organisation: String =
            db.query_row("SELECT organisation FROM projects WHERE id = ?1", [project], |row| row.get(0)).unwrap();
        let user = parley_core::ObjectId::generate().to_string();
        let key = format!("member-key-{user}");
        db.execute(
            "INSERT INTO users (id, organisation, email, name, password_hash, roles, created_at) \
             VALUES (?1, ?2, ?3, 'Member', NULL, '[]', 0)",
            rusqlite::params![user, organisation, format!("{user}@example.com")],
        )
        .unwrap();
        db.execute(
            "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES (?1, ?2, 'member', ?3, 0)",
            rusqlite::params![
                parley_core::ObjectId::generate().to_string(),
                user,
                &parley_server::auth::hash_api_key(&key)[..]
            ],
        )
        .unwrap();
        if !roles.is_empty() {
            db.execute(
                "INSERT INTO project_members (project_id, user_id, roles) VALUES (?1, ?2, ?3)",
                rusqlite::params![project, user, serde_json::to_string(roles).unwrap()],
            )
            .unwrap();
        }
        key
    }
}

/// A connection to a SQLite file that waits for the server's writer instead of failing.
pub fn sqlite(path: &std::path::Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db
}

/// A record of `project` for ingest.
pub fn record(project: &str, contact: &str, input: &str) -> Json {
    json!({"projectId": project, "contactId": contact, "sessionId": "s1", "inputId": input})
}

/// The body of an error answer, checked to be a problem with this status and code.
pub async fn problem(response: Response, status: u16, code: u64) -> Json {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/problem+json"), "{content_type}");
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["code"], json!(code), "{body}");
    assert_eq!(body["status"], json!(status), "{body}");
    body
}

/// Polls `check` until it gives a value, for at most `limit`: for waiting on background work.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "the condition did not hold within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database of its own on the PostgreSQL server `PARLEY_TEST_POSTGRES_URL` names, dropped
/// after the test.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Option<TestDatabase> {
        let admin_url = std::env::var("PARLEY_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty())?;
        let name = format!("parley_http_{}", parley_core::ObjectId::generate());
        let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PARLEY_TEST_POSTGRES_URL is set but cannot be reached: {e}"));
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE");
        let base = admin_url.split('?').next().unwrap_or_default();
        let server = base.rsplit_once('/').filter(|(head, _)| head.ends_with(|c| c != '/')).map_or(base, |(h, _)| h);
        let url = format!("{server}/{name}");
        Some(TestDatabase { admin_url, name, url })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.ok()?;
                tokio::spawn(connection);
                client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()
            })
        });
        let _ = dropped.join();
    }
}

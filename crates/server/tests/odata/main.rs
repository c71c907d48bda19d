//! HTTP tests of the OData endpoint, against a real server started in-process on port 0 with a
//! fresh SQLite store each (PostgreSQL too for the property test, when
//! `PARLEY_TEST_POSTGRES_URL` is set).

mod client;
mod fuzz;
mod queries;

use std::path::PathBuf;

use parley_server::{Config, Running};
use serde_json::{Value as Json, json};

/// The bootstrap admin's API key of every test server.
pub const ADMIN_KEY: &str = "odata-test-admin-key-0123456789";

/// A running parley with its own data directory.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub organisation: String,
    running: Option<Running>,
    dir: tempfile::TempDir,
}

/// Starts parley the way `main` does, on 127.0.0.1 port 0, with a fresh SQLite store.
pub async fn spawn_app() -> TestApp {
    spawn_with(None).await
}

/// Starts parley on the database at `database_url`, or on a fresh SQLite file when `None`,
/// without rate limits (the query tests send many requests).
pub async fn spawn_with(database_url: Option<String>) -> TestApp {
    spawn_configured(database_url, 0).await
}

/// Starts parley with `rate_limit_per_minute` requests a minute per credential (0: no limit).
pub async fn spawn_configured(database_url: Option<String>, rate_limit_per_minute: u32) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config {
        rate_limit_per_minute,
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        database_url,
        admin_api_key: Some(ADMIN_KEY.to_owned()),
        database_pool_size: 4,
        ..Config::default()
    };
    let running = parley_server::start(&config).await.expect("parley starts");
    let organisation = running.first_start.as_ref().expect("a first start").organisation.to_string();
    TestApp {
        base: format!("http://{}", running.addr),
        client: reqwest::Client::new(),
        organisation,
        running: Some(running),
        dir,
    }
}

impl TestApp {
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("parley.db")
    }

    /// GET with the admin key in the `apikey` header.
    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.get_as(ADMIN_KEY, path_and_query).await
    }

    pub async fn get_as(&self, key: &str, path_and_query: &str) -> reqwest::Response {
        let url = format!("{}{path_and_query}", self.base);
        self.client.get(&url).header("apikey", key).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// GET of an OData collection answer, which must be 200 JSON.
    pub async fn get_json(&self, path_and_query: &str) -> Json {
        let response = self.get(path_and_query).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {path_and_query}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path_and_query}: {e}: {text}"))
    }

    pub async fn create_project(&self, name: &str) -> String {
        let response = self
            .client
            .post(format!("{}/new/v2.0/projects", self.base))
            .header("x-api-key", ADMIN_KEY)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Json = response.json().await.unwrap();
        body.get("_id").or_else(|| body.get("id")).and_then(Json::as_str).expect("the project's id").to_owned()
    }

    /// Ingests records in batches of the largest size a request may carry.
    pub async fn ingest(&self, records: &[Json]) {
        for batch in records.chunks(10_000) {
            let response = self
                .client
                .post(format!("{}/new/v2.0/analytics/records", self.base))
                .header("x-api-key", ADMIN_KEY)
                .header("accept", "application/json")
                .json(&batch)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_eq!(status, 201, "{body}");
            let counts: Json = serde_json::from_str(&body).unwrap();
            assert_eq!(counts["inserted"], batch.len(), "{body}");
        }
    }

    /// Adds a user with these organisation roles and project memberships, and an API key for
    /// them; returns the key. No API creates users yet, so this writes the rows itself.
    pub fn add_user(&self, org_roles: &[&str], memberships: &[(&str, &[&str])]) -> String {
        let user = parley_core::ObjectId::generate().to_string();
        let key = format!("user-key-{user}");
        let conn = rusqlite::Connection::open(self.db_path()).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        conn.execute(
            "INSERT INTO users (id, organisation, email, name, password_hash, roles, created_at) \
             VALUES (?1, ?2, ?3, 'Member', NULL, ?4, 0)",
            rusqlite::params![user, self.organisation, format!("{user}@example.com"), json!(org_roles).to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES (?1, ?2, 'test', ?3, 0)",
            rusqlite::params![
                parley_core::ObjectId::generate().to_string(),
                user,
                &parley_server::auth::hash_api_key(&key)[..]
            ],
        )
        .unwrap();
        for (project, roles) in memberships {
            conn.execute(
                "INSERT INTO project_members (project_id, user_id, roles) VALUES (?1, ?2, ?3)",
                rusqlite::params![project, user, json!(roles).to_string()],
            )
            .unwrap();
        }
        key
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
    }
}

/// A record of `project` numbered `n`; `fields` add to or override the defaults.
pub fn record(project: &str, n: usize, fields: Json) -> Json {
    let mut record = json!({
        "projectId": project,
        "contactId": format!("c{}", n % 7),
        "sessionId": format!("s{}", n % 11),
        "inputId": format!("i{n:05}"),
    });
    for (name, value) in fields.as_object().unwrap() {
        record[name] = value.clone();
    }
    record
}

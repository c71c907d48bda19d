//! A real server per test, started the way `main` starts it, on port 0 with its own fresh
//! database, and requests to it.

use std::net::SocketAddr;
use std::path::PathBuf;

use parley_server::config::LogFormat;
use parley_server::{Config, Running};
use parley_store::testing::{Engine, PostgresDatabase};
use reqwest::{Method, RequestBuilder, Response};
use tempfile::TempDir;

/// A server started for one test, with everything needed to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The bootstrap admin's API key.
    pub api_key: String,
    /// The bootstrap admin's password (the admin's email is `admin@localhost`).
    pub admin_password: String,
    pub client: reqwest::Client,
    /// The database the server uses.
    database_url: String,
    /// What the server started with, to start it again.
    config: Config,
    /// `None` once stopped.
    server: Option<Running>,
    dir: TempDir,
    /// Declared last so that the server stops before its database is dropped.
    _database: Option<PostgresDatabase>,
}

/// Starts a server the way `main` does, on a free port, with a fresh SQLite database.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Engine::Sqlite).await
}

/// Starts a server the way `main` does, on a free port, with a fresh database on `engine`.
pub async fn spawn_app_on(engine: Engine) -> TestApp {
    spawn_app_with(engine, |_| {}).await
}

/// The bootstrap admin's email.
pub const ADMIN_EMAIL: &str = "admin@localhost";

/// What every test node shares: a free port, a small pool, text logs.
fn node_config() -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_pool_size: 4,
        log_format: LogFormat::Text,
        ..Config::default()
    }
}

/// Like [`spawn_app_on`], with the configuration changed by `adjust` first.
pub async fn spawn_app_with(engine: Engine, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = engine.database().await;
    let api_key = hex::encode(rand::random::<[u8; 32]>());
    let admin_password = format!("pw-{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        database_url: database.as_ref().map(|d| d.url().to_owned()),
        admin_api_key: Some(api_key.clone()),
        admin_password: Some(admin_password.clone()),
        ..node_config()
    };
    adjust(&mut config);
    let server = parley_server::start(&config).await.expect("the server starts");
    TestApp {
        addr: server.addr,
        api_key,
        admin_password,
        client: reqwest::Client::new(),
        database_url: config.effective_database_url(),
        config,
        server: Some(server),
        dir,
        _database: database,
    }
}

/// A second parley node on a test app's database, as behind a load balancer.
pub struct Node {
    pub addr: SocketAddr,
    _server: Running,
}

impl Node {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl TestApp {
    /// Stops the server the way a signal does: drains requests, stops background work, closes
    /// the store.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("a clean stop");
        }
    }

    /// Stops the server and starts it again on the same database (on a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = parley_server::start(&self.config).await.expect("the server starts again");
        self.addr = server.addr;
        self.server = Some(server);
    }

    /// The database the server uses, as `--database` names it.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The SQLite file of a server on SQLite.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("parley.db")
    }

    /// The bytes of the SQLite file and its write-ahead log, as they are on disk now.
    pub fn on_disk(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.db_path()).expect("the SQLite file");
        bytes.extend(std::fs::read(self.dir.path().join("parley.db-wal")).unwrap_or_default());
        bytes
    }

    /// Starts another node on this app's database, with the test configuration changed by `adjust`.
    pub async fn another_node(&self, adjust: impl FnOnce(&mut Config)) -> Node {
        let mut config = Config { database_url: Some(self.database_url.clone()), ..node_config() };
        adjust(&mut config);
        let server = parley_server::start(&config).await.expect("the other node starts");
        Node { addr: server.addr, _server: server }
    }
}

impl TestApp {
    /// The server's store, opened beside it, for fixtures that the API cannot make (a second
    /// organisation, keys for other users) and for checks below the API.
    pub async fn store(&self) -> std::sync::Arc<dyn parley_store::Store> {
        parley_store::open(&self.database_url, 1).await.expect("the store opens")
    }

    /// A request carrying a bearer token and nothing else.
    pub fn bearer(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.anonymous(method, path).header("Authorization", format!("Bearer {token}"))
    }

    /// A request carrying this API key in `X-API-Key`.
    pub fn with_key(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.anonymous(method, path).header("X-API-Key", key)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request carrying the admin's key in `X-API-Key`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path).header("X-API-Key", &self.api_key)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// A GET asking for one media type.
    pub async fn get_accepting(&self, path: &str, accept: &str) -> Response {
        self.get(path).header("Accept", accept).send().await.expect("the request is answered")
    }
}

//! The test harness: a real server per test on port 0 with its own fresh database, a client
//! bound to it, and parsers for the bodies the tests inspect (problem bodies, XML, CSV).

use std::net::SocketAddr;

use parley_core::{ObjectId, RecordFilter};
use parley_server::config::LogFormat;
use parley_server::{Config, Running};
use quick_xml::events::Event;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value as Json, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    _server: Running,
    _dir: TempDir,
    /// Declared last so that the server stops before its database is dropped.
    _database: Option<PostgresDatabase>,
}

/// The engine a test runs on.
#[derive(Debug, Clone)]
pub enum Engine {
    /// A fresh SQLite file in the test's temporary directory.
    Sqlite,
    /// A fresh database on the server of `PARLEY_TEST_POSTGRES_URL`, which this URL names.
    Postgres { admin_url: String },
}

/// The variable that names the PostgreSQL server for tests.
const POSTGRES_URL: &str = "PARLEY_TEST_POSTGRES_URL";

impl Engine {
    /// PostgreSQL when `PARLEY_TEST_POSTGRES_URL` is set. Unset, the PostgreSQL variant of a test
    /// has nothing to run on and returns; in CI (`CI` set) that is a failure, never a skip.
    pub fn postgres() -> Option<Engine> {
        match std::env::var(POSTGRES_URL).ok().filter(|url| !url.is_empty()) {
            Some(admin_url) => Some(Engine::Postgres { admin_url }),
            None if std::env::var_os("CI").is_some() => panic!("{POSTGRES_URL} must be set in CI"),
            None => None,
        }
    }
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
    let database = match engine {
        Engine::Sqlite => None,
        Engine::Postgres { admin_url } => Some(PostgresDatabase::create(admin_url).await),
    };
    let api_key = hex::encode(rand::random::<[u8; 32]>());
    let admin_password = format!("pw-{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        database_url: database.as_ref().map(|d| d.url.clone()),
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
        _server: server,
        _dir: dir,
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
    /// Starts another node on this app's database, with the test configuration changed by `adjust`.
    pub async fn another_node(&self, adjust: impl FnOnce(&mut Config)) -> Node {
        let mut config = Config { database_url: Some(self.database_url.clone()), ..node_config() };
        adjust(&mut config);
        let server = parley_server::start(&config).await.expect("the other node starts");
        Node { addr: server.addr, _server: server }
    }
}

/// A database made for one test and dropped after it.
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    async fn create(admin_url: String) -> Self {
        let name = format!("parley_http_{}", ObjectId::generate());
        let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL} is set but PostgreSQL at {admin_url} cannot be reached: {e}"));
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE");
        let url = with_database(&admin_url, &name);
        PostgresDatabase { admin_url, name, url }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // From a thread of its own, so that it also runs when the test panicked.
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

/// `url` with its `host:port` replaced by `address`.
pub fn with_address(url: &str, address: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..].find(['/', '?']).map_or(url.len(), |i| authority_start + i);
    let host_start =
        url[authority_start..authority_end].rfind('@').map_or(authority_start, |i| authority_start + i + 1);
    format!("{}{address}{}", &url[..host_start], &url[authority_end..])
}

/// The `host:port` a PostgreSQL URL names.
pub async fn postgres_address(url: &str) -> SocketAddr {
    let config: tokio_postgres::Config = url.parse().expect("a PostgreSQL URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => panic!("{POSTGRES_URL} must name a TCP host"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port)).await.expect("the host resolves").next().expect("an address")
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Runs each named test, an `async fn(Engine)`, once on SQLite and once on PostgreSQL.
macro_rules! on_both_engines {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::helpers::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(engine) = $crate::helpers::Engine::postgres() {
                        super::$test(engine).await
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_engines;

/// A user made for a test, with an API key and a password.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub organisation: String,
    pub email: String,
    pub password: String,
    pub api_key: String,
}

impl TestApp {
    /// The server's store, opened beside it, for fixtures that the API cannot make (a second
    /// organisation, keys for other users) and for checks below the API.
    pub async fn store(&self) -> std::sync::Arc<dyn parley_store::Store> {
        parley_store::open(&self.database_url, 1).await.expect("the store opens")
    }

    /// The bootstrap organisation's id.
    pub async fn organisation(&self) -> String {
        let store = self.store().await;
        parley_server::admin::organisation(store.as_ref(), None).await.expect("one organisation").id.to_string()
    }

    /// A user of the bootstrap organisation with these organisation roles, a password and a key.
    pub async fn user(&self, roles: &str) -> TestUser {
        let store = self.store().await;
        let org = parley_server::admin::organisation(store.as_ref(), None).await.expect("one organisation");
        self.user_in(org.id, roles).await
    }

    /// A user of `organisation` with these organisation roles, a password and a key.
    pub async fn user_in(&self, organisation: ObjectId, roles: &str) -> TestUser {
        let store = self.store().await;
        let email = format!("user-{}@example.com", ObjectId::generate());
        let password = format!("pw-{}", hex::encode(rand::random::<[u8; 8]>()));
        let (user, _) = parley_server::admin::create_user(
            store.as_ref(),
            organisation,
            &email,
            "Test user",
            roles,
            Some(password.clone()),
        )
        .await
        .expect("the user is created");
        let (_, api_key) = parley_server::admin::create_key(store.as_ref(), user.id, "test").await.expect("a key");
        TestUser { id: user.id.to_string(), organisation: organisation.to_string(), email, password, api_key }
    }

    /// A second organisation; returns its admin.
    pub async fn other_organisation(&self) -> TestUser {
        let store = self.store().await;
        let created = parley_server::admin::create_organisation(store.as_ref(), "Other", "boss@other.example")
            .await
            .expect("the organisation is created");
        let user =
            parley_server::admin::person(store.as_ref(), created.id, "boss@other.example").await.expect("its admin");
        TestUser {
            id: user.id.to_string(),
            organisation: created.id.to_string(),
            email: created.admin_email,
            password: created.password,
            api_key: created.api_key,
        }
    }

    /// Makes `user` a member of `project` with these project roles, as the admin.
    pub async fn add_member(&self, project: &str, user: &str, roles: &[&str]) {
        let response = self
            .request(Method::POST, &format!("/new/v2.0/projects/{project}/members"))
            .json(&json!({ "userId": user, "roles": roles }))
            .send()
            .await
            .expect("an answer");
        assert!(response.status().is_success(), "adding a member: {}", response.status());
    }

    /// Posts a form to the token endpoint.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> Response {
        self.anonymous(Method::POST, "/auth/oauth2/token").form(form).send().await.expect("an answer")
    }

    /// Signs in with the password grant through the public client; returns the token answer.
    pub async fn sign_in(&self, username: &str, password: &str) -> Json {
        let response = self
            .token_request(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("client_id", "default"),
                ("client_secret", ""),
            ])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a JSON answer")
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

    /// Creates a project and returns its id.
    pub async fn create_project(&self) -> String {
        self.create_project_with(json!({ "name": "Test bot" })).await["_id"].as_str().expect("an _id").to_owned()
    }

    /// Creates a project from `body`, asserting success, and returns its JSON.
    pub async fn create_project_with(&self, body: Json) -> Json {
        let response = self
            .request(Method::POST, "/new/v2.0/projects")
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .expect("the request is answered");
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("a JSON body")
    }

    /// Sends records to the ingest endpoint as a JSON array.
    pub async fn ingest(&self, records: &[Json]) -> Response {
        self.request(Method::POST, "/new/v2.0/analytics/records")
            .header("Accept", "application/json")
            .json(records)
            .send()
            .await
            .expect("the request is answered")
    }

    /// Ingests records that must all be new.
    pub async fn ingest_new(&self, records: &[Json]) {
        let response = self.ingest(records).await;
        let status = response.status();
        let body: Json = response.json().await.expect("a JSON body");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body, json!({ "inserted": records.len(), "duplicates": 0, "dropped": 0 }));
    }

    /// Sends an update with credentials and a JSON body.
    pub async fn patch(&self, body: &Json) -> Response {
        self.request(Method::PATCH, "/new/v2.0/analytics").json(body).send().await.expect("the request is answered")
    }

    /// One page of a project's records as JSON; `query` is added to `projectId`.
    pub async fn list(&self, project: &str, query: &[(&str, &str)]) -> Json {
        let mut pairs = vec![("projectId", project)];
        pairs.extend_from_slice(query);
        let response = self
            .get("/new/v2.0/analytics")
            .query(&pairs)
            .header("Accept", "application/json")
            .send()
            .await
            .expect("the request is answered");
        let status = response.status();
        let body: Json = response.json().await.expect("a JSON body");
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Every record of a project (at most 100), in the default order.
    pub async fn all_records(&self, project: &str) -> Vec<Json> {
        let page = self.list(project, &[("limit", "100")]).await;
        assert!(page["total"].as_u64().expect("a total") <= 100, "more records than one page holds");
        page["items"].as_array().expect("items").clone()
    }

    /// The stored record with this `inputId`.
    pub async fn record_by_input(&self, project: &str, input_id: &str) -> Json {
        let records = self.all_records(project).await;
        let found: Vec<&Json> = records.iter().filter(|r| r["inputId"] == input_id).collect();
        assert_eq!(found.len(), 1, "records with inputId {input_id}: {records:?}");
        found[0].clone()
    }

    /// One record read through `GET /analytics/{id}` as JSON.
    pub async fn get_record(&self, id: &str) -> Json {
        let response = self.get_accepting(&format!("/new/v2.0/analytics/{id}"), "application/json").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), "application/json");
        response.json().await.expect("a JSON body")
    }

    /// How many records the database holds for `project`, read from the store itself: HTTP
    /// cannot tell a deleted project's records apart from absent ones, both are invisible.
    pub async fn stored_record_count(&self, project: &str) -> u64 {
        let store = parley_store::open(&self.database_url, 1).await.expect("the store opens");
        let filter = RecordFilter {
            project_id: ObjectId::parse(project).expect("a project id"),
            contact_id: None,
            session_id: None,
            from: None,
            to: None,
        };
        store.count_records(&filter).await.expect("a count")
    }

    /// Sends a hand-written request over a fresh connection, exactly as given, so that tests can
    /// control header spelling and the absence of headers a client library adds on its own.
    pub async fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.expect("a connection");
        stream.write_all(request.as_bytes()).await.expect("the request is sent");
        stream.write_all(body).await.expect("the body is sent");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.expect("the answer is read");
        RawResponse::parse(&bytes)
    }
}

/// An answer read from a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    fn parse(bytes: &[u8]) -> RawResponse {
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
        let head = std::str::from_utf8(&bytes[..split]).expect("UTF-8 headers");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let rest = &bytes[split + 4..];
        let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked { dechunk(rest) } else { rest.to_vec() };
        RawResponse { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size_text = std::str::from_utf8(&bytes[..line_end]).expect("a chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16).expect("hex size");
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}

/// A minimal valid record for ingest.
pub fn record(project: &str, contact: &str, session: &str, input: &str) -> Json {
    json!({ "projectId": project, "contactId": contact, "sessionId": session, "inputId": input })
}

/// A record with every field a client may send, each with a distinctive value.
pub fn full_record(project: &str, input: &str) -> Json {
    json!({
        "projectId": project,
        "contactId": "3f2a9d1c0b7e4a5f8d6c2b1a0e9f8d7c",
        "sessionId": format!("session-{input}"),
        "inputId": input,
        "timestamp": "2024-05-01T12:00:00.123Z",
        "inputText": "I want to book a flight, \"tomorrow\"\nplease",
        "inputData": { "payload": { "seat": "12A", "count": 2 } },
        "state": "default",
        "mode": "TextData",
        "userType": "external",
        "channel": "webchat3",
        "flowLanguage": "en-US",
        "flowName": "Booking",
        "flowReferenceId": "flow-ref-1",
        "entrypoint": "5f0c6bc4ad4f8b0011b2e0e1",
        "entrypointType": "project",
        "intent": "bookFlight",
        "intentFlow": "Booking",
        "intentScore": 0.87,
        "slots": { "city": ["Berlin"] },
        "foundSlots": "city",
        "foundSlotDetails": "city: Berlin",
        "completedGoals": ["greeted"],
        "trackedGoals": ["booking", "upsell"],
        "understood": true,
        "executionTime": 41.5,
        "execution": 3,
        "localeName": "English",
        "localeReferenceId": "locale-ref-1",
        "endpointName": "Web",
        "endpointUrlToken": "token-1",
        "endpointType": "webchat3",
        "snapshotName": "release-7",
        "rating": 1,
        "ratingComment": "fine",
        "inHandoverRequest": false,
        "inHandoverConversation": true,
        "handoverEscalations": 1,
        "custom1": "c1",
        "custom2": "c2",
        "custom3": null,
        "custom4": "c4",
        "custom5": "c5",
        "custom6": "c6",
        "custom7": "c7",
        "custom8": "c8",
        "custom9": "c9",
        "custom10": "c10",
        "ip": "10.1.2.3"
    })
}

/// Every field of the analytics record, in the order representations show them.
pub const RECORD_FIELD_NAMES: [&str; 53] = [
    "id",
    "organisation",
    "projectId",
    "contactId",
    "sessionId",
    "inputId",
    "timestamp",
    "inputText",
    "inputData",
    "state",
    "mode",
    "userType",
    "channel",
    "flowLanguage",
    "flowName",
    "flowReferenceId",
    "entrypoint",
    "entrypointType",
    "intent",
    "intentFlow",
    "intentScore",
    "slots",
    "foundSlots",
    "foundSlotDetails",
    "completedGoals",
    "trackedGoals",
    "understood",
    "executionTime",
    "execution",
    "localeName",
    "localeReferenceId",
    "endpointName",
    "endpointUrlToken",
    "endpointType",
    "snapshotName",
    "rating",
    "ratingComment",
    "inHandoverRequest",
    "inHandoverConversation",
    "handoverEscalations",
    "custom1",
    "custom2",
    "custom3",
    "custom4",
    "custom5",
    "custom6",
    "custom7",
    "custom8",
    "custom9",
    "custom10",
    "ip",
    "expiresAt",
    "updatedAt",
];

/// Whether two JSON values are equal, numbers compared by value (`9` equals `9.0`).
pub fn same_json(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Asserts that every field a client sent is stored as sent (times in their canonical form).
pub fn assert_holds_sent_fields(stored: &Json, sent: &Json) {
    for (name, value) in sent.as_object().expect("an object") {
        assert!(same_json(&stored[name], value), "field {name}: stored {} but sent {value}", stored[name]);
    }
}

pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().expect("a text header").to_owned())
}

pub fn content_type(response: &Response) -> String {
    header(response, "content-type").unwrap_or_default()
}

/// The reason phrase of a status, as the error format's `type` states it.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        other => panic!("no reason phrase known for {other}"),
    }
}

/// Asserts that `trace_id` is `api--` followed by a version 4 UUID.
pub fn assert_trace_id(trace_id: &str) {
    let uuid = trace_id.strip_prefix("api--").unwrap_or_else(|| panic!("trace id {trace_id} lacks the api-- prefix"));
    let parsed = uuid::Uuid::parse_str(uuid).unwrap_or_else(|e| panic!("trace id {trace_id}: {e}"));
    assert_eq!(parsed.get_version(), Some(uuid::Version::Random), "trace id {trace_id} is not a v4 UUID");
    assert_eq!(parsed.hyphenated().to_string(), uuid, "trace id {trace_id} is not in the hyphenated form");
}

/// Checks a problem answer completely (rest.md §8) and returns its body.
pub async fn assert_problem(response: Response, status: u16, code: u64, instance: &str) -> Json {
    assert_eq!(response.status().as_u16(), status, "status of {instance}");
    assert_eq!(content_type(&response), "application/problem+json");
    let trace_header = header(&response, "x-trace-id").expect("an X-Trace-Id header");
    let body: Json = response.json().await.expect("a JSON problem body");
    assert_problem_body(&body, status, code, instance, &trace_header);
    body
}

/// Checks the fields of a problem body.
pub fn assert_problem_body(body: &Json, status: u16, code: u64, instance: &str, trace_header: &str) {
    let reason = reason(status);
    assert_eq!(body["type"], reason, "{body}");
    assert_eq!(body["title"], format!("{reason} Error"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["instance"], instance, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    assert!(body["details"].is_object(), "{body}");
    assert_eq!(body["traceId"], trace_header, "{body}");
    assert_trace_id(trace_header);
    let keys: Vec<&str> = body.as_object().expect("an object").keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["code", "detail", "details", "instance", "status", "title", "traceId", "type"], "{body}");
}

/// Checks a 400 problem naming `field` in its details.
pub async fn assert_invalid(response: Response, code: u64, instance: &str, field: &str) -> Json {
    let body = assert_problem(response, 400, code, instance).await;
    assert_eq!(body["details"]["field"], field, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(field.rsplit('.').next().unwrap_or(field)), "the detail names {field}: {body}");
    body
}

/// An element of a parsed XML document.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlElement {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<XmlElement>,
    pub text: String,
}

impl XmlElement {
    /// The only child named `name`.
    pub fn child(&self, name: &str) -> &XmlElement {
        let found: Vec<&XmlElement> = self.children.iter().filter(|c| c.name == name).collect();
        assert_eq!(found.len(), 1, "children named {name} of <{}>", self.name);
        found[0]
    }

    pub fn children_named(&self, name: &str) -> Vec<&XmlElement> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn is_nil(&self) -> bool {
        self.attribute("xsi:nil") == Some("true")
    }
}

/// Whether XML 1.0 allows `c` in a document at all.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Parses an XML 1.0 document into its root element, failing on anything not well-formed,
/// including characters XML 1.0 forbids, raw or as character references.
pub fn parse_xml(document: &str) -> XmlElement {
    if let Some(bad) = document.chars().find(|c| !is_xml_char(*c)) {
        panic!("the document holds U+{:04X}, which XML 1.0 forbids", bad as u32);
    }
    let mut reader = quick_xml::Reader::from_str(document);
    let mut stack: Vec<XmlElement> = Vec::new();
    let mut root: Option<XmlElement> = None;
    let open = |start: &quick_xml::events::BytesStart<'_>| XmlElement {
        name: start.name().as_ref().to_owned(),
        attributes: start
            .attributes()
            .map(|a| {
                let a = a.expect("a well-formed attribute");
                (
                    a.key.as_ref().to_owned(),
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0).expect("an attribute value").into_owned(),
                )
            })
            .collect(),
        children: Vec::new(),
        text: String::new(),
    };
    loop {
        let event = reader.read_event().unwrap_or_else(|e| panic!("malformed XML at {}: {e}", reader.error_position()));
        let finished = match event {
            Event::Start(start) => {
                stack.push(open(&start));
                None
            }
            Event::Empty(start) => Some(open(&start)),
            Event::End(_) => Some(stack.pop().expect("an open element")),
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&content),
                    None => assert!(content.trim().is_empty(), "text outside the root: {content}"),
                }
                None
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().expect("a valid character reference") {
                    Some(c) => {
                        assert!(is_xml_char(c), "the character reference {reference:?} names a forbidden character");
                        c.to_string()
                    }
                    None => quick_xml::escape::resolve_predefined_entity(&reference)
                        .unwrap_or_else(|| panic!("unknown entity {reference:?}"))
                        .to_owned(),
                };
                stack.last_mut().expect("a reference inside an element").text.push_str(&resolved);
                None
            }
            Event::CData(data) => {
                stack.last_mut().expect("CDATA inside an element").text.push_str(&data.xml10_content());
                None
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => None,
        };
        if let Some(element) = finished {
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => {
                    assert!(root.is_none(), "more than one root element");
                    root = Some(element);
                }
            }
        }
    }
    assert!(stack.is_empty(), "unclosed elements");
    root.expect("a root element")
}

/// The JSON value an XML element of the response stands for, given the JSON value it should
/// equal: the expected value says whether to read a list, a number or a text.
pub fn assert_xml_matches(element: &XmlElement, expected: &Json) {
    let at = &element.name;
    match expected {
        Json::Null => assert!(element.is_nil() && element.children.is_empty() && element.text.is_empty(), "<{at}>"),
        Json::String(text) => assert_eq!(&element.text, text, "<{at}>"),
        Json::Bool(b) => assert_eq!(element.text, b.to_string(), "<{at}>"),
        Json::Number(n) => {
            let parsed: f64 = element.text.parse().unwrap_or_else(|_| panic!("<{at}> holds {:?}", element.text));
            assert_eq!(Some(parsed), n.as_f64(), "<{at}>");
        }
        Json::Array(items) => {
            let children = element.children_named("item");
            assert_eq!(children.len(), element.children.len(), "<{at}> holds only item elements");
            assert_eq!(children.len(), items.len(), "<{at}>");
            for (child, item) in children.iter().zip(items) {
                assert_xml_matches(child, item);
            }
        }
        Json::Object(map) => {
            assert_eq!(element.children.len(), map.len(), "<{at}>: {:?}", element.children);
            for (name, value) in map {
                assert_xml_matches(element.child(name), value);
            }
        }
    }
}

/// Parses an RFC 4180 document into its header row and its data rows.
pub fn parse_csv(document: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(document.as_bytes());
    let headers = reader.headers().expect("a header row").iter().map(str::to_owned).collect();
    let rows =
        reader.records().map(|row| row.expect("a well-formed row").iter().map(str::to_owned).collect()).collect();
    (headers, rows)
}

/// The CSV cell a JSON value becomes: text as is, null empty, anything else as JSON text.
pub fn assert_csv_cell(cell: &str, expected: &Json, column: &str) {
    match expected {
        Json::Null => assert_eq!(cell, "", "column {column}"),
        Json::String(text) => assert_eq!(cell, text, "column {column}"),
        other => {
            let parsed: Json =
                serde_json::from_str(cell).unwrap_or_else(|e| panic!("column {column} holds {cell:?}, not JSON: {e}"));
            assert!(same_json(&parsed, other), "column {column}: {cell} is not {other}");
        }
    }
}

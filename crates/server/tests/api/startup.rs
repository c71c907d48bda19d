//! The binary's start-up paths and the self-description it serves: `parley migrate`,
//! `parley config`, a database that cannot be reached, and the OpenAPI document.

use std::collections::BTreeSet;
use std::process::Command;

use parley_core::RECORD_FIELDS;
use serde_json::Value as Json;

use crate::helpers::spawn_app;

fn parley(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(args)
        .env_remove("PARLEY_DATABASE_URL")
        .env_remove("PARLEY_ADMIN_API_KEY")
        .output()
        .expect("parley runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let (ok, text) = parley(&["migrate", "--data-dir", &data_dir]);
    assert!(ok, "{text}");
    assert!(text.contains("migrations applied"), "{text}");
    let conn = rusqlite::Connection::open(dir.path().join("parley.db")).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM parley_migrations ORDER BY version")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let every: Vec<i64> = parley_store::migrations::SQLITE.iter().map(|m| m.version).collect();
    assert_eq!(versions, every);
}

#[test]
fn config_prints_the_effective_configuration_without_secrets() {
    let (ok, text) = parley(&["config", "--listen", "127.0.0.1:9999", "--database", "postgres://u:hunter2@db:5432/p"]);
    assert!(ok, "{text}");
    assert!(text.contains("listen = \"127.0.0.1:9999\""), "{text}");
    assert!(text.contains("postgres://u:********@db:5432/p"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn config_shows_the_access_cache_and_reads_it_from_the_environment() {
    let config_with = |value: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
        command.arg("config").env_remove("PARLEY_ACCESS_CACHE_SECS");
        if let Some(value) = value {
            command.env("PARLEY_ACCESS_CACHE_SECS", value);
        }
        let output = command.output().expect("parley runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let text = config_with(None);
    assert!(text.lines().any(|line| line == "access_cache_secs = 5"), "{text}");
    let text = config_with(Some("0"));
    assert!(text.lines().any(|line| line == "access_cache_secs = 0"), "{text}");
}

#[test]
fn an_unknown_configuration_key_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("parley.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nlistne = 1\n").unwrap();
    let (ok, text) = parley(&["serve", "--config", &file.display().to_string()]);
    assert!(!ok, "{text}");
    assert!(text.contains("listne"), "{text}");
}

#[test]
fn an_unreachable_database_stops_the_start_with_one_line_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://parley@127.0.0.1:{port}/parley");
    let (ok, text) = parley(&["serve", "--listen", "127.0.0.1:0", "--database", &url]);
    assert!(!ok, "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("parley:")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains(&format!("127.0.0.1:{port}")), "{text}");
}

/// A database that does not exist is named with PostgreSQL's own words and what to do; `parley
/// migrate --create-database` creates it, once.
#[tokio::test]
async fn a_missing_database_says_so_and_migrate_can_create_it() {
    let Ok(admin) = std::env::var("PARLEY_TEST_POSTGRES_URL") else {
        assert!(std::env::var_os("CI").is_none(), "CI runs this on PostgreSQL");
        return;
    };
    let name = format!("parley_created_{}", parley_core::ObjectId::generate());
    let url = parley_store::testing::with_database(&admin, &name);
    let (ok, text) = parley(&["migrate", "--database", &url]);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("database \"{name}\" does not exist (SQLSTATE 3D000)")), "{text}");
    assert!(text.contains("parley migrate --create-database"), "{text}");
    let (ok, text) = parley(&["migrate", "--create-database", "--database", &url]);
    assert!(ok && text.contains("database created") && text.contains("migrations applied"), "{text}");
    let (ok, text) = parley(&["migrate", "--create-database", "--database", &url]);
    assert!(ok && !text.contains("database created") && text.contains("migrations applied"), "{text}");

    // The read-only role docs/bi-tools.md gives BI tools can read every table it names.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/bi-tools.md")).unwrap();
    let sql = doc.split("```sql").nth(1).and_then(|rest| rest.split("```").next()).expect("the role's SQL");
    let role = format!("bi_{}", parley_core::ObjectId::generate());
    let sql = sql.replace("ROLE bi ", &format!("ROLE {role} ")).replace("TO bi;", &format!("TO {role};"));
    let sql = sql.replace("PASSWORD '…'", "PASSWORD 'read-only'");
    let database = parley_store::testing::postgres_client(&url).await;
    database.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
    let tables: Vec<&str> =
        sql.split("GRANT SELECT ON").nth(1).unwrap().split(" TO ").next().unwrap().split(',').map(str::trim).collect();
    assert!(tables.len() >= 11, "{tables:?}");
    let (scheme, rest) = url.split_once("://").unwrap();
    let as_bi = format!("{scheme}://{role}:read-only@{}", rest.split_once('@').map_or(rest, |(_, host)| host));
    let bi = parley_store::testing::postgres_client(&as_bi).await;
    for table in &tables {
        bi.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap_or_else(|e| panic!("{table}: {e}"));
    }
    assert!(bi.query_one("SELECT count(*) FROM users", &[]).await.is_err(), "no access to identities");
    // A role that may not create databases is told so, in PostgreSQL's words.
    let elsewhere = as_bi.replace(&name, &format!("{name}_not_made"));
    let (ok, text) = parley(&["migrate", "--create-database", "--database", &elsewhere]);
    assert!(!ok, "{text}");
    assert!(text.contains("cannot create the database") && text.contains("permission denied"), "{text}");
    drop((bi, database));
    let client = parley_store::testing::postgres_client(&admin).await;
    client.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
    client.batch_execute(&format!("DROP ROLE {role}")).await.unwrap();
}

fn keys(object: &Json) -> BTreeSet<String> {
    object.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// The record and update schemas are built from the field catalogue: every field, and for
/// updates exactly the editable ones.
#[tokio::test]
async fn the_api_document_describes_records_and_updates_from_the_catalogue() {
    let app = spawn_app().await;
    let document: Json =
        app.anonymous(reqwest::Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
    assert_eq!(document["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true), "{}", document["openapi"]);
    let schemas = &document["components"]["schemas"];
    let record: BTreeSet<String> = RECORD_FIELDS.iter().map(|f| f.name.to_owned()).collect();
    assert_eq!(keys(&schemas["AnalyticsRecord"]["properties"]), record);
    let editable: BTreeSet<String> = RECORD_FIELDS.iter().filter(|f| f.editable).map(|f| f.name.to_owned()).collect();
    let update = &schemas["UpdateAnalyticsRequest"];
    assert_eq!(keys(&update["properties"]["properties"]["properties"]), editable);
    assert_eq!(update["properties"]["properties"]["additionalProperties"], Json::Bool(false));
    let operation = &document["paths"]["/new/v2.0/analytics"]["patch"];
    assert!(operation["responses"]["204"].is_object() && operation["responses"]["400"].is_object(), "{operation}");
}

/// Starts `parley serve` on a free port over `data_dir` and answers what it printed (its lines
/// starting with `parley:`) once it is listening; the process is killed after.
async fn banner(data_dir: &std::path::Path) -> Vec<String> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", &data_dir.display().to_string()])
        .env_remove("PARLEY_DATABASE_URL")
        .env_remove("PARLEY_ADMIN_API_KEY")
        .env_remove("PARLEY_ADMIN_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("parley starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let done = line.contains("the API reference at");
        printed.push(line);
        if done {
            break;
        }
    }
    child.kill().await.unwrap();
    printed
}

/// The first start prints a first call that works as printed, with the real key; a later start
/// says how to get a new key or password, which the CLI then gives, and lists users in a table.
#[tokio::test]
async fn the_banner_shows_a_call_that_works_and_the_cli_recovers_access() {
    let dir = tempfile::tempdir().unwrap();
    let first = banner(dir.path()).await;
    let key = first.iter().find_map(|l| l.strip_prefix("parley: admin API key (shown only now, keep it safe): "));
    let key = key.expect("the first start prints the key").to_owned();
    let call = first.iter().find_map(|l| l.strip_prefix("parley: try  ")).expect("a first call").to_owned();
    assert!(call.contains(&key), "the call has the real key: {call}");

    // The call works as printed against a server over the same data.
    let data_dir = dir.path().display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["serve", "--listen", &address, "--data-dir", &data_dir])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = async {
        while reqwest::get(format!("http://{address}/health/live")).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), ready).await.expect("the server starts");
    let call = call.replace(&first_address(&first), &format!("http://{address}"));
    let output = tokio::process::Command::new("bash").arg("-c").arg(&call).output().await.unwrap();
    let answer: Json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {call}"));
    assert_eq!(answer["name"], "my bot", "{answer}");
    assert!(answer["_id"].is_string());
    child.kill().await.unwrap();

    let later = banner(dir.path()).await;
    assert!(later.iter().all(|l| !l.contains(&key)), "a later start shows no key: {later:?}");
    assert!(later.iter().any(|l| l.contains("parley keys create --user EMAIL")), "{later:?}");

    let (ok, text) = parley(&["users", "list", "--data-dir", &data_dir]);
    assert!(ok, "{text}");
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("USER ID") && rows[0].contains("EMAIL") && rows[0].contains("ROLES"), "{text}");
    assert!(rows[1].contains("admin@localhost") && rows[1].contains("admin"), "{text}");
    let (ok, text) = parley(&["users", "reset-password", "--email", "admin@localhost", "--data-dir", &data_dir]);
    assert!(ok, "{text}");
    assert!(text.starts_with("new password (shown only now): "), "{text}");
    let (ok, text) = parley(&["users", "reset-password", "--email", "nobody@localhost", "--data-dir", &data_dir]);
    assert!(!ok && text.contains("no user nobody@localhost"), "{text}");
    let (ok, text) = parley(&["keys", "list", "--user", "admin@localhost", "--data-dir", &data_dir]);
    assert!(ok && text.starts_with("KEY ID") && text.contains("bootstrap"), "{text}");
}

/// The address the first start printed its call to.
fn first_address(printed: &[String]) -> String {
    let line = printed.iter().find(|l| l.contains("the API reference at")).unwrap();
    let start = line.find("http://").unwrap();
    line[start..].split('/').take(3).collect::<Vec<_>>().join("/")
}

#[tokio::test]
async fn the_root_leads_to_the_reference_and_the_version_is_told() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(response.headers()["location"], "/insights");
    let response = reqwest::get(app.url("/reference")).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let html = response.text().await.unwrap();
    assert!(html.contains("parley API reference") && html.contains("/new/v2.0/analytics/records"), "{html}");
    let version: Json = reqwest::get(app.url("/version")).await.unwrap().json().await.unwrap();
    assert_eq!(version["name"], "parley");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["engine"], "sqlite");
}

/// The subcommands a `--help` page lists under "Commands:" (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    let Some(start) = help.find("Commands:\n") else { return Vec::new() };
    help[start + "Commands:\n".len()..]
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command and subcommand answers `--help` with an example of itself, found by walking
/// the commands `parley --help` lists (so a new command without one fails here).
#[test]
fn every_command_has_help_with_an_example() {
    let (ok, top) = parley(&["--help"]);
    assert!(ok, "{top}");
    let mut pending: Vec<Vec<String>> = subcommands(&top).into_iter().map(|c| vec![c]).collect();
    assert!(pending.len() >= 9, "{top}");
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let (ok, help) = parley(&args);
        assert!(ok, "{path:?}: {help}");
        let example = format!("Example: parley {}", path.join(" "));
        assert!(help.contains(&example), "`parley {} --help` gives no example:\n{help}", path.join(" "));
        for sub in subcommands(&help) {
            pending.push(path.iter().cloned().chain([sub]).collect());
        }
        seen += 1;
    }
    assert!(seen >= 20, "every command and subcommand: {seen}");
}

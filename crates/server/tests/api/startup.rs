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
    let client = parley_store::testing::postgres_client(&admin).await;
    client.batch_execute(&format!("DROP DATABASE {name}")).await.unwrap();
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

//! `parley demo`: what it stores is what it says, spread as a real bot's data is, and the numbers
//! parley derives from it (sessions) agree with a recomputation from its raw rows.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{count, ndjson, parley, parley_ok};
use crate::helpers::{Engine, on_both_engines, spawn_app_on};

on_both_engines!(the_demo_fills_every_collection_as_a_real_bot_would,);

const RECORDS: u64 = 1500;
const DAYS: i64 = 60;

async fn the_demo_fills_every_collection_as_a_real_bot_would(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let started = OffsetDateTime::now_utc();
    let run = parley_ok(&app, &["demo", "--records", &RECORDS.to_string(), "--days", &DAYS.to_string()]).await;
    let projects: Vec<(String, String)> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("project "))
        .map(|rest| {
            let (id, name) = rest.split_once(": ").expect("project ID: name");
            (id.to_owned(), name.to_owned())
        })
        .collect();
    assert_eq!(projects.len(), 3, "{run:?}");
    assert!(!run.stdout.contains("first start"), "the organisation existed: {run:?}");

    // Every record of every project, read back through the export.
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    let mut per_project = Vec::new();
    for (id, _) in &projects {
        let file = dir.path().join(format!("{id}.ndjson"));
        parley_ok(&app, &["export", "--project", id, "--output", &file.display().to_string()]).await;
        let records = ndjson(&file);
        assert_eq!(records.len() as u64, count(&app, "Analytics", id).await);
        per_project.push(records.len());
        all.extend(records);
    }
    assert_eq!(all.len() as u64, RECORDS, "exactly the records asked for");
    assert!(per_project[0] > per_project[1] && per_project[1] > per_project[2], "skewed: {per_project:?}");

    // A history of DAYS days ending now, several channels and locales, a few heavy contacts.
    let time = |row: &Json| OffsetDateTime::parse(row["timestamp"].as_str().unwrap(), &Rfc3339).unwrap();
    let earliest = all.iter().map(time).min().unwrap();
    let latest = all.iter().map(time).max().unwrap();
    assert!(earliest >= started - time::Duration::days(DAYS + 1), "{earliest}");
    assert!(latest <= OffsetDateTime::now_utc(), "{latest}");
    assert!(latest - earliest > time::Duration::days(DAYS / 2), "{earliest} .. {latest}");
    let distinct = |name: &str| all.iter().filter_map(|r| r[name].as_str()).collect::<BTreeSet<_>>().len();
    assert!(distinct("channel") >= 4 && distinct("localeName") >= 4 && distinct("intent") >= 8);
    let mut by_contact: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &all {
        *by_contact.entry(row["contactId"].as_str().unwrap()).or_default() += 1;
    }
    let busiest = by_contact.values().max().unwrap();
    assert!(*busiest as f64 > 10.0 * all.len() as f64 / by_contact.len() as f64, "a few contacts write most");

    // The other collections, and the sessions parley derives: one per session of the records.
    for (id, _) in &projects {
        let sessions: BTreeSet<&str> =
            all.iter().filter(|r| r["projectId"] == id.as_str()).map(|r| r["sessionId"].as_str().unwrap()).collect();
        assert_eq!(count(&app, "Sessions", id).await, sessions.len() as u64, "sessions of {id}");
        let records = all.iter().filter(|r| r["projectId"] == id.as_str()).count() as u64;
        assert_eq!(count(&app, "ExecutedSteps", id).await, records, "a step per input");
        assert!(count(&app, "Conversations", id).await >= 2 * records, "a user and a bot message per input");
    }
    let first = &projects[0].0;
    assert!(count(&app, "GoalEvents", first).await > 0);
    assert!(count(&app, "LiveAgentEscalations", first).await > 0);
    let file = dir.path().join("messages.ndjson");
    parley_ok(
        &app,
        &["export", "--collection", "messages", "--project", first, "--output", &file.display().to_string()],
    )
    .await;
    let sources: BTreeSet<String> = ndjson(&file).iter().map(|m| m["source"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sources, BTreeSet::from(["agent".into(), "bot".into(), "user".into()]));

    // A second demo adds three more projects beside the first.
    let again = parley(&app, &["demo", "--records", "10"]).await;
    assert!(again.ok, "{again:?}");
    assert_eq!(again.stdout.lines().filter(|l| l.starts_with("project ")).count(), 3);
}

/// On a store without an organisation, the demo makes one as the first start would, and says how
/// to sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_on_a_new_store_makes_the_organisation_first() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let run = |args: Vec<&str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"));
        command
            .args(args)
            .args(["--data-dir", &data_dir])
            .env_remove("PARLEY_DATABASE_URL")
            .env_remove("PARLEY_CONFIG");
        command.env_remove("PARLEY_ADMIN_API_KEY");
        command
    };
    let output = run(vec!["demo", "--records", "40"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let key_line = stdout.lines().find(|l| l.contains("admin API key (shown only now")).expect("the key is shown");
    assert_eq!(key_line.rsplit(' ').next().unwrap().len(), 64, "{key_line}");
    assert!(stdout.contains("stored 40 records"), "{stdout}");
    let keys = run(vec!["keys", "list", "--user", "admin@localhost"]).output().await.unwrap();
    assert!(keys.status.success());
    assert_eq!(String::from_utf8_lossy(&keys.stdout).lines().count(), 2, "a header and the admin's key");
}

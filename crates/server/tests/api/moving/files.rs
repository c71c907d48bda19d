//! Export and import through files: every collection leaves one installation and arrives whole in
//! another, in NDJSON, CSV and Parquet (read by pyarrow and DuckDB); refused rows are named by
//! line and the rest imported; an interrupted import goes on where it stopped, and an interrupted
//! export leaves nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use super::{assert_arrived, command, count, demo_app, export, ndjson, parley, parley_ok};
use crate::helpers::{Engine, TestApp, call, on_both_engines, python_with, spawn_app, spawn_app_on};

on_both_engines!(every_collection_leaves_and_arrives_whole,);

/// Each collection a test moves, with the property that names a row in both installations.
const MOVED: [(&str, &str); 5] = [
    ("records", "inputId"),
    ("messages", "messageId"),
    ("steps", "executionId"),
    ("escalations", "escalationId"),
    ("goal-events", "eventId"),
];

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// Makes in `target`'s project the goals of `source`'s project, with the same steps, and answers
/// the pairs of goal ids (source, target): what an operator does before moving goal events.
async fn copy_goals(source: &TestApp, from: &str, target: &TestApp, to: &str) -> Vec<(String, String)> {
    let (status, body) = call(source, Method::GET, &format!("/new/v2.0/projects/{from}/goals"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let goals = body["items"].as_array().or_else(|| body.as_array()).unwrap_or_else(|| panic!("{body}")).clone();
    let mut pairs = Vec::new();
    for goal in goals {
        let steps: Vec<Json> = goal["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| json!({"stepId": s["stepId"], "name": s["name"], "type": s["type"], "order": s["order"]}))
            .collect();
        let body = json!({"name": goal["name"], "steps": steps});
        let (status, made) = call(target, Method::POST, &format!("/new/v2.0/projects/{to}/goals"), Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        pairs.push((goal["_id"].as_str().unwrap().to_owned(), made["_id"].as_str().unwrap().to_owned()));
    }
    pairs
}

async fn every_collection_leaves_and_arrives_whole(engine: Engine) {
    let (source, from) = demo_app(engine.clone(), 900).await;
    let target = spawn_app_on(engine).await;
    let to = target.create_project().await;
    let dir = tempfile::tempdir().unwrap();
    let goals = copy_goals(&source, &from, &target, &to).await;

    for (collection, key) in MOVED {
        let out = export(&source, collection, &from, dir.path(), &format!("{collection}-out")).await;
        let mut rows = ndjson(&out);
        assert!(!rows.is_empty(), "{collection}");
        assert_eq!(rows.len() as u64, count(&source, set_of(collection), &from).await, "{collection}: every row");
        if collection == "goal-events" {
            // Goal events name their goal: the goal of the target project with the same steps.
            let text = std::fs::read_to_string(&out).unwrap();
            let text = goals.iter().fold(text, |text, (old, new)| text.replace(old, new));
            std::fs::write(&out, text).unwrap();
            rows = ndjson(&out);
        }
        let run = parley_ok(&target, &["import", "--collection", collection, "--project", &to, &path_text(&out)]).await;
        assert!(run.stdout.contains(&format!("{} inserted", rows.len())), "{collection}: {run:?}");
        let back = export(&target, collection, &to, dir.path(), &format!("{collection}-back")).await;
        assert_arrived(ndjson(&back), rows, key, collection);
    }
    // What parley derives from them is the same on both sides.
    let sessions = export(&source, "sessions", &from, dir.path(), "sessions-out").await;
    let derived = export(&target, "sessions", &to, dir.path(), "sessions-back").await;
    assert_arrived(ndjson(&derived), ndjson(&sessions), "sessionId", "records");

    // CSV: out and in again, into another project.
    let csv = dir.path().join("records.csv");
    parley_ok(&source, &["export", "--project", &from, "--output", &path_text(&csv)]).await;
    let other = target.create_project().await;
    parley_ok(&target, &["import", "--project", &other, &path_text(&csv)]).await;
    let back = export(&target, "records", &other, dir.path(), "csv-back").await;
    let original = ndjson(&dir.path().join("records-out.ndjson"));
    assert_arrived(ndjson(&back), original, "inputId", "CSV carries every value");
}

fn set_of(collection: &str) -> &'static str {
    match collection {
        "records" => "Analytics",
        "messages" => "Conversations",
        "steps" => "ExecutedSteps",
        "escalations" => "LiveAgentEscalations",
        "goal-events" => "GoalEvents",
        _ => unreachable!("{collection}"),
    }
}

/// A Parquet export, read by pyarrow and by DuckDB, holds every row and value of the NDJSON one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_exports_read_back_in_pyarrow_and_duckdb() {
    let python = tokio::task::spawn_blocking(|| {
        let check =
            "import pyarrow, duckdb, pytz; assert pyarrow.__version__ == '18.1.0' and duckdb.__version__ == '1.1.3'";
        python_with("pyarrow==18.1.0 duckdb==1.1.3 pytz==2024.2", check).join("python")
    })
    .await
    .unwrap();
    let (app, project) = demo_app(Engine::Sqlite, 700).await;
    let dir = tempfile::tempdir().unwrap();
    let expected = ndjson(&export(&app, "records", &project, dir.path(), "records").await);
    let parquet = dir.path().join("records.parquet");
    parley_ok(&app, &["export", "--project", &project, "--output", &path_text(&parquet)]).await;
    // Each reader writes the rows as JSON: times as ISO text in milliseconds, everything else as read.
    let script = r#"
import json, sys, datetime, pyarrow.parquet as pq, duckdb
def plain(v):
    # parley writes a whole double without a fraction, as JSON allows.
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (v.microsecond // 1000)
    return v
path, reader = sys.argv[1], sys.argv[2]
if reader == 'pyarrow':
    table = pq.read_table(path)
    assert str(table.schema.field('timestamp').type) == 'timestamp[ms, tz=UTC]', table.schema.field('timestamp').type
    rows = table.to_pylist()
else:
    cursor = duckdb.connect().execute("SELECT * FROM read_parquet('%s')" % path)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
print(json.dumps([{k: plain(v) for k, v in r.items()} for r in rows]))
"#;
    for reader in ["pyarrow", "duckdb"] {
        let output = std::process::Command::new(&python)
            .args(["-c", script, &path_text(&parquet), reader])
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(output.status.success(), "{reader}: {}", String::from_utf8_lossy(&output.stderr));
        let rows: Vec<Json> = serde_json::from_slice(&output.stdout).unwrap();
        // JSON values and lists are text in Parquet: read them back as JSON to compare.
        let rows: Vec<Json> = rows
            .into_iter()
            .map(|mut row| {
                for name in ["inputData", "slots", "completedGoals", "trackedGoals"] {
                    if let Some(text) = row[name].as_str() {
                        row[name] = serde_json::from_str(text).unwrap();
                    }
                }
                row
            })
            .collect();
        assert_arrived(rows, expected.clone(), "inputId", reader);
    }
}

/// A row that cannot be imported is named by its line, with the reason, and the rest go in; with
/// `--strict` the import stops at the first, keeping the batches before it. Rows are masked as
/// the project says, as over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_rows_are_named_by_line_and_the_rest_imported() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let dir = tempfile::tempdir().unwrap();
    let record = |input: &str| json!({"projectId": project, "contactId": "c", "sessionId": "s", "inputId": input});
    let mut scored = record("x3");
    scored["intentScore"] = json!(7);
    let mut misspelt = record("x4");
    misspelt["intnet"] = json!("refund");
    let mut elsewhere = record("x5");
    elsewhere["projectId"] = json!("5f0c6bc4ad4f8b0011b2e0e1");
    let lines = [
        record("x1").to_string(),
        "not json".into(),
        scored.to_string(),
        misspelt.to_string(),
        elsewhere.to_string(),
        String::new(),
        record("x2").to_string(),
    ];
    let file = dir.path().join("records.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let run = parley(&app, &["import", &path_text(&file)]).await;
    assert!(!run.ok, "refused rows fail the command: {run:?}");
    let at = |line: usize| format!("{}:{line}: refused: ", file.display());
    assert!(run.stderr.contains(&format!("{}is not JSON", at(2))), "{run:?}");
    assert!(run.stderr.contains(&format!("{}'intentScore' must be a number between 0 and 1.", at(3))), "{run:?}");
    assert!(run.stderr.contains(&at(4)) && run.stderr.contains("'intnet'"), "{run:?}");
    assert!(run.stderr.contains(&format!("{}'projectId' 5f0c6bc4ad4f8b0011b2e0e1 is not a project", at(5))), "{run:?}");
    assert!(
        run.stdout.contains("read 6 rows") && run.stdout.contains("2 inserted") && run.stdout.contains("4 refused")
    );
    assert!(run.stderr.contains("4 rows were refused (see above); the others are imported"), "{run:?}");
    assert_eq!(count(&app, "Analytics", &project).await, 2);

    // CSV: a cell that is not its field's type, and a row with too many cells.
    let csv = dir.path().join("records.csv");
    std::fs::write(
        &csv,
        format!(
            "projectId,contactId,sessionId,inputId,intentScore,understood\n\
        {project},c,s,y1,0.5,true\n{project},c,s,y2,high,false\n{project},c,s,y3,,\n"
        ),
    )
    .unwrap();
    let run = parley(&app, &["import", &path_text(&csv)]).await;
    assert!(run.stderr.contains(&format!("{}:3: refused: 'intentScore' must be", csv.display())), "{run:?}");
    assert!(run.stdout.contains("2 inserted") && run.stdout.contains("1 refused"), "{run:?}");
    let rows = crate::helpers::odata_values(&app, "/v2.4/Analytics?$filter=inputId%20eq%20'y1'").await;
    assert_eq!((rows[0]["intentScore"].clone(), rows[0]["understood"].clone()), (json!(0.5), json!(true)));

    // A goal event naming no goal of the project: refused by what is stored.
    let events = dir.path().join("events.ndjson");
    std::fs::write(
        &events,
        json!({"projectId": project, "sessionId": "s", "eventId": "e1", "goalCycleId": "g",
        "stepId": "st", "goalId": "5f0c6bc4ad4f8b0011b2e0e1"})
        .to_string(),
    )
    .unwrap();
    let run = parley(&app, &["import", "--collection", "goal-events", &path_text(&events)]).await;
    assert!(
        run.stderr.contains(&format!("{}:1: refused: 'goalId' names no goal of the project.", events.display())),
        "{run:?}"
    );

    // --strict: the batch before the refused row is stored, the one holding it is not.
    let strict = dir.path().join("strict.ndjson");
    std::fs::write(
        &strict,
        [record("z1"), record("z2"), record("z3"), scored.clone()].map(|r| r.to_string()).join("\n"),
    )
    .unwrap();
    let run = parley(&app, &["import", "--strict", "--batch", "2", &path_text(&strict)]).await;
    assert!(!run.ok);
    assert!(run.stderr.contains(&format!("{}:4: refused", strict.display())), "{run:?}");
    assert!(run.stderr.contains("stopped at the first refused row (--strict)"), "{run:?}");
    let stored =
        crate::helpers::odata_values(&app, "/v2.4/Analytics?$filter=startswith(inputId,'z')&$select=inputId").await;
    assert_eq!(stored.iter().map(|r| r["inputId"].clone()).collect::<Vec<_>>(), [json!("z1"), json!("z2")]);

    // Masking applies to imported rows as to ingested ones.
    let masked = app.create_project_with_settings(json!({"maskSensitive": true})).await;
    let secret = dir.path().join("secret.ndjson");
    std::fs::write(
        &secret,
        json!({"projectId": masked, "contactId": "c", "sessionId": "s", "inputId": "m1",
        "inputText": "my card is 4111 1111 1111 1111", "ip": "10.1.2.3"})
        .to_string(),
    )
    .unwrap();
    parley_ok(&app, &["import", &path_text(&secret)]).await;
    let rows = crate::helpers::odata_values(&app, "/v2.4/Analytics?$filter=inputId%20eq%20'm1'").await;
    assert_eq!((rows[0]["inputText"].clone(), rows[0]["ip"].clone()), (json!("*****"), json!("*****")));
}

/// What an operator mistypes is refused before anything is read or written, in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistaken_commands_are_refused_in_words() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rows.ndjson");
    std::fs::write(&file, "").unwrap();
    let notes = dir.path().join("rows.txt");
    std::fs::write(&notes, "").unwrap();
    let missing = dir.path().join("missing.ndjson");
    let (file, notes, missing) = (path_text(&file), path_text(&notes), path_text(&missing));
    let cases: [(&[&str], &str); 10] = [
        (&["import", "--collection", "sessions", &file], "sessions are derived from the other collections"),
        (&["import", "--from-odata", "http://127.0.0.1:9/v2.4", &file], "give files or --from-odata, not both"),
        (&["import", &notes], "name the format with --format (ndjson, json or csv)"),
        (&["import", &missing], "cannot read"),
        (&["import", "--project", "000000000000000000000000", &file], "there is no such project in organisation"),
        (&["import", "--project", "nothex", &file], "--project nothex"),
        (&["import", "--batch", "0", &file], "--batch"),
        (&["export", "--from", "yesterday"], "not an RFC 3339 time such as 2026-01-31T00:00:00Z"),
        (&["export", "--format", "parquet"], "Parquet is written to a file: name one with --output"),
        (&["import", "--from-odata", "http://127.0.0.1:9/v2.4"], "cannot be reached"),
    ];
    for (args, message) in cases {
        let run = parley(&app, args).await;
        assert!(!run.ok, "{args:?}");
        assert!(run.stderr.contains(message), "{args:?}: {run:?}");
    }
    // An address that answers, but is no OData service.
    let rest = app.url("/new/v2.0");
    let run = parley(&app, &["import", "--from-odata", &rest, "--apikey", &app.api_key]).await;
    assert!(
        !run.ok && run.stderr.contains("not an OData v4 entity set or service root with a set of records"),
        "{run:?}"
    );
    let run = parley_ok(&app, &["import", &file]).await;
    assert!(run.stdout.contains("read 0 rows"), "an empty file imports nothing: {run:?}");
}

/// Waits until `done` holds, for at most a minute.
async fn until(mut done: impl FnMut() -> bool) {
    let waited = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), waited).await.expect("in time");
}

fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("running");
    std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
}

/// Ctrl-C stops an import between two batches; the same command then goes on where it stopped,
/// and every row is there once. Ctrl-C during an export leaves no file at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_goes_on_and_an_interrupted_export_leaves_nothing() {
    const ROWS: usize = 30_000;
    let app = spawn_app().await;
    let project = app.create_project().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.ndjson");
    let lines: Vec<String> = (0..ROWS)
        .map(|n| {
            json!({"projectId": project, "contactId": format!("c{}", n % 97), "sessionId": format!("s{}", n / 5),
            "inputId": format!("i{n:06}"), "inputText": "hello"})
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let args = ["import", "--batch", "200", &path_text(&file)];
    let checkpoints = app.data_dir().join("imports");
    let child =
        command(&app, &args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    until(|| std::fs::read_dir(&checkpoints).is_ok_and(|mut d| d.next().is_some())).await;
    interrupt(&child);
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("interrupted; every batch read is stored whole: run the same command again to go on"),
        "{stderr}"
    );
    let first = count(&app, "Analytics", &project).await;
    assert!(first > 0 && first < ROWS as u64, "stopped part way: {first}");
    assert_eq!(first % 200, 0, "whole batches only");

    let run = parley_ok(&app, &args).await;
    assert!(run.stderr.contains("going on where an earlier import stopped"), "{run:?}");
    let read: u64 = run.stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(read, ROWS as u64 - first, "only what was not read before: {run:?}");
    assert!(run.stdout.contains(&format!("{read} inserted, 0 duplicates")), "{run:?}");
    assert_eq!(count(&app, "Analytics", &project).await, ROWS as u64);
    assert!(std::fs::read_dir(&checkpoints).unwrap().next().is_none(), "a finished import forgets its checkpoint");

    // Ctrl-C during an export: no file, and no part of one.
    let out = dir.path().join("export.csv");
    let mut partial = out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let export_args = ["export", "--output", &path_text(&out)];
    let child = command(&app, &export_args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    until(|| partial.exists()).await;
    interrupt(&child);
    let output = child.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted; nothing was written"));
    assert!(!out.exists() && !partial.exists());
}

/// A JSON array and standard input import as files do; a CSV import stopped by `--strict` goes on
/// from the batch that stopped it, and names its rows by their lines in the file still;
/// `--restart` forgets where an import stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_standard_input_and_a_resumed_csv_import() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let dir = tempfile::tempdir().unwrap();
    let record = |input: &str| json!({"projectId": project, "contactId": "c", "sessionId": "s", "inputId": input});

    let array = dir.path().join("rows.json");
    std::fs::write(&array, json!([record("a1"), record("a2")]).to_string()).unwrap();
    let run = parley_ok(&app, &["import", &path_text(&array)]).await;
    assert!(run.stdout.contains("read 2 rows") && run.stdout.contains("2 inserted"), "{run:?}");
    let object = dir.path().join("object.json");
    std::fs::write(&object, record("a3").to_string()).unwrap();
    let run = parley(&app, &["import", &path_text(&object)]).await;
    assert!(run.stderr.contains("a JSON file must hold one array of rows; use NDJSON"), "{run:?}");

    let mut child = command(&app, &["import", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = format!("{}\n{}\n", record("s1"), record("s2"));
    tokio::io::AsyncWriteExt::write_all(&mut child.stdin.take().unwrap(), lines.as_bytes()).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 inserted"));
    // CSV on standard input: its first row names the fields, and is no record.
    let mut child = command(&app, &["import", "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rows = format!("projectId,contactId,sessionId,inputId\n{project},c,s,s3\n");
    tokio::io::AsyncWriteExt::write_all(&mut child.stdin.take().unwrap(), rows.as_bytes()).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("read 1 rows") && stdout.contains("1 inserted"), "{stdout}");
    assert_eq!(count(&app, "Analytics", &project).await, 5);

    // Line 6 holds a bad row; batches of 3 rows: the first batch is stored, the second stops.
    let csv = dir.path().join("rows.csv");
    let mut text = String::from("projectId,contactId,sessionId,inputId,inputText,intentScore\n");
    for n in 1..=8 {
        let score = if n == 5 { "high" } else { "0.5" };
        // A quoted cell over two lines, so that lines and rows differ.
        let input_text = if n == 2 { "\"two\nlines\"" } else { "one line" };
        text.push_str(&format!("{project},c,s,r{n},{input_text},{score}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let run = parley(&app, &["import", "--strict", "--batch", "3", &path_text(&csv)]).await;
    assert!(run.stderr.contains(&format!("{}:7: refused: 'intentScore'", csv.display())), "{run:?}");
    let run = parley(&app, &["import", "--batch", "3", &path_text(&csv)]).await;
    assert!(run.stderr.contains("going on where an earlier import stopped, after 3 rows"), "{run:?}");
    assert!(run.stderr.contains(&format!("{}:7: refused: 'intentScore'", csv.display())), "{run:?}");
    assert!(run.stdout.contains("read 5 rows") && run.stdout.contains("4 inserted, 0 duplicates"), "{run:?}");
    let rows = crate::helpers::odata_values(&app, "/v2.4/Analytics?$filter=inputId%20eq%20'r2'").await;
    assert_eq!(rows[0]["inputText"], "two\nlines");

    // Stopped again at the same row, then --restart: the whole file is read again, not its rest.
    let run = parley(&app, &["import", "--strict", "--batch", "3", &path_text(&csv)]).await;
    assert!(!run.ok, "{run:?}");
    let run = parley(&app, &["import", "--restart", "--batch", "3", &path_text(&csv)]).await;
    assert!(!run.stderr.contains("going on where"), "{run:?}");
    assert!(run.stdout.contains("read 8 rows") && run.stdout.contains("0 inserted, 7 duplicates"), "{run:?}");
}

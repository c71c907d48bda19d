//! The README's first steps, run as written: every `sh` block of its "First steps" section, in
//! order, in one shell, against a real server (the block that builds and starts parley is marked
//! `sh-start` and stands for the server this test starts; the one that loads the demo, `sh-demo`,
//! runs the built binary on that server's store). Each step must succeed and show what the README
//! says it shows; the field table names only fields that exist.

use parley_core::RECORD_FIELDS;
use serde_json::Value as Json;

use crate::helpers::spawn_app;

fn first_steps() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("## First steps").expect("the README has its first steps");
    let rest = &readme[start + 3..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// The blocks of a section fenced as `fence` (`sh`, `sh-demo`), in order.
fn shell_blocks(section: &str, fence: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let opening = format!("```{fence}");
    for line in section.lines() {
        match (&mut current, line.trim_end()) {
            (None, open) if open == opening => current = Some(Vec::new()),
            (Some(block), "```") => {
                blocks.push(block.join("\n"));
                current = None;
            }
            (Some(block), _) => block.push(line),
            (None, _) => {}
        }
    }
    blocks
}

#[tokio::test]
async fn the_first_steps_run_as_written() {
    let app = spawn_app().await;
    let section = first_steps();
    // The demo, as the README loads it, with the binary the tests built, into the server's store.
    let demo = shell_blocks(&section, "sh-demo");
    assert_eq!(demo.len(), 1, "{demo:?}");
    let args = demo[0].trim().strip_prefix("cargo run --release -p parley-server -- ").expect("a parley command");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(args.split_whitespace())
        .args(["--database", app.database_url(), "--data-dir", &app.data_dir().display().to_string()])
        .env_remove("PARLEY_DATABASE_URL")
        .env_remove("PARLEY_CONFIG")
        .output()
        .await
        .expect("the demo runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains("stored 20000 records"), "{printed}");
    let blocks = shell_blocks(&section, "sh");
    assert!(blocks.len() >= 6, "{blocks:?}");
    // The reader sets these two from what parley printed; the test from the server it started.
    let steps: Vec<String> =
        blocks.iter().flat_map(|b| b.lines()).filter(|l| !l.starts_with("export ")).map(str::to_owned).collect();
    let base = app.url("");
    let script = format!(
        "set -euo pipefail\nexport PARLEY='{}' KEY='{}'\ncurl() {{ command curl --fail-with-body \"$@\"; }}\n{}\n",
        base.trim_end_matches('/'),
        app.api_key,
        steps.join("\n")
    );
    let output = tokio::process::Command::new("bash").arg("-c").arg(&script).output().await.expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the first steps failed:\n{script}\n--- out\n{stdout}\n--- err\n{stderr}");

    let by_channel = stdout.lines().find(|l| l.contains("\"sessions\":")).expect("the demo's sessions per channel");
    let sessions: Vec<Json> = serde_json::from_str::<Json>(by_channel).unwrap()["value"].as_array().unwrap().clone();
    assert!(sessions.len() >= 4 && sessions.iter().any(|s| s["channel"] == "webchat3"), "{by_channel}");
    let counts: Vec<u64> = sessions.iter().map(|s| s["sessions"].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]) && counts.iter().sum::<u64>() > 2000, "{by_channel}");
    let project = stdout.lines().find_map(|l| l.strip_prefix("project ")).expect("the project id is echoed");
    assert!(parley_core::ObjectId::parse(project).is_ok(), "{stdout}");
    assert_eq!(stdout.matches(r#"{"inserted":2,"duplicates":0,"dropped":0"#).count(), 2, "JSON and NDJSON: {stdout}");
    assert!(stdout.lines().any(|l| l.trim().eq_ignore_ascii_case("x-matched-records: 2")), "{stdout}");
    let csv_header = stdout.lines().find(|l| l.starts_with("id,")).expect("a CSV header");
    assert!(csv_header.contains("projectId,contactId,sessionId,inputId"), "{csv_header}");
    assert!(stdout.contains(r#"{"inputId":"i1","intent":"order-status","rating":5}"#), "{stdout}");
    assert!(stdout.contains(r#"{"intent":"refund","inputs":2}"#), "{stdout}");
}

#[test]
fn the_field_table_names_fields_that_exist() {
    let section = first_steps();
    let field = |name: &str| RECORD_FIELDS.iter().find(|f| f.name == name);
    let mut rows = 0;
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        let names: Vec<&str> = first.split('`').skip(1).step_by(2).collect();
        for name in &names {
            let f = field(name).unwrap_or_else(|| panic!("`{name}` is not a record field: {row}"));
            if row.contains("with `PATCH`") {
                assert!(f.editable, "`{name}` cannot be written with PATCH: {row}");
            }
        }
        rows += 1;
    }
    assert!(rows >= 8, "the README has its field table");
}

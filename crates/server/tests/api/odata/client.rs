//! A real OData client: python-odata 0.8.1, installed from PyPI into a virtual environment under
//! the target directory, reads `$metadata`, runs a filtered and ordered query paging through
//! more rows than one page holds, and counts. When it cannot be installed the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use parley_core::RECORD_FIELDS;
use parley_core::value::format_time;
use serde_json::{Value as Json, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{numbered_record, spawn_unlimited};
use crate::helpers::Engine;

const VENV: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/python-odata-0.8.1");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/odata/client.py");

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The virtual environment's interpreter, with python-odata 0.8.1 installed (once per target
/// directory).
fn python_with_odata() -> PathBuf {
    let python = Path::new(VENV).join("bin").join("python");
    let check = "import importlib.metadata as m, odata; assert m.version('python-odata') == '0.8.1'";
    let ready = python.exists() && Command::new(&python).args(["-c", check]).output().is_ok_and(|o| o.status.success());
    if !ready {
        run(Command::new("python3").args(["-m", "venv", "--clear", VENV]));
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "python-odata==0.8.1",
        ]));
        run(Command::new(&python).args(["-c", check]));
    }
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_odata_reads_metadata_filters_orders_and_pages() {
    let python = tokio::task::spawn_blocking(python_with_odata).await.unwrap();
    let mut app = spawn_unlimited(Engine::Sqlite).await;
    let project = app.create_project().await;
    let base: OffsetDateTime = datetime!(2024-05-01 08:00 UTC);
    let timestamp = |n: usize| base + Duration::minutes(37 * n as i64);
    let records: Vec<Json> = (0..57)
        .map(|n| {
            numbered_record(
                &project,
                n,
                json!({
                    "timestamp": format_time(timestamp(n)),
                    "channel": if n % 3 == 2 { "voice" } else { "web" },
                    "intent": if n % 4 == 0 { Json::Null } else { json!(format!("intent-{}", n % 5)) },
                    "execution": n % 6,
                    "understood": n % 2 == 0,
                }),
            )
        })
        .collect();
    app.ingest_new(&records).await;

    let since = timestamp(6);
    let page_size = 4;
    let output = tokio::process::Command::new(&python)
        .arg(SCRIPT)
        .arg(app.url("/v2.4/"))
        .arg(&app.api_key)
        .arg(page_size.to_string())
        .arg(format_time(since))
        .output()
        .await
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "client.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));

    let mut properties: Vec<&str> = RECORD_FIELDS.iter().map(|f| f.name).collect();
    properties.sort();
    assert_eq!(seen["properties"], json!(properties), "every property read from $metadata");
    assert_eq!(seen["keys"], json!(["id"]));

    let mut expected: Vec<Json> = (0..57usize)
        .filter(|n| n % 3 != 2 && timestamp(*n) >= since)
        .map(|n| {
            json!({
                "inputId": format!("i{n:05}"),
                "timestamp": timestamp(n).format(&time::format_description::well_known::Rfc3339).unwrap().replace('Z', "+00:00"),
                "intent": if n % 4 == 0 { Json::Null } else { json!(format!("intent-{}", n % 5)) },
                "execution": n % 6,
                "understood": n % 2 == 0,
            })
        })
        .collect();
    expected.reverse();
    assert!(expected.len() > 3 * page_size, "more rows than several pages hold");
    assert_eq!(seen["rows"], json!(expected), "filtered by channel and time, newest first, every page");
    assert_eq!(seen["count"], expected.len());
    app.stop().await;
}

//! schemathesis 4.32.5, installed from PyPI into a virtual environment under the target
//! directory, generates requests for every operation of `/openapi.json` (examples, coverage,
//! fuzzing and stateful sequences that follow the document's links) against a real server on
//! each engine, for a bounded time, and checks every answer: no 5xx, status, media type, headers
//! and body as documented, schema-violating requests refused, schema-valid ones accepted, and
//! deleted resources gone. Every credential it sends is the test's own (`schemathesis.toml`).
//! When it cannot be installed the test fails.
//!
//! Every schema-valid request must be accepted too, except on the few operations
//! `schemathesis.toml` names, whose valid requests JSON Schema cannot describe (OData
//! expressions, cursors, a goal's rules across its steps, references to stored goals, real
//! credentials); every other check still runs on them.
//!
//! `PARLEY_SCHEMATHESIS_SECONDS` sets the time per engine (default 60); the seed is printed, and
//! `PARLEY_SCHEMATHESIS_SEED` replays a run.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::{ADMIN_EMAIL, Engine, on_both_engines, python_with, spawn_app_with};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/schemathesis.toml");

on_both_engines!(every_answer_matches_the_document_under_generated_requests);

/// The `schemathesis` command of a virtual environment with schemathesis 4.32.5.
fn schemathesis() -> PathBuf {
    let check = "import importlib.metadata as m; assert m.version('schemathesis') == '4.32.5'";
    python_with("schemathesis==4.32.5", check).join("schemathesis")
}

async fn every_answer_matches_the_document_under_generated_requests(engine: Engine) {
    let st = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    // Generated traffic is far beyond any rate limit; the limit has its own tests.
    let app = spawn_app_with(engine, |config| config.rate_limit_per_minute = 0).await;
    let seconds = std::env::var("PARLEY_SCHEMATHESIS_SECONDS").unwrap_or_else(|_| "60".into());
    let seed = std::env::var("PARLEY_SCHEMATHESIS_SEED").unwrap_or_else(|_| rand::random::<u64>().to_string());
    let token = app.sign_in(ADMIN_EMAIL, &app.admin_password).await["access_token"].as_str().unwrap().to_owned();
    let report = tempfile::tempdir().unwrap();
    let mut command = Command::new(&st);
    command
        .args(["--config-file", CONFIG, "run"])
        .arg(app.url("/openapi.json"))
        .args(["--max-time", &seconds, "--seed", &seed, "--workers", "1"])
        .arg("--report-dir")
        .arg(report.path())
        // Its cache too goes to the scratch directory.
        .current_dir(report.path())
        .env("PARLEY_SCHEMATHESIS_KEY", &app.api_key)
        .env("PARLEY_SCHEMATHESIS_TOKEN", &token)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false");
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures (seed {seed}; replay with PARLEY_SCHEMATHESIS_SEED={seed}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A run that reached nothing would pass too: it must have tested every operation.
    let tested = stdout.lines().find(|line| line.trim_start().starts_with("Tested:")).unwrap_or_default();
    let selected = stdout.lines().find(|line| line.trim_start().starts_with("Selected:")).unwrap_or_default();
    let count = |line: &str| line.split(':').nth(1).and_then(|n| n.trim().split('/').next()?.parse::<u32>().ok());
    assert!(count(tested).is_some_and(|n| n >= 40) && count(tested) == count(selected), "{stdout}");
}

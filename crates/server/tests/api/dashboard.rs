//! The dashboard at `/insights`, driven in Debian's chromium (headless) by
//! `tests/browser/dashboard.mjs` against a running server filled by `parley demo`: signing in both
//! ways, every filter in the address and in the numbers, reloading, downloads, transcripts, steps,
//! goals, live agents, errors and an empty project, keyboard, a phone's width and the dark setting.
//! The script compares each number it reads off the page with the report API; it fails on any
//! request the page did not expect to fail and on anything logged to the browser's console.
//! Screenshots of each view (1280×800) are kept in `target/dashboard/`.

use std::path::{Path, PathBuf};

use crate::helpers::{ADMIN_EMAIL, spawn_app};
use crate::moving::parley_ok;

#[tokio::test]
async fn the_dashboard_shows_what_the_report_api_answers_in_a_real_browser() {
    let app = spawn_app().await;
    let demo = parley_ok(&app, &["demo", "--records", "2400", "--days", "30"]).await;
    // A member of one demo project only, who must see that one alone.
    let member = app.user("").await;
    let second = demo.stdout.lines().filter_map(|l| l.strip_prefix("project ")).nth(1).expect("three projects");
    let second = second.split(':').next().expect("project ID: name");
    app.add_member(second, &member.id, &["basic"]).await;
    let empty = app.create_project_with(serde_json::json!({ "name": "Empty bot" })).await["_id"]
        .as_str()
        .expect("an _id")
        .to_owned();

    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = target.join("browser-test");
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/setup.sh");
    let status = std::process::Command::new("bash").arg(setup).env("PARLEY_BROWSER_TEST_DIR", &dir).status().unwrap();
    assert!(status.success(), "the browser test's tools install (see tests/browser/setup.sh)");
    let shots = target.parent().expect("the target directory").join("dashboard");
    let _ = std::fs::remove_dir_all(&shots);

    let output = tokio::process::Command::new("node")
        .arg(dir.join("dashboard.mjs"))
        .env("PARLEY_URL", format!("http://{}", app.addr))
        .env("PARLEY_KEY", &app.api_key)
        .env("PARLEY_EMAIL", ADMIN_EMAIL)
        .env("PARLEY_PASSWORD", &app.admin_password)
        .env("PARLEY_EMPTY_PROJECT", &empty)
        .env("PARLEY_MEMBER_EMAIL", &member.email)
        .env("PARLEY_MEMBER_PASSWORD", &member.password)
        .env("PARLEY_MEMBER_PROJECT", second)
        .env("PARLEY_SHOTS", &shots)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser's checks failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("dashboard: every check passed"), "{stdout}\n{stderr}");
    for view in ["sign-in", "overview", "transcript", "steps", "goals", "live-agent", "empty", "phone", "overview-dark"]
    {
        assert!(shots.join(format!("{view}.png")).is_file(), "a screenshot of {view}");
    }
}

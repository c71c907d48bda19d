//! Real Python clients, installed from PyPI at pinned versions into virtual environments under the
//! target directory, once per directory. When one cannot be installed the test using it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `command` and fails the test with its output when it does not succeed.
pub fn run_checked(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `bin` directory of a virtual environment named after `requirement` (`name==version`, or
/// several separated by spaces) with it installed; `check` is Python code that succeeds once it is.
pub fn python_with(requirement: &str, check: &str) -> PathBuf {
    // Tests on several engines ask at once: one makes the environment, the others wait for it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(requirement.replace("==", "-").replace(' ', "+"));
    let bin = venv.join("bin");
    let python = bin.join("python");
    let ready = python.exists() && Command::new(&python).args(["-c", check]).output().is_ok_and(|o| o.status.success());
    if !ready {
        run_checked(Command::new("python3").arg("-m").arg("venv").arg("--clear").arg(&venv));
        run_checked(
            Command::new(&python)
                .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet"])
                .args(requirement.split_whitespace()),
        );
        run_checked(Command::new(&python).args(["-c", check]));
    }
    bin
}

//! `seq demo` runs end to end and exits 0; it refuses a store in use.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use assert_cmd::Command;
use predicates::str::contains;

fn seq() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seq"));
    cmd.timeout(Duration::from_secs(120));
    cmd
}

#[test]
fn should_run_the_quick_demo_and_pass_every_check() {
    seq()
        .args(["demo", "--quick"])
        .assert()
        .success()
        .stdout(contains("checks passed"));
}

#[test]
fn should_report_the_demo_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("demo-store");
    let out = seq()
        .arg("--json")
        .arg("--store")
        .arg(&store)
        .args(["demo", "--quick"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["orders"], 100);
    assert_eq!(report["follow_entries"], 100);
    assert!(report["order_id_after_restart"].as_i64() > report["max_order_id"].as_i64());
    // The named store was kept and is a normal store.
    seq()
        .arg("--store")
        .arg(&store)
        .arg("spaces")
        .assert()
        .success()
        .stdout(contains("orders"));
}

#[test]
fn should_refuse_a_store_that_is_not_fresh() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something"), b"x").unwrap();
    seq()
        .arg("--store")
        .arg(dir.path())
        .args(["demo", "--quick"])
        .assert()
        .code(1)
        .stderr(contains("needs a fresh store"));
    seq()
        .args(["demo", "--producers", "0"])
        .assert()
        .code(1)
        .stderr(contains("at least 1"));
}

//! The crash harness end to end: a short run passes with the exact summary
//! line, and a child that acknowledges a write it never made is caught.

use std::process::Command;

fn harness() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seq-crash"));
    cmd.args([
        "run",
        "--backend",
        "redb",
        "--iterations",
        "3",
        "--seed",
        "7",
    ]);
    cmd.args(["--min-ms", "20", "--max-ms", "60"]);
    cmd
}

#[test]
fn should_pass_a_short_run_and_print_the_summary_line() {
    let output = harness().output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l == "crash: 3 iterations, 3 kills, 0 lost, 0 reissued"),
        "{stdout}"
    );
}

#[test]
fn should_report_an_acknowledged_write_that_is_missing() {
    let output = harness().env("SEQ_CRASH_LIE", "1").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("VIOLATION: LOST: segment s0: acknowledged batch lie.1"),
        "{stdout}"
    );
    assert!(!stdout.contains(" 0 lost, "), "{stdout}");
}

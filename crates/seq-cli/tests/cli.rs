//! Integration tests: every subcommand of the `seq` binary, each with at least
//! one bad-input case, on a temporary store.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use tempfile::TempDir;

/// A temporary store and a way to run `seq` on it.
struct Store {
    dir: TempDir,
}

impl Store {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("store")
    }

    /// `seq --store <dir> args...`
    fn seq(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_seq"));
        cmd.arg("--store")
            .arg(self.path())
            .args(args)
            .timeout(Duration::from_secs(60));
        cmd
    }

    /// Runs and returns stdout, asserting success.
    fn ok(&self, args: &[&str]) -> String {
        let out = self
            .seq(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    }

    /// Runs with `--json` and parses stdout.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs expecting an operation error (exit 1) whose message contains
    /// `needle`.
    fn fails(&self, args: &[&str], needle: &str) {
        self.seq(args)
            .assert()
            .code(1)
            .stderr(contains("error: ").and(contains(needle)))
            .stderr(contains("panicked").not());
    }

    /// Runs expecting a usage error (exit 2).
    fn usage_error(&self, args: &[&str]) {
        self.seq(args).assert().code(2);
    }

    /// Starts `seq` in the background.
    fn spawn(&self, args: &[&str]) -> Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_seq"))
            .arg("--store")
            .arg(self.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn produce(&self, space: &str, segment: &str, lines: &str) {
        self.seq(&["produce", space, segment])
            .write_stdin(lines)
            .assert()
            .success();
    }
}

/// Waits for a background `seq` to exit; returns its stdout.
fn finish(child: Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut child = child;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return String::from_utf8(out.stdout).unwrap();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("background seq did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- general

#[test]
fn should_document_exit_codes_in_help() {
    Command::new(env!("CARGO_BIN_EXE_seq"))
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Exit codes").and(contains("usage error")));
}

#[test]
fn should_exit_2_on_usage_errors() {
    let s = Store::new();
    s.usage_error(&["no-such-command"]);
    s.usage_error(&["next"]);
    s.usage_error(&["--backend", "sqlite", "list"]);
}

#[cfg(not(feature = "rocksdb"))]
#[test]
fn should_explain_a_missing_rocksdb_backend() {
    let s = Store::new();
    s.fails(
        &["--backend", "rocksdb", "create", "x"],
        "built without RocksDB; rebuild with --features rocksdb",
    );
}

#[test]
fn should_not_create_a_store_for_read_only_commands() {
    let s = Store::new();
    s.fails(&["list"], "no redb store at");
    assert!(!s.path().exists());
}

// -------------------------------------------------------------- sequences

#[test]
fn should_create_a_sequence_and_reject_bad_definitions() {
    let s = Store::new();
    let info = s.json(&[
        "create",
        "orders",
        "--start",
        "10",
        "--increment",
        "5",
        "--block-size",
        "100",
    ]);
    assert_eq!(info["name"], "orders");
    assert_eq!(info["start"], 10);
    assert_eq!(info["increment"], 5);
    s.fails(&["create", "orders"], "already exists");
    s.fails(&["create", "zero", "--increment", "0"], "increment");
    s.fails(&["create", "bad", "--min", "10", "--max", "1"], "invalid");
    s.fails(&["create", "bad\u{1}name"], "invalid");
    s.usage_error(&["create", "x", "--block-size", "lots"]);
}

#[test]
fn should_hand_out_increasing_values() {
    let s = Store::new();
    s.ok(&["create", "ids"]);
    assert_eq!(s.ok(&["next", "ids"]).trim(), "1");
    let range = s.json(&["next", "ids", "-n", "3"]);
    assert_eq!(range["count"], 3);
    let first = range["first"].as_i64().unwrap();
    // Each process exits cleanly and gives its unused block back, so the
    // numbering continues exactly from process to process.
    assert_eq!(first, 2);
    assert_eq!(range["last"].as_i64().unwrap(), first + 2);
    // Plain output: one value per line.
    let lines: Vec<i64> = s
        .ok(&["next", "ids", "-n", "4"])
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines, [5, 6, 7, 8]);
    s.fails(&["next", "missing"], "not found");
    s.fails(&["next", "ids", "-n", "0"], "error");
}

#[test]
fn should_peek_without_taking() {
    let s = Store::new();
    s.ok(&["create", "p", "--start", "7"]);
    let peeked = s.json(&["peek", "p"]);
    assert_eq!(peeked["next"], 7);
    s.fails(&["peek", "nope"], "not found");
}

#[test]
fn should_advance_forward_only() {
    let s = Store::new();
    s.ok(&["create", "a"]);
    let advanced = s.json(&["advance-to", "a", "100"]);
    assert_eq!(advanced["next"], 101);
    assert_eq!(s.ok(&["next", "a"]).trim(), "101");
    s.fails(&["advance-to", "a", "5"], "backwards");
    s.fails(&["advance-to", "missing", "5"], "not found");
    s.usage_error(&["advance-to", "a", "ten"]);
}

#[test]
fn should_list_sequences() {
    let s = Store::new();
    s.ok(&["create", "b"]);
    s.ok(&["create", "a", "--increment", "-1"]);
    let list = s.json(&["list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(s.ok(&["list"]).contains("block size"));
    s.usage_error(&["list", "extra"]);
}

#[test]
fn should_drop_sequences() {
    let s = Store::new();
    s.ok(&["create", "gone"]);
    s.ok(&["drop", "gone"]);
    s.fails(&["next", "gone"], "not found");
    s.fails(&["drop", "gone"], "not found");
}

// ---------------------------------------------------------- sequence keys

#[test]
fn should_put_sequence_keys_from_argument_and_stdin() {
    let s = Store::new();
    assert_eq!(
        s.ok(&["put-seq", "inv", "--deltas", "1,1", "first"]).trim(),
        "inv-00000000000000000001-00000000000000000001"
    );
    let put = s
        .seq(&["--json", "put-seq", "inv", "--deltas", "1,5"])
        .write_stdin("second\n")
        .assert()
        .success();
    let value: serde_json::Value = serde_json::from_slice(&put.get_output().stdout).unwrap();
    let key = value["key"].as_str().unwrap().to_owned();
    assert_eq!(key, "inv-00000000000000000002-00000000000000000006");
    let got = s.json(&["get-seq", &key]);
    assert_eq!(got["value"], "second");
    s.fails(&["put-seq", "inv", "--deltas", "0", "x"], "invalid");
    s.fails(&["put-seq", "inv", "--deltas", "1", "x"], "levels");
    s.usage_error(&["put-seq", "inv", "--deltas", "one"]);
}

#[test]
fn should_get_range_and_delete_sequence_keys() {
    let s = Store::new();
    let k1 = s.ok(&["put-seq", "p", "a"]).trim().to_owned();
    let k2 = s.ok(&["put-seq", "p", "b"]).trim().to_owned();
    let range = s.json(&["range-seq", "p"]);
    let keys: Vec<&str> = range
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [k1.as_str(), k2.as_str()]);
    s.ok(&["delete-seq", &k2]);
    s.fails(&["get-seq", &k2], "no sequence key");
    s.fails(&["delete-seq", &k2], "no sequence key");
    // A deleted highest key's suffix is not reused.
    let k3 = s.ok(&["put-seq", "p", "c"]).trim().to_owned();
    assert!(k3 > k2);
}

#[test]
fn should_watch_sequence_keys_across_processes() {
    let s = Store::new();
    s.ok(&["put-seq", "w", "one"]);
    // The current highest key first.
    assert_eq!(
        s.ok(&["watch-seq", "w", "--limit", "1"]).trim(),
        "w-00000000000000000001"
    );
    // Then new ones written by another process.
    let watcher = s.spawn(&["watch-seq", "w", "--limit", "2"]);
    std::thread::sleep(Duration::from_millis(300));
    s.ok(&["put-seq", "w", "two"]);
    let out = finish(watcher);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["w-00000000000000000001", "w-00000000000000000002"]
    );
    s.fails(&["watch-seq", "bad\u{7}prefix", "--limit", "1"], "invalid");
}

// ---------------------------------------------------------------- streams

#[test]
fn should_produce_lines_as_records() {
    let s = Store::new();
    let out = s
        .seq(&["--json", "produce", "orders", "eu", "--meta", "src=test"])
        .write_stdin("a\nb\r\nc\n")
        .assert()
        .success();
    let produced: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(produced["produced"], 3);
    assert_eq!(produced["first_sequence"], 1);
    assert_eq!(produced["last_sequence"], 3);
    s.seq(&["produce", "orders", "eu", "--expect", "4"])
        .write_stdin("d\n")
        .assert()
        .success();
    s.seq(&["produce", "orders", "eu", "--expect", "1"])
        .write_stdin("dup\n")
        .assert()
        .code(1)
        .stderr(contains("sequence mismatch"));
    s.seq(&["produce", "orders", "eu"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr(contains("no records"));
    s.fails(
        &["produce", "orders", "eu", "--file", "/nonexistent/file"],
        "cannot open",
    );
    s.usage_error(&["produce", "orders", "eu", "--meta", "novalue"]);
    s.seq(&["produce", "", "eu"])
        .write_stdin("x\n")
        .assert()
        .code(1)
        .stderr(contains("invalid"));
}

#[test]
fn should_produce_a_file_in_batches() {
    let s = Store::new();
    let file = s.dir.path().join("records.txt");
    let mut f = std::fs::File::create(&file).unwrap();
    for i in 0..2500 {
        writeln!(f, "record {i}").unwrap();
    }
    drop(f);
    let out = s.json(&[
        "produce",
        "bulk",
        "one",
        "--file",
        file.to_str().unwrap(),
        "--batch",
        "1000",
    ]);
    assert_eq!(out["produced"], 2500);
    assert_eq!(s.json(&["status", "bulk", "one"])["count"], 2500);
}

#[test]
fn should_consume_segments_and_spaces() {
    let s = Store::new();
    s.produce("orders", "eu", "e1\ne2\ne3\n");
    s.produce("orders", "us", "u1\n");
    // A segment, from a sequence.
    let lines = s.ok(&["--json", "consume", "orders", "eu", "--from", "2"]);
    let seqs: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [2, 3]);
    // The whole space, merged; then resume after an offset.
    let all: Vec<serde_json::Value> = s
        .ok(&["--json", "consume", "orders"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let payloads: Vec<&str> = all.iter().map(|e| e["payload"].as_str().unwrap()).collect();
    assert_eq!(payloads, ["e1", "e2", "e3", "u1"]);
    let offset = all[1]["offset"].as_str().unwrap();
    let rest = s.ok(&[
        "--json", "consume", "orders", "--from", offset, "--limit", "1",
    ]);
    assert!(rest.contains("\"e3\"") && !rest.contains("\"u1\""));
    // Human output.
    assert!(s.ok(&["consume", "orders", "us"]).contains("u1"));
    s.fails(&["consume", "orders", "--from", "12"], "hex offset");
    s.fails(
        &["consume", "orders", "eu", "--from", "abc"],
        "sequence number",
    );
    s.fails(&["consume", "bad\u{1}space"], "invalid");
}

#[test]
fn should_follow_entries_produced_by_another_process() {
    let s = Store::new();
    s.produce("live", "a", "old\n");
    let follower = s.spawn(&["--json", "consume", "live", "--follow", "--limit", "3"]);
    std::thread::sleep(Duration::from_millis(300));
    s.produce("live", "a", "new1\n");
    s.produce("live", "b", "new2\n");
    let out = finish(follower);
    let payloads: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["payload"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(payloads, ["old", "new1", "new2"]);
}

#[test]
fn should_peek_at_the_latest_entry() {
    let s = Store::new();
    s.produce("sp", "sg", "one\ntwo\n");
    let entry = s.json(&["peek", "sp", "sg"]);
    assert_eq!(entry["sequence"], 2);
    assert_eq!(entry["payload"], "two");
    assert!(s.ok(&["peek", "sp", "empty"]).contains("has no entries"));
    s.fails(&["peek", "sp", ""], "invalid");
}

#[test]
fn should_show_status_spaces_and_segments() {
    let s = Store::new();
    s.produce("s1", "x", "1\n2\n");
    s.produce("s2", "y", "1\n");
    let status = s.json(&["status", "s1", "x"]);
    assert_eq!(status["last_sequence"], 2);
    assert_eq!(status["count"], 2);
    assert_eq!(s.json(&["spaces"]), serde_json::json!(["s1", "s2"]));
    let segments = s.json(&["segments", "s1"]);
    assert_eq!(segments[0]["segment"], "x");
    assert!(s.ok(&["segments", "nothing"]).contains("no segments"));
    s.fails(&["status", "s1", ""], "invalid");
    s.fails(&["segments", ""], "invalid");
    s.usage_error(&["spaces", "extra"]);
}

#[test]
fn should_trim_and_keep_numbering() {
    let s = Store::new();
    s.produce("t", "g", "1\n2\n3\n4\n5\n");
    assert_eq!(s.json(&["trim", "t", "g", "--keep", "2"])["removed"], 3);
    assert_eq!(s.json(&["trim", "t", "g", "--before", "5"])["removed"], 1);
    assert_eq!(
        s.json(&["trim", "t", "g", "--older-than", "1h"])["removed"],
        0
    );
    s.produce("t", "g", "6\n");
    assert_eq!(s.json(&["status", "t", "g"])["last_sequence"], 6);
    s.usage_error(&["trim", "t", "g"]);
    s.usage_error(&["trim", "t", "g", "--keep", "1", "--before", "2"]);
    s.usage_error(&["trim", "t", "g", "--older-than", "10"]);
    s.fails(&["trim", "", "g", "--keep", "1"], "invalid");
}

// ---------------------------------------------------------------- inspect

#[test]
fn should_inspect_the_key_layout() {
    let s = Store::new();
    s.ok(&["create", "ids"]);
    s.produce("orders", "eu", "x\n");
    let rows = s.json(&["inspect"]);
    let tags: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap())
        .collect();
    for tag in ["MET", "SEQ", "DAT", "IDX", "INV"] {
        assert!(tags.contains(&tag), "{tag} missing from {tags:?}");
    }
    let dat = s.json(&["inspect", "--prefix", "dat"]);
    assert_eq!(dat[0]["components"], serde_json::json!(["orders", "eu", 1]));
    assert!(s.ok(&["inspect", "--prefix", "SEQ"]).contains("\"ids\""));
    s.fails(&["inspect", "--prefix", "XYZ"], "unknown keyspace tag");
}

// ---------------------------------------------------------------- cursors

#[test]
fn should_commit_show_list_and_measure_cursors() {
    let s = Store::new();
    s.produce("c", "g", "1\n2\n3\n");
    let first: serde_json::Value =
        serde_json::from_str(s.ok(&["--json", "consume", "c", "--limit", "1"]).trim()).unwrap();
    let offset = first["offset"].as_str().unwrap();
    let committed = s.json(&["cursor", "commit", "reader", "c", offset]);
    assert_eq!(committed["positions"][0]["position"], offset);
    s.ok(&["cursor", "commit", "reader", "c", "2", "--segment", "g"]);
    let shown = s.json(&["cursor", "show", "reader"]);
    assert_eq!(shown["positions"].as_array().unwrap().len(), 2);
    let lag = s.json(&["cursor", "lag", "reader"]);
    assert_eq!(lag["total"], 2 + 1);
    let list = s.json(&["cursor", "list"]);
    assert_eq!(list[0]["name"], "reader");
    // Bad input: an offset that is not hex, a cursor that never was, going
    // backwards.
    s.fails(
        &["cursor", "commit", "reader", "c", "not-hex"],
        "not a space offset",
    );
    s.fails(
        &["cursor", "commit", "reader", "c", "x", "--segment", "g"],
        "sequence",
    );
    s.fails(&["cursor", "show", "nobody"], "not found");
    s.fails(&["cursor", "lag", "nobody"], "not found");
    s.fails(
        &["cursor", "commit", "reader", "c", "1", "--segment", "g"],
        "conflict",
    );
    s.usage_error(&["cursor", "rewind", "reader"]);
}

// ----------------------------------------------------------------- leases

#[test]
fn should_hold_leases_and_fence_stale_tokens() {
    let s = Store::new();
    let first = s.json(&["lease", "writer", "--ttl", "2s", "--hold-for", "50ms"]);
    assert_eq!(first["token"], 1);
    let second = s.json(&["lease", "writer", "--ttl", "2s", "--hold-for", "50ms"]);
    assert_eq!(second["token"], 2);
    // The stale token is fenced, the current one accepted.
    s.seq(&["produce", "s", "g", "--fence", "writer:1"])
        .write_stdin("stale\n")
        .assert()
        .code(1)
        .stderr(contains("fenced"));
    s.seq(&["produce", "s", "g", "--fence", "writer:2"])
        .write_stdin("fresh\n")
        .assert()
        .success();
    assert_eq!(s.json(&["status", "s", "g"])["last_sequence"], 1);
    let leases = s.json(&["leases"]);
    assert_eq!(leases[0]["token"], 2);
    assert!(
        s.ok(&["lease", "writer", "--ttl", "1s", "--hold-for", "10ms"])
            .contains("fencing token 3")
    );
    s.fails(
        &["lease", "writer", "--ttl", "0s", "--hold-for", "10ms"],
        "ttl",
    );
    s.fails(&["lease", "", "--hold-for", "10ms"], "invalid");
    s.usage_error(&["lease", "writer", "--ttl", "soon"]);
    s.usage_error(&["produce", "s", "g", "--fence", "writer"]);
}

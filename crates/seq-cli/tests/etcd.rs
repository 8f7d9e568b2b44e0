//! `seq --backend etcd`: several `seq` processes share one store on an etcd
//! member started here (Debian's `etcd-server`), and a build without the
//! backend says how to get it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap is a test failure.

use assert_cmd::Command;

#[cfg(not(feature = "etcd"))]
#[test]
fn should_explain_a_missing_etcd_backend() {
    let out = Command::cargo_bin("seq")
        .unwrap()
        .args(["--backend", "etcd", "--endpoints", "http://127.0.0.1:1"])
        .args(["create", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built without etcd; rebuild with --features etcd"),
        "{stderr}"
    );
}

#[cfg(feature = "etcd")]
mod with_etcd {
    use std::collections::HashSet;
    use std::net::TcpListener;
    use std::process::{Child, Stdio};
    use std::time::{Duration, Instant};

    use super::Command;

    /// One etcd member on free local ports, killed on drop.
    struct Member {
        child: Child,
        url: String,
        _dir: tempfile::TempDir,
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    impl Member {
        fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let (client, peer) = (free_port(), free_port());
            let url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let bin = std::env::var("SEQ_ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into());
            let child = std::process::Command::new(bin)
                .args(["--name", "m0", "--data-dir"])
                .arg(dir.path().join("data"))
                .args([
                    "--listen-client-urls",
                    &url,
                    "--advertise-client-urls",
                    &url,
                ])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("m0={peer_url}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start etcd (Debian's etcd-server; cargo xtask prereq installs it)");
            let member = Self {
                child,
                url,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(&member.url["http://".len()..]).is_err() {
                assert!(Instant::now() < deadline, "etcd did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
            member
        }

        fn seq(&self, store: &str, args: &[&str]) -> Command {
            let mut cmd = Command::cargo_bin("seq").unwrap();
            cmd.args([
                "--backend",
                "etcd",
                "--endpoints",
                &self.url,
                "--store",
                store,
            ])
            .args(args);
            cmd
        }

        fn ok(&self, store: &str, args: &[&str]) -> String {
            let out = self.seq(store, args).output().unwrap();
            assert!(
                out.status.success(),
                "seq {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    }

    impl Drop for Member {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn should_share_one_store_between_concurrent_processes() {
        let etcd = Member::start();
        let store = format!("cli-{}", uuid::Uuid::new_v4());
        etcd.ok(&store, &["create", "ids", "--block-size", "16"]);

        // Four processes at once, each taking 3 ranges of 20.
        let children: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn({
                    let (url, store) = (etcd.url.clone(), store.clone());
                    move || {
                        let mut values = Vec::new();
                        for _ in 0..3 {
                            let out = Command::cargo_bin("seq")
                                .unwrap()
                                .args(["--backend", "etcd", "--endpoints", &url])
                                .args(["--store", &store, "next", "ids", "-n", "20"])
                                .output()
                                .unwrap();
                            assert!(out.status.success(), "{out:?}");
                            values.extend(
                                String::from_utf8(out.stdout)
                                    .unwrap()
                                    .lines()
                                    .map(|l| l.trim().parse::<i64>().unwrap()),
                            );
                        }
                        values
                    }
                })
            })
            .collect();
        let mut all = HashSet::new();
        for child in children {
            for value in child.join().unwrap() {
                assert!(all.insert(value), "{value} handed out twice");
            }
        }
        assert_eq!(all.len(), 4 * 3 * 20);

        // What one process produces, another consumes.
        etcd.seq(&store, &["produce", "orders", "eu"])
            .write_stdin("first\nsecond\n")
            .assert()
            .success();
        let consumed = etcd.ok(&store, &["--json", "consume", "orders", "eu"]);
        let payloads: Vec<String> = consumed
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["payload"].to_string())
            .collect();
        assert_eq!(payloads, ["\"first\"", "\"second\""]);
    }

    #[test]
    fn should_not_create_a_store_for_read_only_commands() {
        let etcd = Member::start();
        let out = etcd.seq("never-written", &["list"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no store at prefix"), "{stderr}");
        let out = etcd.seq("never-written", &["list"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "still no store");
    }
}

//! A real etcd cluster on 127.0.0.1 for tests and benchmarks (feature
//! `testing`).
//!
//! [`Cluster::start`] runs N members (3 by default) of `/usr/bin/etcd`
//! (Debian's `etcd-server`; `SEQ_ETCD_BIN` names another binary) on free
//! ports, each with its own temporary data directory and its log in a file
//! there, and waits until every member answers and they agree on a leader.
//! Members keep fsync on, so what a test or benchmark measures is what etcd
//! does in production.
//!
//! ```
//! use seq_etcd::testing::Cluster;
//! use seq_etcd::EtcdStorage;
//! use seq_storage::{Durability, Storage, WriteBatch};
//!
//! let cluster = Cluster::start();
//! let store = EtcdStorage::connect(cluster.options("doc")).expect("connect");
//! let mut batch = WriteBatch::new();
//! batch.put(b"k".to_vec(), b"v".to_vec());
//! store.write(batch, Durability::Sync).expect("write");
//!
//! // Writes go on while a follower is down.
//! let leader = cluster.leader();
//! let follower = (leader + 1) % cluster.len();
//! cluster.kill(follower);
//! let mut batch = WriteBatch::new();
//! batch.put(b"k2".to_vec(), b"v2".to_vec());
//! store.write(batch, Durability::Sync).expect("write with 2 of 3 members");
//! cluster.restart(follower);
//! ```
//!
//! Child processes never outlive the test process: each is started with
//! `PR_SET_PDEATHSIG` (from a thread that lives as long as the process), so
//! the kernel kills it when the process dies, however it dies; a normal exit
//! also stops the members of clusters never dropped (a `static`) and removes
//! their directories, and directories left by killed processes are removed
//! by the next cluster started.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

use crate::EtcdOptions;
use crate::bridge::Bridge;

/// The etcd binary used unless `SEQ_ETCD_BIN` names another.
pub const DEFAULT_ETCD_BIN: &str = "/usr/bin/etcd";

/// Lines of each member's log shown when something fails.
const LOG_TAIL_LINES: usize = 20;

/// How to start a [`Cluster`]; from [`Cluster::builder`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    members: usize,
    max_request_bytes: usize,
    max_txn_ops: usize,
    heartbeat_interval: Duration,
    election_timeout: Duration,
    startup_timeout: Duration,
    etcd_bin: Option<PathBuf>,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        Self {
            members: 3,
            max_request_bytes: crate::ETCD_DEFAULT_MAX_REQUEST_BYTES,
            max_txn_ops: crate::ETCD_DEFAULT_MAX_TXN_OPS,
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            startup_timeout: Duration::from_secs(30),
            etcd_bin: None,
        }
    }
}

impl ClusterBuilder {
    /// Number of members (default 3).
    pub fn members(mut self, members: usize) -> Self {
        self.members = members.max(1);
        self
    }

    /// The members' `--max-request-bytes` (default etcd's, 1.5 MiB).
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// The members' `--max-txn-ops` (default etcd's, 128).
    pub fn max_txn_ops(mut self, ops: usize) -> Self {
        self.max_txn_ops = ops;
        self
    }

    /// The raft heartbeat interval (default 100 ms, etcd's).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// The raft election timeout (default 1 s, etcd's).
    pub fn election_timeout(mut self, timeout: Duration) -> Self {
        self.election_timeout = timeout;
        self
    }

    /// How long starting (and restarting a member) may take before it is a
    /// failure (default 30 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// The etcd binary (default: `$SEQ_ETCD_BIN`, else [`DEFAULT_ETCD_BIN`]).
    pub fn etcd_bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.etcd_bin = Some(path.into());
        self
    }

    /// Starts the cluster and waits until it is healthy.
    ///
    /// # Panics
    ///
    /// When the binary is missing, or the cluster is not healthy within the
    /// startup timeout (three tries when ports clash with another process);
    /// the message shows the tail of every member's log.
    pub fn start(self) -> Cluster {
        let bin = self.binary();
        let mut last = String::new();
        for _ in 0..3 {
            match Cluster::try_start(&self, &bin) {
                Ok(cluster) => return cluster,
                Err(failure) if failure.port_clash => last = failure.report,
                Err(failure) => panic!("{}", failure.report),
            }
        }
        panic!("{last}")
    }

    fn binary(&self) -> PathBuf {
        let bin = self
            .etcd_bin
            .clone()
            .or_else(|| std::env::var_os("SEQ_ETCD_BIN").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ETCD_BIN));
        assert!(
            bin.is_file(),
            "no etcd binary at {}: install Debian's etcd-server (`cargo xtask prereq` does, as \
             root) or set SEQ_ETCD_BIN",
            bin.display()
        );
        bin
    }
}

/// One member's fixed settings.
#[derive(Debug)]
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    /// The member's data directory; its log is `etcd.log` in it.
    dir: PathBuf,
}

/// A local etcd cluster, stopped (and its data removed) when dropped.
///
/// Methods take `&self`, so one thread may kill and restart members while
/// others use the cluster.
pub struct Cluster {
    members: Vec<Member>,
    /// The running process of each member.
    children: Mutex<Vec<Option<Child>>>,
    /// etcd's id of each member, learnt at start.
    ids: Vec<u64>,
    settings: ClusterBuilder,
    bin: PathBuf,
    /// Key of this cluster in the exit registry.
    serial: u64,
    bridge: Bridge,
    dir: Option<tempfile::TempDir>,
}

/// Why a start failed.
struct StartFailure {
    report: String,
    port_clash: bool,
}

impl Cluster {
    /// Starts a 3-member cluster with etcd's default settings.
    ///
    /// # Panics
    ///
    /// See [`ClusterBuilder::start`].
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Settings for a cluster to start.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    fn try_start(settings: &ClusterBuilder, bin: &Path) -> Result<Self, StartFailure> {
        sweep_stale_dirs();
        let fail = |report: String| StartFailure {
            report,
            port_clash: false,
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("seq-etcd-{}-", std::process::id()))
            .tempdir()
            .map_err(|e| fail(format!("cannot create a temporary directory: {e}")))?;
        let ports = free_ports(settings.members * 2)
            .map_err(|e| fail(format!("cannot find free ports: {e}")))?;
        let members: Vec<Member> = (0..settings.members)
            .map(|i| Member {
                name: format!("m{i}"),
                client_url: format!("http://127.0.0.1:{}", ports[2 * i]),
                peer_url: format!("http://127.0.0.1:{}", ports[2 * i + 1]),
                dir: dir.path().join(format!("m{i}")),
            })
            .collect();
        for member in &members {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&member.dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", member.dir.display())))?;
        }
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        registry().dirs.insert(serial, dir.path().to_path_buf());
        let bridge = Bridge::new("seq-etcd-cluster")
            .map_err(|e| fail(format!("cannot start a tokio runtime: {e}")))?;
        let mut cluster = Self {
            children: Mutex::new(members.iter().map(|_| None).collect()),
            members,
            ids: Vec::new(),
            settings: settings.clone(),
            bin: bin.to_path_buf(),
            serial,
            bridge,
            dir: Some(dir),
        };
        for member in 0..cluster.members.len() {
            if let Err(e) = cluster.spawn(member) {
                return Err(fail(cluster.report(&format!("cannot start etcd: {e}"))));
            }
        }
        let deadline = Instant::now() + settings.startup_timeout;
        match cluster.wait_healthy(deadline) {
            Ok(ids) => {
                cluster.ids = ids;
                Ok(cluster)
            }
            Err(why) => {
                let report = cluster.report(&why);
                let port_clash = report.contains("address already in use");
                Err(StartFailure { report, port_clash })
            }
        }
    }

    /// Client URLs of all members, running or not.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Client URL of one member.
    pub fn endpoint(&self, member: usize) -> String {
        self.members[member].client_url.clone()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// [`EtcdOptions`] for a store under `prefix` on this cluster, with the
    /// cluster's limits.
    pub fn options(&self, prefix: impl Into<Vec<u8>>) -> EtcdOptions {
        EtcdOptions {
            max_request_bytes: self.settings.max_request_bytes,
            max_txn_ops: self.settings.max_txn_ops,
            ..EtcdOptions::new(self.endpoints(), prefix)
        }
    }

    /// Whether `member` is running (not killed).
    pub fn is_running(&self, member: usize) -> bool {
        self.children()[member].is_some()
    }

    /// Kills `member` with SIGKILL (a crash: no clean shutdown) and waits
    /// until it is gone.
    ///
    /// # Panics
    ///
    /// When the member is not running.
    pub fn kill(&self, member: usize) {
        let mut child = self.children()[member]
            .take()
            .unwrap_or_else(|| panic!("etcd member {member} is not running"));
        // It may have died already; then kill fails and wait reaps it.
        let _ = child.kill();
        let _ = child.wait();
        registry().pids.remove(&child.id());
    }

    /// Starts a killed `member` again on its data directory and waits until
    /// the cluster is healthy.
    ///
    /// # Panics
    ///
    /// When the member is running, or the cluster is not healthy within the
    /// startup timeout.
    pub fn restart(&self, member: usize) {
        assert!(
            !self.is_running(member),
            "etcd member {member} is already running"
        );
        if let Err(e) = self.spawn(member) {
            panic!("{}", self.report(&format!("cannot restart etcd: {e}")));
        }
        let deadline = Instant::now() + self.settings.startup_timeout;
        if let Err(why) = self.wait_healthy(deadline) {
            panic!(
                "{}",
                self.report(&format!("after restarting member {member}: {why}"))
            );
        }
    }

    /// Kills every running member at once with SIGKILL, then starts them
    /// all again on their data and waits until the cluster is healthy: a
    /// crash of the whole cluster, as far as processes go (what they had
    /// written but not fsynced is still in the page cache).
    ///
    /// # Panics
    ///
    /// When the cluster is not healthy again within the startup timeout.
    pub fn crash(&self) {
        for member in self.running() {
            self.kill(member);
        }
        for member in 0..self.len() {
            if let Err(e) = self.spawn(member) {
                panic!("{}", self.report(&format!("cannot restart etcd: {e}")));
            }
        }
        let deadline = Instant::now() + self.settings.startup_timeout;
        if let Err(why) = self.wait_healthy(deadline) {
            panic!("{}", self.report(&format!("after a crash: {why}")));
        }
    }

    /// Compacts the cluster's history up to its current revision (as etcd's
    /// auto-compaction would) and returns that revision: reads at older
    /// revisions fail from then on.
    ///
    /// # Panics
    ///
    /// When the cluster does not answer.
    pub fn compact(&self) -> i64 {
        let endpoints = self.endpoints();
        let call = async move {
            let mut client = Client::connect(endpoints, Some(probe_options())).await?;
            let revision = client
                .get("seq-etcd-testing-compact", None)
                .await?
                .header()
                .map_or(0, |h| h.revision());
            let options = etcd_client::CompactionOptions::new().with_physical();
            client.compact(revision, Some(options)).await?;
            Ok::<_, etcd_client::Error>(revision)
        };
        match self.bridge.run(call) {
            Some(Ok(revision)) => revision,
            Some(Err(e)) => panic!("{}", self.report(&format!("compaction failed: {e}"))),
            None => panic!("the cluster's runtime stopped"),
        }
    }

    /// The index of the current leader, asked of the running members with
    /// the maintenance status call; waits (up to the startup timeout) while
    /// there is none.
    ///
    /// # Panics
    ///
    /// When no running member reports a leader in time.
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + self.settings.startup_timeout;
        loop {
            for member in self.running() {
                if let Ok((_, leader)) = self.status(member)
                    && let Some(index) = self.ids.iter().position(|&id| id == leader && id != 0)
                    && self.is_running(index)
                {
                    return index;
                }
            }
            if Instant::now() > deadline {
                panic!("{}", self.report("no leader"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `lines` lines of `member`'s log.
    pub fn log_tail(&self, member: usize, lines: usize) -> String {
        tail(&self.members[member].dir.join("etcd.log"), lines)
    }

    fn children(&self) -> MutexGuard<'_, Vec<Option<Child>>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn running(&self) -> Vec<usize> {
        let children = self.children();
        (0..children.len())
            .filter(|&i| children[i].is_some())
            .collect()
    }

    fn spawn(&self, index: usize) -> io::Result<()> {
        let member = &self.members[index];
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let log_path = member.dir.join("etcd.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut command = Command::new(&self.bin);
        let ms = |d: Duration| d.as_millis().to_string();
        let token = format!("seq-etcd-{}-{}", std::process::id(), self.serial);
        command
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&member.dir)
            .args(["--listen-client-urls", &member.client_url])
            .args(["--advertise-client-urls", &member.client_url])
            .args(["--listen-peer-urls", &member.peer_url])
            .args(["--initial-advertise-peer-urls", &member.peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &token])
            .args([
                "--heartbeat-interval",
                &ms(self.settings.heartbeat_interval),
            ])
            .args(["--election-timeout", &ms(self.settings.election_timeout)])
            .args(["--snapshot-count", "10000"])
            .args([
                "--max-request-bytes",
                &self.settings.max_request_bytes.to_string(),
            ])
            .args(["--max-txn-ops", &self.settings.max_txn_ops.to_string()])
            .args(["--logger", "zap"])
            .arg("--log-outputs")
            .arg(&log_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Flags in the environment (ETCD_*) would override ours.
        let inherited: Vec<OsString> = std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| k.to_string_lossy().starts_with("ETCD_"))
            .collect();
        for key in inherited {
            command.env_remove(key);
        }
        die_with_parent(&mut command);
        let child = spawn(command)?;
        registry().pids.insert(child.id(), self.serial);
        self.children()[index] = Some(child);
        Ok(())
    }

    /// Waits until every running member answers, they agree on a leader
    /// that is running, and a linearizable read succeeds on each. Returns
    /// the member ids (0 for a member not running).
    fn wait_healthy(&self, deadline: Instant) -> Result<Vec<u64>, String> {
        loop {
            if let Some(why) = self.exited() {
                return Err(why);
            }
            let why = match self.check_health() {
                Ok(ids) => return Ok(ids),
                Err(why) => why,
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "not healthy within {:?}: {why}",
                    self.settings.startup_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn check_health(&self) -> Result<Vec<u64>, String> {
        let mut ids = vec![0u64; self.members.len()];
        let mut leaders = Vec::new();
        for member in self.running() {
            let (id, leader) = self
                .status(member)
                .map_err(|e| format!("member {member}: {e}"))?;
            ids[member] = id;
            leaders.push(leader);
        }
        let Some(&leader) = leaders.first() else {
            return Err("no member is running".to_owned());
        };
        if leader == 0 || leaders.iter().any(|&l| l != leader) {
            return Err(format!("members disagree on the leader: {leaders:?}"));
        }
        let known: Vec<u64> = if self.ids.is_empty() {
            ids.clone()
        } else {
            self.ids.clone()
        };
        match known.iter().position(|&id| id == leader) {
            Some(index) if self.is_running(index) => {}
            _ => return Err(format!("the leader {leader:x} is not a running member")),
        }
        for member in self.running() {
            self.read(member)
                .map_err(|e| format!("member {member} cannot serve a read: {e}"))?;
        }
        Ok(if self.ids.is_empty() { ids } else { known })
    }

    /// `(member id, leader id)` as `member` reports them.
    fn status(&self, member: usize) -> Result<(u64, u64), String> {
        let endpoint = self.members[member].client_url.clone();
        let call = async move {
            let mut client = Client::connect([endpoint], Some(probe_options())).await?;
            let status = client.status().await?;
            Ok::<_, etcd_client::Error>((
                status.header().map_or(0, |h| h.member_id()),
                status.leader(),
            ))
        };
        match self.bridge.run(call) {
            Some(result) => result.map_err(|e| e.to_string()),
            None => Err("the runtime stopped".to_owned()),
        }
    }

    /// A linearizable read through `member` alone.
    fn read(&self, member: usize) -> Result<(), String> {
        let endpoint = self.members[member].client_url.clone();
        let call = async move {
            let mut client = Client::connect([endpoint], Some(probe_options())).await?;
            client.get("seq-etcd-testing-health", None).await?;
            Ok::<_, etcd_client::Error>(())
        };
        match self.bridge.run(call) {
            Some(result) => result.map_err(|e| e.to_string()),
            None => Err("the runtime stopped".to_owned()),
        }
    }

    /// A description of a running member that exited, if one did.
    fn exited(&self) -> Option<String> {
        let mut children = self.children();
        for (index, slot) in children.iter_mut().enumerate() {
            if let Some(child) = slot
                && let Ok(Some(status)) = child.try_wait()
            {
                registry().pids.remove(&child.id());
                *slot = None;
                return Some(format!("etcd member {index} exited: {status}"));
            }
        }
        None
    }

    /// `headline`, then the settings and the tail of each member's log.
    fn report(&self, headline: &str) -> String {
        let mut out = format!(
            "etcd test cluster ({} members, {}): {headline}\n",
            self.members.len(),
            self.bin.display()
        );
        for (index, member) in self.members.iter().enumerate() {
            out.push_str(&format!(
                "--- member {index} ({}, {}), last lines of {}/etcd.log:\n{}\n",
                member.client_url,
                if self.is_running(index) {
                    "running"
                } else {
                    "stopped"
                },
                member.dir.display(),
                self.log_tail(index, LOG_TAIL_LINES)
            ));
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut children = self.children();
        for child in children
            .iter_mut()
            .filter_map(Option::take)
            .collect::<Vec<_>>()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            registry().pids.remove(&child.id());
        }
        drop(children);
        registry().dirs.remove(&self.serial);
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("endpoints", &self.endpoints())
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

fn probe_options() -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(Duration::from_secs(2))
        .with_require_leader(true)
}

/// `count` distinct ports free on 127.0.0.1 right now.
fn free_ports(count: usize) -> io::Result<Vec<u16>> {
    // Hold every listener until all are chosen, so none repeats.
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// The last `lines` lines of the file at `path`.
fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let all: Vec<String> = io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ------------------------------------------------ process lifetime

/// Children and directories to clean up when the process exits.
#[derive(Default)]
struct Registry {
    /// pid → cluster serial.
    pids: HashMap<u32, u64>,
    /// cluster serial → its temporary directory.
    dirs: HashMap<u64, PathBuf>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| {
        register_exit_hook();
        Mutex::new(Registry::default())
    });
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// At a normal exit, stops the members of clusters never dropped (such as a
/// test binary's `static` cluster) and removes their directories.
#[allow(unsafe_code)]
fn register_exit_hook() {
    extern "C" fn at_exit() {
        let Some(registry) = std::panic::catch_unwind(|| {
            let mut registry = registry();
            (
                registry
                    .pids
                    .drain()
                    .map(|(pid, _)| pid)
                    .collect::<Vec<_>>(),
                registry
                    .dirs
                    .drain()
                    .map(|(_, dir)| dir)
                    .collect::<Vec<_>>(),
            )
        })
        .ok() else {
            return;
        };
        let (pids, dirs) = registry;
        for pid in pids {
            let Ok(pid) = libc::pid_t::try_from(pid) else {
                continue;
            };
            // SAFETY: `pid` is a child this process started and has not
            // reaped (reaping removes it from the registry), so it names
            // that child; kill and waitpid have no memory-safety
            // preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        for dir in dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }
    // SAFETY: `at_exit` is a plain `extern "C" fn()` that does not unwind
    // (panics are caught) and touches only process-wide state that outlives
    // exit handlers.
    unsafe {
        libc::atexit(at_exit);
    }
}

/// Makes the kernel SIGKILL the child when the thread that spawned it dies;
/// [`spawn`] spawns from a thread that lives as long as the process.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec. It calls
    // only prctl and getppid, which are async-signal-safe, and allocates
    // nothing (`io::Error::last_os_error` and `from(ErrorKind)` do not).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent died between fork and prctl: do not run orphaned.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            Ok(())
        });
    }
}

/// Spawns `command` from the process-long spawner thread (see
/// [`die_with_parent`]: the death signal follows the spawning thread, and a
/// test's own thread ends with the test).
fn spawn(command: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<io::Result<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("seq-etcd-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })?;
        Ok(tx)
    });
    let spawner = spawner
        .as_ref()
        .map_err(|e| io::Error::new(e.kind(), format!("no spawner thread: {e}")))?;
    let (reply, answer) = mpsc::channel();
    spawner
        .send((command, reply))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// Removes the directories of clusters whose process died without cleaning
/// up (killed with SIGKILL, say). Once per process.
fn sweep_stale_dirs() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("seq-etcd-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    });
}

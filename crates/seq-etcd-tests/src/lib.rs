//! End-to-end tests of seq on a real local etcd cluster (Debian's
//! `etcd-server`, started by `seq_etcd::testing::Cluster`); the crate has no
//! code of its own, only `tests/`:
//!
//! * `processes.rs` — three processes × 8 tasks share one store: a named
//!   sequence and four segments, while a follower and then the leader are
//!   killed. Every number distinct, every segment dense, every acknowledged
//!   entry present exactly once.
//! * `leases.rs` — a holder that stops renewing loses its lease to another
//!   store, whose token is higher; the old holder's fenced produce fails
//!   with `Fenced` and writes nothing.
//! * `follow.rs` — a follower waiting on one store is woken by another
//!   store's produces through etcd's watch, not by polling.
//!
//! They live here rather than in seq-stream so that building seq-stream's
//! own tests never needs `protoc` (etcd-client's build) or etcd. Run them
//! with `cargo test -p seq-etcd-tests` (`cargo xtask test` does).
//!
//! What they build on, in short: two stores on one prefix of a local
//! 3-member cluster, each with its own writer, never hand out the same
//! number.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> seq_stream::Result<()> {
//! use seq_etcd::testing::Cluster;
//! use seq_stream::Store;
//!
//! let cluster = Cluster::start();
//! let a = Store::open_etcd(cluster.options("shop"))?;
//! let b = Store::open_etcd(cluster.options("shop"))?;
//! a.create_sequence("invoice", Default::default()).await?;
//! let x = a.sequence("invoice").await?.next().await?;
//! let y = b.sequence("invoice").await?.next().await?;
//! assert_ne!(x, y);
//! # a.close().await?;
//! # b.close().await?;
//! # Ok(())
//! # }
//! ```

//! Test infrastructure for Argosy.
//!
//! [`ControlPlane`] starts a real control plane on loopback: one `etcd` and
//! one `kube-apiserver` (v1.20, built by `scripts/install-control-plane.sh`)
//! per cluster, the management cluster `mgmt` plus `workload-1..N`, isolated
//! from each other by their etcd prefix. Only the API server runs: there is no
//! scheduler, controller-manager or kubelet (see the module docs of
//! [`control_plane`] for what that implies).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let cp = argosy_tests::ControlPlane::start(2).await?;
//! let mgmt = cp.management().client().await?;
//! let wl1 = cp.workloads()[0].client().await?;
//! # let _ = (mgmt, wl1);
//! # Ok(()) }
//! ```
//!
//! [`git_servers`] starts real Git servers on loopback for the repository tests: nginx +
//! `git http-backend` (HTTPS with basic auth, HTTPS with client certificates, plain HTTP),
//! sshd and `git daemon` (installed by `scripts/install-git-servers.sh`); [`helm_repo`] a
//! Helm chart repository (nginx over HTTPS, optional basic auth) and chart fixtures made with
//! the real `helm`.
//!
//! [`fleet_history`] is the per-customer example's repository with a three-commit history,
//! for the fleet plan's tests.
//!
//! [`registry`] starts a real OCI registry (Distribution's `docker-registry`, HTTPS with
//! optional basic auth) on loopback for the Helm OCI chart and image tests (installed by
//! `scripts/install-registry.sh`); [`image`] builds Argosy's container image with
//! `scripts/build-image.sh`, pushes it there, and pulls and runs it with podman.
//!
//! [`fleet_sim`] simulates many clusters on few API servers: each simulated cluster has a
//! loopback address of its own, forwarded to its API server, and its own namespaces, for
//! the fleet tests and the 1,000-cluster benchmark.
//!
//! [`webhook_receiver`] is a scripted HTTP receiver on loopback for the notification tests
//! (answers by status code in order, or never).

pub mod argocd;
pub mod bench;
pub mod control_plane;
pub mod fixtures;
pub mod fleet_history;
pub mod fleet_sim;
pub mod fuzz;
pub mod git_servers;
pub mod helm;
pub mod helm_repo;
pub mod image;
/// Import cycles between the modules of each crate of the workspace: the check CI
/// runs as `cargo run -p argosy-tests --bin module-cycles` (and `tests/module_cycles.rs`).
pub mod modgraph;
pub mod ports;
pub mod probe;
pub mod registry;
pub mod webhook_receiver;

pub use control_plane::{
    ADMIN_TOKEN, ADMIN_USER, AUDIT_POLICY, AuditEvent, CANARY_TOKEN, CANARY_USER, ControlPlane,
    HARNESS_USER_AGENT, HungCluster, MANAGEMENT, TestCluster, cache_dir,
};

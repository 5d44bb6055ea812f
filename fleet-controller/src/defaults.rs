//! The controller's defaults, in one place: the command line's flags (`cli::args`) and the
//! settings' `Default` impls (`run`, `appset::plan`) read them from here, so a default
//! cannot drift between the flag and the code that runs without one (tests, embedders).

use std::path::PathBuf;

/// Lines of each object's diff a fleet plan keeps (`argosy plan`, the plan API).
pub const PLAN_MAX_DIFF_LINES: usize = 200;
/// Applications one side of `argosy plan` may generate.
pub const PLAN_MAX_APPS: usize = 5_000;
/// Applications one side of a plan asked of the controller's API may generate.
pub const PLAN_API_MAX_APPS: usize = 500;
/// Seconds a plan asked of the controller's API may take.
pub const PLAN_API_TIMEOUT_SECONDS: u64 = 120;
/// The cluster label a fleet plan groups destinations by.
pub const PLAN_GROUP_BY: &str = "customer";
/// Argo CD's namespace: cluster Secrets, AppProjects, ApplicationSets and the Lease.
pub const CONTROLLER_NAMESPACE: &str = "argocd";
/// Name of the leader-election Lease.
pub const LEASE_NAME: &str = "argosy-controller";
/// Lease duration in seconds.
pub const LEASE_SECONDS: u64 = 10;
/// Deletions one ApplicationSet reconcile may always make.
pub const DELETION_BUDGET_MIN: usize = 5;
/// Share of an ApplicationSet's Applications one reconcile may delete, in percent.
pub const DELETION_BUDGET_PERCENT: usize = 20;
/// Application writes in flight per ApplicationSet reconcile.
pub const CONCURRENT_WRITES: usize = 32;
/// Requeue of ApplicationSets with Git generators, in seconds (Argo CD: 3 minutes).
pub const GIT_REQUEUE_SECONDS: u64 = 180;
/// Periodic re-check of every Application, in seconds (Argo CD: 180).
pub const RESYNC_SECONDS: u64 = 180;
/// Concurrent applies within one sync step.
pub const SYNC_CONCURRENCY: usize = 16;
/// Applications reconciled at once.
pub const SYNC_WORKERS: u16 = 16;
/// `--watch-namespaces-max`: namespaces in use on one cluster watched one by one; above,
/// a namespaced kind is watched over the whole cluster.
pub const WATCH_NAMESPACES_MAX: usize = argosy_sync_engine::live::DEFAULT_MAX_NAMESPACES;
/// How often a remote repository's refs are checked at most, in seconds.
pub const REPO_REFRESH_SECONDS: u64 = 180;
/// The first backoff of a failing repository, in seconds (doubled after each failure).
pub const REPO_BACKOFF_SECONDS: u64 = 10;
/// The longest backoff of a failing repository, in seconds.
pub const REPO_BACKOFF_MAX_SECONDS: u64 = 180;
/// Seconds a Git operation may take to reach its server.
pub const REPO_CONNECT_TIMEOUT_SECONDS: u64 = 5;
/// Seconds a Git operation may wait for the next bytes.
pub const REPO_STALL_TIMEOUT_SECONDS: u64 = 15;
/// Seconds to reach a destination cluster's API server (TCP and TLS).
pub const CLUSTER_CONNECT_TIMEOUT_SECONDS: u64 = 5;
/// The longest silence of one request to a destination cluster, in seconds (an admission
/// webhook may take 30 s).
pub const CLUSTER_REQUEST_TIMEOUT_SECONDS: u64 = 30;
/// Each watch of a destination cluster ends after this many seconds and is re-made from
/// where it was; one silent for this + 5 s is taken for dead.
pub const CLUSTER_WATCH_TIMEOUT_SECONDS: u64 = 120;
/// How often each destination cluster some Application uses is probed (`GET /version`),
/// in seconds.
pub const CLUSTER_PROBE_INTERVAL_SECONDS: u64 = 10;
/// Seconds a probe waits for its answer; none marks the cluster unreachable. With the
/// interval: a cluster that hangs is marked within 15 s of its last answer.
pub const CLUSTER_PROBE_TIMEOUT_SECONDS: u64 = 5;

/// The `CLUSTER_*_TIMEOUT_SECONDS` settings.
pub fn cluster_timeouts() -> argosy_sync_engine::clients::ClusterTimeouts {
    argosy_sync_engine::clients::ClusterTimeouts {
        connect: std::time::Duration::from_secs(CLUSTER_CONNECT_TIMEOUT_SECONDS),
        request: std::time::Duration::from_secs(CLUSTER_REQUEST_TIMEOUT_SECONDS),
        watch: std::time::Duration::from_secs(CLUSTER_WATCH_TIMEOUT_SECONDS),
    }
}

/// The `CLUSTER_PROBE_*` settings.
pub fn cluster_probe() -> argosy_sync_engine::probe::ProbeSettings {
    argosy_sync_engine::probe::ProbeSettings {
        interval: std::time::Duration::from_secs(CLUSTER_PROBE_INTERVAL_SECONDS),
        timeout: std::time::Duration::from_secs(CLUSTER_PROBE_TIMEOUT_SECONDS),
    }
}

/// The disk budget of downloaded Helm chart packages.
pub const CHART_CACHE_MAX_BYTES: &str = "256Mi";
/// The HTTP listener (`/metrics`, `/healthz`, webhook, dashboard).
pub const LISTEN: &str = "0.0.0.0:8080";

/// `hostname-pid`, unique per process on a machine and readable in the Lease.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "argosy".into());
    format!("{}-{}", host.trim(), std::process::id())
}

/// `$XDG_CACHE_HOME/argosy` or `~/.cache/argosy`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("argosy")
        .join("repos")
}

/// How long a dashboard login lasts (`--dashboard-session-ttl`, a Go duration).
pub const DASHBOARD_SESSION_TTL: &str = "12h";
/// Wrong tokens one client may send within [`LOGIN_WINDOW_SECONDS`] before it gets 429.
pub const LOGIN_MAX_FAILURES: u32 = 10;
/// The failed-login window, in seconds, from a client's first failure.
pub const LOGIN_WINDOW_SECONDS: u64 = 300;
/// Clients the failed-login limiter tracks at most (bounded memory).
pub const LOGIN_LIMIT_CLIENTS: usize = 10_000;
/// `/readyz` fails when reconciles are running but none finished for this long, in seconds.
pub const READINESS_STALL_SECONDS: u64 = 300;

/// [`DASHBOARD_SESSION_TTL`] as a duration (the settings' `Default` reads it).
pub fn dashboard_session_ttl() -> std::time::Duration {
    argosy_crds::duration::GoDuration::parse(DASHBOARD_SESSION_TTL)
        .map(|d| d.to_std())
        .unwrap_or(std::time::Duration::from_secs(12 * 3600))
}
/// Seconds one webhook notification request may take (connect, send, answer).
pub const NOTIFY_TIMEOUT_SECONDS: u64 = 5;
/// Attempts per webhook notification, the first included.
pub const NOTIFY_ATTEMPTS: u32 = 3;
/// The wait before a notification's second attempt, in milliseconds (then doubled).
pub const NOTIFY_BACKOFF_MILLIS: u64 = 1000;
/// Notification deliveries queued or under way at most, all webhooks together.
pub const NOTIFY_QUEUE: usize = 1024;
/// Notifications waiting for one webhook at most (it gets them one at a time).
pub const NOTIFY_WEBHOOK_BACKLOG: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_built_without_settings_use_these_timeouts() {
        // The CLI and embedders build `ClusterClients` without `argosy run`'s settings.
        assert_eq!(
            cluster_timeouts(),
            argosy_sync_engine::clients::ClusterTimeouts::default()
        );
    }

    #[test]
    fn a_hung_cluster_is_marked_unreachable_within_30_seconds() {
        // The bound, with room for the reconcile that reports it.
        let bound = cluster_probe().detection_bound();
        assert!(bound <= std::time::Duration::from_secs(20), "{bound:?}");
        // A probe is done before the next one is due (at most one in flight anyway).
        assert!(cluster_probe().timeout < cluster_probe().interval);
    }
}

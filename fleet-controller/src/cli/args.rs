//! The command line's shape: every subcommand and flag, defined once with clap. What each
//! command does lives in [`super::cmd`]; defaults shared by several flags in
//! [`crate::defaults`].

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cli::cmd::app::AppCommand;
use crate::cli::cmd::fleet::{AppSetCommand, ClusterCommand, StatusFlags};
use crate::cli::cmd::repo::RepoCommand;
use crate::cli::parse::{parse_positive_duration, parse_repo_override};
use crate::defaults;
use crate::run::SyncEngine;
use argosy_sync_engine::shard::assign::ShardingMethod;

/// Argosy: deliver the same software to many Kubernetes clusters and customers from Git.
#[derive(Debug, Parser)]
#[command(name = "argosy", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the Applications an ApplicationSet generates, offline.
    Generate {
        /// ApplicationSet file(s) or directories (AppProjects found there count as existing projects).
        #[arg(short = 'f', long = "file", required = true)]
        files: Vec<PathBuf>,
        /// Cluster Secret file(s) or directories (Argo CD declarative cluster Secrets).
        #[arg(long = "clusters")]
        clusters: Vec<PathBuf>,
        /// Serve a repository URL from a local repository: URL=PATH.
        #[arg(long = "repo", value_parser = parse_repo_override)]
        repos: Vec<(String, PathBuf)>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
        output: Format,
        /// Show, for each Application, the generator and where each parameter came from.
        #[arg(long)]
        explain: bool,
        /// Where remote repositories are cloned.
        #[arg(long, env = "ARGOSY_REPO_CACHE")]
        repo_cache: Option<PathBuf>,
    },
    /// What moving the repositories an ApplicationSet reads from one revision to another
    /// changes, per customer (or cluster): Applications added, removed, changed, and the
    /// manifest diff of each changed object. Offline: reads only the files, the cluster
    /// Secret files and Git; writes nothing.
    Plan(Box<PlanFlags>),
    /// Run ApplicationSet test cases (conformance-case schema) and report `N passed, M failed`.
    Test {
        /// Case files or directories of cases.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the CRDs (Application, ApplicationSet, AppProject) as YAML.
    Crds,
    /// Run the controller against the cluster of the current kubeconfig (or in-cluster config).
    Run(Box<RunFlags>),
    /// Applications on the cluster of the current kubeconfig: list, get, diff, sync, rollback.
    App(AppFlags),
    /// The fleet at a glance: clusters (connection state, Applications by sync and health),
    /// ApplicationSets, totals.
    Status(FleetStatusFlags),
    /// ApplicationSets on the cluster of the current kubeconfig: list, get.
    Appset(AppSetFlags),
    /// An ApplicationSet's RollingSync: status, pause, resume, abort (and roll back), retry.
    Rollout(RolloutFlags),
    /// Clusters of the fleet: add (register a kubeconfig context), list, rm.
    Cluster(ClusterFlags),
    /// Git and Helm repository credentials (Argo CD repository Secrets and credential
    /// templates): add (checked first), list, rm.
    Repo(RepoFlags),
    /// Print a shell completion script (`source <(argosy completion bash)`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Flags of `argosy plan`.
#[derive(Debug, clap::Args)]
pub struct PlanFlags {
    /// The ApplicationSet file (one ApplicationSet; AppProjects in the files count as
    /// existing projects).
    #[arg(short = 'f', long = "file", required = true)]
    pub files: Vec<PathBuf>,
    /// Cluster Secret file(s) or directories (Argo CD declarative cluster Secrets).
    #[arg(long = "clusters")]
    pub clusters: Vec<PathBuf>,
    /// Serve a repository URL from a local repository: URL=PATH.
    #[arg(long = "repo", value_parser = parse_repo_override)]
    pub repos: Vec<(String, PathBuf)>,
    /// The old side: a branch, tag or commit of the repositories under review (default:
    /// each generator and source at the revision the ApplicationSet names now).
    #[arg(long)]
    pub from: Option<String>,
    /// The new side: a branch, tag or commit of the repositories under review.
    #[arg(long)]
    pub to: String,
    /// A repository the revisions are of (repeatable; default: every repository the
    /// ApplicationSet's Git generators read).
    #[arg(long = "repo-url")]
    pub repo_urls: Vec<String>,
    /// The cluster label destinations are grouped by (a cluster without it: its name).
    #[arg(long, default_value = defaults::PLAN_GROUP_BY)]
    pub group_by: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// Lines kept of each diff (the rest is counted).
    #[arg(long, default_value_t = defaults::PLAN_MAX_DIFF_LINES)]
    pub max_diff_lines: usize,
    /// Refuse a side that generates more Applications than this.
    #[arg(long, default_value_t = defaults::PLAN_MAX_APPS)]
    pub max_apps: usize,
    /// Where remote repositories are cloned.
    #[arg(long, env = "ARGOSY_REPO_CACHE")]
    pub repo_cache: Option<PathBuf>,
}

/// The output format of `argosy plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Per customer or cluster, the changed objects and their diffs, then a summary line.
    Text,
    /// The whole plan, machine-readable (the controller's plan API answers the same).
    Json,
}

/// Flags of `argosy status`.
#[derive(Debug, clap::Args)]
pub struct FleetStatusFlags {
    /// Namespace of cluster Secrets and ApplicationSets (Applications: all namespaces).
    #[arg(short = 'n', long, default_value = defaults::CONTROLLER_NAMESPACE)]
    pub namespace: String,
    #[command(flatten)]
    pub flags: StatusFlags,
}

/// Flags of `argosy appset`.
#[derive(Debug, clap::Args)]
pub struct AppSetFlags {
    /// Namespace of the ApplicationSets.
    #[arg(short = 'n', long, global = true, default_value = defaults::CONTROLLER_NAMESPACE)]
    pub namespace: String,
    #[command(subcommand)]
    pub command: AppSetCommand,
}

/// Flags of `argosy rollout`.
#[derive(Debug, clap::Args)]
pub struct RolloutFlags {
    /// Namespace of the ApplicationSet.
    #[arg(short = 'n', long, global = true, default_value = defaults::CONTROLLER_NAMESPACE)]
    pub namespace: String,
    #[command(subcommand)]
    pub command: crate::cli::cmd::rollout::RolloutCommand,
}

/// Flags of `argosy cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterFlags {
    /// Namespace of the cluster Secrets (Argo CD's namespace).
    #[arg(short = 'n', long, global = true, default_value = defaults::CONTROLLER_NAMESPACE)]
    pub namespace: String,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// Flags of `argosy repo`.
#[derive(Debug, clap::Args)]
pub struct RepoFlags {
    /// Namespace of the repository Secrets (Argo CD's namespace).
    #[arg(short = 'n', long, global = true, default_value = defaults::CONTROLLER_NAMESPACE)]
    pub namespace: String,
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the management cluster, where the Secrets are (default: the
    /// kubeconfig's current context).
    #[arg(long, global = true)]
    pub mgmt_context: Option<String>,
    #[command(subcommand)]
    pub command: RepoCommand,
}

/// Flags of `argosy app`.
#[derive(Debug, clap::Args)]
pub struct AppFlags {
    /// Namespace of the Applications.
    #[arg(short = 'n', long, global = true, default_value = defaults::CONTROLLER_NAMESPACE)]
    pub namespace: String,
    /// Namespace of the AppProjects (Argo CD's namespace), read for their sync windows.
    #[arg(long, global = true, default_value = defaults::CONTROLLER_NAMESPACE)]
    pub project_namespace: String,
    #[command(subcommand)]
    pub command: AppCommand,
}

/// Flags of `argosy run`.
#[derive(Debug, clap::Args)]
pub struct RunFlags {
    /// Namespace of cluster Secrets, AppProjects and the leader Lease (Argo CD's namespace).
    #[arg(long, env = "ARGOSY_NAMESPACE", default_value = defaults::CONTROLLER_NAMESPACE)]
    pub namespace: String,
    /// Namespaces whose ApplicationSets are reconciled (default: --namespace).
    #[arg(long = "appset-namespace")]
    pub appset_namespaces: Vec<String>,
    /// Namespaces besides --namespace whose Applications are synced (Argo CD's flag:
    /// comma-separated globs or /regexes/); an Application there must also use a project
    /// whose sourceNamespaces lists its namespace. Applications elsewhere are ignored.
    #[arg(long = "application-namespaces", value_delimiter = ',')]
    pub application_namespaces: Vec<String>,
    /// Who syncs Applications: Argosy's built-in engine, or an existing Argo CD.
    #[arg(long, value_enum, default_value_t = SyncEngine::Argosy)]
    pub sync_engine: SyncEngine,
    /// Elect a leader with a Lease so only one replica writes.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// How destination clusters are spread over the replicas with leader election:
    /// legacy, round-robin or consistent-hashing (Argo CD's names). Each replica syncs the
    /// clusters of its shard, the leader runs the ApplicationSet controller; a cluster
    /// Secret's `shard` field pins its cluster.
    #[arg(long, default_value = "consistent-hashing")]
    pub sharding_method: ShardingMethod,
    /// Name of the leader-election Lease (and of the group of the replicas' membership
    /// Leases, `<name>-member-<identity>`).
    #[arg(long, default_value = defaults::LEASE_NAME)]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: hostname and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Lease duration in seconds: how long a crashed leader blocks a takeover.
    #[arg(long, default_value_t = defaults::LEASE_SECONDS)]
    pub lease_seconds: u64,
    /// Deletion budget per reconcile: a count ("5") or a share of the owned Applications ("20%");
    /// the effective budget is the larger of --deletion-budget-min and --deletion-budget-percent.
    #[arg(long, default_value_t = defaults::DELETION_BUDGET_MIN)]
    pub deletion_budget_min: usize,
    #[arg(long, default_value_t = defaults::DELETION_BUDGET_PERCENT)]
    pub deletion_budget_percent: usize,
    /// Force one applicationsSync policy for all ApplicationSets (create-only, create-update, create-delete, sync).
    #[arg(long)]
    pub policy: Option<String>,
    /// Concurrent Application writes per reconcile.
    #[arg(long, default_value_t = defaults::CONCURRENT_WRITES)]
    pub concurrent_writes: usize,
    /// Default requeue of Git generators, in seconds (Argo CD: 180).
    #[arg(long, default_value_t = defaults::GIT_REQUEUE_SECONDS)]
    pub git_requeue_seconds: u64,
    /// Where remote repositories are cloned.
    #[arg(long, env = "ARGOSY_REPO_CACHE")]
    pub repo_cache: Option<PathBuf>,
    /// Serve a repository URL from a local repository: URL=PATH (mirrors, air-gapped sites, demos).
    #[arg(long = "repo", value_parser = parse_repo_override)]
    pub repos: Vec<(String, PathBuf)>,
    /// Sync engine: re-check every Application this often, in seconds, even without a change
    /// event (Git polling; Argo CD: 180).
    #[arg(long, default_value_t = defaults::RESYNC_SECONDS)]
    pub resync_seconds: u64,
    /// Sync engine: Lua health checks from a directory in Argo CD's `resource_customizations`
    /// layout (`<group>/<Kind>/health.lua`; `_.example.com` a wildcard group), read at start.
    /// `argocd-cm`'s `resource.customizations.health.*` keys take precedence.
    #[arg(long, value_name = "DIR")]
    pub resource_customizations: Option<PathBuf>,
    /// Sync engine: concurrent applies within one sync step.
    #[arg(long, default_value_t = defaults::SYNC_CONCURRENCY)]
    pub sync_concurrency: usize,
    /// Sync engine: Applications reconciled at once.
    #[arg(long, default_value_t = defaults::SYNC_WORKERS)]
    pub sync_workers: u16,
    /// Sync engine: watch a namespaced kind per namespace in use on a cluster while at
    /// most this many are in use there, over the whole cluster above (0: always the
    /// whole cluster). A cluster Secret's `namespaces` always limit the watches.
    #[arg(long, default_value_t = defaults::WATCH_NAMESPACES_MAX)]
    pub watch_namespaces_max: usize,
    /// Sync engine: allow exec and AWS auth plugins named in cluster Secrets (they run
    /// commands on the controller's host; refused by default).
    #[arg(long)]
    pub allow_exec_plugins: bool,
    /// Read `file://` and path repository URLs (demos, tests; they read the controller's
    /// own filesystem, so tenants' Applications must not use them in production).
    #[arg(long)]
    pub allow_local_repos: bool,
    /// Fetch repositories over plain `http://`.
    #[arg(long)]
    pub allow_http_repos: bool,
    /// Fetch repositories from loopback, link-local and cloud metadata hosts.
    #[arg(long)]
    pub allow_internal_repo_hosts: bool,
    /// Seconds one webhook notification request may take (connect, send, answer).
    #[arg(long, default_value_t = defaults::NOTIFY_TIMEOUT_SECONDS)]
    pub notify_timeout_seconds: u64,
    /// Attempts per webhook notification (the first included), with backoff between them.
    #[arg(long, default_value_t = defaults::NOTIFY_ATTEMPTS)]
    pub notify_attempts: u32,
    /// Send notifications to webhooks on loopback, link-local and cloud metadata hosts.
    #[arg(long)]
    pub allow_internal_notify_hosts: bool,
    /// Check remote repositories' refs at most this often, in seconds (a push webhook
    /// checks at once).
    #[arg(long, default_value_t = defaults::REPO_REFRESH_SECONDS)]
    pub repo_refresh_seconds: u64,
    /// After a failed Git operation, back the repository off this long (seconds), doubling
    /// after each further failure; requests meanwhile get the last error, not a new request.
    #[arg(long, default_value_t = defaults::REPO_BACKOFF_SECONDS)]
    pub repo_backoff_seconds: u64,
    /// The longest backoff of a failing repository, in seconds.
    #[arg(long, default_value_t = defaults::REPO_BACKOFF_MAX_SECONDS)]
    pub repo_backoff_max_seconds: u64,
    /// Seconds a Git operation may take to reach its server (TCP, TLS, SSH handshake).
    #[arg(long, default_value_t = defaults::REPO_CONNECT_TIMEOUT_SECONDS)]
    pub repo_connect_timeout_seconds: u64,
    /// Seconds a Git operation may wait for the next bytes before it fails.
    #[arg(long, default_value_t = defaults::REPO_STALL_TIMEOUT_SECONDS)]
    pub repo_stall_timeout_seconds: u64,
    /// Keep cloned repositories and materialized trees under this many bytes, deleting the
    /// least recently used (suffixes K, M, G, Ki, Mi, Gi); unbounded if unset.
    #[arg(long, value_parser = crate::cli::parse::byte_size)]
    pub repo_cache_max_bytes: Option<u64>,
    /// Keep downloaded Helm chart packages (from Helm repositories and OCI registries)
    /// under this many bytes, deleting the least recently used (in --repo-cache/charts).
    #[arg(long, value_parser = crate::cli::parse::byte_size, default_value = defaults::CHART_CACHE_MAX_BYTES)]
    pub chart_cache_max_bytes: u64,
    /// Address of the HTTP listener (/healthz, /readyz, /metrics, /api/webhook, dashboard).
    #[arg(long, default_value = defaults::LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS on --listen with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// File holding a token that GET /metrics then asks for (Authorization: Bearer);
    /// without it /metrics is open.
    #[arg(long, env = "ARGOSY_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// /readyz fails while reconciles run but none has finished for this many seconds.
    #[arg(long, default_value_t = defaults::READINESS_STALL_SECONDS)]
    pub readiness_stall_seconds: u64,
    /// File holding the GitHub webhook secret (GitHub pushes are refused without one).
    #[arg(long)]
    pub webhook_github_secret_file: Option<PathBuf>,
    /// File holding the GitLab webhook token (GitLab pushes are refused without one).
    #[arg(long)]
    pub webhook_gitlab_token_file: Option<PathBuf>,
    /// File holding the Bitbucket Cloud webhook's UUID, which it sends as X-Hook-UUID
    /// (Bitbucket Cloud pushes are refused without one).
    #[arg(long)]
    pub webhook_bitbucket_uuid_file: Option<PathBuf>,
    /// File holding the Bitbucket Server webhook secret (Bitbucket Server pushes are
    /// refused without one).
    #[arg(long)]
    pub webhook_bitbucket_server_secret_file: Option<PathBuf>,
    /// File holding the Gogs webhook secret (Gogs pushes are refused without one; Gitea
    /// pushes are checked with it without --webhook-gitea-secret-file, as Argo CD does).
    #[arg(long)]
    pub webhook_gogs_secret_file: Option<PathBuf>,
    /// File holding the Gitea webhook secret.
    #[arg(long)]
    pub webhook_gitea_secret_file: Option<PathBuf>,
    /// Username of the Azure DevOps service hook's basic authentication.
    #[arg(long, requires = "webhook_azure_devops_password_file")]
    pub webhook_azure_devops_username: Option<String>,
    /// File holding the password of the Azure DevOps service hook's basic authentication
    /// (Azure DevOps pushes are refused without one).
    #[arg(long)]
    pub webhook_azure_devops_password_file: Option<PathBuf>,
    /// File holding the token of the dashboard and its /api/v1 API on --listen (without
    /// it neither is served: 404).
    #[arg(long)]
    pub dashboard_token_file: Option<PathBuf>,
    /// How long a dashboard login lasts (a Go duration: 30m, 12h); the server refuses
    /// older session cookies.
    #[arg(long, default_value = defaults::DASHBOARD_SESSION_TTL, value_parser = parse_positive_duration)]
    pub dashboard_session_ttl: std::time::Duration,
    /// Format of the log lines on stderr: text for people, json (one object per line) for
    /// log collectors. The level filter stays in ARGOSY_LOG.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// The log format the command asks for: `--log-format` of `argosy run`; text for every
    /// other command (their logs are for the person at the terminal).
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Run(flags) => flags.log_format,
            _ => LogFormat::Text,
        }
    }
}

/// The output format of `argosy generate`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

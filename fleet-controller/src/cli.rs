//! Command-line interface: one subcommand per user task.
//!
//! Offline commands (`generate`, `test`, `crds`) need no cluster. Each returns an exit
//! code; errors bubble up to `main` as one line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::appcli::AppCommand;
use crate::appset::plan::{ApplicationsSync, DeletionBudget};
use crate::fleetcli::{AppSetCommand, ClusterCommand, StatusFlags};
use crate::generate::{GenerateArgs, OutputFormat};
use crate::run::{RunArgs, SyncEngine, SyncSettings};
use crate::webhook::WebhookConfig;

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
    /// Clusters of the fleet: add (register a kubeconfig context), list, rm.
    Cluster(ClusterFlags),
    /// Print a shell completion script (`source <(argosy completion bash)`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Flags of `argosy status`.
#[derive(Debug, clap::Args)]
pub struct FleetStatusFlags {
    /// Namespace of cluster Secrets and ApplicationSets (Applications: all namespaces).
    #[arg(short = 'n', long, default_value = "argocd")]
    namespace: String,
    #[command(flatten)]
    flags: StatusFlags,
}

/// Flags of `argosy appset`.
#[derive(Debug, clap::Args)]
pub struct AppSetFlags {
    /// Namespace of the ApplicationSets.
    #[arg(short = 'n', long, global = true, default_value = "argocd")]
    namespace: String,
    #[command(subcommand)]
    command: AppSetCommand,
}

/// Flags of `argosy cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterFlags {
    /// Namespace of the cluster Secrets (Argo CD's namespace).
    #[arg(short = 'n', long, global = true, default_value = "argocd")]
    namespace: String,
    #[command(subcommand)]
    command: ClusterCommand,
}

/// Flags of `argosy app`.
#[derive(Debug, clap::Args)]
pub struct AppFlags {
    /// Namespace of the Applications.
    #[arg(short = 'n', long, global = true, default_value = "argocd")]
    namespace: String,
    #[command(subcommand)]
    command: AppCommand,
}

/// Flags of `argosy run`.
#[derive(Debug, clap::Args)]
pub struct RunFlags {
    /// Namespace of cluster Secrets, AppProjects and the leader Lease (Argo CD's namespace).
    #[arg(long, env = "ARGOSY_NAMESPACE", default_value = "argocd")]
    namespace: String,
    /// Namespaces whose ApplicationSets are reconciled (default: --namespace).
    #[arg(long = "appset-namespace")]
    appset_namespaces: Vec<String>,
    /// Who syncs Applications: Argosy's built-in engine, or an existing Argo CD.
    #[arg(long, value_enum, default_value_t = SyncEngine::Argosy)]
    sync_engine: SyncEngine,
    /// Elect a leader with a Lease so only one replica writes.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "argosy-controller")]
    lease_name: String,
    /// This replica's identity in the Lease (default: hostname and process id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Lease duration in seconds: how long a crashed leader blocks a takeover.
    #[arg(long, default_value_t = 10)]
    lease_seconds: u64,
    /// Deletion budget per reconcile: a count ("5") or a share of the owned Applications ("20%");
    /// the effective budget is the larger of --deletion-budget-min and --deletion-budget-percent.
    #[arg(long, default_value_t = 5)]
    deletion_budget_min: usize,
    #[arg(long, default_value_t = 20)]
    deletion_budget_percent: usize,
    /// Force one applicationsSync policy for all ApplicationSets (create-only, create-update, create-delete, sync).
    #[arg(long)]
    policy: Option<String>,
    /// Concurrent Application writes per reconcile.
    #[arg(long, default_value_t = 32)]
    concurrent_writes: usize,
    /// Default requeue of Git generators, in seconds (Argo CD: 180).
    #[arg(long, default_value_t = 180)]
    git_requeue_seconds: u64,
    /// Where remote repositories are cloned.
    #[arg(long, env = "ARGOSY_REPO_CACHE")]
    repo_cache: Option<PathBuf>,
    /// Serve a repository URL from a local repository: URL=PATH (mirrors, air-gapped sites, demos).
    #[arg(long = "repo", value_parser = parse_repo_override)]
    repos: Vec<(String, PathBuf)>,
    /// Sync engine: re-check every Application this often, in seconds, even without a change
    /// event (Git polling; Argo CD: 180).
    #[arg(long, default_value_t = 180)]
    resync_seconds: u64,
    /// Sync engine: concurrent applies within one sync step.
    #[arg(long, default_value_t = 16)]
    sync_concurrency: usize,
    /// Sync engine: Applications reconciled at once.
    #[arg(long, default_value_t = 16)]
    sync_workers: u16,
    /// Sync engine: allow exec and AWS auth plugins named in cluster Secrets (they run
    /// commands on the controller's host; refused by default).
    #[arg(long)]
    allow_exec_plugins: bool,
    /// Check remote repositories' refs at most this often, in seconds (a push webhook
    /// checks at once).
    #[arg(long, default_value_t = 180)]
    repo_refresh_seconds: u64,
    /// Address of the HTTP listener (/healthz, /metrics, /api/webhook).
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// File holding the GitHub webhook secret (GitHub pushes are refused without one).
    #[arg(long)]
    webhook_github_secret_file: Option<PathBuf>,
    /// File holding the GitLab webhook token (GitLab pushes are refused without one).
    #[arg(long)]
    webhook_gitlab_token_file: Option<PathBuf>,
    /// File holding the token of the dashboard and its /api/v1 API on --listen (without
    /// it neither is served: 404).
    #[arg(long)]
    dashboard_token_file: Option<PathBuf>,
}

/// The trimmed content of a secret file (never printed).
fn read_secret_file(flag: &str, path: Option<&PathBuf>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{flag}: reading {}", path.display()))?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        anyhow::bail!("{flag}: {} is empty", path.display());
    }
    Ok(Some(secret))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

pub(crate) fn parse_repo_override(s: &str) -> Result<(String, PathBuf), String> {
    match s.rsplit_once('=') {
        Some((url, path)) if !url.is_empty() && !path.is_empty() => {
            Ok((url.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("expected URL=PATH, got {s:?}")),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Generate {
            files,
            clusters,
            repos,
            output,
            explain,
            repo_cache,
        } => {
            let args = GenerateArgs {
                files,
                clusters,
                repos: repos.into_iter().collect::<BTreeMap<_, _>>(),
                format: match output {
                    Format::Yaml => OutputFormat::Yaml,
                    Format::Json => OutputFormat::Json,
                },
                explain,
                repo_cache: repo_cache.unwrap_or_else(default_cache_dir),
            };
            let text = crate::generate::run(&args)?;
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Test { paths } => {
            let report = crate::casetest::run(&paths)?;
            write_stdout(&report.text)?;
            Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Run(flags) => {
            let flags = *flags;
            let policy = flags
                .policy
                .as_deref()
                .map(|p| {
                    ApplicationsSync::parse(Some(p)).map_err(|e| anyhow::anyhow!("--policy: {e}"))
                })
                .transpose()?;
            if flags.deletion_budget_percent > 100 {
                anyhow::bail!("--deletion-budget-percent must be at most 100");
            }
            let args = RunArgs {
                namespace: flags.namespace,
                appset_namespaces: flags.appset_namespaces,
                sync_engine: flags.sync_engine,
                leader_election: flags.leader_election,
                lease_name: flags.lease_name,
                identity: flags.identity.unwrap_or_else(default_identity),
                lease_duration: std::time::Duration::from_secs(flags.lease_seconds),
                budget: DeletionBudget {
                    minimum: flags.deletion_budget_min,
                    percent: flags.deletion_budget_percent,
                },
                policy,
                concurrent_writes: flags.concurrent_writes,
                git_requeue: std::time::Duration::from_secs(flags.git_requeue_seconds),
                repo_cache: flags.repo_cache.unwrap_or_else(default_cache_dir),
                repos: flags.repos.into_iter().collect(),
                sync: SyncSettings {
                    resync: std::time::Duration::from_secs(flags.resync_seconds.max(1)),
                    concurrency: flags.sync_concurrency.max(1),
                    workers: flags.sync_workers.max(1),
                    allow_exec_plugins: flags.allow_exec_plugins,
                },
                repo_refresh: std::time::Duration::from_secs(flags.repo_refresh_seconds.max(1)),
                listen: Some(flags.listen),
                webhook: WebhookConfig {
                    github_secret: read_secret_file(
                        "--webhook-github-secret-file",
                        flags.webhook_github_secret_file.as_ref(),
                    )?,
                    gitlab_token: read_secret_file(
                        "--webhook-gitlab-token-file",
                        flags.webhook_gitlab_token_file.as_ref(),
                    )?,
                    ..WebhookConfig::default()
                },
                dashboard_token: read_secret_file(
                    "--dashboard-token-file",
                    flags.dashboard_token_file.as_ref(),
                )?
                .map(Into::into),
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(crate::run::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::App(flags) => {
            // `app diff` exits 1 for "differences"; it cannot compare: 2 (as `argocd app diff`).
            let error_code = match flags.command {
                AppCommand::Diff { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let result = runtime.block_on(async {
                let client = crate::run::client().await?;
                let mut out = std::io::stdout().lock();
                crate::appcli::run(client, &flags.namespace, flags.command, &mut out)
                    .await
                    .map_err(anyhow::Error::from)
            });
            Ok(result.unwrap_or_else(|e| {
                eprintln!("error: {e:#}");
                error_code
            }))
        }
        Command::Status(status) => cluster_command(|out, _| {
            Box::pin(async move {
                let client = crate::run::client().await?;
                crate::fleetcli::status(client, &status.namespace, &status.flags, out).await?;
                Ok(())
            })
        }),
        Command::Appset(flags) => cluster_command(|out, _| {
            Box::pin(async move {
                let client = crate::run::client().await?;
                crate::fleetcli::appset(client, &flags.namespace, flags.command, out).await?;
                Ok(())
            })
        }),
        Command::Cluster(flags) => cluster_command(|out, progress| {
            Box::pin(async move {
                crate::fleetcli::cluster(&flags.namespace, flags.command, out, progress).await?;
                Ok(())
            })
        }),
        Command::Completion { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "argosy", &mut text);
            write_stdout(&String::from_utf8_lossy(&text))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crds => {
            write_stdout(&argosy_crds::crd::all_yaml().context("serializing CRDs")?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a command that talks to clusters: stdout for its output, stderr for progress;
/// an error is one line on stderr and exit code 1.
fn cluster_command<F>(command: F) -> anyhow::Result<ExitCode>
where
    F: for<'a> FnOnce(
        &'a mut dyn Write,
        &'a mut dyn Write,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>,
    >,
{
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let mut out = std::io::stdout().lock();
    let mut progress = std::io::stderr().lock();
    Ok(match runtime.block_on(command(&mut out, &mut progress)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    })
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`argosy generate | head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// `hostname-pid`, unique per process on a machine and readable in the Lease.
fn default_identity() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_namespace_is_global_and_defaults_to_argocd() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.command);
        let Ok(Command::App(flags)) = parse(&["argosy", "app", "sync", "shop", "-n", "team"])
        else {
            panic!("app sync did not parse");
        };
        assert_eq!(flags.namespace, "team");
        assert!(matches!(
            flags.command,
            AppCommand::Sync { ref name, prune: false, ref wait, .. }
                if name == "shop" && !wait.wait && wait.timeout == 300
        ));
        let Ok(Command::App(flags)) = parse(&["argosy", "app", "rollback", "shop", "3", "--wait"])
        else {
            panic!("app rollback did not parse");
        };
        assert_eq!(flags.namespace, "argocd");
        assert!(
            matches!(flags.command, AppCommand::Rollback { id: Some(3), ref wait, .. } if wait.wait)
        );
        assert!(parse(&["argosy", "app", "list", "-o", "wide"]).is_err());
    }

    #[test]
    fn fleet_commands_parse() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.command);
        let Ok(Command::Cluster(flags)) = parse(&[
            "argosy",
            "cluster",
            "add",
            "kind-w1",
            "--label",
            "customer=acme",
            "--label",
            "env=prod",
            "--upsert",
            "-n",
            "team",
            "-o",
            "json",
        ]) else {
            panic!("cluster add did not parse");
        };
        assert_eq!(flags.namespace, "team");
        let ClusterCommand::Add { flags: add, output } = flags.command else {
            panic!("not add");
        };
        assert_eq!(add.context, "kind-w1");
        assert_eq!(
            add.labels,
            [
                ("customer".into(), "acme".into()),
                ("env".into(), "prod".into())
            ]
        );
        assert!(add.upsert && add.token_days == 365 && add.mgmt_context.is_none());
        assert_eq!(output, crate::appcli::Output::Json);
        assert!(parse(&["argosy", "cluster", "add", "c", "--token-days", "0"]).is_err());
        assert!(parse(&["argosy", "cluster", "add", "c", "--label", "nokey"]).is_err());
        let Ok(Command::Status(status)) = parse(&["argosy", "status", "--group-by", "customer"])
        else {
            panic!("status did not parse");
        };
        assert_eq!(status.flags.group_by.as_deref(), Some("customer"));
        assert!(matches!(
            parse(&["argosy", "cluster", "rm", "w1", "--force"]),
            Ok(Command::Cluster(ClusterFlags {
                command: ClusterCommand::Rm { force: true, .. },
                ..
            }))
        ));
        assert!(matches!(
            parse(&["argosy", "appset", "get", "web", "-n", "team"]),
            Ok(Command::Appset(AppSetFlags { ref namespace, .. })) if namespace == "team"
        ));
    }

    #[test]
    fn completions_cover_the_subcommands_and_flags() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "argosy", &mut script);
            let script = String::from_utf8(script).unwrap();
            for word in ["cluster", "appset", "status", "group-by", "upsert"] {
                assert!(script.contains(word), "{shell}: {word} missing");
            }
        }
        assert!(Cli::try_parse_from(["argosy", "completion", "powershell"]).is_ok());
        assert!(Cli::try_parse_from(["argosy", "completion", "tcsh"]).is_err());
    }

    #[test]
    fn repo_override_needs_url_and_path() {
        assert_eq!(
            parse_repo_override("https://x/y.git=/tmp/r").unwrap(),
            ("https://x/y.git".to_owned(), PathBuf::from("/tmp/r"))
        );
        assert!(parse_repo_override("https://x/y.git").is_err());
        assert!(parse_repo_override("=/tmp").is_err());
    }
}

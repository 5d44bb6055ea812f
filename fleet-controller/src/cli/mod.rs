//! Command-line interface: one subcommand per user task.
//!
//! Offline commands (`generate`, `test`, `crds`) need no cluster. Each returns an exit
//! code; errors bubble up to `main` as one line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use argosy_sync_engine::url_policy::UrlPolicy;
use clap::CommandFactory as _;

use crate::appset::plan::{ApplicationsSync, DeletionBudget};
use crate::cli::cmd::generate::{GenerateArgs, OutputFormat};

pub mod args;
pub mod cmd;
pub mod explain;
pub mod format;
pub mod inputs;
pub mod parse;

use crate::cli::cmd::app::AppCommand;
use crate::defaults::{default_cache_dir, default_identity};
use crate::run::{HttpSettings, RunArgs, SyncSettings, TlsFiles};
use crate::webhook::WebhookConfig;
pub use args::{Cli, Command, Format, LogFormat, PlanFormat};

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
            let text = crate::cli::cmd::generate::run(&args)?;
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(flags) => {
            let outcome = crate::cli::cmd::plan::run(&flags)?;
            write_stdout(&outcome.text)?;
            Ok(if outcome.problems == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Test { paths } => {
            let report = crate::cli::cmd::test::run(&paths)?;
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
                application_namespaces: flags.application_namespaces,
                sync_engine: flags.sync_engine,
                leader_election: flags.leader_election,
                sharding: flags.sharding_method,
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
                url_policy: UrlPolicy {
                    allow_local: flags.allow_local_repos,
                    allow_http: flags.allow_http_repos,
                    allow_internal_hosts: flags.allow_internal_repo_hosts,
                },
                sync: SyncSettings {
                    resync: std::time::Duration::from_secs(flags.resync_seconds.max(1)),
                    concurrency: flags.sync_concurrency.max(1),
                    workers: flags.sync_workers.max(1),
                    allow_exec_plugins: flags.allow_exec_plugins,
                    resource_customizations: flags.resource_customizations,
                    cluster_timeouts: crate::defaults::cluster_timeouts(),
                    cluster_probe: crate::defaults::cluster_probe(),
                    watch_namespaces_max: flags.watch_namespaces_max,
                },
                repo_refresh: std::time::Duration::from_secs(flags.repo_refresh_seconds.max(1)),
                repo_backoff: argosy_sync_engine::repo::Backoff {
                    initial: std::time::Duration::from_secs(flags.repo_backoff_seconds.max(1)),
                    max: std::time::Duration::from_secs(
                        flags
                            .repo_backoff_max_seconds
                            .max(flags.repo_backoff_seconds)
                            .max(1),
                    ),
                },
                repo_timeouts: argosy_sync_engine::repo::Timeouts {
                    connect: std::time::Duration::from_secs(
                        flags.repo_connect_timeout_seconds.max(1),
                    ),
                    stall: std::time::Duration::from_secs(flags.repo_stall_timeout_seconds.max(1)),
                },
                repo_cache_max_bytes: flags.repo_cache_max_bytes,
                chart_cache_max_bytes: flags.chart_cache_max_bytes,
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
                    bitbucket_uuid: read_secret_file(
                        "--webhook-bitbucket-uuid-file",
                        flags.webhook_bitbucket_uuid_file.as_ref(),
                    )?,
                    bitbucket_server_secret: read_secret_file(
                        "--webhook-bitbucket-server-secret-file",
                        flags.webhook_bitbucket_server_secret_file.as_ref(),
                    )?,
                    gogs_secret: read_secret_file(
                        "--webhook-gogs-secret-file",
                        flags.webhook_gogs_secret_file.as_ref(),
                    )?,
                    gitea_secret: read_secret_file(
                        "--webhook-gitea-secret-file",
                        flags.webhook_gitea_secret_file.as_ref(),
                    )?,
                    azure_devops_username: flags.webhook_azure_devops_username,
                    azure_devops_password: read_secret_file(
                        "--webhook-azure-devops-password-file",
                        flags.webhook_azure_devops_password_file.as_ref(),
                    )?,
                    ..WebhookConfig::default()
                },
                dashboard_token: read_secret_file(
                    "--dashboard-token-file",
                    flags.dashboard_token_file.as_ref(),
                )?
                .map(Into::into),
                http: HttpSettings {
                    tls: match (flags.tls_cert, flags.tls_key) {
                        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                        // clap requires both or neither.
                        _ => None,
                    },
                    dashboard_session_ttl: flags.dashboard_session_ttl,
                    metrics_token: read_secret_file(
                        "--metrics-token-file",
                        flags.metrics_token_file.as_ref(),
                    )?
                    .map(Into::into),
                    readiness_stall: std::time::Duration::from_secs(
                        flags.readiness_stall_seconds.max(1),
                    ),
                },
                notify: crate::notify::NotifySettings {
                    timeout: std::time::Duration::from_secs(flags.notify_timeout_seconds.max(1)),
                    attempts: flags.notify_attempts.max(1),
                    allow_internal_hosts: flags.allow_internal_notify_hosts,
                    ..crate::notify::NotifySettings::default()
                },
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
                crate::cli::cmd::app::run(
                    client,
                    &flags.namespace,
                    &flags.project_namespace,
                    flags.command,
                    &mut out,
                )
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
                crate::cli::cmd::fleet::status(client, &status.namespace, &status.flags, out)
                    .await?;
                Ok(())
            })
        }),
        Command::Appset(flags) => cluster_command(|out, _| {
            Box::pin(async move {
                let client = crate::run::client().await?;
                crate::cli::cmd::fleet::appset(client, &flags.namespace, flags.command, out)
                    .await?;
                Ok(())
            })
        }),
        Command::Rollout(flags) => cluster_command(|out, _| {
            Box::pin(async move {
                let client = crate::run::client().await?;
                crate::cli::cmd::rollout::run(client, &flags.namespace, flags.command, out).await?;
                Ok(())
            })
        }),
        Command::Cluster(flags) => cluster_command(|out, progress| {
            Box::pin(async move {
                crate::cli::cmd::fleet::cluster(&flags.namespace, flags.command, out, progress)
                    .await?;
                Ok(())
            })
        }),
        Command::Repo(flags) => cluster_command(|out, progress| {
            Box::pin(async move {
                let management = crate::cli::cmd::repo::Management {
                    kubeconfig: flags.kubeconfig,
                    context: flags.mgmt_context,
                };
                crate::cli::cmd::repo::run(
                    &management,
                    &flags.namespace,
                    flags.command,
                    out,
                    progress,
                )
                .await?;
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

#[cfg(test)]
mod tests {
    use super::args::*;
    use super::parse::parse_repo_override;
    use super::*;
    use crate::cli::cmd::fleet::ClusterCommand;
    use clap::Parser as _;

    #[test]
    fn log_format_is_a_run_flag_defaulting_to_text() {
        let parse = |args: &[&str]| Cli::try_parse_from(args);
        let cli = parse(&["argosy", "run"]).expect("argosy run parses");
        assert_eq!(cli.log_format(), LogFormat::Text);
        let cli = parse(&["argosy", "run", "--log-format", "json"]).expect("json parses");
        assert_eq!(cli.log_format(), LogFormat::Json);
        let cli = parse(&["argosy", "run", "--log-format=text"]).expect("text parses");
        assert_eq!(cli.log_format(), LogFormat::Text);
        // Other commands log text and do not take the flag.
        assert_eq!(
            parse(&["argosy", "crds"])
                .expect("crds parses")
                .log_format(),
            LogFormat::Text
        );
        assert!(parse(&["argosy", "crds", "--log-format", "json"]).is_err());
    }

    #[test]
    fn an_unknown_log_format_is_a_clear_usage_error() {
        let error = Cli::try_parse_from(["argosy", "run", "--log-format", "bogus"])
            .expect_err("bogus is no log format");
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
        let message = error.to_string();
        assert!(message.contains("invalid value 'bogus'"), "{message}");
        assert!(message.contains("--log-format"), "{message}");
        assert!(
            message.contains("text") && message.contains("json"),
            "{message}"
        );
    }

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
        let Ok(Command::App(flags)) =
            parse(&["argosy", "app", "confirm-deletion", "shop", "-n", "team"])
        else {
            panic!("app confirm-deletion did not parse");
        };
        assert_eq!(flags.namespace, "team");
        assert!(
            matches!(flags.command, AppCommand::ConfirmDeletion { ref name } if name == "shop")
        );
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
        assert_eq!(output, crate::cli::cmd::app::Output::Json);
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

//! `argosy rollout status|pause|resume|abort|retry NAME`: an ApplicationSet's RollingSync.
//!
//! `status` reads the ApplicationSet and its Applications and says where the rollout
//! stands: phase, step, why it waits or stopped, and per Application its step, progress,
//! destination, the revision it runs and the one it is rolled out to. The other commands
//! only set or remove one `argosy.io/rollout-*` annotation (a merge patch with the user's
//! own credentials); the controller acts on it (see `appset::strategy`). Abort and retry
//! carry a request id (the time), so each request is acted on once.

use argosy_sync_engine::target::short_commit;
use std::io::Write;

use argosy_crds::{Application, ApplicationSet};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::appset::strategy::{ABORT_ANNOTATION, PAUSED_ANNOTATION, RETRY_ANNOTATION};
use crate::cli::cmd::app::{AppError, Output, emit, encode};
use crate::rollout_view::{self, is_rolling_sync, owned_by};

/// `argosy rollout` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// Where the rollout stands: phase, step, why it waits or stopped, each Application.
    Status {
        name: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Start no new sync until `resume`.
    Pause { name: String },
    /// Continue a paused rollout.
    Resume { name: String },
    /// Halt the rollout and roll back the Applications it synced.
    Abort { name: String },
    /// End a halt: the failed and rolled-back Applications are synced again.
    Retry { name: String },
}

/// Why a rollout command failed (one line each).
#[derive(Debug, thiserror::Error)]
pub enum RolloutCliError {
    #[error("applicationset {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    #[error("reading applicationset {namespace}/{name}: {error}")]
    Read {
        namespace: String,
        name: String,
        error: kube::Error,
    },
    #[error("listing applications in namespace {namespace}: {error}")]
    ListApps {
        namespace: String,
        error: kube::Error,
    },
    #[error(
        "applicationset {namespace}/{name} has no RollingSync strategy with steps: there is no rollout to {action}"
    )]
    NoRollout {
        namespace: String,
        name: String,
        action: &'static str,
    },
    #[error("annotating applicationset {namespace}/{name}: {error}")]
    Annotate {
        namespace: String,
        name: String,
        error: kube::Error,
    },
    #[error(transparent)]
    Output(#[from] AppError),
}

/// Runs one `argosy rollout` command against the management cluster.
pub async fn run(
    client: Client,
    namespace: &str,
    command: RolloutCommand,
    out: &mut dyn Write,
) -> Result<(), RolloutCliError> {
    let api: Api<ApplicationSet> = Api::namespaced(client.clone(), namespace);
    let (name, action, annotation) = match command {
        RolloutCommand::Status { name, output } => {
            let appset = read(&api, namespace, &name).await?;
            let apps: Api<Application> = Api::namespaced(client, namespace);
            let owned: Vec<Application> = apps
                .list(&ListParams::default())
                .await
                .map_err(|error| RolloutCliError::ListApps {
                    namespace: namespace.to_owned(),
                    error,
                })?
                .items
                .into_iter()
                .filter(|a| owned_by(a, &name))
                .collect();
            let text = match output {
                Output::Table => status_text(&appset, &owned),
                other => encode(&status_json(&appset), other)?,
            };
            return Ok(emit(out, &text)?);
        }
        RolloutCommand::Pause { name } => (name, "pause", (PAUSED_ANNOTATION, json!("true"))),
        RolloutCommand::Resume { name } => (name, "resume", (PAUSED_ANNOTATION, Value::Null)),
        RolloutCommand::Abort { name } => (name, "abort", (ABORT_ANNOTATION, json!(request_id()))),
        RolloutCommand::Retry { name } => (name, "retry", (RETRY_ANNOTATION, json!(request_id()))),
    };
    let appset = read(&api, namespace, &name).await?;
    if !is_rolling_sync(&appset) {
        return Err(RolloutCliError::NoRollout {
            namespace: namespace.to_owned(),
            name,
            action,
        });
    }
    let (key, value) = annotation;
    let patch = json!({"metadata": {"annotations": {key: value}}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|error| RolloutCliError::Annotate {
            namespace: namespace.to_owned(),
            name: name.clone(),
            error,
        })?;
    Ok(emit(
        out,
        &format!("rollout of applicationset {namespace}/{name}: {action} requested\n"),
    )?)
}

async fn read(
    api: &Api<ApplicationSet>,
    namespace: &str,
    name: &str,
) -> Result<ApplicationSet, RolloutCliError> {
    match api.get_opt(name).await {
        Ok(Some(appset)) => Ok(appset),
        Ok(None) => Err(RolloutCliError::NotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }),
        Err(error) => Err(RolloutCliError::Read {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            error,
        }),
    }
}

/// A request id: the time of the request, unique enough for one user's commands.
fn request_id() -> String {
    Timestamp::now().to_string()
}

/// `-o json|yaml`: the rollout part of the status.
fn status_json(appset: &ApplicationSet) -> Value {
    let status = appset.status.clone().unwrap_or_default();
    json!({
        "name": appset.metadata.name,
        "namespace": appset.metadata.namespace,
        "rollout": status.rollout,
        "applicationStatus": status.application_status,
        "conditions": status.conditions.iter()
            .filter(|c| c.type_.starts_with("Rollout") || c.type_ == "InvalidRolloutConfig")
            .collect::<Vec<_>>(),
    })
}

/// The table of `argosy rollout status`.
fn status_text(appset: &ApplicationSet, owned: &[Application]) -> String {
    // Customers come from cluster Secrets, which `status` does not read: the destination
    // column names the cluster.
    let view = rollout_view::view(appset, owned, &[], "");
    let mut text = format!("ApplicationSet: {}/{}\n", view.namespace, view.name);
    if !view.rolling_sync {
        text.push_str("Strategy:       AllAtOnce (no rollout)\n");
        return text;
    }
    let steps = view.steps;
    text.push_str(&format!("Strategy:       RollingSync, {steps} step(s)\n"));
    for (label, value) in [
        ("Bake time", &view.bake_time),
        ("Failure budget", &view.failure_budget),
        ("Paused", &view.paused),
    ] {
        if let Some(value) = value {
            text.push_str(&format!("{:<16}{value}\n", format!("{label}:")));
        }
    }
    match &view.rollout {
        Some(rollout) => {
            text.push_str(&format!("Phase:          {}", rollout.phase));
            if !rollout.since.is_empty() {
                text.push_str(&format!(" (since {})", rollout.since));
            }
            text.push('\n');
            if rollout.step > 0 {
                text.push_str(&format!("Step:           {} of {steps}\n", rollout.step));
            }
            text.push_str(&format!("Why:            {}\n", rollout.message));
        }
        None => text.push_str("Phase:          (not reconciled yet)\n"),
    }
    let mut rows = vec![[
        "STEP".to_owned(),
        "APPLICATION".to_owned(),
        "PROGRESS".to_owned(),
        "SYNC/HEALTH".to_owned(),
        "DESTINATION".to_owned(),
        "RUNS".to_owned(),
        "TARGET".to_owned(),
    ]];
    for row in &view.applications {
        let sync_health = match (&row.sync, &row.health) {
            (Some(sync), Some(health)) => format!("{sync}/{health}"),
            _ => "-".to_owned(),
        };
        let target = row
            .target
            .iter()
            .map(|r| short_commit(r))
            .collect::<Vec<_>>()
            .join(",");
        rows.push([
            row.step
                .map_or_else(|| "none".to_owned(), |s| s.to_string()),
            row.application.clone(),
            row.progress.clone(),
            sync_health,
            row.destination.clone().unwrap_or_else(|| "-".to_owned()),
            if row.runs.is_empty() {
                "-".to_owned()
            } else {
                short_commit(&row.runs).to_owned()
            },
            target,
        ]);
    }
    text.push('\n');
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appset(status: Value) -> ApplicationSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "argocd", "annotations": {"argosy.io/rollout-failure-budget": "0"}},
            "spec": {"generators": [], "template": {}, "strategy": {"type": "RollingSync", "rollingSync": {"steps": [{}, {}]}}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn status_says_why_the_rollout_stopped_and_who_runs_what() {
        let set = appset(json!({
            "rollout": {"phase": "Halted", "step": 1, "since": "2026-12-07T10:00:00Z",
                        "message": "step 1 of 2 halted: 1 of 1 Application(s) failed, over the failure budget of 0 (web-acme: Degraded)"},
            "applicationStatus": [
                {"application": "web-globex", "status": "Waiting", "step": "2", "message": "m", "targetRevisions": ["bbbbbbbbbb"]},
                {"application": "web-acme", "status": "Progressing", "step": "1", "message": "m", "targetRevisions": ["bbbbbbbbbb"]},
            ],
        }));
        let acme: Application = serde_json::from_value(json!({
            "metadata": {"name": "web-acme", "namespace": "argocd"},
            "spec": {"project": "default", "destination": {"name": "acme", "namespace": "web"}},
            "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Degraded"},
                       "history": [{"id": 1, "revision": "aaaaaaaaaa", "deployedAt": "2026-12-07T09:00:00Z"}]},
        }))
        .unwrap();
        let text = status_text(&set, &[acme]);
        assert!(
            text.contains("Phase:          Halted (since 2026-12-07T10:00:00Z)"),
            "{text}"
        );
        assert!(
            text.contains("Why:            step 1 of 2 halted"),
            "{text}"
        );
        assert!(text.contains("Failure budget: 0"), "{text}");
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("STEP"))
            .collect();
        assert_eq!(rows.len(), 3, "{text}");
        let cells = |row: &str| {
            row.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cells(rows[1]),
            [
                "1",
                "web-acme",
                "Progressing",
                "OutOfSync/Degraded",
                "acme",
                "aaaaaaa",
                "bbbbbbb"
            ],
            "runs the old revision, rolled out to the new: {text}"
        );
        assert_eq!(
            cells(rows[2]),
            ["2", "web-globex", "Waiting", "-", "-", "-", "bbbbbbb"]
        );
    }

    #[test]
    fn an_all_at_once_appset_has_no_rollout() {
        let mut set = appset(json!({}));
        set.spec.strategy = None;
        assert!(!is_rolling_sync(&set));
        assert!(status_text(&set, &[]).contains("AllAtOnce (no rollout)"));
    }
}

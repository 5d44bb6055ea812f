//! `argosy-dev-cluster`: a local control plane for demos and manual testing.
//!
//! ```text
//! argosy-dev-cluster --dir DIR [--workloads N]
//! ```
//!
//! Starts [`ControlPlane::start`]`(N)` (etcd, the management cluster `mgmt` and
//! `workload-1..=N`, default 3), writes into `DIR`:
//!
//! * `mgmt.kubeconfig`, `workload-1.kubeconfig`, ...: self-contained admin kubeconfigs;
//! * `clusters.json`: `{"pid": .., "clusters": [{"name", "server", "kubeconfig",
//!   "argocdConfig"}]}`, where `argocdConfig` is the `config` JSON of an Argo CD cluster
//!   Secret (bearer token and CA) for that cluster;
//! * `clusters.env`: the same as shell variables (`MGMT_SERVER`, `MGMT_KUBECONFIG`,
//!   `WORKLOAD_1_SERVER`, `WORKLOAD_1_KUBECONFIG`, `WORKLOAD_1_ARGOCD_CONFIG`, ...),
//!   written last: once it exists, everything is up;
//!
//! prints one `argosy-dev-cluster ready ...` line on stdout and runs until SIGTERM or
//! SIGINT. Then it stops every process (the control plane kills etcd and the
//! apiservers) and removes the files above. The children are started with a
//! parent-death signal, so even a SIGKILL of this process leaves no orphans.
//! The control plane's own scratch dir (logs, etcd data) is a temp dir: set `TMPDIR`
//! to choose where it goes.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use argosy_tests::ControlPlane;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: argosy-dev-cluster --dir DIR [--workloads N]";
const DEFAULT_WORKLOADS: usize = 3;

struct Args {
    dir: PathBuf,
    workloads: usize,
}

fn parse_args() -> Result<Args> {
    let mut dir = None;
    let mut workloads = DEFAULT_WORKLOADS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{name} needs a value; {USAGE}"))
        };
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
            "--workloads" => {
                let v = value("--workloads")?;
                workloads = v
                    .parse()
                    .with_context(|| format!("--workloads: not a number: {v:?}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    let Some(dir) = dir else {
        bail!("--dir is required; {USAGE}");
    };
    Ok(Args { dir, workloads })
}

/// `workload-1` -> `WORKLOAD_1`.
fn env_prefix(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// A single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Writes `contents` to `path` through a temp file and a rename, so readers never
/// see half a file.
fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// The files this process writes into `dir`, the ready marker (`clusters.env`) last.
fn output_files(dir: &Path, plane: &ControlPlane) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = plane
        .clusters()
        .iter()
        .map(|c| dir.join(format!("{}.kubeconfig", c.name)))
        .collect();
    files.push(dir.join("clusters.json"));
    files.push(dir.join("clusters.env"));
    files
}

fn write_outputs(dir: &Path, plane: &ControlPlane) -> Result<()> {
    let mut clusters = Vec::new();
    let mut env = String::from("# Written by argosy-dev-cluster; removed when it stops.\n");
    let _ = writeln!(env, "DEV_CLUSTER_PID={}", std::process::id());
    for cluster in plane.clusters() {
        let kubeconfig = dir.join(format!("{}.kubeconfig", cluster.name));
        cluster.write_kubeconfig(&kubeconfig)?;
        let config = cluster.argocd_cluster_config().to_string();
        let prefix = env_prefix(&cluster.name);
        let _ = writeln!(env, "{prefix}_SERVER={}", shell_quote(&cluster.server));
        let _ = writeln!(
            env,
            "{prefix}_KUBECONFIG={}",
            shell_quote(&kubeconfig.display().to_string())
        );
        let _ = writeln!(env, "{prefix}_ARGOCD_CONFIG={}", shell_quote(&config));
        clusters.push(json!({
            "name": cluster.name,
            "server": cluster.server,
            "kubeconfig": kubeconfig,
            "argocdConfig": cluster.argocd_cluster_config(),
        }));
    }
    let doc = json!({ "pid": std::process::id(), "clusters": clusters });
    let text = serde_json::to_string_pretty(&doc).context("serializing clusters.json")?;
    write_atomic(&dir.join("clusters.json"), &format!("{text}\n"))?;
    let env_path = dir.join("clusters.env");
    write_atomic(&env_path, &env)?;
    fs::set_permissions(&env_path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", env_path.display()))
}

async fn run(args: Args) -> Result<()> {
    // Install the handlers before anything starts, so a signal during startup is not lost
    // (and cannot kill us before the control plane is dropped).
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    // A stale ready marker from an earlier run must not look like this one.
    for stale in ["clusters.env", "clusters.json"] {
        let _ = fs::remove_file(dir.join(stale));
    }

    let plane = tokio::select! {
        plane = ControlPlane::start(args.workloads) => plane?,
        _ = sigterm.recv() => bail!("stopped (SIGTERM) while starting"),
        _ = sigint.recv() => bail!("stopped (SIGINT) while starting"),
    };
    let files = output_files(&dir, &plane);
    let written = write_outputs(&dir, &plane);
    if written.is_ok() {
        let servers: Vec<String> = plane
            .clusters()
            .iter()
            .map(|c| format!("{}={}", c.name, c.server))
            .collect();
        println!(
            "argosy-dev-cluster ready pid={} dir={} {}",
            std::process::id(),
            dir.display(),
            servers.join(" ")
        );
        let _ = std::io::stdout().flush();
        let signal = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        eprintln!("[argosy-dev-cluster] {signal}: stopping the control plane");
    }
    // Remove the ready marker first, then stop every process.
    for file in files.iter().rev() {
        let _ = fs::remove_file(file);
    }
    drop(plane);
    written
}

fn main() -> std::process::ExitCode {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Runtime::new()
            .context("starting the async runtime")?
            .block_on(run(args))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("argosy-dev-cluster: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_and_quoting() {
        assert_eq!(env_prefix("workload-12"), "WORKLOAD_12");
        assert_eq!(env_prefix("mgmt"), "MGMT");
        assert_eq!(shell_quote(r#"{"a":"b"}"#), r#"'{"a":"b"}'"#);
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

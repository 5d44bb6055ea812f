//! The rendering tools: finding `kustomize`/`kubectl` and `helm` on `PATH`, and running
//! one with a scrubbed environment, a timeout and an output cap.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::error::RenderError;
use super::limits::Limits;

/// The binaries found on `PATH` when the renderer was built.
#[derive(Debug, Clone, Default)]
pub(super) struct Tools {
    pub(super) kustomize: Option<KustomizeCommand>,
    pub(super) helm: Option<PathBuf>,
}

/// `kustomize build DIR` or `kubectl kustomize DIR`.
#[derive(Debug, Clone)]
pub(super) struct KustomizeCommand {
    pub(super) program: PathBuf,
    pub(super) args: Vec<String>,
}

impl Tools {
    pub(super) fn detect() -> Self {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let find = |name: &str| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| is_executable(p))
        };
        let kustomize = find("kustomize")
            .map(|program| KustomizeCommand {
                program,
                args: vec!["build".to_owned()],
            })
            .or_else(|| {
                find("kubectl").map(|program| KustomizeCommand {
                    program,
                    args: vec!["kustomize".to_owned()],
                })
            });
        let tools = Self {
            kustomize,
            helm: find("helm"),
        };
        tracing::info!(kustomize = ?tools.kustomize, helm = ?tools.helm, "rendering tools");
        tools
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How much of a failing tool's stderr is kept for the error message.
const STDERR_KEEP: usize = 4096;

/// Runs a tool in `cwd` with a scrubbed environment (it needs none of the controller's
/// secrets), killing it after the timeout or once its stdout passes the total limit.
pub(super) fn run_tool(
    tool: &'static str,
    program: &Path,
    args: &[String],
    cwd: &Path,
    limits: &Limits,
) -> Result<Vec<u8>, RenderError> {
    let failed = |message: String| RenderError::Tool { tool, message };
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("starting {}: {e}", program.display())))?;
    let (tx, rx) = mpsc::channel();
    let cap = limits.max_total_bytes;
    if let Some(stdout) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let result = stdout.take(cap + 1).read_to_end(&mut out);
            let _ = tx.send(Stream::Stdout(result.map(|_| out)));
        });
    }
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut err = Vec::new();
            let _ = (&mut stderr).take(STDERR_KEEP as u64).read_to_end(&mut err);
            // Keep draining so a chatty tool never blocks on a full pipe.
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            let _ = tx.send(Stream::Stderr(err));
        });
    }
    let deadline = Instant::now() + limits.tool_timeout;
    let timeout = || RenderError::ToolTimeout {
        tool,
        timeout: limits.tool_timeout,
    };
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(remaining) {
            Ok(Stream::Stdout(out)) => {
                let out = out.map_err(|e| failed(format!("reading output: {e}")))?;
                if out.len() as u64 > cap {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RenderError::TooLarge {
                        what: format!("{tool} output"),
                        limit: cap,
                    });
                }
                stdout = Some(out);
            }
            Ok(Stream::Stderr(err)) => stderr = Some(err),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(timeout());
            }
        }
    }
    // Both pipes are closed; the process is exiting, but still bound the wait.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(timeout());
            }
            Err(e) => return Err(failed(format!("waiting: {e}"))),
        }
    };
    if !status.success() {
        let stderr = String::from_utf8_lossy(stderr.as_deref().unwrap_or_default())
            // Paths on this machine mean nothing to the user; the repository root does.
            .replace(&format!("{}/repo", cwd.display()), "<repo>")
            .trim()
            .to_owned();
        return Err(failed(format!("{status}: {stderr}")));
    }
    Ok(stdout.unwrap_or_default())
}

enum Stream {
    Stdout(std::io::Result<Vec<u8>>),
    Stderr(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::*;

    #[test]
    fn tools_are_killed_after_the_timeout_and_their_output_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            tool_timeout: Duration::from_millis(300),
            max_total_bytes: 1000,
            ..Limits::default()
        };
        let slow = script(dir.path(), "slow", "sleep 30");
        let started = Instant::now();
        let err = run_tool("kustomize", &slow, &[], dir.path(), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kustomize did not finish within 300ms and was killed"
        );
        assert_eq!(err.category(), "tool_timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
        let loud = script(dir.path(), "loud", "yes");
        let err = run_tool("helm", &loud, &[], dir.path(), &limits).unwrap_err();
        assert_eq!(err.to_string(), "helm output exceeds the 1000-byte limit");
        let fails = script(
            dir.path(),
            "fails",
            "echo \"bad file $PWD/repo/x.yaml\" >&2; exit 3",
        );
        let err = run_tool("helm", &fails, &[], dir.path(), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "helm failed: exit status: 3: bad file <repo>/x.yaml"
        );
        // The tool does not see the controller's environment.
        let env = script(dir.path(), "env", "env");
        let out = run_tool("helm", &env, &[], dir.path(), &Limits::default()).unwrap();
        let vars: Vec<_> = String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        assert!(
            vars.iter()
                .all(|v| ["PATH", "HOME", "PWD", "SHLVL", "_"].contains(&v.as_str())),
            "{vars:?}"
        );
    }
}

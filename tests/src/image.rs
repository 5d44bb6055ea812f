//! Argosy's container image in tests (issue #17): built by `scripts/build-image.sh`
//! (buildah, from scratch), pushed to a [`Registry`], pulled and run by `podman` (Debian's
//! packages, `scripts/install-image-tools.sh`).
//!
//! * [`build_and_push`] runs the script (a release build of `argosy`, reused when nothing
//!   changed) and pushes the image to a registry under a tag naming this test process.
//! * [`pull`] logs in (password on stdin, into a throwaway auth file) and pulls.
//! * [`Container`] is a detached `podman run`; dropping it removes the container (and the
//!   image tag the test pulled). Every container carries the labels [`TEST_LABEL`] and
//!   [`PID_LABEL`] (the test process): [`remove_stale`] removes those of test processes
//!   that are gone (a killed test runs no `Drop`), never another live test's.
//!
//! Every `podman`/`buildah` runs with `CONTAINERS_CONF` pointing at the configuration
//! `scripts/install-image-tools.sh` writes (runc, cgroupfs, no default ulimits), unless the
//! caller set one: nothing in /etc is changed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail, ensure};

use crate::control_plane::cache_dir;
use crate::git_servers::run_bounded;
use crate::registry::Registry;

/// Label on every container (and image reference) the tests create.
pub const TEST_LABEL: &str = "io.argosy.test";
/// Label holding the pid of the test process that created a container.
pub const PID_LABEL: &str = "io.argosy.test.pid";
/// Repository path (below the registry host) of the images the tests push.
pub const TEST_REPOSITORY: &str = "argosy-image-test/argosy";
/// The release build inside `scripts/build-image.sh` may take this long on a cold cache.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The workspace root (where `scripts/` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// `CONTAINERS_CONF` of the caller, or the one `scripts/install-image-tools.sh` writes.
pub fn containers_conf() -> PathBuf {
    std::env::var_os("CONTAINERS_CONF")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || cache_dir().join("containers").join("containers.conf"),
            PathBuf::from,
        )
}

/// `podman ARGS` with [`containers_conf`].
pub fn podman(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(args)
        .env("CONTAINERS_CONF", containers_conf())
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`; its stdout, or an error with its stderr.
fn output(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `scripts/build-image.sh --push` reported.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// The local name (`argosy:0.1.0`).
    pub local: String,
    /// The local image id.
    pub id: String,
    /// Uncompressed size in bytes.
    pub size_bytes: u64,
    /// Where it was pushed (`127.0.0.1:PORT/argosy-image-test/argosy:0.1.0-test<pid>`).
    pub reference: String,
    /// The manifest digest the registry has (`sha256:...`).
    pub digest: String,
    /// The script's stderr (build time, size, what it reused).
    pub log: String,
}

/// Runs `scripts/build-image.sh --push` to `registry` (its CA through `--cert-dir`, its
/// credentials through `ARGOSY_PUSH_CREDS`, never a command line), under the tag
/// `<version>-test<pid>` of [`TEST_REPOSITORY`]. Blocking: the first run builds Argosy in
/// release mode.
pub fn build_and_push(registry: &Registry) -> Result<PushedImage> {
    let version = env!("CARGO_PKG_VERSION");
    let reference = format!(
        "{}/{TEST_REPOSITORY}:{version}-test{}",
        registry.host_port(),
        std::process::id()
    );
    let root = workspace_root();
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/build-image.sh"))
        .arg("--push")
        .arg(&reference)
        .arg("--cert-dir")
        .arg(registry.cert_dir())
        .env("CONTAINERS_CONF", containers_conf())
        .current_dir(&root);
    match registry.creds() {
        Some(creds) => cmd.env("ARGOSY_PUSH_CREDS", creds),
        None => cmd.env_remove("ARGOSY_PUSH_CREDS"),
    };
    let out = run_bounded(cmd, BUILD_TIMEOUT)?;
    ensure!(
        out.success(),
        "scripts/build-image.sh failed ({:?}):\n{}",
        out.status,
        out.stderr
    );
    let fields: BTreeMap<&str, &str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .collect();
    let field = |key: &str| {
        fields
            .get(key)
            .map(|v| (*v).to_owned())
            .ok_or_else(|| anyhow!("build-image.sh printed no {key}: {}", out.stdout))
    };
    let pushed = field("pushed")?;
    let (pushed_ref, digest) = pushed
        .split_once('@')
        .ok_or_else(|| anyhow!("unexpected pushed line {pushed}"))?;
    ensure!(
        pushed_ref == reference,
        "pushed {pushed_ref}, not {reference}"
    );
    Ok(PushedImage {
        local: field("image")?,
        id: field("image-id")?,
        size_bytes: field("image-size-bytes")?
            .parse()
            .context("image-size-bytes")?,
        reference,
        digest: digest.to_owned(),
        log: out.stderr,
    })
}

/// `podman pull REFERENCE` from `registry` (logged in with its credentials through
/// `--password-stdin` into an auth file in `scratch`, trusting its CA); the pulled image's
/// repository digests (`REPOSITORY@sha256:...`, one per line).
pub fn pull(registry: &Registry, reference: &str, scratch: &Path) -> Result<String> {
    let authfile = scratch.join("auth.json");
    std::fs::write(&authfile, "{}").context("writing an empty auth file")?;
    let cert_dir = registry.cert_dir();
    let cert_dir = cert_dir.to_str().context("non-UTF-8 cert dir")?;
    let auth = authfile.to_str().context("non-UTF-8 auth file")?;
    if let (Some(user), Some(password)) = (registry.user(), registry.password()) {
        let mut child = podman(&[
            "login",
            "--authfile",
            auth,
            "--cert-dir",
            cert_dir,
            "--username",
            user,
            "--password-stdin",
            &registry.host_port(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting podman login")?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("podman login has no stdin"))?
            .write_all(password.as_bytes())?;
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "podman login failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    output(
        "podman pull",
        &mut podman(&[
            "pull",
            "--quiet",
            "--authfile",
            auth,
            "--cert-dir",
            cert_dir,
            reference,
        ]),
    )?;
    output(
        "podman image inspect",
        &mut podman(&[
            "image",
            "inspect",
            "--format",
            "{{range .RepoDigests}}{{println .}}{{end}}",
            reference,
        ]),
    )
}

/// Removes the test containers and the test image tags of test processes that no longer
/// run (another test process's are left alone).
pub fn remove_stale() -> Result<()> {
    let alive = |pid: &str| {
        pid.parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    };
    let listed = output(
        "podman ps",
        &mut podman(&[
            "ps",
            "--all",
            "--filter",
            &format!("label={TEST_LABEL}"),
            "--format",
            &format!("{{{{.ID}}}} {{{{index .Labels \"{PID_LABEL}\"}}}}"),
        ]),
    )?;
    for line in listed.lines() {
        let mut fields = line.split_whitespace();
        if let (Some(id), pid) = (fields.next(), fields.next().unwrap_or_default())
            && !alive(pid)
        {
            eprintln!("[image] removing the stale test container {id} (test pid {pid})");
            let _ = podman(&["rm", "--force", "--time", "0", id]).output();
        }
    }
    let images = output(
        "podman images",
        &mut podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
    )?;
    for name in images.lines() {
        let Some((repo, tag)) = name.rsplit_once(':') else {
            continue;
        };
        if !repo.ends_with(&format!("/{TEST_REPOSITORY}")) {
            continue;
        }
        let pid = tag.rsplit_once("-test").map_or("", |(_, pid)| pid);
        if !alive(pid) {
            eprintln!("[image] removing the stale test image tag {name}");
            let _ = podman(&["rmi", name]).output();
        }
    }
    Ok(())
}

/// A detached container; removed (with the image tag `untag`, if set) on drop.
pub struct Container {
    name: String,
    untag: Option<String>,
}

impl Container {
    /// `podman run --detach --name NAME --label ... ARGS` (ARGS: options, the image and
    /// its arguments). Any container of that name is replaced.
    pub fn run(name: &str, args: &[String], untag: Option<String>) -> Result<Container> {
        let _ = podman(&["rm", "--force", "--time", "0", name]).output();
        let mut cmd = podman(&["run", "--detach", "--name", name]);
        cmd.arg("--label")
            .arg(format!("{TEST_LABEL}=image"))
            .arg("--label")
            .arg(format!("{PID_LABEL}={}", std::process::id()))
            .args(args);
        // From here on the container (and the tag) are this guard's to remove.
        let container = Container {
            name: name.to_owned(),
            untag,
        };
        output("podman run", &mut cmd)?;
        Ok(container)
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `podman inspect --format FORMAT` of the container.
    pub fn inspect(&self, format: &str) -> Result<String> {
        Ok(output(
            "podman inspect",
            &mut podman(&[
                "inspect",
                "--type",
                "container",
                "--format",
                format,
                &self.name,
            ]),
        )?
        .trim()
        .to_owned())
    }

    /// Whether the container still runs.
    pub fn running(&self) -> bool {
        self.inspect("{{.State.Running}}")
            .is_ok_and(|state| state == "true")
    }

    /// `podman exec CONTAINER ARGS` (as the image's user): its full output.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        podman(&["exec", &self.name])
            .args(args)
            .output()
            .context("starting podman exec")
    }

    /// The container's log (its stdout and stderr) so far.
    pub fn logs(&self) -> String {
        podman(&["logs", &self.name])
            .output()
            .map(|out| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .unwrap_or_default()
    }

    /// The last `lines` lines of [`Container::logs`].
    pub fn logs_tail(&self, lines: usize) -> String {
        let logs = self.logs();
        let all: Vec<&str> = logs.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The `Uid:` and `Gid:` lines of the container's main process, read from the host's
    /// /proc (rootful podman: the container's ids are the host's).
    pub fn process_ids(&self) -> Result<(String, String)> {
        let pid = self.inspect("{{.State.Pid}}")?;
        if pid == "0" {
            bail!("the container does not run:\n{}", self.logs_tail(30));
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let line = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
        };
        Ok((line("Uid:")?, line("Gid:")?))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::env::var_os("ARGOSY_KEEP_CONTAINER").is_some_and(|v| !v.is_empty() && v != "0") {
            eprintln!("[image] kept container {}", self.name);
            return;
        }
        let _ = podman(&["rm", "--force", "--time", "0", &self.name]).output();
        if let Some(tag) = &self.untag {
            let _ = podman(&["rmi", tag]).output();
        }
    }
}

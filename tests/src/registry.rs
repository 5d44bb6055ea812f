//! A real OCI registry for integration tests (issue #17): Debian's `docker-registry` (the
//! CNCF Distribution registry, v2.8), installed by `scripts/install-registry.sh`, started
//! by the test on a free loopback port.
//!
//! * HTTPS only, with a server certificate for `127.0.0.1`/`localhost` from a throwaway CA
//!   ([`Certificates`]): clients trust [`Registry::ca_path`] (`helm --ca-file`), or
//!   [`Registry::cert_dir`] (`buildah`/`podman --cert-dir`, a directory holding only
//!   `ca.crt`, as containers/image reads it).
//! * Optional HTTP basic auth ([`RegistryOptions::with_auth`]): a bcrypt htpasswd file
//!   written by `htpasswd -B` (the only hash the registry accepts), the password passed on
//!   stdin, never on a command line.
//! * Filesystem storage in the registry's temp dir, removed with it (kept with
//!   `ARGOSY_KEEP_TEMP=1`, like the Git servers' directories).
//!
//! [`Registry::start`] returns once `GET /v2/` answers over TLS verified against the
//! registry's own CA (200 without auth, 401 with it), so a port some other process
//! answers on is never taken for the registry. The process is started through
//! `setpriv --pdeathsig KILL` and killed on [`Drop`].

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};

use crate::git_servers::{
    Certificates, Proc, START_ATTEMPTS, ServerDir, server_command, tcp_accepts, token, wait_ready,
};
use crate::ports::free_port;

/// Debian's package puts the registry here.
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// One `/v2/` probe may take this long (TLS handshake on a busy machine included).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start a [`Registry`].
#[derive(Clone, Default)]
pub struct RegistryOptions {
    auth: Option<(String, String)>,
}

impl fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("auth", &self.auth.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl RegistryOptions {
    /// Anonymous pull and push.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Basic auth with one user; every request without these credentials gets 401.
    pub fn with_auth(user: impl Into<String>, password: impl Into<String>) -> Self {
        RegistryOptions {
            auth: Some((user.into(), password.into())),
        }
    }

    /// Basic auth with user `argosy` and a fresh random password
    /// ([`Registry::password`]).
    pub fn with_random_auth() -> Self {
        Self::with_auth("argosy", format!("pw-{}", token()))
    }
}

/// A running `docker-registry serve`; see the module docs.
pub struct Registry {
    port: u16,
    certs: Certificates,
    auth: Option<(String, String)>,
    log: PathBuf,
    /// Before `dir`: killed before its files go.
    procs: Vec<Proc>,
    dir: ServerDir,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("user", &self.user())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts a registry with storage, certificates and configuration in a fresh temp dir.
    pub fn start(opts: RegistryOptions) -> Result<Registry> {
        if !Path::new(REGISTRY_BIN).is_file() {
            bail!("{REGISTRY_BIN} not found: run scripts/install-registry.sh");
        }
        let dir = ServerDir::new("argosy-registry-")?;
        let d = dir.path();
        let certs_dir = d.join("pki");
        let cert_dir = d.join("certs.d");
        let storage = d.join("storage");
        for sub in [&certs_dir, &cert_dir, &storage] {
            fs::create_dir_all(sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        let certs = Certificates::generate(&certs_dir)?;
        fs::copy(certs.ca_path(), cert_dir.join("ca.crt")).context("copying ca.crt")?;
        let auth_config = match &opts.auth {
            Some((user, password)) => {
                let htpasswd = d.join("htpasswd");
                write_htpasswd(&htpasswd, user, password)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: argosy-tests-registry\n    path: {}\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let log = d.join("registry.log");
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let config = d.join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
  tls:
    certificate: {cert}
    key: {key}
{auth_config}",
                    storage = storage.display(),
                    secret = token(),
                    cert = certs.server_cert_path().display(),
                    key = certs.server_key_path().display(),
                ),
            )
            .context("writing the registry's config.yml")?;
            let _ = fs::remove_file(&log);
            let mut cmd = server_command(REGISTRY_BIN);
            // Nothing of the caller's environment: REGISTRY_* variables would override the
            // configuration file, OTEL_* ones would send traces somewhere.
            cmd.env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("HOME", d)
                .arg("serve")
                .arg(&config)
                .current_dir(d);
            let mut proc = Proc::spawn("docker-registry", cmd, &log)?;
            let ca = certs.ca_pem().to_owned();
            let ready = wait_ready(&mut proc, &log, || {
                tcp_accepts(port) && v2_status(port, &ca).is_ok_and(|s| s == 200 || s == 401)
            });
            match ready {
                Ok(()) => {
                    return Ok(Registry {
                        port,
                        certs,
                        auth: opts.auth,
                        log,
                        procs: vec![proc],
                        dir,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("docker-registry did not start")))
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`: the registry host of image references
    /// (`127.0.0.1:PORT/argosy:0.1.0`) and of `helm registry login`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.host_port())
    }

    /// `oci://127.0.0.1:PORT/PATH` (Helm's form of a chart repository in a registry).
    pub fn oci_url(&self, path: &str) -> String {
        format!(
            "oci://{}/{}",
            self.host_port(),
            path.trim_start_matches('/')
        )
    }

    /// The throwaway PKI: the CA and the server certificate (for 127.0.0.1 and localhost).
    pub fn certificates(&self) -> &Certificates {
        &self.certs
    }

    /// The CA that signed the registry's certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        self.certs.ca_pem()
    }

    /// The file of [`Registry::ca_pem`] (`helm --ca-file`).
    pub fn ca_path(&self) -> PathBuf {
        self.certs.ca_path()
    }

    /// A directory holding only `ca.crt` (`buildah`/`podman`/`skopeo --cert-dir`:
    /// containers/image takes every `*.crt` there as a CA and every `*.key` as half of a
    /// client certificate, so the PKI directory itself would not do).
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// The basic-auth user, if the registry has auth.
    pub fn user(&self) -> Option<&str> {
        self.auth.as_ref().map(|(user, _)| user.as_str())
    }

    /// The basic-auth password, if the registry has auth.
    pub fn password(&self) -> Option<&str> {
        self.auth.as_ref().map(|(_, password)| password.as_str())
    }

    /// `USER:PASSWORD` (`buildah push --creds`), if the registry has auth.
    pub fn creds(&self) -> Option<String> {
        self.auth.as_ref().map(|(u, p)| format!("{u}:{p}"))
    }

    /// The registry's temp dir: configuration, storage, certificates, log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's log so far (requests, with their status).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The status of an unauthenticated `GET /v2/` now (200 anonymous, 401 with auth).
    pub fn v2_status(&self) -> Result<u16> {
        v2_status(self.port, self.certs.ca_pem())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Before the temp dir (a later field) is removed.
        self.procs.clear();
    }
}

/// `GET https://127.0.0.1:PORT/v2/` trusting only `ca_pem`: the response status.
///
/// On a thread of its own: reqwest's blocking client runs (and drops) a runtime, which
/// panics on a thread of the async tests' Tokio runtime.
fn v2_status(port: u16, ca_pem: &str) -> Result<u16> {
    let ca_pem = ca_pem.to_owned();
    std::thread::spawn(move || v2_status_blocking(port, &ca_pem))
        .join()
        .map_err(|_| anyhow!("the /v2/ probe thread panicked"))?
}

fn v2_status_blocking(port: u16, ca_pem: &str) -> Result<u16> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).context("parsing the CA")?;
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(PROBE_TIMEOUT)
        .no_proxy()
        .build()
        .context("building the /v2/ probe client")?;
    let response = client
        .get(format!("https://127.0.0.1:{port}/v2/"))
        .send()
        .context("GET /v2/")?;
    Ok(response.status().as_u16())
}

/// A bcrypt htpasswd file with one user (`htpasswd -B`, the password on stdin).
fn write_htpasswd(path: &Path, user: &str, password: &str) -> Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("htpasswd")
        .args(["-i", "-B", "-n", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting htpasswd (run scripts/install-registry.sh)")?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("htpasswd has no stdin"))?
        .write_all(password.as_bytes())
        .context("writing the password to htpasswd")?;
    let out = child.wait_with_output().context("waiting for htpasswd")?;
    if !out.status.success() {
        bail!(
            "htpasswd -B failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.trim();
    if !line.starts_with(&format!("{user}:$2")) {
        bail!("htpasswd -B printed no bcrypt entry for {user}");
    }
    fs::write(path, format!("{line}\n")).with_context(|| format!("writing {}", path.display()))
}

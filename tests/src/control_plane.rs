//! A real Kubernetes control plane for tests: one `etcd` and one
//! `kube-apiserver` per cluster, all on loopback.
//!
//! * Binaries: `kube-apiserver` from `$ARGOSY_CACHE/bin` (default
//!   `~/.cache/argosy/bin`, filled by `scripts/install-control-plane.sh`) or
//!   `PATH`; `etcd` and `openssl` likewise (Debian puts them in `/usr/bin`).
//! * Clusters: `mgmt` plus `workload-1..N`. All apiservers share the one etcd,
//!   each under its own `--etcd-prefix` (`/argosy/<name>`), so they see only
//!   their own objects. Each has its own port, log file and audit log.
//! * TLS: the harness makes one throwaway CA per [`ControlPlane`] (with
//!   `openssl`) and a serving certificate for `IP:127.0.0.1`/`localhost`
//!   signed by it, so clients verify the server properly (no insecure mode).
//!   The certificate files live outside the per-cluster cert dirs and survive
//!   [`ControlPlane::stop_cluster`] / [`ControlPlane::start_cluster`].
//! * Auth: static token [`ADMIN_TOKEN`] for user [`ADMIN_USER`] in group
//!   `system:masters`; authorization mode RBAC. The TokenRequest API works
//!   (the service-account signing key is configured), so tests can mint
//!   tokens for less privileged ServiceAccounts.
//! * Audit: every apiserver logs all writes (create, update, patch, delete,
//!   deletecollection) at level Metadata, see [`ControlPlane::audit_writes`],
//!   and every request of a ServiceAccount, reads included, so a test running
//!   code as a ServiceAccount can find its denied (403) requests, see
//!   [`ControlPlane::audit_events`].
//! * Admission: the default plugins plus `OwnerReferencesPermissionEnforcement`
//!   (as on OpenShift), so setting `blockOwnerDeletion` needs `update` on the
//!   owner's `finalizers` subresource, as a least-privilege RBAC must allow.
//!
//! Only the API server runs. No controller-manager: namespaces stay
//! `Terminating` forever once deleted, ownerReference garbage collection does
//! not happen, ServiceAccount tokens are not auto-created, Deployments never
//! get a status (patch `/status` yourself). No scheduler, no kubelet: Pods are
//! never scheduled. The apiserver is v1.20: API groups removed or added after
//! 1.20 (e.g. `flowcontrol/v1`) are absent, `batch/v1` CronJob is not served.
//!
//! Processes: every child is started through `setpriv --pdeathsig KILL` from
//! one long-lived spawner thread, so it dies with the test process even when
//! that is killed with SIGKILL; [`Drop`] kills them normally (also on panic,
//! when it prints the tail of each apiserver log to help diagnose).
//! `ARGOSY_KEEP_TEMP=1` keeps the temp dir (logs, audit logs, etcd data).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::ports::free_port;

/// Name of the management cluster.
pub const MANAGEMENT: &str = "mgmt";
/// Set (to anything but `0`) to serve the API servers' `/debug/pprof` endpoints.
pub const PROFILING_ENV: &str = "ARGOSY_APISERVER_PROFILING";

/// Static bearer token of the admin user (group `system:masters`) in every cluster.
pub const ADMIN_TOKEN: &str = "argosy-admin-token";
/// User name the apiservers assign to [`ADMIN_TOKEN`] (as seen in audit events).
pub const ADMIN_USER: &str = "admin";
/// A second static token (group `system:masters`, user [`CANARY_USER`]) that only cluster
/// Secrets carry: a test can put it where Argosy keeps credentials and then prove it
/// surfaces nowhere else (objects, Events, logs, metrics, dashboard, CLI).
pub const CANARY_TOKEN: &str = "canary-7c1d9e4b2a6f4e0d8b3c5a1f9e2d4c6b";
/// User name the apiservers assign to [`CANARY_TOKEN`].
pub const CANARY_USER: &str = "canary";
/// The audit policy every apiserver runs with: all writes, and every request of a
/// ServiceAccount, at level Metadata.
pub const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"#;

/// User-Agent of the clients made by [`TestCluster::client`].
pub const HARNESS_USER_AGENT: &str = "argosy-tests";
/// Verbs [`ControlPlane::audit_writes`] reports.
const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
/// Time allowed for etcd to become healthy.
const ETCD_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed for one apiserver to become ready. Generous: with other
/// builds running on a 2-core machine a cold start can take 30 s or more.
const APISERVER_TIMEOUT: Duration = Duration::from_secs(180);
/// Attempts at starting a process when its freshly picked port was taken in
/// the meantime by someone else.
const PORT_ATTEMPTS: u32 = 3;
const INSTALL_HINT: &str = "run `scripts/install-control-plane.sh` (or `scripts/test.sh`, which runs it first) to build and cache it";

/// `$ARGOSY_CACHE`, or `~/.cache/argosy`: where `scripts/install-control-plane.sh`
/// puts `bin/kube-apiserver`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ARGOSY_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("argosy")
}

/// One cluster of a [`ControlPlane`]: where it is and how to talk to it.
#[derive(Clone, Debug)]
pub struct TestCluster {
    /// `mgmt`, `workload-1`, ...
    pub name: String,
    /// `https://127.0.0.1:PORT`
    pub server: String,
    /// Bearer token of the admin user ([`ADMIN_TOKEN`]).
    pub token: String,
    /// PEM of the CA that signed the apiserver's serving certificate.
    pub ca_pem: Vec<u8>,
    /// The apiserver's secure port on 127.0.0.1 (kept across restarts).
    pub port: u16,
    /// The apiserver's `--etcd-prefix`.
    pub etcd_prefix: String,
    /// The apiserver's stdout/stderr (appended to across restarts).
    pub log_path: PathBuf,
    /// The apiserver's JSON-lines audit log.
    pub audit_log_path: PathBuf,
}

impl TestCluster {
    /// An admin client (token auth, server certificate verified against
    /// [`Self::ca_pem`]) whose requests carry `User-Agent: argosy-tests`
    /// ([`HARNESS_USER_AGENT`]), so audit counts can tell the test's own writes
    /// apart from the code under test's.
    pub async fn client(&self) -> Result<Client> {
        self.client_with_user_agent(HARNESS_USER_AGENT).await
    }

    /// Like [`Self::client`] with another User-Agent (kube 5 sends none by
    /// default, which shows as `""` in audit events).
    pub async fn client_with_user_agent(&self, user_agent: &str) -> Result<Client> {
        let mut config = self.config().await?;
        let value = http::HeaderValue::from_str(user_agent)
            .with_context(|| format!("invalid User-Agent {user_agent:?}"))?;
        config.headers.push((http::header::USER_AGENT, value));
        Client::try_from(config).with_context(|| format!("kube client for cluster {}", self.name))
    }

    /// The admin `kube::Config` (from [`Self::kubeconfig_yaml`]), for callers
    /// that want to adjust it (timeouts, headers) before building a client.
    pub async fn config(&self) -> Result<Config> {
        let kubeconfig = Kubeconfig::from_yaml(&self.kubeconfig_yaml()).with_context(|| {
            format!("parsing the generated kubeconfig of cluster {}", self.name)
        })?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("kube config for cluster {}", self.name))
    }

    /// A self-contained kubeconfig (CA and token inline) whose current context
    /// is this cluster as admin, namespace `default`. Works with `kubectl` and
    /// with `kube::Config::from_custom_kubeconfig`.
    pub fn kubeconfig_yaml(&self) -> String {
        let user = format!("{}-admin", self.name);
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": self.name,
                "cluster": {
                    "server": self.server,
                    "certificate-authority-data": self.ca_data(),
                },
            }],
            "users": [{ "name": user, "user": { "token": self.token } }],
            "contexts": [{
                "name": self.name,
                "context": { "cluster": self.name, "user": user, "namespace": "default" },
            }],
            "current-context": self.name,
        });
        // Serialising a `serde_json::Value` of strings and maps cannot fail.
        serde_yaml_ng::to_string(&doc).unwrap_or_default()
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        fs::write(path, self.kubeconfig_yaml())
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 600 {}", path.display()))
    }

    /// The `config` JSON of an Argo CD cluster Secret for this cluster
    /// (`{"bearerToken": .., "tlsClientConfig": {"insecure": false, "caData": ..}}`).
    pub fn argocd_cluster_config(&self) -> serde_json::Value {
        serde_json::json!({
            "bearerToken": self.token,
            "tlsClientConfig": { "insecure": false, "caData": self.ca_data() },
        })
    }

    /// Base64 of [`Self::ca_pem`], as kubeconfigs and Argo CD secrets carry it.
    pub fn ca_data(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }
}

/// One write request as recorded in a cluster's audit log (stage
/// `ResponseComplete`, or `Panic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub audit_id: String,
    /// `ResponseComplete` (or `Panic`).
    pub stage: String,
    /// create, update, patch, delete or deletecollection. Server-side apply is `patch`.
    pub verb: String,
    /// The authenticated user, e.g. [`ADMIN_USER`] or
    /// `system:serviceaccount:NS:NAME`. The apiserver's own writes are by
    /// `system:apiserver`.
    pub username: String,
    pub groups: Vec<String>,
    /// The impersonated user, when the request used impersonation.
    pub impersonated_user: Option<String>,
    /// The request's User-Agent header (empty when absent).
    pub user_agent: String,
    pub request_uri: String,
    /// e.g. `configmaps`, `applications`.
    pub resource: Option<String>,
    /// e.g. `status`.
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Empty string / `None` for the core group.
    pub api_group: Option<String>,
    pub api_version: Option<String>,
    /// HTTP status code of the response.
    pub code: Option<i32>,
    /// When the apiserver received the request.
    pub received: Timestamp,
    /// When this stage was reached (response complete).
    pub completed: Timestamp,
}

impl AuditEvent {
    /// The write was accepted (2xx).
    pub fn succeeded(&self) -> bool {
        self.code.is_some_and(|c| (200..300).contains(&c))
    }

    /// The request was received within `[from, to]`.
    pub fn received_between(&self, from: Timestamp, to: Timestamp) -> bool {
        from <= self.received && self.received <= to
    }

    /// One line for a failure message: verb, resource, namespace/name, subresource, code
    /// and times.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}/{} {} (code {:?}) received {} completed {}",
            self.verb,
            self.resource.as_deref().unwrap_or("?"),
            self.namespace.as_deref().unwrap_or(""),
            self.name.as_deref().unwrap_or(""),
            self.subresource.as_deref().unwrap_or(""),
            self.code,
            self.received,
            self.completed
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuditEvent {
    #[serde(rename = "auditID")]
    audit_id: String,
    stage: String,
    verb: String,
    #[serde(rename = "requestURI", default)]
    request_uri: String,
    #[serde(default)]
    user: RawUser,
    #[serde(default)]
    impersonated_user: Option<RawUser>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    object_ref: Option<RawObjectRef>,
    #[serde(default)]
    response_status: Option<RawStatus>,
    request_received_timestamp: Timestamp,
    stage_timestamp: Timestamp,
}

#[derive(Deserialize, Default)]
struct RawUser {
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawObjectRef {
    resource: Option<String>,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    api_group: Option<String>,
    api_version: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    code: Option<i32>,
}

impl From<RawAuditEvent> for AuditEvent {
    fn from(raw: RawAuditEvent) -> Self {
        let object = raw.object_ref.unwrap_or_default();
        AuditEvent {
            audit_id: raw.audit_id,
            stage: raw.stage,
            verb: raw.verb,
            username: raw.user.username,
            groups: raw.user.groups,
            impersonated_user: raw.impersonated_user.map(|u| u.username),
            user_agent: raw.user_agent.unwrap_or_default(),
            request_uri: raw.request_uri,
            resource: object.resource,
            subresource: object.subresource,
            namespace: object.namespace,
            name: object.name,
            api_group: object.api_group,
            api_version: object.api_version,
            code: raw.response_status.and_then(|s| s.code),
            received: raw.request_received_timestamp,
            completed: raw.stage_timestamp,
        }
    }
}

/// Which requests of an audit log to keep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Writes,
    All,
}

/// Parses a JSON-lines audit log, keeping the final stage of the requests `keep`
/// selects. A last line without its newline (being written right now) is ignored.
fn parse_audit_log(text: &str, keep: Keep) -> Result<Vec<AuditEvent>> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    let mut events = Vec::new();
    for (i, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawAuditEvent = serde_json::from_str(line)
            .with_context(|| format!("audit log line {}: {line}", i + 1))?;
        if (raw.stage == "ResponseComplete" || raw.stage == "Panic")
            && (keep == Keep::All || WRITE_VERBS.contains(&raw.verb.as_str()))
        {
            events.push(raw.into());
        }
    }
    Ok(events)
}

/// A child process that is killed (SIGKILL) and reaped when dropped.
struct Proc {
    what: String,
    child: Child,
    log_path: PathBuf,
}

impl Proc {
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn kill(&mut self) {
        // Errors mean it has already exited; `wait` then just reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `program args..` with stdout and stderr appended to `log_path`.
///
/// The spawn happens on one dedicated thread that lives as long as the
/// process, under `setpriv --pdeathsig KILL` when available: the kernel sends
/// the parent-death signal when the *thread* that forked the child exits, so
/// spawning from a test thread (which ends with its test) or a tokio blocking
/// thread would kill children early if a control plane outlives it.
fn spawn_logged(what: &str, program: &Path, args: &[String], log_path: &Path) -> Result<Proc> {
    type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();

    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let log_err = log.try_clone().context("duplicating a log file handle")?;

    let mut cmd = match SETPRIV.get_or_init(|| find_on_path("setpriv")) {
        Some(setpriv) => {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));

    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("argosy-tests-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the argosy-tests spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .map_err(|_| anyhow!("the spawner thread is gone"))?;
    let child = reply_rx
        .recv()
        .context("the spawner thread did not answer")?
        .with_context(|| format!("starting {what}: {}", program.display()))?;
    Ok(Proc {
        what: what.to_owned(),
        child,
        log_path: log_path.to_owned(),
    })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// `<cache>/bin/<name>`, else `<name>` on `PATH`.
fn find_binary(cache: &Path, name: &str) -> Option<PathBuf> {
    let cached = cache.join("bin").join(name);
    if is_executable(&cached) {
        return Some(cached);
    }
    find_on_path(name)
}

#[derive(Debug)]
struct Binaries {
    apiserver: PathBuf,
    etcd: PathBuf,
    openssl: PathBuf,
}

impl Binaries {
    fn locate(cache: &Path) -> Result<Self> {
        let find = |name: &str| {
            find_binary(cache, name).ok_or_else(|| {
                anyhow!(
                    "`{name}` not found (looked in {} and on PATH): {INSTALL_HINT}",
                    cache.join("bin").display()
                )
            })
        };
        Ok(Binaries {
            apiserver: find("kube-apiserver")?,
            etcd: find("etcd")?,
            openssl: find("openssl")?,
        })
    }
}

/// The last `lines` lines of a log file, for error messages.
fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

fn log_says_port_in_use(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|log| log.contains("address already in use"))
}

async fn run_openssl(openssl: &Path, dir: &Path, args: &[&str]) -> Result<()> {
    let out = tokio::process::Command::new(openssl)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", openssl.display()))?;
    if !out.status.success() {
        bail!(
            "openssl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Creates, in `dir`: `sa.key`/`sa.pub` (service-account signing pair),
/// `ca.crt`/`ca.key` (a throwaway CA) and `serving.crt`/`serving.key` (for
/// 127.0.0.1 and localhost, signed by the CA). Returns the CA PEM.
async fn make_keys(openssl: &Path, dir: &Path) -> Result<Vec<u8>> {
    run_openssl(openssl, dir, &["genrsa", "-out", "sa.key", "2048"]).await?;
    run_openssl(
        openssl,
        dir,
        &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
    )
    .await?;
    run_openssl(
        openssl,
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=argosy-tests-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )
    .await?;
    run_openssl(
        openssl,
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "serving.key",
            "-out",
            "serving.csr",
            "-subj",
            "/CN=kube-apiserver",
        ],
    )
    .await?;
    fs::write(
        dir.join("serving.ext"),
        "basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
         DNS:kubernetes.default.svc,IP:10.0.0.1\n",
    )
    .context("writing serving.ext")?;
    run_openssl(
        openssl,
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "serving.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "serving.crt",
            "-days",
            "3650",
            "-extfile",
            "serving.ext",
        ],
    )
    .await?;
    fs::read(dir.join("ca.crt")).context("reading ca.crt")
}

/// `GET /health` on etcd's client port, with plain HTTP/1.0 over TCP.
async fn etcd_healthy(port: u16) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        std::io::Result::Ok(body.contains("\"health\":\"true\""))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(true))
    )
}

/// `/readyz` says ok and the `default` namespace exists.
async fn apiserver_ready(client: &Client) -> std::result::Result<(), String> {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(5), client.request_text(request))
        .await
        .map_err(|_| "GET /readyz timed out".to_owned())?
        .map_err(|e| format!("GET /readyz: {e}"))?;
    if answer.trim() != "ok" {
        return Err(format!("GET /readyz answered {answer:?}"));
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match tokio::time::timeout(Duration::from_secs(5), namespaces.get_opt("default")).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err("namespace default does not exist yet".to_owned()),
        Ok(Err(e)) => Err(format!("GET namespace default: {e}")),
        Err(_) => Err("GET namespace default timed out".to_owned()),
    }
}

/// A kube-apiserver stopped by [`ControlPlane::hang_cluster`]; SIGCONTed on drop.
#[derive(Debug)]
pub struct HungCluster {
    name: String,
    pid: u32,
    resumed: bool,
}

impl HungCluster {
    /// The cluster's name (`workload-1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SIGCONTs the API server and waits until it runs again; the connections it accepted
    /// meanwhile are then served.
    pub fn resume(mut self) -> Result<()> {
        self.resumed = true;
        crate::git_servers::stop_or_resume(&[self.pid], false)
    }
}

impl Drop for HungCluster {
    fn drop(&mut self) {
        if !self.resumed {
            let _ = crate::git_servers::stop_or_resume(&[self.pid], false);
        }
    }
}

/// etcd plus one kube-apiserver per cluster; everything is killed and the
/// temp dir removed on drop.
pub struct ControlPlane {
    /// `clusters[0]` is the management cluster, then the workload clusters.
    clusters: Vec<TestCluster>,
    /// The running kube-apiserver of each cluster (same order), `None` when stopped.
    apiservers: Vec<Option<Proc>>,
    etcd: Option<Proc>,
    etcd_url: String,
    binaries: Binaries,
    /// Declared last: removed after the processes are gone.
    dir: Option<tempfile::TempDir>,
}

impl ControlPlane {
    /// Starts one etcd and `1 + workloads` kube-apiservers: the management
    /// cluster [`MANAGEMENT`] and `workload-1..=workloads`. Returns once every
    /// apiserver's `/readyz` is ok and its `default` namespace exists.
    ///
    /// Fails with a pointer to `scripts/install-control-plane.sh` when
    /// `kube-apiserver` (or `etcd`, `openssl`) cannot be found.
    pub async fn start(workloads: usize) -> Result<ControlPlane> {
        let began = Instant::now();
        let binaries = Binaries::locate(&cache_dir())?;
        let dir = tempfile::Builder::new()
            .prefix("argosy-control-plane-")
            .tempdir()
            .context("creating a temp dir for the control plane")?;
        let root = dir.path().to_owned();

        fs::write(
            root.join("tokens.csv"),
            format!(
                "{ADMIN_TOKEN},{ADMIN_USER},{ADMIN_USER},system:masters\n\
                 {CANARY_TOKEN},{CANARY_USER},{CANARY_USER},system:masters\n"
            ),
        )
        .context("writing tokens.csv")?;
        fs::write(root.join("audit-policy.yaml"), AUDIT_POLICY)
            .context("writing audit-policy.yaml")?;
        let ca_pem = make_keys(&binaries.openssl, &root).await?;

        let mut plane = ControlPlane {
            clusters: Vec::new(),
            apiservers: Vec::new(),
            etcd: None,
            etcd_url: String::new(),
            binaries,
            dir: Some(dir),
        };
        plane.start_etcd(&root).await?;

        let names = std::iter::once(MANAGEMENT.to_owned())
            .chain((1..=workloads).map(|i| format!("workload-{i}")));
        for name in names {
            let cluster_dir = root.join(&name);
            fs::create_dir_all(&cluster_dir)
                .with_context(|| format!("creating {}", cluster_dir.display()))?;
            let port = free_port()?;
            plane.clusters.push(TestCluster {
                server: format!("https://127.0.0.1:{port}"),
                token: ADMIN_TOKEN.to_owned(),
                ca_pem: ca_pem.clone(),
                port,
                etcd_prefix: format!("/argosy/{name}"),
                log_path: cluster_dir.join("kube-apiserver.log"),
                audit_log_path: cluster_dir.join("audit.log"),
                name,
            });
            plane.apiservers.push(None);
        }
        // Spawn all, then wait for each: they start in parallel.
        for index in 0..plane.clusters.len() {
            plane.spawn_apiserver(index)?;
        }
        for index in 0..plane.clusters.len() {
            plane.wait_apiserver(index, true).await?;
        }
        eprintln!(
            "[argosy-tests] control plane with {} cluster(s) ready in {:.1}s ({})",
            plane.clusters.len(),
            began.elapsed().as_secs_f64(),
            root.display()
        );
        Ok(plane)
    }

    /// The management cluster (`mgmt`).
    pub fn management(&self) -> &TestCluster {
        &self.clusters[0]
    }

    /// The workload clusters, `workload-1` first.
    pub fn workloads(&self) -> &[TestCluster] {
        &self.clusters[1..]
    }

    /// Every cluster, management first.
    pub fn clusters(&self) -> &[TestCluster] {
        &self.clusters
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Result<&TestCluster> {
        Ok(&self.clusters[self.index_of(name)?])
    }

    /// `http://127.0.0.1:PORT` of the shared etcd.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// The temp dir holding logs, audit logs, keys and etcd data.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// How many keys etcd holds under `key_prefix` (for example
    /// `/argosy/mgmt/argoproj.io/applications/argocd/`), asked of etcd itself through its
    /// HTTP gateway (`count_only`): a benchmark can watch progress without loading the
    /// API server it measures.
    pub async fn etcd_count(&self, key_prefix: &str) -> Result<u64> {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut end = key_prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let body = serde_json::json!({
            "key": b64(key_prefix.as_bytes()), "range_end": b64(&end), "count_only": true,
        })
        .to_string();
        let address = self.etcd_url.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .with_context(|| format!("connecting to etcd at {address}"))?;
        let request = format!(
            "POST /v3/kv/range HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        let json = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let reply: serde_json::Value =
            serde_json::from_str(json).with_context(|| format!("etcd range answer: {answer}"))?;
        // Absent when zero (proto3 JSON omits defaults); a string (int64) otherwise.
        Ok(reply["count"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    }

    /// `(label, pid)` of the running processes: `etcd`, then `kube-apiserver <cluster>`
    /// for each running API server (for CPU accounting in benchmarks).
    pub fn processes(&self) -> Vec<(String, String)> {
        let etcd = self
            .etcd
            .iter()
            .map(|p| ("etcd".to_owned(), p.child.id().to_string()));
        let apiservers = self
            .clusters
            .iter()
            .zip(&self.apiservers)
            .filter_map(|(c, p)| {
                p.as_ref().map(|p| {
                    (
                        format!("kube-apiserver {}", c.name),
                        p.child.id().to_string(),
                    )
                })
            });
        etcd.chain(apiservers).collect()
    }

    /// Kills (SIGKILL) the cluster's kube-apiserver: from now on connections
    /// to it are refused, as for an unreachable cluster. Its data stays in etcd.
    /// A no-op when it is already stopped.
    pub async fn stop_cluster(&mut self, name: &str) -> Result<()> {
        let index = self.index_of(name)?;
        if let Some(mut process) = self.apiservers[index].take() {
            process.kill();
        }
        Ok(())
    }

    /// Starts the cluster's kube-apiserver again, on the same port, with the
    /// same etcd prefix, certificate and token, and waits until it is ready.
    /// Existing clients reconnect by themselves. A no-op when it is running.
    pub async fn start_cluster(&mut self, name: &str) -> Result<()> {
        let index = self.index_of(name)?;
        if let Some(process) = self.apiservers[index].as_mut()
            && process.exited().is_none()
        {
            return Ok(());
        }
        self.spawn_apiserver(index)?;
        self.wait_apiserver(index, false).await
    }

    /// SIGSTOPs the cluster's kube-apiserver, as for an API server that hangs: the kernel
    /// still accepts connections, nothing answers, established connections (watches) go
    /// silent. Returns once the process is stopped, with a guard that SIGCONTs it when
    /// dropped, so a failing test leaves no stopped process behind; [`HungCluster::resume`]
    /// says whether that worked.
    pub fn hang_cluster(&self, name: &str) -> Result<HungCluster> {
        let index = self.index_of(name)?;
        let pid = self.apiservers[index]
            .as_ref()
            .map(|p| p.child.id())
            .ok_or_else(|| anyhow!("the kube-apiserver of {name} is not running"))?;
        let hung = HungCluster {
            name: name.to_owned(),
            pid,
            resumed: false,
        };
        crate::git_servers::stop_or_resume(&[pid], true)?;
        Ok(hung)
    }

    /// Whether the cluster's kube-apiserver process is running.
    pub fn is_running(&mut self, name: &str) -> Result<bool> {
        let index = self.index_of(name)?;
        Ok(self.apiservers[index]
            .as_mut()
            .is_some_and(|p| p.exited().is_none()))
    }

    /// All write requests (create, update, patch, delete, deletecollection;
    /// final stage only, one event per request) in the cluster's audit log so
    /// far, oldest first, including the apiserver's own (`system:apiserver`)
    /// and failed ones. Filter by [`AuditEvent::username`],
    /// [`AuditEvent::user_agent`], [`AuditEvent::received_between`]...
    ///
    /// The log backend is synchronous (blocking mode) so an event is normally
    /// on disk by the time the client has the response; poll briefly anyway
    /// when asserting on a write that just happened.
    pub fn audit_writes(&self, cluster: &str) -> Result<Vec<AuditEvent>> {
        self.audit_log(cluster, Keep::Writes)
    }

    /// The writes Argosy made on `cluster` (every Argosy client sends
    /// `User-Agent: argosy/<version>`), from [`Self::audit_writes`].
    pub fn argosy_writes(&self, cluster: &str) -> Result<Vec<AuditEvent>> {
        Ok(self
            .audit_writes(cluster)?
            .into_iter()
            .filter(|e| e.user_agent.starts_with("argosy/"))
            .collect())
    }

    /// Every request in the cluster's audit log so far (final stage, oldest
    /// first): all writes, plus the reads (get, list, watch) of ServiceAccounts.
    /// A watch appears once it ends (stage `ResponseComplete`); a denied one
    /// at once, with code 403.
    pub fn audit_events(&self, cluster: &str) -> Result<Vec<AuditEvent>> {
        self.audit_log(cluster, Keep::All)
    }

    fn audit_log(&self, cluster: &str, keep: Keep) -> Result<Vec<AuditEvent>> {
        let path = &self.clusters[self.index_of(cluster)?].audit_log_path;
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        parse_audit_log(&text, keep).with_context(|| format!("parsing {}", path.display()))
    }

    fn index_of(&self, name: &str) -> Result<usize> {
        self.clusters
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.clusters.iter().map(|c| c.name.as_str()).collect();
                anyhow!("no cluster named {name:?} (clusters: {})", known.join(", "))
            })
    }

    async fn start_etcd(&mut self, root: &Path) -> Result<()> {
        let log_path = root.join("etcd.log");
        for attempt in 1..=PORT_ATTEMPTS {
            let client_port = free_port()?;
            let peer_port = free_port()?;
            let client_url = format!("http://127.0.0.1:{client_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            let args = vec![
                "--name=argosy".to_owned(),
                format!("--data-dir={}", root.join("etcd").display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=argosy={peer_url}"),
                "--logger=zap".to_owned(),
                "--log-outputs=stderr".to_owned(),
                "--log-level=warn".to_owned(),
            ];
            let mut process = spawn_logged("etcd", &self.binaries.etcd, &args, &log_path)?;
            let deadline = Instant::now() + ETCD_TIMEOUT;
            loop {
                if etcd_healthy(client_port).await {
                    self.etcd = Some(process);
                    self.etcd_url = client_url;
                    return Ok(());
                }
                if let Some(status) = process.exited() {
                    if attempt < PORT_ATTEMPTS && log_says_port_in_use(&log_path) {
                        let _ = fs::remove_dir_all(root.join("etcd"));
                        break;
                    }
                    bail!(
                        "etcd exited ({status}) before becoming healthy; {}:\n{}",
                        log_path.display(),
                        log_tail(&log_path, 30)
                    );
                }
                if Instant::now() > deadline {
                    bail!(
                        "etcd not healthy after {ETCD_TIMEOUT:?}; {}:\n{}",
                        log_path.display(),
                        log_tail(&log_path, 30)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        bail!("etcd could not get a free port in {PORT_ATTEMPTS} attempts")
    }

    fn apiserver_args(&self, index: usize) -> Vec<String> {
        let cluster = &self.clusters[index];
        let root = self.dir();
        let cluster_dir = root.join(&cluster.name);
        let path = |p: &Path| p.display().to_string();
        vec![
            format!("--etcd-servers={}", self.etcd_url),
            format!("--etcd-prefix={}", cluster.etcd_prefix),
            format!("--secure-port={}", cluster.port),
            "--bind-address=127.0.0.1".to_owned(),
            "--advertise-address=127.0.0.1".to_owned(),
            // 1.20 still has the deprecated insecure port; make sure it is off.
            "--insecure-port=0".to_owned(),
            format!("--cert-dir={}", path(&cluster_dir.join("certs"))),
            format!("--tls-cert-file={}", path(&root.join("serving.crt"))),
            format!("--tls-private-key-file={}", path(&root.join("serving.key"))),
            format!("--token-auth-file={}", path(&root.join("tokens.csv"))),
            "--authorization-mode=RBAC".to_owned(),
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement".to_owned(),
            "--service-account-issuer=https://kubernetes.default.svc".to_owned(),
            format!("--service-account-key-file={}", path(&root.join("sa.pub"))),
            format!(
                "--service-account-signing-key-file={}",
                path(&root.join("sa.key"))
            ),
            // A /16: room for the sync benchmark's ~340 ClusterIP Services per cluster.
            "--service-cluster-ip-range=10.0.0.0/16".to_owned(),
            // The `kubernetes` Endpoints would get 127.0.0.1, which is rejected
            // (an error every 10 s); nothing here needs that object.
            "--endpoint-reconciler-type=none".to_owned(),
            format!(
                "--audit-policy-file={}",
                path(&root.join("audit-policy.yaml"))
            ),
            format!("--audit-log-path={}", path(&cluster.audit_log_path)),
            "--audit-log-mode=blocking".to_owned(),
            "--audit-log-format=json".to_owned(),
            // `/debug/pprof` for `scripts/profile-apiservers.sh`; off otherwise.
            format!(
                "--profiling={}",
                std::env::var_os(PROFILING_ENV).is_some_and(|v| !v.is_empty() && v != "0")
            ),
        ]
    }

    fn spawn_apiserver(&mut self, index: usize) -> Result<()> {
        let args = self.apiserver_args(index);
        let cluster = &self.clusters[index];
        let process = spawn_logged(
            &format!("kube-apiserver {}", cluster.name),
            &self.binaries.apiserver,
            &args,
            &cluster.log_path,
        )?;
        self.apiservers[index] = Some(process);
        Ok(())
    }

    /// Waits until the apiserver at `index` is ready. With `may_move`, an
    /// apiserver that died because its port was taken is restarted on a new port.
    async fn wait_apiserver(&mut self, index: usize, may_move: bool) -> Result<()> {
        let began = Instant::now();
        let mut attempts = 1;
        let mut client = self.clusters[index].client().await?;
        let mut last_error;
        loop {
            let exited = match self.apiservers[index].as_mut() {
                Some(process) => process.exited(),
                None => bail!(
                    "kube-apiserver {} is not running",
                    self.clusters[index].name
                ),
            };
            if let Some(status) = exited {
                let cluster = &self.clusters[index];
                if may_move && attempts < PORT_ATTEMPTS && log_says_port_in_use(&cluster.log_path) {
                    attempts += 1;
                    let port = free_port()?;
                    let cluster = &mut self.clusters[index];
                    cluster.port = port;
                    cluster.server = format!("https://127.0.0.1:{port}");
                    client = cluster.client().await?;
                    self.spawn_apiserver(index)?;
                    continue;
                }
                let hint = if log_says_port_in_use(&cluster.log_path) {
                    format!(" (port {} is in use by another process)", cluster.port)
                } else {
                    String::new()
                };
                bail!(
                    "kube-apiserver {} exited ({status}) before becoming ready{hint}; {}:\n{}",
                    cluster.name,
                    cluster.log_path.display(),
                    log_tail(&cluster.log_path, 40)
                );
            }
            match apiserver_ready(&client).await {
                Ok(()) => {
                    tracing::info!(
                        cluster = %self.clusters[index].name,
                        elapsed = ?began.elapsed(),
                        "kube-apiserver ready"
                    );
                    return Ok(());
                }
                Err(e) => last_error = e,
            }
            if began.elapsed() > APISERVER_TIMEOUT {
                let cluster = &self.clusters[index];
                bail!(
                    "kube-apiserver {} not ready after {APISERVER_TIMEOUT:?} (last: {last_error}); {}:\n{}",
                    cluster.name,
                    cluster.log_path.display(),
                    log_tail(&cluster.log_path, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for server in &mut self.apiservers {
            if let Some(mut process) = server.take() {
                process.kill();
                if panicking {
                    eprintln!(
                        "[argosy-tests] tail of {} ({}):\n{}",
                        process.what,
                        process.log_path.display(),
                        log_tail(&process.log_path, 15)
                    );
                }
            }
        }
        if let Some(mut etcd) = self.etcd.take() {
            etcd.kill();
        }
        if let Some(dir) = self.dir.take() {
            if std::env::var_os("ARGOSY_KEEP_TEMP").is_some_and(|v| !v.is_empty() && v != "0") {
                eprintln!("[argosy-tests] kept {}", dir.keep().display());
            } else if panicking {
                // Keep nothing, but say where the logs were.
                eprintln!("[argosy-tests] removing {}", dir.path().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_point_to_the_install_script() {
        let empty = tempfile::tempdir().unwrap();
        // Only the PATH fallback can find anything here; kube-apiserver is
        // never on PATH on these machines, but guard against it anyway.
        if find_on_path("kube-apiserver").is_some() {
            return;
        }
        let err = Binaries::locate(empty.path()).unwrap_err().to_string();
        assert!(err.contains("kube-apiserver"), "{err}");
        assert!(err.contains("scripts/install-control-plane.sh"), "{err}");
    }

    #[test]
    fn parses_audit_lines() {
        let log = concat!(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps?fieldManager=x","verb":"create","user":{"username":"admin","uid":"admin","groups":["system:masters","system:authenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"argosy/0.1","objectRef":{"resource":"configmaps","namespace":"default","name":"c1","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2026-01-01T00:00:00.000001Z","stageTimestamp":"2026-01-01T00:00:00.002000Z"}"#,
            "\n",
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a2","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps/c1","verb":"get","user":{"username":"admin"},"requestReceivedTimestamp":"2026-01-01T00:00:01Z","stageTimestamp":"2026-01-01T00:00:01Z"}"#,
            "\n",
            r#"{"kind":"Event","auditID":"a3","stage":"ResponseComplete","verb":"patch"#,
        );
        let events = parse_audit_log(log, Keep::Writes).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!(e.verb, "create");
        assert_eq!(e.username, "admin");
        assert_eq!(e.user_agent, "argosy/0.1");
        assert_eq!(e.resource.as_deref(), Some("configmaps"));
        assert_eq!(e.name.as_deref(), Some("c1"));
        assert!(e.succeeded());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        assert!(e.received_between(t0, t1));
        // Reads are kept too when asked for.
        let all = parse_audit_log(log, Keep::All).unwrap();
        assert_eq!(
            all.iter().map(|e| e.verb.as_str()).collect::<Vec<_>>(),
            ["create", "get"]
        );
    }

    #[test]
    fn kubeconfig_round_trips_through_kube() {
        let cluster = TestCluster {
            name: "workload-1".into(),
            server: "https://127.0.0.1:6443".into(),
            token: ADMIN_TOKEN.into(),
            ca_pem: b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec(),
            port: 6443,
            etcd_prefix: "/argosy/workload-1".into(),
            log_path: PathBuf::new(),
            audit_log_path: PathBuf::new(),
        };
        let kc = Kubeconfig::from_yaml(&cluster.kubeconfig_yaml()).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("workload-1"));
        let c = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(c.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(
            c.certificate_authority_data.as_deref(),
            Some(cluster.ca_data().as_str())
        );
    }
}

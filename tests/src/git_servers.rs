//! Real Git servers for integration tests, started by the test on loopback (issue #16).
//!
//! * [`GitHttpServer`]: nginx in front of `git http-backend` (through `fcgiwrap`) with three
//!   listeners on free ports: HTTPS with HTTP basic auth (an htpasswd file nginx re-reads on
//!   every request, so [`GitHttpServer::set_password`] rotates credentials at once), HTTPS
//!   that requires a TLS client certificate (and no basic auth), and plain HTTP without auth.
//!   The access log tells which repository each request was for ([`GitHttpServer::requests`]).
//! * [`GitSshServer`]: OpenSSH's `sshd` with its own host key, one authorized client key and
//!   Argo CD-style `known_hosts` lines, the right one and a wrong one.
//! * [`GitDaemon`]: `git daemon` (the `git://` protocol).
//! * [`GitRepoDir`]: a bare repository under a root the servers export, with commits made
//!   by the `git` CLI.
//! * [`Certificates`]: a throwaway CA, a server certificate for `127.0.0.1`/`localhost` and a
//!   client CA with one client certificate, made with the `openssl` CLI.
//!
//! Every server runs in its own temp dir (configuration, logs, keys), is started through
//! `setpriv --pdeathsig KILL` so it dies with the test process even when that is killed,
//! and is killed with all its child processes on [`Drop`]. Readiness is polled with a
//! deadline, never slept for. `stop()` / `resume()` send SIGSTOP / SIGCONT to every process
//! of a server: connections then hang (the kernel still accepts them into the listen
//! backlog) instead of being refused, as with a server that is alive but stuck.
//!
//! The binaries come from Debian's packages (`nginx`, `fcgiwrap`, `openssh-server`),
//! installed by `scripts/install-git-servers.sh`; `git http-backend` is the one of the `git`
//! on `PATH` (`git --exec-path`), so server and client speak the same Git.
//!
//! Every `git` the harness runs (and [`git_command`] hands out) has an isolated
//! environment: no `GIT_*` variable of the caller (this machine sets `GIT_SSL_CAINFO`, which
//! would override `http.sslCAInfo`), `GIT_CONFIG_NOSYSTEM=1` and `HOME` in a temp dir, so
//! neither the machine's nor the user's Git configuration leaks in.
//!
//! `ARGOSY_KEEP_TEMP=1` keeps each server's temp dir (configuration and logs).
//!
//! Everything here is synchronous (std processes and sockets): from an async test, the
//! waits for readiness block the calling thread for well under a second.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher as _, RandomState};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use tempfile::TempDir;

use crate::ports::free_port;

/// How long a server may take to listen after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `stop()` / `resume()` wait for the kernel to report the new process state.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Starts retried with new ports when a server dies before it listens (another process
/// may take a port between [`free_port`] and the server's bind).
pub(crate) const START_ATTEMPTS: usize = 3;
/// The branch [`GitRepoDir`] creates and commits to.
pub const BRANCH: &str = "main";
/// Author and committer of every [`GitRepoDir`] commit, with a fixed date: the same files
/// committed onto the same parent give the same commit id in every run.
const AUTHOR_NAME: &str = "Argosy Tests";
const AUTHOR_EMAIL: &str = "tests@argosy.invalid";
const AUTHOR_DATE: &str = "2024-01-01T00:00:00+00:00";
/// The first user of [`GitHttpServer`]'s basic auth.
const HTTP_USER: &str = "argosy";
/// Where the plain listener answers 204 without logging (see [`GitHttpServer::requests`]).
pub(crate) const BARRIER_PATH: &str = "/__argosy_log_barrier";

/// Set `ARGOSY_KEEP_TEMP` (to anything but `0`) to keep the servers' temp dirs.
pub(crate) fn keep_temp() -> bool {
    std::env::var_os("ARGOSY_KEEP_TEMP").is_some_and(|v| !v.is_empty() && v != "0")
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// git CLI
// ---------------------------------------------------------------------------------------

/// A `git` command with an isolated environment: no `GIT_*` variable of this process,
/// `HOME` (and `XDG_CONFIG_HOME`) under `home`, no system configuration, no prompts, and
/// stdin closed.
pub fn git_command(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        // An ssh-agent of the caller would offer keys the test did not choose.
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion; its stdout, or an error naming `what` with its stderr.
pub(crate) fn run(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {what} ({:?})", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What [`run_bounded`] saw: the exit status, or `None` when the command was killed at
/// the deadline.
#[derive(Debug)]
pub struct BoundedOutput {
    /// `None`: still running at the deadline, then killed (with its child processes).
    pub status: Option<ExitStatus>,
    /// Everything the command printed on stdout.
    pub stdout: String,
    /// Everything the command printed on stderr.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl BoundedOutput {
    /// Exited with status 0 before the deadline.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Was killed at the deadline.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
}

/// Runs `cmd` for at most `timeout`; when it is still running then, it is killed with all
/// its child processes (`git` leaves the transport to `git-remote-https` or `ssh`).
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<BoundedOutput> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let reader = |stream: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut stream) = stream {
                // A read error only shortens the output the caller sees.
                let _ = stream.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = reader(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = reader(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = start + timeout;
    let mut pause = Duration::from_millis(2);
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the command")? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            kill_tree(&mut child);
            break None;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    Ok(BoundedOutput {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed,
    })
}

/// The `git --exec-path` of the `git` on PATH, where its `git-http-backend` lives.
fn git_exec_path() -> Result<PathBuf> {
    let out = run("git --exec-path", Command::new("git").arg("--exec-path"))?;
    Ok(PathBuf::from(out.trim()))
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// `program`, started through `setpriv --pdeathsig KILL` when setpriv exists, so the kernel
/// kills it when the test process dies (even by SIGKILL, when no `Drop` runs).
pub(crate) fn server_command(program: impl AsRef<OsStr>) -> Command {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    let setpriv = SETPRIV.get_or_init(|| {
        ["/usr/bin/setpriv", "/bin/setpriv"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    });
    match setpriv {
        Some(setpriv) => {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// One server process, killed with its descendants and reaped on drop.
pub(crate) struct Proc {
    what: &'static str,
    child: Child,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    ///
    /// The spawn happens on one thread that lives as long as the process: the kernel sends
    /// the parent-death signal when the *thread* that forked the child exits, so spawning
    /// from a test thread would kill a server shared beyond that test.
    pub(crate) fn spawn(what: &'static str, mut cmd: Command, log: &Path) -> Result<Proc> {
        type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);
        static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone().context("duplicating a log file handle")?;
        cmd.stdout(out).stderr(err);
        let spawner = SPAWNER.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            let thread = std::thread::Builder::new()
                .name("git-servers-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                });
            if let Err(e) = thread {
                // Then every request fails below with "the spawner thread is gone".
                eprintln!("[git-servers] cannot start the spawner thread: {e}");
            }
            Mutex::new(tx)
        });
        let (reply_tx, reply_rx) = mpsc::channel();
        lock(spawner)
            .send((cmd, reply_tx))
            .map_err(|_| anyhow!("the spawner thread is gone"))?;
        let child = reply_rx
            .recv()
            .context("the spawner thread did not answer")?
            .with_context(|| format!("starting {what}"))?;
        Ok(Proc { what, child })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        kill_tree(&mut self.child);
    }
}

/// SIGKILLs `child`'s descendants (a server's per-connection processes), then `child`
/// itself, and reaps it. Never fails: whatever is gone already is fine.
fn kill_tree(child: &mut Child) {
    let descendants: Vec<u32> = process_tree(child.id()).into_iter().skip(1).collect();
    send_signal(&descendants, "KILL");
    let _ = child.kill();
    let _ = child.wait();
}

/// `root` and all its descendants (root first), from /proc.
pub(crate) fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(ppid) = stat_field(pid, 1).and_then(|p| p.parse().ok()) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut queue = VecDeque::from([root]);
    while let Some(pid) = queue.pop_front() {
        for &child in children.get(&pid).into_iter().flatten() {
            tree.push(child);
            queue.push_back(child);
        }
    }
    tree
}

/// Field `index` (0 = state, 1 = ppid) of /proc/PID/stat after the command name, which is
/// in parentheses and may hold spaces.
fn stat_field(pid: u32, index: usize) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(index).map(str::to_owned)
}

/// `kill -s SIGNAL PIDS...`; a pid that is gone by now is not an error (the workspace
/// forbids `unsafe`, so no `libc::kill`).
fn send_signal(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-s", signal])
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGSTOPs (or SIGCONTs) every process of the servers rooted at `roots`, and waits until
/// the kernel reports each stopped (or running again), so a request made right after
/// `stop()` returns hangs.
pub(crate) fn stop_or_resume(roots: &[u32], stop: bool) -> Result<()> {
    let pids: Vec<u32> = roots.iter().flat_map(|&r| process_tree(r)).collect();
    send_signal(&pids, if stop { "STOP" } else { "CONT" });
    let deadline = Instant::now() + SIGNAL_TIMEOUT;
    loop {
        // 'T': stopped by a signal. A process that exited meanwhile has no state to wait for.
        let pending: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|&pid| {
                stat_field(pid, 0).is_some_and(|state| (state == "T") != stop && state != "Z")
            })
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "processes {pending:?} are not {} after {SIGNAL_TIMEOUT:?}",
                if stop { "stopped" } else { "running" }
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `ready` until it holds, `proc` exits (an error, with `log`'s tail), or the deadline.
pub(crate) fn wait_ready(
    proc: &mut Proc,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(status) = proc.exited() {
            bail!(
                "{} exited ({status}) before it was ready; {}:\n{}",
                proc.what,
                log.display(),
                log_tail(log, 20)
            );
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} not ready after {READY_TIMEOUT:?}; {}:\n{}",
                proc.what,
                log.display(),
                log_tail(log, 20)
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// nginx started in `dir` (its prefix) with the configuration `conf(ports)` for `count` free
/// loopback ports, its early error log at `error_log`; retried with new ports when it dies
/// before it is ready (another process may take a port between [`free_port`] and the bind).
/// `conf` must write the pid file `DIR/nginx.pid` ([`nginx_main_conf`] does): nginx writes it
/// only after every listener is bound, so a port some other process answers on is not taken
/// for ours.
pub(crate) fn start_nginx(
    dir: &Path,
    count: usize,
    error_log: &Path,
    conf: impl Fn(&[u16]) -> String,
) -> Result<(Proc, Vec<u16>)> {
    let conf_path = dir.join("nginx.conf");
    let pid_file = dir.join("nginx.pid");
    let mut last_error = None;
    for _ in 0..START_ATTEMPTS {
        let ports = (0..count)
            .map(|_| free_port())
            .collect::<Result<Vec<u16>>>()?;
        fs::write(&conf_path, conf(&ports)).context("writing nginx.conf")?;
        let _ = fs::remove_file(&pid_file);
        let mut cmd = server_command("/usr/sbin/nginx");
        cmd.arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            // Before it reads the configuration nginx opens its default error log
            // (/var/log/nginx/error.log) unless told otherwise.
            .arg("-e")
            .arg(error_log)
            .current_dir(dir);
        let mut nginx = Proc::spawn("nginx", cmd, &dir.join("nginx.out"))?;
        let ready = wait_ready(&mut nginx, error_log, || {
            pid_file.exists() && ports.iter().all(|&p| tcp_accepts(p))
        });
        match ready {
            Ok(()) => return Ok((nginx, ports)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("nginx did not start")))
}

/// An nginx configuration for [`start_nginx`] in `dir`: one process (`master_process off`:
/// it gets the parent-death signal itself, since nginx workers outlive a SIGKILLed master; it
/// is all `stop()` must freeze; and it orders the access log, see
/// [`GitHttpServer::access_log`]), running as the user that started it (so no `user`
/// directive: as root it serves root's files), logging requests in the format
/// [`parse_access_line`] reads, with `http` (directives, then `server` blocks) inside its
/// `http` block.
pub(crate) fn nginx_main_conf(
    dir: &Path,
    error_log: &Path,
    access_log: &Path,
    http: &str,
) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {error_log} info;
events {{
    worker_connections 512;
}}
http {{
    log_format requests '$server_port $status $request_method $request_uri "$remote_user"';
    access_log {access_log} requests;
    client_body_temp_path {d}/tmp/client_body;
    fastcgi_temp_path {d}/tmp/fastcgi;
    proxy_temp_path {d}/tmp/proxy;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
{http}
}}
"#,
        error_log = error_log.display(),
        access_log = access_log.display(),
    )
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub(crate) fn tcp_accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// A temp dir that is removed on drop unless `ARGOSY_KEEP_TEMP` is set.
pub(crate) struct ServerDir(Option<TempDir>);

impl ServerDir {
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("creating a temp dir for a Git server")?;
        Ok(ServerDir(Some(dir)))
    }

    pub(crate) fn path(&self) -> &Path {
        self.0
            .as_ref()
            .map_or(Path::new("/nonexistent"), TempDir::path)
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && keep_temp()
        {
            eprintln!("[git-servers] kept {}", dir.keep().display());
        }
    }
}

/// A log file read from a mark on: counts see only what was logged after the last reset.
pub(crate) struct LogFile {
    pub(crate) path: PathBuf,
    mark: Mutex<u64>,
}

impl LogFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        LogFile {
            path,
            mark: Mutex::new(0),
        }
    }

    /// The complete lines written since the mark.
    pub(crate) fn lines(&self) -> Vec<String> {
        let bytes = fs::read(&self.path).unwrap_or_default();
        let from = usize::try_from(*lock(&self.mark))
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[from..]);
        // A line still being written has no newline yet: leave it for the next read.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Moves the mark to the end of what is logged now.
    pub(crate) fn reset(&self) {
        let len = fs::metadata(&self.path).map_or(0, |m| m.len());
        *lock(&self.mark) = len;
    }
}

/// `repo` as a path below the served root, with the `.git` suffix [`GitRepoDir`] uses:
/// `app`, `app.git` and `/app.git` all give `app.git`.
fn repo_path(repo: &str) -> String {
    let repo = repo.trim_start_matches('/');
    if repo.ends_with(".git") {
        repo.to_owned()
    } else {
        format!("{repo}.git")
    }
}

/// A fresh random-looking token (no `rand` in the workspace: std's hasher is seeded
/// randomly per process).
pub(crate) fn token() -> String {
    static COUNTER: Mutex<u64> = Mutex::new(0);
    let mut n = lock(&COUNTER);
    *n += 1;
    format!(
        "{:016x}",
        RandomState::new().hash_one((*n, std::process::id()))
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for URL userinfo).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Whether this process runs as root (the owner of /proc/self).
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// A throwaway PKI made with the `openssl` CLI (EC P-256 keys, PEM files in one directory):
/// a CA, a server certificate for `IP:127.0.0.1` and `DNS:localhost` signed by it, and a
/// separate client CA with one client certificate for mutual TLS.
#[derive(Debug, Clone)]
pub struct Certificates {
    dir: PathBuf,
    ca_pem: String,
    client_ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Certificates {
    /// Creates the keys and certificates in `dir` (which must exist).
    pub fn generate(dir: &Path) -> Result<Self> {
        let openssl = |args: &[&str]| {
            run(
                &format!("openssl {}", args.first().copied().unwrap_or_default()),
                Command::new("openssl").args(args).current_dir(dir),
            )
        };
        let new_ca = |name: &str, cn: &str| {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.crt"),
                "-days",
                "3650",
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ])
        };
        let new_leaf = |name: &str, cn: &str, ca: &str, ext: &str| -> Result<()> {
            openssl(&[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ])?;
            fs::write(dir.join(format!("{name}.ext")), ext)
                .with_context(|| format!("writing {name}.ext"))?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "3650",
                "-extfile",
                &format!("{name}.ext"),
            ])?;
            Ok(())
        };
        new_ca("ca", "argosy-tests-git-ca")?;
        new_leaf(
            "server",
            "argosy-tests-git-server",
            "ca",
            "basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        // A CA of its own for clients: a server certificate must not pass as a client one.
        new_ca("client-ca", "argosy-tests-git-client-ca")?;
        new_leaf(
            "client",
            "argosy-tests-git-client",
            "client-ca",
            "basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )?;
        let read = |name: &str| {
            fs::read_to_string(dir.join(name)).with_context(|| format!("reading {name}"))
        };
        Ok(Certificates {
            dir: dir.to_owned(),
            ca_pem: read("ca.crt")?,
            client_ca_pem: read("client-ca.crt")?,
            client_cert_pem: read("client.crt")?,
            client_key_pem: read("client.key")?,
        })
    }

    /// The CA that signed the server certificate (PEM): what a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The file of [`Certificates::ca_pem`].
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The server certificate (for 127.0.0.1 and localhost).
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// The server certificate's private key.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// nginx's `ssl_certificate` and `ssl_certificate_key` for the server certificate.
    pub(crate) fn nginx_server_tls(&self) -> String {
        format!(
            "ssl_certificate {};
        ssl_certificate_key {};",
            self.server_cert_path().display(),
            self.server_key_path().display()
        )
    }

    /// The CA that signed the client certificate (PEM): what the server trusts.
    pub fn client_ca_pem(&self) -> &str {
        &self.client_ca_pem
    }

    /// The file of [`Certificates::client_ca_pem`].
    pub fn client_ca_path(&self) -> PathBuf {
        self.dir.join("client-ca.crt")
    }

    /// The client certificate (PEM), as Argo CD's `tlsClientCertData` holds it.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert_pem
    }

    /// The client certificate's private key (PEM, PKCS#8), as `tlsClientCertKey` holds it.
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// The file of [`Certificates::client_cert_pem`].
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.join("client.crt")
    }

    /// The file of [`Certificates::client_key_pem`].
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join("client.key")
    }
}

// ---------------------------------------------------------------------------------------
// Repositories
// ---------------------------------------------------------------------------------------

/// A bare repository `ROOT/NAME.git` with branch [`BRANCH`], and a working clone (in a temp
/// dir) through which commits are made and pushed, as a developer would.
pub struct GitRepoDir {
    path: PathBuf,
    name: String,
    /// `HOME` of every git command, and the working clone (`work/`).
    home: TempDir,
    /// One commit at a time: they share the working clone.
    work: Mutex<()>,
}

impl GitRepoDir {
    /// `git init --bare` of `root/name.git` (`name` may already end in `.git`) with
    /// [`BRANCH`] as its default branch.
    pub fn init_bare(root: &Path, name: &str) -> Result<Self> {
        let rel = repo_path(name);
        let path = root.join(&rel);
        let home = tempfile::Builder::new()
            .prefix("argosy-git-home-")
            .tempdir()
            .context("creating a HOME for git")?;
        run(
            "git init --bare",
            git_command(home.path())
                .args(["init", "--quiet", "--bare", "--initial-branch", BRANCH])
                .arg(&path),
        )?;
        Ok(GitRepoDir {
            path,
            name: rel.trim_end_matches(".git").to_owned(),
            home,
            work: Mutex::new(()),
        })
    }

    /// The bare repository's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name below the root, without `.git` (what the servers' URL helpers take).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `git` command (isolated environment) run inside the bare repository.
    pub fn git(&self) -> Command {
        let mut cmd = git_command(self.home.path());
        cmd.current_dir(&self.path);
        cmd
    }

    /// Commits `files` (repo-relative path, content; directories are created) on
    /// [`BRANCH`] and pushes; returns the new commit id. Other files stay as they are.
    pub fn commit_files<P, C>(&self, files: &[(P, C)], message: &str) -> Result<String>
    where
        P: AsRef<str>,
        C: AsRef<[u8]>,
    {
        self.commit_with(message, |work| {
            for (path, content) in files {
                let file = work.join(path.as_ref());
                if let Some(parent) = file.parent() {
                    fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                fs::write(&file, content.as_ref())
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            Ok(())
        })
    }

    /// Brings the working clone to the tip of [`BRANCH`], lets `edit` change its files
    /// (deletions included), commits everything (`git add -A`; an empty commit when
    /// nothing changed) and pushes; returns the new commit id.
    pub fn commit_with(
        &self,
        message: &str,
        edit: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<String> {
        let _one_at_a_time = lock(&self.work);
        let work = self.home.path().join("work");
        let git = |what: &str, args: &[&str]| {
            let mut cmd = git_command(self.home.path());
            cmd.current_dir(&work)
                .args(args)
                .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
                .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
                .env("GIT_AUTHOR_DATE", AUTHOR_DATE)
                .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
                .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
                .env("GIT_COMMITTER_DATE", AUTHOR_DATE);
            run(what, &mut cmd)
        };
        if !work.exists() {
            run(
                "git clone",
                git_command(self.home.path())
                    .args(["clone", "--quiet"])
                    .arg(&self.path)
                    .arg(&work),
            )?;
        } else {
            // Someone may have pushed to the bare repository directly.
            git("git fetch", &["fetch", "--quiet", "origin"])?;
        }
        git(
            "git symbolic-ref",
            &["symbolic-ref", "HEAD", &format!("refs/heads/{BRANCH}")],
        )?;
        let tip = format!("refs/remotes/origin/{BRANCH}");
        if git("git rev-parse", &["rev-parse", "--verify", "--quiet", &tip]).is_ok() {
            git("git reset", &["reset", "--quiet", "--hard", &tip])?;
            git("git clean", &["clean", "--quiet", "-fdx"])?;
        }
        edit(&work)?;
        git("git add", &["add", "--all"])?;
        git(
            "git commit",
            &["commit", "--quiet", "--allow-empty", "--message", message],
        )?;
        git(
            "git push",
            &[
                "push",
                "--quiet",
                "origin",
                &format!("HEAD:refs/heads/{BRANCH}"),
            ],
        )?;
        Ok(git("git rev-parse", &["rev-parse", "HEAD"])?
            .trim()
            .to_owned())
    }

    /// The commit id at the tip of [`BRANCH`] in the bare repository.
    pub fn head(&self) -> Result<String> {
        let out = run(
            "git rev-parse",
            self.git()
                .args(["rev-parse", "--verify", &format!("refs/heads/{BRANCH}")]),
        )?;
        Ok(out.trim().to_owned())
    }
}

// ---------------------------------------------------------------------------------------
// HTTP(S): nginx + fcgiwrap + git http-backend
// ---------------------------------------------------------------------------------------

/// Which listener of a [`GitHttpServer`] served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// HTTPS with basic auth.
    Https,
    /// HTTPS that requires a client certificate.
    Mtls,
    /// Plain HTTP without auth.
    Http,
}

/// One line of a [`GitHttpServer`]'s access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// Where the request arrived.
    pub listener: Listener,
    /// The response status (401: no or wrong credentials; 400: no client certificate).
    pub status: u16,
    /// `GET` or `POST`.
    pub method: String,
    /// The path, without the query (`/app.git/info/refs`, `/app.git/git-upload-pack`).
    pub path: String,
    /// The query (`service=git-upload-pack`), empty when there is none.
    pub query: String,
    /// The basic-auth user the client sent (also when it was refused), if any.
    pub user: Option<String>,
}

/// nginx serving `git http-backend` for the bare repositories under a root; see the
/// module docs. The repository `ROOT/app.git` is `https_url("app")`.
pub struct GitHttpServer {
    root: PathBuf,
    certs: Certificates,
    https_port: u16,
    mtls_port: u16,
    http_port: u16,
    htpasswd: PathBuf,
    /// Basic-auth users and their current passwords (the first one is [`HTTP_USER`]).
    users: Mutex<BTreeMap<String, String>>,
    access_log: LogFile,
    error_log: PathBuf,
    stopped: AtomicBool,
    /// nginx, then the fcgiwrap processes. Before `dir`: killed before their files go.
    procs: Vec<Proc>,
    dir: ServerDir,
}

impl GitHttpServer {
    /// Starts nginx and fcgiwrap serving the repositories under `root` (which must exist).
    pub fn start(root: &Path) -> Result<Self> {
        let root = root
            .canonicalize()
            .with_context(|| format!("repository root {}", root.display()))?;
        let dir = ServerDir::new("argosy-git-http-")?;
        let d = dir.path();
        for sub in ["home", "tmp"] {
            fs::create_dir_all(d.join(sub)).with_context(|| format!("creating {sub}"))?;
        }
        let certs = Certificates::generate(d)?;
        let backend = git_exec_path()?.join("git-http-backend");
        if !backend.is_file() {
            bail!(
                "{} not found: run scripts/install-git-servers.sh",
                backend.display()
            );
        }
        let htpasswd = d.join("htpasswd");
        let users = BTreeMap::from([(HTTP_USER.to_owned(), format!("pw-{}", token()))]);
        write_htpasswd(&htpasswd, &users)?;

        // fcgiwrap: two processes accept on one socket the harness binds (fcgiwrap takes a
        // listening socket on stdin when given no -s), so each is a direct child started
        // with a parent-death signal; two so a clone and a ref check can run at once.
        let socket = d.join("fcgiwrap.sock");
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
        let mut procs = Vec::new();
        for _ in 0..2 {
            let fd = OwnedFd::from(listener.try_clone().context("duplicating the socket")?);
            let mut cmd = server_command("/usr/sbin/fcgiwrap");
            cmd.args(["-c", "1"]).stdin(fd);
            procs.push(Proc::spawn("fcgiwrap", cmd, &d.join("fcgiwrap.log"))?);
        }
        drop(listener);

        let error_log = d.join("error.log");
        let access_log = d.join("access.log");
        let (nginx, ports) = start_nginx(d, 3, &error_log, |ports| {
            nginx_conf(&NginxConf {
                dir: d,
                root: &root,
                backend: &backend,
                socket: &socket,
                certs: &certs,
                htpasswd: &htpasswd,
                access_log: &access_log,
                error_log: &error_log,
                ports: (ports[0], ports[1], ports[2]),
            })
        })?;
        procs.insert(0, nginx);
        Ok(GitHttpServer {
            root,
            certs,
            https_port: ports[0],
            mtls_port: ports[1],
            http_port: ports[2],
            htpasswd,
            users: Mutex::new(users),
            access_log: LogFile::new(access_log),
            error_log,
            stopped: AtomicBool::new(false),
            procs,
            dir,
        })
    }

    /// The directory whose bare repositories are served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's temp dir: configuration, keys and logs (kept with `ARGOSY_KEEP_TEMP=1`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `https://127.0.0.1:PORT/REPO.git` on the basic-auth listener (no credentials in it).
    pub fn https_url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/{}", self.https_port, repo_path(repo))
    }

    /// [`GitHttpServer::https_url`] with the current credentials of [`username`] in it.
    ///
    /// [`username`]: GitHttpServer::username
    pub fn https_url_with_credentials(&self, repo: &str) -> String {
        format!(
            "https://{}:{}@127.0.0.1:{}/{}",
            percent_encode(&self.username()),
            percent_encode(&self.password()),
            self.https_port,
            repo_path(repo)
        )
    }

    /// `https://127.0.0.1:PORT/REPO.git` on the listener that requires a client certificate.
    pub fn mtls_url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/{}", self.mtls_port, repo_path(repo))
    }

    /// `http://127.0.0.1:PORT/REPO.git` on the plain listener (no auth).
    pub fn http_url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.http_port, repo_path(repo))
    }

    /// The ports of the HTTPS (basic auth), mTLS and plain HTTP listeners.
    pub fn ports(&self) -> (u16, u16, u16) {
        (self.https_port, self.mtls_port, self.http_port)
    }

    /// The certificates the HTTPS listeners use and accept.
    pub fn certificates(&self) -> &Certificates {
        &self.certs
    }

    /// The CA of the server certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        self.certs.ca_pem()
    }

    /// The client certificate the mTLS listener accepts (PEM).
    pub fn client_cert_pem(&self) -> &str {
        self.certs.client_cert_pem()
    }

    /// The key of [`GitHttpServer::client_cert_pem`] (PEM).
    pub fn client_key_pem(&self) -> &str {
        self.certs.client_key_pem()
    }

    /// The basic-auth user the server starts with.
    pub fn username(&self) -> String {
        HTTP_USER.to_owned()
    }

    /// The current password of [`GitHttpServer::username`].
    pub fn password(&self) -> String {
        lock(&self.users)
            .get(HTTP_USER)
            .cloned()
            .unwrap_or_default()
    }

    /// Sets `user`'s password (adding the user if new). nginx reads the htpasswd file on
    /// every request, so the next request must use the new password: the old one fails.
    pub fn set_password(&self, user: &str, password: &str) -> Result<()> {
        if user.is_empty() || user.contains([':', '\n']) {
            bail!("invalid basic-auth user name {user:?}");
        }
        let mut users = lock(&self.users);
        users.insert(user.to_owned(), password.to_owned());
        write_htpasswd(&self.htpasswd, &users)
    }

    /// Removes `user` from the htpasswd file: its requests fail from now on.
    pub fn remove_user(&self, user: &str) -> Result<()> {
        let mut users = lock(&self.users);
        users.remove(user);
        write_htpasswd(&self.htpasswd, &users)
    }

    /// The access log since the last [`GitHttpServer::reset_requests`], every listener.
    ///
    /// nginx logs a request right after sending its last byte, in the same step: with its
    /// one process, a request it answers after that is logged after it. So unless the
    /// server is stopped, this first sends such a request (unlogged), and then sees every
    /// request whose response a client has finished reading.
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        if !self.stopped.load(Ordering::SeqCst) {
            self.log_barrier();
        }
        self.access_log
            .lines()
            .iter()
            .filter_map(|line| self.parse_access_line(line))
            .collect()
    }

    /// How many requests (any listener, any status) were for repository `repo` (`app` or
    /// `app.git`: paths `/app.git/...`) since the last [`GitHttpServer::reset_requests`].
    /// A `git ls-remote` over HTTPS is 2 or 3 of them (a 401 challenge first, then
    /// `info/refs` and, with protocol v2, one `git-upload-pack` POST).
    pub fn requests(&self, repo: &str) -> usize {
        let path = format!("/{}", repo_path(repo));
        self.access_log()
            .iter()
            .filter(|e| e.path == path || e.path.starts_with(&format!("{path}/")))
            .count()
    }

    /// Counts from now on: [`GitHttpServer::requests`] and [`GitHttpServer::access_log`]
    /// see only later requests.
    pub fn reset_requests(&self) {
        if !self.stopped.load(Ordering::SeqCst) {
            self.log_barrier();
        }
        self.access_log.reset();
    }

    /// nginx's error log (auth failures, missing client certificates, backend errors).
    pub fn error_log(&self) -> String {
        fs::read_to_string(&self.error_log).unwrap_or_default()
    }

    /// SIGSTOPs nginx and fcgiwrap: connections are accepted by the kernel and then hang.
    pub fn stop(&self) -> Result<()> {
        self.stopped.store(true, Ordering::SeqCst);
        stop_or_resume(&self.roots(), true)
    }

    /// SIGCONTs what [`GitHttpServer::stop`] stopped; hung connections are then served.
    pub fn resume(&self) -> Result<()> {
        stop_or_resume(&self.roots(), false)?;
        self.stopped.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// The server's processes now (per-connection children included).
    pub fn pids(&self) -> Vec<u32> {
        self.procs
            .iter()
            .flat_map(|p| process_tree(p.pid()))
            .collect()
    }

    fn roots(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }

    fn log_barrier(&self) {
        log_barrier(self.http_port);
    }

    fn parse_access_line(&self, line: &str) -> Option<AccessLogEntry> {
        parse_access_line(line, |port| match port {
            p if p == self.https_port => Listener::Https,
            p if p == self.mtls_port => Listener::Mtls,
            _ => Listener::Http,
        })
    }
}

/// `GET BARRIER_PATH` on the plain listener at `port` of an nginx that answers it without
/// logging (see [`GitHttpServer::access_log`]); errors only mean the counts may miss a request
/// finished in the last microseconds.
pub(crate) fn log_barrier(port: u16) {
    let barrier = || -> std::io::Result<()> {
        let mut stream = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, port).into(),
            Duration::from_secs(2),
        )?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(
            format!("GET {BARRIER_PATH} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
        )?;
        stream.shutdown(Shutdown::Write)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok(())
    };
    let _ = barrier();
}

/// One line of the access log format of [`nginx_main_conf`]; `listener` says which listener
/// a port is.
pub(crate) fn parse_access_line(
    line: &str,
    listener: impl Fn(u16) -> Listener,
) -> Option<AccessLogEntry> {
    // log_format requests: `$server_port $status $request_method $request_uri "$remote_user"`
    let mut fields = line.splitn(5, ' ');
    let port: u16 = fields.next()?.parse().ok()?;
    let status = fields.next()?.parse().ok()?;
    let method = fields.next()?.to_owned();
    let uri = fields.next()?;
    let user = fields.next()?.trim_matches('"');
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    Some(AccessLogEntry {
        listener: listener(port),
        status,
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        user: (!user.is_empty() && user != "-").then(|| user.to_owned()),
    })
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        // Before the temp dir (a later field) is removed; a stopped process needs no
        // SIGCONT to die of SIGKILL.
        self.procs.clear();
    }
}

/// Writes the htpasswd file (apr1 hashes by `openssl passwd`) by rename, so nginx never
/// reads a half-written one.
pub(crate) fn write_htpasswd(path: &Path, users: &BTreeMap<String, String>) -> Result<()> {
    let mut text = String::new();
    for (user, password) in users {
        let mut child = Command::new("openssl")
            .args(["passwd", "-apr1", "-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting openssl passwd")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(format!("{password}\n").as_bytes())
                .context("writing to openssl passwd")?;
        }
        let out = child
            .wait_with_output()
            .context("waiting for openssl passwd")?;
        if !out.status.success() {
            bail!(
                "openssl passwd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = writeln!(
            text,
            "{user}:{}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

struct NginxConf<'a> {
    dir: &'a Path,
    root: &'a Path,
    backend: &'a Path,
    socket: &'a Path,
    certs: &'a Certificates,
    htpasswd: &'a Path,
    access_log: &'a Path,
    error_log: &'a Path,
    /// HTTPS (basic auth), mTLS, plain HTTP.
    ports: (u16, u16, u16),
}

fn nginx_conf(c: &NginxConf<'_>) -> String {
    let d = c.dir.display();
    // Passed to git http-backend as its environment (fcgiwrap gives a CGI only the FastCGI
    // parameters): the repositories, every one exported, the client's protocol version
    // (v2 needs GIT_PROTOCOL), and an isolated HOME / no system config.
    let backend = format!(
        "fastcgi_pass unix:{socket};
            fastcgi_buffering off;
            fastcgi_read_timeout 300s;
            fastcgi_param SCRIPT_FILENAME {backend};
            fastcgi_param GIT_PROJECT_ROOT {root};
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_PROTOCOL $http_git_protocol;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param HOME {d}/home;
            fastcgi_param PATH {path};
            fastcgi_param PATH_INFO $uri;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param REMOTE_USER $remote_user;
            fastcgi_param REMOTE_ADDR $remote_addr;",
        socket = c.socket.display(),
        backend = c.backend.display(),
        root = c.root.display(),
        path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned()),
    );
    let tls = c.certs.nginx_server_tls();
    let barrier = nginx_barrier_location();
    let (https, mtls, http) = c.ports;
    let servers = format!(
        r#"    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{https} ssl;
        {tls}
        auth_basic "git";
        auth_basic_user_file {htpasswd};
        location / {{
            {backend}
        }}
    }}
    server {{
        listen 127.0.0.1:{mtls} ssl;
        {tls}
        ssl_client_certificate {client_ca};
        ssl_verify_client on;
        location / {{
            {backend}
        }}
    }}
    server {{
        listen 127.0.0.1:{http};
        {barrier}
        location / {{
            {backend}
        }}
    }}"#,
        htpasswd = c.htpasswd.display(),
        client_ca = c.certs.client_ca_path().display(),
    );
    nginx_main_conf(c.dir, c.error_log, c.access_log, &servers)
}

/// The `location` of an nginx `server` that answers [`BARRIER_PATH`] with 204 and does not
/// log it ([`log_barrier`]).
pub(crate) fn nginx_barrier_location() -> String {
    format!(
        "location = {BARRIER_PATH} {{
            access_log off;
            return 204;
        }}"
    )
}

// ---------------------------------------------------------------------------------------
// SSH: sshd
// ---------------------------------------------------------------------------------------

/// OpenSSH's `sshd` on a free loopback port, for the bare repositories under a root; see
/// the module docs. Logins as the current user (root here) with one client key only.
pub struct GitSshServer {
    root: PathBuf,
    port: u16,
    user: String,
    known_hosts_line: String,
    wrong_known_hosts_line: String,
    client_key_path: PathBuf,
    client_private_key_pem: String,
    sshd_log: LogFile,
    commands_log: LogFile,
    procs: Vec<Proc>,
    dir: ServerDir,
}

impl GitSshServer {
    /// Starts sshd serving the repositories under `root` (which must exist).
    pub fn start(root: &Path) -> Result<Self> {
        let root = root
            .canonicalize()
            .with_context(|| format!("repository root {}", root.display()))?;
        let dir = ServerDir::new("argosy-git-ssh-")?;
        let d = dir.path();
        let keygen = |name: &str, comment: &str| {
            run(
                "ssh-keygen",
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                    .arg(d.join(name)),
            )
        };
        keygen("host_key", "argosy-tests-host")?;
        keygen("wrong_host_key", "argosy-tests-wrong-host")?;
        keygen("client_key", "argosy-tests-client")?;
        let read = |name: &str| {
            fs::read_to_string(d.join(name)).with_context(|| format!("reading {name}"))
        };
        let public = |name: &str| -> Result<String> {
            let line = read(name)?;
            let mut fields = line.split_whitespace();
            match (fields.next(), fields.next()) {
                (Some(kind), Some(key)) => Ok(format!("{kind} {key}")),
                _ => bail!("unexpected public key in {name}: {line}"),
            }
        };
        let authorized = d.join("authorized_keys");
        fs::write(&authorized, read("client_key.pub")?).context("writing authorized_keys")?;
        let user = run("id -un", Command::new("id").arg("-un"))?
            .trim()
            .to_owned();
        if running_as_root() {
            // sshd's privilege separation directory; Debian's service unit creates it.
            fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
            fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755))
                .context("chmod /run/sshd")?;
        }
        // Every command a client runs goes through this script, which logs it first (sshd
        // itself does not log commands below LogLevel DEBUG): the count per repository.
        let commands = d.join("commands.log");
        let wrapper = d.join("log-command.sh");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$SSH_ORIGINAL_COMMAND\" >> '{}'\nexec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
                commands.display()
            ),
        )
        .context("writing log-command.sh")?;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
            .context("chmod log-command.sh")?;

        let log = d.join("sshd.log");
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let config = d.join("sshd_config");
            fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1:{port}
HostKey {host_key}
PidFile {d}/sshd.pid
AuthorizedKeysFile {authorized}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers {user}
LogLevel VERBOSE
AcceptEnv GIT_PROTOCOL
ForceCommand {wrapper}
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 200
",
                    host_key = d.join("host_key").display(),
                    d = d.display(),
                    authorized = authorized.display(),
                    wrapper = wrapper.display(),
                ),
            )
            .context("writing sshd_config")?;
            let _ = fs::remove_file(&log);
            let mut cmd = server_command("/usr/sbin/sshd");
            // sshd re-executes itself per connection, which needs its absolute path.
            cmd.args(["-D", "-E"])
                .arg(&log)
                .arg("-f")
                .arg(&config)
                .current_dir(d);
            let mut sshd = Proc::spawn("sshd", cmd, &d.join("sshd.out"))?;
            let listening = format!("Server listening on 127.0.0.1 port {port}.");
            let ready = wait_ready(&mut sshd, &log, || {
                fs::read_to_string(&log).is_ok_and(|l| l.contains(&listening)) && ssh_banner(port)
            });
            match ready {
                Ok(()) => {
                    let server = GitSshServer {
                        root,
                        port,
                        known_hosts_line: format!("[127.0.0.1]:{port} {}", public("host_key.pub")?),
                        wrong_known_hosts_line: format!(
                            "[127.0.0.1]:{port} {}",
                            public("wrong_host_key.pub")?
                        ),
                        client_private_key_pem: read("client_key")?,
                        client_key_path: d.join("client_key"),
                        user,
                        sshd_log: LogFile::new(log),
                        commands_log: LogFile::new(commands),
                        procs: vec![sshd],
                        dir,
                    };
                    // The readiness probe's connection is not the test's.
                    server.sshd_log.reset();
                    return Ok(server);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("sshd did not start")))
    }

    /// The directory whose bare repositories are served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's temp dir: configuration, keys and logs (kept with `ARGOSY_KEEP_TEMP=1`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port sshd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user to log in as (the one running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `ssh://USER@127.0.0.1:PORT/ROOT/REPO.git`.
    pub fn url(&self, repo: &str) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}/{}",
            self.user,
            self.port,
            self.root.display(),
            repo_path(repo)
        )
    }

    /// The client's private key in OpenSSH format, as Argo CD's `sshPrivateKey` holds it.
    pub fn client_private_key_pem(&self) -> &str {
        &self.client_private_key_pem
    }

    /// The file of [`GitSshServer::client_private_key_pem`] (mode 0600, as ssh demands).
    pub fn client_key_path(&self) -> &Path {
        &self.client_key_path
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...`: the server's host key as a line of Argo CD's
    /// `argocd-ssh-known-hosts-cm` (and of an OpenSSH known_hosts file).
    pub fn known_hosts_line(&self) -> &str {
        &self.known_hosts_line
    }

    /// The same host with another key: a client trusting it must refuse the server.
    pub fn wrong_known_hosts_line(&self) -> &str {
        &self.wrong_known_hosts_line
    }

    /// A `GIT_SSH_COMMAND` that logs in with the client key, trusts only the hosts in
    /// `known_hosts` (strictly) and never prompts; no user or system ssh configuration.
    pub fn ssh_command(&self, known_hosts: &Path) -> String {
        format!(
            "ssh -F /dev/null -i '{}' -o IdentitiesOnly=yes -o UserKnownHostsFile='{}' \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes",
            self.client_key_path.display(),
            known_hosts.display()
        )
    }

    /// TCP connections sshd accepted since the last reset (`Connection from` lines).
    pub fn connections(&self) -> usize {
        self.sshd_log
            .lines()
            .iter()
            .filter(|l| l.starts_with("Connection from "))
            .count()
    }

    /// Successful public-key logins since the last reset.
    pub fn logins(&self) -> usize {
        self.sshd_log
            .lines()
            .iter()
            .filter(|l| l.starts_with("Accepted publickey for "))
            .count()
    }

    /// Git commands (`git-upload-pack '/ROOT/REPO.git'`) run for repository `repo` since
    /// the last reset.
    pub fn requests(&self, repo: &str) -> usize {
        let path = format!("/{}", repo_path(repo));
        self.commands_log
            .lines()
            .iter()
            .filter(|l| {
                let l = l.trim_end_matches('\'');
                l.ends_with(&path) || l.ends_with(&format!("{path}/"))
            })
            .count()
    }

    /// Counts from now on ([`connections`], [`logins`], [`requests`]).
    ///
    /// [`connections`]: GitSshServer::connections
    /// [`logins`]: GitSshServer::logins
    /// [`requests`]: GitSshServer::requests
    pub fn reset_requests(&self) {
        self.sshd_log.reset();
        self.commands_log.reset();
    }

    /// sshd's log (connections, logins, refusals).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.sshd_log.path).unwrap_or_default()
    }

    /// SIGSTOPs sshd and its sessions: new connections hang before the SSH banner.
    pub fn stop(&self) -> Result<()> {
        stop_or_resume(&self.roots(), true)
    }

    /// SIGCONTs what [`GitSshServer::stop`] stopped.
    pub fn resume(&self) -> Result<()> {
        stop_or_resume(&self.roots(), false)
    }

    /// The server's processes now (per-connection children included).
    pub fn pids(&self) -> Vec<u32> {
        self.procs
            .iter()
            .flat_map(|p| process_tree(p.pid()))
            .collect()
    }

    fn roots(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }
}

impl Drop for GitSshServer {
    fn drop(&mut self) {
        // Before the temp dir (a later field) is removed; a stopped process needs no
        // SIGCONT to die of SIGKILL.
        self.procs.clear();
    }
}

/// Whether an SSH server answers on `port` with its version banner.
fn ssh_banner(port: u16) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, port).into(),
            Duration::from_millis(500),
        )?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut banner = [0u8; 8];
        stream.read_exact(&mut banner)?;
        Ok(&banner == b"SSH-2.0-")
    };
    probe().unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// git://: git daemon
// ---------------------------------------------------------------------------------------

/// `git daemon` exporting every repository under a root on a free loopback port.
pub struct GitDaemon {
    root: PathBuf,
    port: u16,
    log: LogFile,
    procs: Vec<Proc>,
    dir: ServerDir,
}

impl GitDaemon {
    /// Starts `git daemon` for the repositories under `root` (which must exist).
    pub fn start(root: &Path) -> Result<Self> {
        let root = root
            .canonicalize()
            .with_context(|| format!("repository root {}", root.display()))?;
        let dir = ServerDir::new("argosy-git-daemon-")?;
        let d = dir.path();
        let log = d.join("daemon.log");
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let _ = fs::remove_file(&log);
            // `git_command`'s isolated environment, started with a parent-death signal.
            let isolated = git_command(d);
            let mut cmd = server_command("git");
            for (key, value) in isolated.get_envs() {
                match value {
                    Some(value) => cmd.env(key, value),
                    None => cmd.env_remove(key),
                };
            }
            cmd.args(["daemon", "--reuseaddr", "--export-all", "--verbose"])
                .arg(format!("--base-path={}", root.display()))
                .args(["--listen=127.0.0.1", &format!("--port={port}")])
                .current_dir(d);
            let mut daemon = Proc::spawn("git daemon", cmd, &log)?;
            // "Ready to rumble" comes after the bind.
            let ready = wait_ready(&mut daemon, &log, || {
                fs::read_to_string(&log).is_ok_and(|l| l.contains("Ready to rumble"))
                    && tcp_accepts(port)
            });
            match ready {
                Ok(()) => {
                    let daemon = GitDaemon {
                        root,
                        port,
                        log: LogFile::new(log),
                        procs: vec![daemon],
                        dir,
                    };
                    daemon.log.reset();
                    return Ok(daemon);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("git daemon did not start")))
    }

    /// The directory whose bare repositories are served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's temp dir: configuration, keys and logs (kept with `ARGOSY_KEEP_TEMP=1`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `git://127.0.0.1:PORT/REPO.git`.
    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{}", self.port, repo_path(repo))
    }

    /// Requests (`upload-pack`) for `repo` since the last reset.
    pub fn requests(&self, repo: &str) -> usize {
        let quoted = format!("'/{}'", repo_path(repo));
        self.log
            .lines()
            .iter()
            .filter(|l| l.contains("Request ") && l.contains(&quoted))
            .count()
    }

    /// Counts from now on.
    pub fn reset_requests(&self) {
        self.log.reset();
    }

    /// SIGSTOPs the daemon and its connections.
    pub fn stop(&self) -> Result<()> {
        stop_or_resume(&self.roots(), true)
    }

    /// SIGCONTs what [`GitDaemon::stop`] stopped.
    pub fn resume(&self) -> Result<()> {
        stop_or_resume(&self.roots(), false)
    }

    /// The server's processes now (per-connection children included).
    pub fn pids(&self) -> Vec<u32> {
        self.procs
            .iter()
            .flat_map(|p| process_tree(p.pid()))
            .collect()
    }

    fn roots(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        // Before the temp dir (a later field) is removed; a stopped process needs no
        // SIGCONT to die of SIGKILL.
        self.procs.clear();
    }
}

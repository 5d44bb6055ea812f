//! Self-tests of the Git server harness (`argosy_tests::git_servers`) with the real `git`
//! CLI: they prove the servers really serve, really enforce their authentication (basic
//! auth, client certificates, SSH keys and host keys) and really hang when stopped, so the
//! Argosy tests built on them test what they claim.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use argosy_tests::git_servers::{
    BoundedOutput, Certificates, GitDaemon, GitHttpServer, GitRepoDir, GitSshServer, Listener,
    git_command, run_bounded,
};
use tempfile::TempDir;

/// Bound on every git command that should finish (they take milliseconds here).
const GIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request to a stopped server is given before the test calls it hung.
const HANG: Duration = Duration::from_secs(3);

/// A repository root with one repository `app` holding one commit.
struct Fixture {
    root: TempDir,
    home: TempDir,
    app: GitRepoDir,
    head: String,
}

fn fixture() -> Result<Fixture> {
    let root = TempDir::new().context("repository root")?;
    let home = TempDir::new().context("git HOME")?;
    let app = GitRepoDir::init_bare(root.path(), "app")?;
    let head = app.commit_files(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "first")?;
    Ok(Fixture {
        root,
        home,
        app,
        head,
    })
}

/// `git ARGS...` in the isolated environment, bounded by `timeout`.
fn git_within(
    home: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    timeout: Duration,
) -> BoundedOutput {
    let mut cmd = git_command(home);
    cmd.args(args);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    run_bounded(cmd, timeout).expect("git runs")
}

fn git(home: &Path, args: &[&str]) -> BoundedOutput {
    git_within(home, args, &[], GIT_TIMEOUT)
}

/// `git -c http.sslCAInfo=CA ls-remote URL`.
fn ls_remote_https(f: &Fixture, server: &GitHttpServer, url: &str) -> BoundedOutput {
    let ca = format!(
        "http.sslCAInfo={}",
        server.certificates().ca_path().display()
    );
    git(f.home.path(), &["-c", &ca, "ls-remote", url])
}

/// The output lists `commit` as the tip of main.
fn lists_head(out: &BoundedOutput, commit: &str) -> bool {
    out.stdout
        .lines()
        .any(|l| l == format!("{commit}\trefs/heads/main"))
}

#[test]
fn https_basic_auth_accepts_the_right_credentials_and_refuses_wrong_ones() -> Result<()> {
    let f = fixture()?;
    let server = GitHttpServer::start(f.root.path())?;

    let ok = ls_remote_https(&f, &server, &server.https_url_with_credentials("app"));
    assert!(ok.success(), "right credentials: {ok:?}");
    assert!(
        lists_head(&ok, &f.head),
        "ls-remote shows the commit: {ok:?}"
    );

    let wrong = format!(
        "https://{}:not-the-password@127.0.0.1:{}/app.git",
        server.username(),
        server.ports().0
    );
    let refused = ls_remote_https(&f, &server, &wrong);
    assert!(!refused.success(), "wrong password accepted: {refused:?}");
    assert!(
        refused.stderr.contains("Authentication failed"),
        "{refused:?}"
    );
    assert!(
        refused.stdout.is_empty(),
        "no refs without auth: {refused:?}"
    );

    let anonymous = ls_remote_https(&f, &server, &server.https_url("app"));
    assert!(
        !anonymous.success(),
        "no credentials accepted: {anonymous:?}"
    );

    // Real TLS: without the test CA the client refuses the server's certificate.
    let untrusted = git(
        f.home.path(),
        &["ls-remote", &server.https_url_with_credentials("app")],
    );
    assert!(
        !untrusted.success(),
        "unverified TLS accepted: {untrusted:?}"
    );
    assert!(
        untrusted.stderr.contains("certificate"),
        "the failure is the certificate: {untrusted:?}"
    );

    // The server saw the refusals as such.
    let log = server.access_log();
    assert!(
        log.iter().any(|e| e.listener == Listener::Https
            && e.status == 401
            && e.user.as_deref() == Some(server.username().as_str())),
        "a 401 for the wrong password: {log:?}"
    );
    assert!(
        log.iter()
            .any(|e| e.status == 200 && e.path == "/app.git/info/refs"),
        "{log:?}"
    );
    Ok(())
}

#[test]
fn set_password_rotates_credentials_without_restart() -> Result<()> {
    let f = fixture()?;
    let server = GitHttpServer::start(f.root.path())?;
    let old_url = server.https_url_with_credentials("app");
    assert!(ls_remote_https(&f, &server, &old_url).success());

    server.set_password(&server.username(), "rotated p@ss:word")?;
    assert_eq!(server.password(), "rotated p@ss:word");
    let old = ls_remote_https(&f, &server, &old_url);
    assert!(!old.success(), "the old password still works: {old:?}");
    let new_url = server.https_url_with_credentials("app");
    assert_ne!(new_url, old_url);
    let new = ls_remote_https(&f, &server, &new_url);
    assert!(new.success(), "the new password fails: {new:?}");
    assert!(lists_head(&new, &f.head));

    // A second user, then removed.
    server.set_password("reader", "reader-pw")?;
    let reader = format!(
        "https://reader:reader-pw@127.0.0.1:{}/app.git",
        server.ports().0
    );
    assert!(ls_remote_https(&f, &server, &reader).success());
    server.remove_user("reader")?;
    assert!(!ls_remote_https(&f, &server, &reader).success());
    Ok(())
}

#[test]
fn mtls_listener_requires_the_client_certificate() -> Result<()> {
    let f = fixture()?;
    let server = GitHttpServer::start(f.root.path())?;
    let certs = server.certificates();
    let ca = format!("http.sslCAInfo={}", certs.ca_path().display());
    let url = server.mtls_url("app");

    let without = git(f.home.path(), &["-c", &ca, "ls-remote", &url]);
    assert!(
        !without.success(),
        "no client certificate accepted: {without:?}"
    );
    assert!(without.stdout.is_empty());

    let cert = format!("http.sslCert={}", certs.client_cert_path().display());
    let key = format!("http.sslKey={}", certs.client_key_path().display());
    let with = git(
        f.home.path(),
        &["-c", &ca, "-c", &cert, "-c", &key, "ls-remote", &url],
    );
    assert!(with.success(), "client certificate refused: {with:?}");
    assert!(lists_head(&with, &f.head));

    // A certificate from a CA the server does not trust is refused too.
    let stranger_dir = TempDir::new()?;
    let stranger = Certificates::generate(stranger_dir.path())?;
    let cert = format!("http.sslCert={}", stranger.client_cert_path().display());
    let key = format!("http.sslKey={}", stranger.client_key_path().display());
    let foreign = git(
        f.home.path(),
        &["-c", &ca, "-c", &cert, "-c", &key, "ls-remote", &url],
    );
    assert!(
        !foreign.success(),
        "untrusted client certificate accepted: {foreign:?}"
    );

    // The PEM accessors hold what the files hold.
    assert!(
        server
            .client_cert_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(server.client_key_pem().contains("PRIVATE KEY-----"));
    assert!(server.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(server.ca_pem(), std::fs::read_to_string(certs.ca_path())?);

    let log = server.access_log();
    assert!(
        log.iter()
            .any(|e| e.listener == Listener::Mtls && e.status == 400),
        "nginx refused the request without a certificate: {log:?}"
    );
    assert!(
        log.iter()
            .any(|e| e.listener == Listener::Mtls && e.status == 200),
        "{log:?}"
    );
    Ok(())
}

#[test]
fn ssh_needs_the_client_key_and_the_right_host_key() -> Result<()> {
    let f = fixture()?;
    let server = GitSshServer::start(f.root.path())?;
    assert!(
        server
            .known_hosts_line()
            .starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", server.port()))
    );
    assert!(
        server
            .client_private_key_pem()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    let dir = TempDir::new()?;
    let right = dir.path().join("known_hosts");
    std::fs::write(&right, format!("{}\n", server.known_hosts_line()))?;
    let wrong = dir.path().join("wrong_known_hosts");
    std::fs::write(&wrong, format!("{}\n", server.wrong_known_hosts_line()))?;
    let url = server.url("app");
    assert!(url.starts_with(&format!(
        "ssh://{}@127.0.0.1:{}/",
        server.user(),
        server.port()
    )));

    let ok = git_within(
        f.home.path(),
        &["ls-remote", &url],
        &[("GIT_SSH_COMMAND", &server.ssh_command(&right))],
        GIT_TIMEOUT,
    );
    assert!(ok.success(), "right key and host key: {ok:?}");
    assert!(lists_head(&ok, &f.head));
    assert_eq!(server.requests("app"), 1, "one upload-pack over ssh");
    assert_eq!(server.logins(), 1);

    let impostor = git_within(
        f.home.path(),
        &["ls-remote", &url],
        &[("GIT_SSH_COMMAND", &server.ssh_command(&wrong))],
        GIT_TIMEOUT,
    );
    assert!(
        !impostor.success(),
        "a wrong host key accepted: {impostor:?}"
    );
    assert!(
        impostor.stderr.contains("Host key verification failed")
            || impostor.stderr.contains("IDENTIFICATION HAS CHANGED"),
        "{impostor:?}"
    );

    // Another client key (not in authorized_keys) is refused by the server.
    let other_key = dir.path().join("other_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()?;
    assert!(keygen.success());
    let command = server.ssh_command(&right).replace(
        &server.client_key_path().display().to_string(),
        &other_key.display().to_string(),
    );
    let unknown = git_within(
        f.home.path(),
        &["ls-remote", &url],
        &[("GIT_SSH_COMMAND", &command)],
        GIT_TIMEOUT,
    );
    assert!(
        !unknown.success(),
        "an unknown client key accepted: {unknown:?}"
    );
    assert!(unknown.stderr.contains("Permission denied"), "{unknown:?}");

    // Three connections, one login, still one command.
    assert_eq!(server.connections(), 3, "{}", server.log());
    assert_eq!(server.logins(), 1, "{}", server.log());
    assert_eq!(server.requests("app"), 1);
    server.reset_requests();
    assert_eq!(server.connections(), 0);
    Ok(())
}

#[test]
fn stopped_http_server_hangs_and_serves_again_after_resume() -> Result<()> {
    let f = fixture()?;
    let server = GitHttpServer::start(f.root.path())?;
    let url = server.http_url("app");
    assert!(git(f.home.path(), &["ls-remote", &url]).success());

    server.stop()?;
    let hung = git_within(f.home.path(), &["ls-remote", &url], &[], HANG);
    assert!(
        hung.timed_out(),
        "a stopped server must hang, not answer or refuse: {hung:?}"
    );
    assert!(hung.elapsed >= HANG);
    // The low-speed limit is how a git client gives up on such a server by itself.
    let gave_up = git_within(
        f.home.path(),
        &[
            "-c",
            "http.lowSpeedLimit=1",
            "-c",
            "http.lowSpeedTime=1",
            "ls-remote",
            &url,
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(
        !gave_up.success() && !gave_up.timed_out(),
        "git's low-speed timeout ends the hang: {gave_up:?}"
    );

    server.resume()?;
    let ok = git(f.home.path(), &["ls-remote", &url]);
    assert!(ok.success(), "after resume: {ok:?}");
    assert!(lists_head(&ok, &f.head));
    Ok(())
}

#[test]
fn stopped_ssh_server_hangs_and_serves_again_after_resume() -> Result<()> {
    let f = fixture()?;
    let server = GitSshServer::start(f.root.path())?;
    let dir = TempDir::new()?;
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", server.known_hosts_line()))?;
    let ssh = server.ssh_command(&known_hosts);
    let url = server.url("app");

    server.stop()?;
    let hung = git_within(
        f.home.path(),
        &["ls-remote", &url],
        &[("GIT_SSH_COMMAND", &ssh)],
        HANG,
    );
    assert!(hung.timed_out(), "a stopped sshd must hang: {hung:?}");

    server.resume()?;
    let ok = git_within(
        f.home.path(),
        &["ls-remote", &url],
        &[("GIT_SSH_COMMAND", &ssh)],
        GIT_TIMEOUT,
    );
    assert!(ok.success(), "after resume: {ok:?}");
    assert!(lists_head(&ok, &f.head));
    Ok(())
}

#[test]
fn requests_are_counted_per_repository() -> Result<()> {
    let f = fixture()?;
    // A name that the first one is a prefix of: counted apart.
    let app2 = GitRepoDir::init_bare(f.root.path(), "app2")?;
    app2.commit_files(&[("a.txt", "a")], "app2")?;
    let server = GitHttpServer::start(f.root.path())?;
    assert_eq!(server.requests("app"), 0);

    let clone = f.home.path().join("clone");
    let out = git(
        f.home.path(),
        &[
            "clone",
            "--bare",
            &server.http_url("app"),
            &clone.display().to_string(),
        ],
    );
    assert!(out.success(), "{out:?}");
    // Protocol v2: info/refs, ls-refs, fetch.
    let cloned = server.requests("app");
    assert!(cloned >= 2, "clone requests seen: {cloned}");
    assert_eq!(server.requests("app.git"), cloned, "both spellings");
    assert_eq!(server.requests("app2"), 0);

    // A fetch with nothing new still asks for the refs.
    let fetch = git(
        f.home.path(),
        &[
            "--git-dir",
            &clone.display().to_string(),
            "fetch",
            &server.http_url("app"),
        ],
    );
    assert!(fetch.success(), "{fetch:?}");
    assert!(server.requests("app") > cloned);

    server.reset_requests();
    assert_eq!(server.requests("app"), 0);
    assert!(git(f.home.path(), &["ls-remote", &server.http_url("app2")]).success());
    assert_eq!(server.requests("app"), 0);
    assert!(server.requests("app2") >= 1);
    assert!(
        server
            .access_log()
            .iter()
            .all(|e| e.listener == Listener::Http && e.user.is_none())
    );
    Ok(())
}

#[test]
fn git_daemon_serves_the_root() -> Result<()> {
    let f = fixture()?;
    let daemon = GitDaemon::start(f.root.path())?;
    let out = git(f.home.path(), &["ls-remote", &daemon.url("app")]);
    assert!(out.success(), "{out:?}");
    assert!(lists_head(&out, &f.head));
    assert_eq!(daemon.requests("app"), 1);
    let missing = git(f.home.path(), &["ls-remote", &daemon.url("missing")]);
    assert!(!missing.success());
    Ok(())
}

#[test]
fn repo_helpers_commit_and_push() -> Result<()> {
    let f = fixture()?;
    assert_eq!(f.app.head()?, f.head);
    assert_eq!(f.app.name(), "app");
    assert_eq!(f.app.path(), f.root.path().join("app.git"));

    let second = f.app.commit_files(
        &[
            ("deploy/cm.yaml", "kind: ConfigMap\n# two\n"),
            ("new/file.txt", "x"),
        ],
        "second",
    )?;
    assert_ne!(second, f.head);
    assert_eq!(f.app.head()?, second);
    let third = f.app.commit_with("delete", |work| {
        std::fs::remove_file(work.join("new/file.txt")).context("rm")
    })?;
    let files = git(
        f.home.path(),
        &[
            "--git-dir",
            &f.app.path().display().to_string(),
            "ls-tree",
            "-r",
            "--name-only",
            &third,
        ],
    );
    assert_eq!(files.stdout, "deploy/cm.yaml\n");
    let content = git(
        f.home.path(),
        &[
            "--git-dir",
            &f.app.path().display().to_string(),
            "show",
            &format!("{third}:deploy/cm.yaml"),
        ],
    );
    assert_eq!(content.stdout, "kind: ConfigMap\n# two\n");

    // Fixed author, committer and date: the same first commit gives the same id anywhere.
    let other_root = TempDir::new()?;
    let twin = GitRepoDir::init_bare(other_root.path(), "twin")?;
    let twin_head = twin.commit_files(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "first")?;
    assert_eq!(twin_head, f.head);
    Ok(())
}

#[test]
fn dropped_servers_leave_no_process_and_no_listener() -> Result<()> {
    let f = fixture()?;
    let http = GitHttpServer::start(f.root.path())?;
    let ssh = GitSshServer::start(f.root.path())?;
    let daemon = GitDaemon::start(f.root.path())?;
    // A stopped server too: Drop must not need it running.
    http.stop()?;
    let pids: Vec<u32> = [http.pids(), ssh.pids(), daemon.pids()].concat();
    assert!(
        pids.len() >= 5,
        "nginx, 2 fcgiwrap, sshd, git daemon: {pids:?}"
    );
    let (a, b, c) = http.ports();
    let ports = [a, b, c, ssh.port(), daemon.port()];
    drop((http, ssh, daemon));
    // A signalled grandchild (fcgiwrap's workers) may take a moment to exit on a loaded
    // machine: wait for it, with a deadline, rather than look once.
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for pid in pids {
        assert!(!alive(pid), "process {pid} survived the drop");
    }
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts"
        );
    }
    Ok(())
}

//! The repository cache (`argosy_sync_engine::repo::GitRepos`) against real Git servers on
//! loopback (`argosy_tests::git_servers`: nginx + `git http-backend`, sshd), when servers
//! hang, refuse, or serve more than fits on disk:
//!
//! * a stalled server fails an operation within the timeouts, and only its own repository;
//! * a thousand readers of a failing repository make one attempt per backoff interval, as
//!   counted in the server's access log;
//! * the cache stays under its byte budget while repositories move on by 1 MiB per commit,
//!   and evicting one repository's copy for another's never serves wrong contents; a
//!   repository larger than the whole budget is still served (and stays cached);
//! * a commit already present is served without the network, and only the refs asked for
//!   are downloaded;
//! * HTTPS basic auth with a CA, password rotation, client certificates, and SSH keys with
//!   host key checking, through a `CredentialSource`.
//!
//! Needs `scripts/install-git-servers.sh`. No fixed sleeps except where the spacing of
//! requests in time is what is tested; every wait is a bounded poll.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use argosy_crds::repository::RepoCredentials;
use argosy_generators::source::RepoSource;
use argosy_sync_engine::repo::{
    Backoff, CredentialSource, GitAuth, GitRepos, RemoteSettings, Timeouts, redact_url,
};
use argosy_sync_engine::url_policy::UrlPolicy;
use argosy_tests::git_servers::{GitHttpServer, GitRepoDir, GitSshServer};
use tempfile::TempDir;

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Credentials per exact URL (anonymous for any other), changeable while the cache runs:
/// what the controller's watched repository Secrets are.
#[derive(Default)]
struct TestCredentials(Mutex<BTreeMap<String, GitAuth>>);

impl TestCredentials {
    fn set(&self, url: &str, auth: GitAuth) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(url.to_owned(), auth);
    }
}

impl CredentialSource for TestCredentials {
    fn auth_for(&self, url: &str, _project: &str) -> Result<GitAuth, String> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(url)
            .cloned()
            .unwrap_or_default())
    }
}

/// The URL policy of a controller that may reach loopback servers over plain http, but
/// not local paths.
fn loopback() -> UrlPolicy {
    UrlPolicy {
        allow_local: false,
        allow_http: true,
        allow_internal_hosts: true,
    }
}

/// Basic auth with `password` for `server`'s HTTPS listener, trusting its CA.
fn https_auth(server: &GitHttpServer, secret: &str, password: &str) -> GitAuth {
    GitAuth {
        creds: Some(RepoCredentials {
            secret: secret.to_owned(),
            username: Some(server.username()),
            password: Some(password.to_owned().into()),
            ..RepoCredentials::default()
        }),
        known_hosts: String::new(),
        ca_pem: Some(server.ca_pem().to_owned()),
    }
}

/// A cache in `dir/cache` with the loopback policy and `credentials`.
fn repos_in(dir: &Path, credentials: Arc<TestCredentials>) -> GitRepos {
    GitRepos::new(BTreeMap::new(), dir.join("cache")).with_remote(RemoteSettings {
        credentials,
        url_policy: loopback(),
        ..RemoteSettings::default()
    })
}

/// Bytes of the files under `path` (what `du -sb` counts, symlinks not followed).
fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| dir_bytes(&entry.path()))
        .sum()
}

/// The cached copies (`<key>-<generation>` directories) in a cache directory.
fn copies(cache: &Path) -> BTreeSet<String> {
    std::fs::read_dir(cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| {
            name.split_once('-').is_some_and(|(key, generation)| {
                key.len() == 24 && generation.bytes().all(|b| b.is_ascii_digit())
            })
        })
        .collect()
}

/// `len` pseudo-random bytes (xorshift64*): incompressible for zlib, reproducible by seed.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Runs a git plumbing command in `repo` with `input` on stdin; its trimmed stdout.
fn plumbing(repo: &GitRepoDir, args: &[&str], input: &[u8]) -> Result<String> {
    let mut cmd: Command = repo.git();
    cmd.args(args)
        .env("GIT_AUTHOR_NAME", "Argosy Tests")
        .env("GIT_AUTHOR_EMAIL", "tests@argosy.invalid")
        .env("GIT_COMMITTER_NAME", "Argosy Tests")
        .env("GIT_COMMITTER_EMAIL", "tests@argosy.invalid")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("git {args:?}"))?;
    let mut stdin = child.stdin.take().context("git's stdin")?;
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("stdin writer panicked"))??;
    ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Writes a commit of exactly `files` (flat names) straight into the bare repository and
/// points `branch` at it; no working clone, so 100 MiB of history costs 100 MiB once.
fn commit_direct(repo: &GitRepoDir, branch: &str, files: &[(&str, &[u8])]) -> Result<String> {
    let mut tree = String::new();
    for (name, content) in files {
        let blob = plumbing(repo, &["hash-object", "-w", "--stdin"], content)?;
        tree.push_str(&format!("100644 blob {blob}\t{name}\n"));
    }
    let tree = plumbing(repo, &["mktree"], tree.as_bytes())?;
    let reference = format!("refs/heads/{branch}");
    let parent = plumbing(repo, &["rev-parse", "--verify", "--quiet", &reference], b"").ok();
    let mut args = vec!["commit-tree", tree.as_str(), "-m", "commit"];
    if let Some(parent) = &parent {
        args.extend(["-p", parent.as_str()]);
    }
    let commit = plumbing(repo, &args, b"")?;
    plumbing(repo, &["update-ref", &reference, &commit], b"")?;
    Ok(commit)
}

/// Polls `done` every 10 ms until it holds, or fails after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what}: not after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Local ports of this machine's established IPv4 connections to 127.0.0.1:`port`
/// (`/proc/net/tcp`): the client ends, and the server ends still in the accept queue.
fn established_to(port: u16) -> BTreeSet<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 3 && fields[2] == remote && fields[3] == "01")
                .then(|| fields[1].to_owned())
        })
        .collect()
}

/// The snapshot of `revision` and the content of `path` in it.
fn read_at(repos: &GitRepos, url: &str, revision: &str, path: &str) -> Result<(String, Vec<u8>)> {
    let snapshot = repos.snapshot(url, revision)?;
    let content = snapshot.read(path)?;
    Ok((snapshot.commit().to_owned(), content))
}

// ---------------------------------------------------------------------------------------
// 1. A stalled server
// ---------------------------------------------------------------------------------------

#[test]
fn a_stalled_server_fails_within_30s_and_other_repositories_keep_working() -> Result<()> {
    let (root_a, root_b, cache) = (TempDir::new()?, TempDir::new()?, TempDir::new()?);
    let a = GitRepoDir::init_bare(root_a.path(), "a")?;
    let b = GitRepoDir::init_bare(root_b.path(), "b")?;
    let a1 = a.commit_files(&[("app.yaml", "a: 1\n")], "a1")?;
    let b1 = b.commit_files(&[("app.yaml", "b: 1\n")], "b1")?;
    let server_a = GitHttpServer::start(root_a.path())?;
    let server_b = GitHttpServer::start(root_b.path())?;
    let (url_a, url_b) = (server_a.https_url("a"), server_b.https_url("b"));
    let password_a = server_a.password();
    let credentials = Arc::new(TestCredentials::default());
    credentials.set(&url_a, https_auth(&server_a, "argocd/a", &password_a));
    credentials.set(
        &url_b,
        https_auth(&server_b, "argocd/b", &server_b.password()),
    );
    // Default timeouts (10 s connect, 15 s stall) and refresh interval.
    let repos = Arc::new(repos_in(cache.path(), credentials));
    assert_eq!(repos.snapshot(&url_a, "HEAD")?.commit(), a1);
    assert_eq!(repos.snapshot(&url_b, "HEAD")?.commit(), b1);

    server_a.stop()?;
    repos.refresh(&url_a);
    repos.refresh(&url_b);
    let port_a = server_a.ports().0;
    let before = established_to(port_a);
    let stalled = std::thread::spawn({
        let (repos, url_a) = (repos.clone(), url_a.clone());
        move || {
            let started = Instant::now();
            let result = repos
                .snapshot(&url_a, "HEAD")
                .map(|s| s.commit().to_owned())
                .map_err(|e| e.to_string());
            (result, started.elapsed(), Instant::now())
        }
    });
    // A's request has reached the (stopped) server: a new connection to it is open.
    wait_until(
        "a connection to the stopped server",
        Duration::from_secs(10),
        || !established_to(port_a).is_subset(&before),
    )?;

    // Meanwhile B moves on and is served at once.
    let b_started = Instant::now();
    let b2 = b.commit_files(&[("app.yaml", "b: 2\n")], "b2")?;
    repos.refresh(&url_b);
    let (commit, content) = read_at(&repos, &url_b, "HEAD", "app.yaml")?;
    let (b_took, b_done) = (b_started.elapsed(), Instant::now());
    assert_eq!(
        (commit.as_str(), content.as_slice()),
        (b2.as_str(), &b"b: 2\n"[..])
    );
    assert!(
        !stalled.is_finished(),
        "A's operation was still hanging while B was served"
    );
    assert!(b_took < Duration::from_secs(5), "B took {b_took:?}");

    let (result, a_took, a_done) = stalled
        .join()
        .map_err(|_| anyhow::anyhow!("A's thread panicked"))?;
    let error = result.err().context("a stopped server served A")?;
    eprintln!("stalled server: failed after {a_took:?} (B served in {b_took:?}): {error}");
    assert!(
        a_took < Duration::from_secs(30),
        "A failed after {a_took:?}"
    );
    assert!(a_done > b_done, "B finished before A's operation did");
    assert!(error.contains(&url_a), "names A's URL: {error}");
    assert!(!error.contains(&password_a), "leaks the password: {error}");
    let stats = repos.stats(&url_a).context("A's stats")?;
    assert_eq!(stats.last_error.as_deref(), Some(error.as_str()));

    // During the backoff a request fails at once, without waiting for the server.
    let started = Instant::now();
    let again = repos.snapshot(&url_a, "HEAD").err().context("backed off")?;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(again.to_string().contains("backed off"), "{again}");

    // Back: a refresh ends the backoff and serves what was committed meanwhile.
    let a2 = a.commit_files(&[("app.yaml", "a: 2\n")], "a2")?;
    server_a.resume()?;
    repos.refresh(&url_a);
    let (commit, content) = read_at(&repos, &url_a, "HEAD", "app.yaml")?;
    assert_eq!(
        (commit.as_str(), content.as_slice()),
        (a2.as_str(), &b"a: 2\n"[..])
    );
    assert_eq!(repos.stats(&url_a).context("A's stats")?.last_error, None);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. A thousand readers
// ---------------------------------------------------------------------------------------

/// `threads` threads make `calls` snapshot requests each for `url`, `spacing` apart, the
/// threads staggered evenly over one spacing (so requests arrive every
/// `spacing / threads`, as from independent reconciles). Returns each call's error
/// (`None` when it succeeded) and duration, and how long it all took.
fn storm(
    repos: &GitRepos,
    url: &str,
    threads: usize,
    calls: usize,
    spacing: Duration,
) -> (Vec<(Option<String>, Duration)>, Duration) {
    let barrier = Barrier::new(threads + 1);
    let barrier = &barrier;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let offset = spacing * u32::try_from(thread).unwrap_or(0)
                        / u32::try_from(threads).unwrap_or(1);
                    (0..calls)
                        .map(|i| {
                            // Spaced in time: the interval is what is tested.
                            let at = offset + spacing * u32::try_from(i).unwrap_or(u32::MAX);
                            std::thread::sleep(at.saturating_sub(start.elapsed()));
                            let called = Instant::now();
                            let error = repos.snapshot(url, "HEAD").err().map(|e| e.to_string());
                            (error, called.elapsed())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        (results, start.elapsed())
    })
}

#[test]
fn a_thousand_readers_of_a_stalled_repository_make_one_request_per_backoff_interval() -> Result<()>
{
    let (root, cache) = (TempDir::new()?, TempDir::new()?);
    let app = GitRepoDir::init_bare(root.path(), "app")?;
    let head = app.commit_files(&[("app.yaml", "v: 1\n")], "v1")?;
    let hang = GitRepoDir::init_bare(root.path(), "hang")?;
    hang.commit_files(&[("app.yaml", "v: 1\n")], "v1")?;
    let server = GitHttpServer::start(root.path())?;
    let url = server.https_url("app");
    let credentials = Arc::new(TestCredentials::default());
    credentials.set(&url, https_auth(&server, "argocd/app", &server.password()));
    let interval = Duration::from_secs(1);
    let repos =
        GitRepos::new(BTreeMap::new(), cache.path().join("cache")).with_remote(RemoteSettings {
            credentials,
            url_policy: loopback(),
            refresh_interval: Duration::from_secs(3600),
            backoff: Backoff {
                initial: interval,
                max: interval,
            },
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                stall: Duration::from_secs(1),
            },
        });
    assert_eq!(repos.snapshot(&url, "HEAD")?.commit(), head);

    // The server refuses the credentials from now on: every attempt ends in 401s, each
    // logged. One attempt first, to learn how many requests an attempt is.
    server.set_password(&server.username(), "rotated-on-the-server")?;
    server.reset_requests();
    repos.refresh(&url);
    let refused = repos.snapshot(&url, "HEAD").err().context("refused")?;
    let per_attempt = server.requests("app");
    let log = server.access_log();
    eprintln!("one refused attempt: {per_attempt} requests {log:?}: {refused}");
    assert!(per_attempt >= 1, "{log:?}");
    assert!(log.iter().all(|e| e.status == 401), "{log:?}");
    let backed_off_before = repos.stats(&url).context("stats")?.backed_off;

    server.reset_requests();
    let (results, elapsed) = storm(&repos, &url, 50, 20, Duration::from_millis(175));
    let requests = server.requests("app");
    let attempts_allowed = usize::try_from(elapsed.as_millis() / interval.as_millis())? + 1;
    let stats = repos.stats(&url).context("stats")?;
    let backed_off = stats.backed_off - backed_off_before;
    eprintln!(
        "refusing server: {} calls in {elapsed:?}: {requests} requests \
         ({per_attempt} per attempt, at most {attempts_allowed} attempts), {backed_off} backed off",
        results.len()
    );
    assert_eq!(results.len(), 1000);
    assert!(
        results.iter().all(|(error, _)| error.is_some()),
        "a copy that could not be confirmed was served"
    );
    let password = server.password();
    assert!(
        results
            .iter()
            .flat_map(|(error, _)| error)
            .all(|e| e.contains(&url) && !e.contains(&password)),
        "every error names the repository and no password"
    );
    assert!(
        requests <= attempts_allowed * per_attempt,
        "{requests} requests in {elapsed:?}"
    );
    assert!(
        requests >= 2 * per_attempt,
        "the backoff expired and was retried: {requests} requests"
    );
    assert!(backed_off >= 900, "{backed_off} of 1000 backed off");

    // The hanging variant: the server is stopped, each attempt hangs until the client's
    // timeouts (2 s here) end it; the requests reach the access log after resume().
    let hang_url = server.http_url("hang");
    assert!(repos.snapshot(&hang_url, "HEAD").is_ok());
    server.reset_requests();
    server.stop()?;
    repos.refresh(&hang_url);
    let (results, elapsed) = storm(&repos, &hang_url, 50, 20, Duration::from_millis(250));
    let stats = repos.stats(&hang_url).context("stats")?;
    server.resume()?;
    // The hung connections reach nginx after the resume, each logged once (499: the
    // client had closed it); the client counted each attempt as a ref check.
    let attempts = usize::try_from(stats.ref_checks)?;
    wait_until(
        "the access log shows every attempt",
        Duration::from_secs(15),
        || server.requests("hang") >= attempts,
    )?;
    let hung = server.requests("hang");
    let attempts_allowed = usize::try_from(elapsed.as_millis() / interval.as_millis())? + 1;
    let slow = results
        .iter()
        .filter(|(_, took)| *took > Duration::from_millis(500))
        .count();
    eprintln!(
        "stopped server: 1000 calls in {elapsed:?}: {hung} requests logged after resume \
         (at most {attempts_allowed}), {stats:?}, {slow} calls took over 500 ms; {:?}",
        server.access_log()
    );
    assert!(results.iter().all(|(error, _)| error.is_some()));
    assert_eq!(hung, attempts, "one request per attempt, all of them seen");
    assert!(
        hung >= 1 && hung <= attempts_allowed,
        "{hung} requests in {elapsed:?}"
    );
    // Only the requests that asked for the refresh wait for its attempt (one per thread),
    // and each retry's own caller; the others are answered at once.
    assert!(
        slow <= 50 + attempts,
        "{slow} calls waited for a hung server"
    );
    assert!(stats.backed_off > 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. The byte budget
// ---------------------------------------------------------------------------------------

#[test]
fn the_cache_stays_under_its_byte_budget_over_100_commits_of_1_mib() -> Result<()> {
    let (root, cache) = (TempDir::new()?, TempDir::new()?);
    let a = GitRepoDir::init_bare(root.path(), "a")?;
    let b = GitRepoDir::init_bare(root.path(), "b")?;
    let commit = |repo: &GitRepoDir, seed: u64, version: usize| {
        let version = format!("version: {version}\n");
        let big = random_bytes(seed, 1024 * 1024);
        commit_direct(
            repo,
            "main",
            &[("big.bin", &big), ("version.yaml", version.as_bytes())],
        )
    };
    commit(&a, 1_000, 0)?;
    let mut b_version = 0;
    let mut b_head = commit(&b, 2_000, b_version)?;
    let server = GitHttpServer::start(root.path())?;
    let (url_a, url_b) = (server.http_url("a"), server.http_url("b"));
    let budget = 4 * MIB;
    let repos = repos_in(cache.path(), Arc::default())
        .with_refresh_interval(Duration::from_secs(3600))
        .with_max_bytes(budget);
    let cache_dir = cache.path().join("cache");

    let mut largest = 0;
    let mut only_one_copy = 0;
    let mut check = |what: &str, repos: &GitRepos, url: &str, head: &str, version: usize, seed| {
        let snapshot = repos.snapshot(url, "main")?;
        ensure!(
            snapshot.commit() == head,
            "{what}: served {}",
            snapshot.commit()
        );
        let yaml = snapshot.read("version.yaml")?;
        ensure!(
            yaml == format!("version: {version}\n").as_bytes(),
            "{what}: yaml"
        );
        let big = snapshot.read("big.bin")?;
        ensure!(big == random_bytes(seed, 1024 * 1024), "{what}: big.bin");
        let bytes = dir_bytes(&cache_dir);
        largest = largest.max(bytes);
        ensure!(bytes <= budget, "{what}: the cache holds {bytes} bytes");
        if copies(&cache_dir).len() == 1 {
            only_one_copy += 1;
        }
        Ok(())
    };
    check("b@0", &repos, &url_b, &b_head, 0, 2_000)?;
    let started = Instant::now();
    for i in 1..=100 {
        let seed = 1_000 + i as u64;
        let head = commit(&a, seed, i)?;
        repos.refresh(&url_a);
        check(&format!("a@{i}"), &repos, &url_a, &head, i, seed)?;
        if i % 10 == 0 {
            // Every tenth step B moves too and is read: A's copy may be evicted for it...
            b_version += 1;
            let b_seed = 2_000 + b_version as u64;
            b_head = commit(&b, b_seed, b_version)?;
            repos.refresh(&url_b);
            check(
                &format!("b@{i}"),
                &repos,
                &url_b,
                &b_head,
                b_version,
                b_seed,
            )?;
            // ...and read again (no refresh): the same commit and contents either way.
            check(&format!("a@{i} again"), &repos, &url_a, &head, i, seed)?;
        }
    }
    let took = started.elapsed();
    let (stats_a, stats_b) = (
        repos.stats(&url_a).context("a")?,
        repos.stats(&url_b).context("b")?,
    );
    eprintln!(
        "budget {budget}: largest cache {largest} bytes; one copy left in {only_one_copy} of \
         121 samples; {} requests for a, {} for b; a {stats_a:?}; b {stats_b:?}; {took:?}",
        server.requests("a"),
        server.requests("b"),
    );
    assert!(
        only_one_copy > 0,
        "the budget never evicted one repository's copy for the other's"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 4. What needs the network
// ---------------------------------------------------------------------------------------

#[test]
fn a_commit_id_is_served_without_the_network_once_present() -> Result<()> {
    let (root, cache) = (TempDir::new()?, TempDir::new()?);
    let app = GitRepoDir::init_bare(root.path(), "app")?;
    let c1 = app.commit_files(&[("app.yaml", "v: 1\n")], "v1")?;
    let c2 = app.commit_files(&[("app.yaml", "v: 2\n")], "v2")?;
    let server = GitHttpServer::start(root.path())?;
    let url = server.http_url("app");
    let repos = repos_in(cache.path(), Arc::default());
    assert_eq!(repos.snapshot(&url, "HEAD")?.commit(), c2);
    let cloned = repos.stats(&url).context("stats")?;

    // The tip is present: by id it needs no request, not even after a refresh, and not
    // even from a server that would hang.
    server.reset_requests();
    server.stop()?;
    repos.refresh(&url);
    let started = Instant::now();
    let (commit, content) = read_at(&repos, &url, &c2, "app.yaml")?;
    let took = started.elapsed();
    server.resume()?;
    assert_eq!(
        (commit.as_str(), content.as_slice()),
        (c2.as_str(), &b"v: 2\n"[..])
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(server.requests("app"), 0);
    assert_eq!(repos.stats(&url), Some(cloned.clone()));

    // Its parent is not (the clone is shallow): fetched once, then served offline too.
    let (commit, content) = read_at(&repos, &url, &c1, "app.yaml")?;
    assert_eq!(
        (commit.as_str(), content.as_slice()),
        (c1.as_str(), &b"v: 1\n"[..])
    );
    let fetched = server.requests("app");
    assert!(fetched > 0);
    let stats = repos.stats(&url).context("stats")?;
    assert_eq!(stats.fetches, cloned.fetches + 1, "{stats:?}");
    server.reset_requests();
    repos.refresh(&url);
    assert_eq!(repos.snapshot(&url, &c1)?.commit(), c1);
    assert_eq!(repos.snapshot(&url, &c2)?.commit(), c2);
    assert_eq!(server.requests("app"), 0);
    eprintln!("commit ids: {fetched} requests to fetch the parent; {stats:?}");
    Ok(())
}

#[test]
fn only_the_refs_asked_for_are_fetched() -> Result<()> {
    let (root, cache) = (TempDir::new()?, TempDir::new()?);
    let app = GitRepoDir::init_bare(root.path(), "app")?;
    let small = commit_direct(&app, "main", &[("app.yaml", b"branch: main\n")])?;
    let big = random_bytes(5, 5 * 1024 * 1024);
    let big_commit = commit_direct(
        &app,
        "big-branch",
        &[("app.yaml", b"branch: big\n"), ("big.bin", &big)],
    )?;
    let server = GitHttpServer::start(root.path())?;
    let url = server.http_url("app");
    let repos = repos_in(cache.path(), Arc::default());
    let cache_dir = cache.path().join("cache");

    let (commit, content) = read_at(&repos, &url, "main", "app.yaml")?;
    assert_eq!(
        (commit.as_str(), content.as_slice()),
        (small.as_str(), &b"branch: main\n"[..])
    );
    let main_only = dir_bytes(&cache_dir);
    assert!(
        main_only < MIB / 2,
        "reading main downloaded {main_only} bytes"
    );

    let snapshot = repos.snapshot(&url, "big-branch")?;
    assert_eq!(snapshot.commit(), big_commit);
    assert!(snapshot.read("big.bin")? == big, "big.bin differs");
    let both = dir_bytes(&cache_dir);
    assert!(both >= 5 * MIB, "big-branch is in the cache: {both} bytes");
    // main is still served from the copy.
    assert_eq!(repos.snapshot(&url, "main")?.commit(), small);
    eprintln!("refs: main only {main_only} bytes, with big-branch {both} bytes");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 5. Credentials
// ---------------------------------------------------------------------------------------

#[test]
fn https_basic_auth_with_a_ca_and_password_rotation() -> Result<()> {
    let (root, cache) = (TempDir::new()?, TempDir::new()?);
    let app = GitRepoDir::init_bare(root.path(), "app")?;
    let c1 = app.commit_files(&[("app.yaml", "v: 1\n")], "v1")?;
    let server = GitHttpServer::start(root.path())?;
    let url = server.https_url("app");
    let credentials = Arc::new(TestCredentials::default());
    let repos = repos_in(cache.path(), credentials.clone());

    // A wrong password: an error naming the repository, never the password.
    let wrong = "wrong-password-1234";
    credentials.set(&url, https_auth(&server, "argocd/app", wrong));
    let error = repos
        .snapshot(&url, "HEAD")
        .err()
        .context("wrong password")?;
    let message = error.to_string();
    eprintln!("wrong password: {message}");
    assert!(message.contains(&url), "{message}");
    assert!(!message.contains(wrong), "{message}");
    assert!(
        server.access_log().iter().any(|e| e.status == 401),
        "the server refused it"
    );

    // The Secret is fixed: the next refresh recovers (the backoff does not hold it).
    credentials.set(&url, https_auth(&server, "argocd/app", &server.password()));
    repos.refresh(&url);
    assert_eq!(
        read_at(&repos, &url, "HEAD", "app.yaml")?,
        (c1, b"v: 1\n".to_vec())
    );

    // The server rotates the password: the old one fails on the next refresh...
    let rotated = "rotated-password-5678";
    server.set_password(&server.username(), rotated)?;
    let c2 = app.commit_files(&[("app.yaml", "v: 2\n")], "v2")?;
    repos.refresh(&url);
    let error = repos.snapshot(&url, "HEAD").err().context("old password")?;
    assert!(!error.to_string().contains(rotated));
    // ...and the rotated Secret works on the next one, without a restart.
    credentials.set(&url, https_auth(&server, "argocd/app", rotated));
    repos.refresh(&url);
    assert_eq!(
        read_at(&repos, &url, "HEAD", "app.yaml")?,
        (c2, b"v: 2\n".to_vec())
    );

    // Without the CA the server's certificate is refused.
    let untrusted = repos_in(cache.path().join("untrusted").as_path(), {
        let credentials = Arc::new(TestCredentials::default());
        let mut auth = https_auth(&server, "argocd/app", rotated);
        auth.ca_pem = None;
        credentials.set(&url, auth);
        credentials
    });
    let error = untrusted.snapshot(&url, "HEAD").err().context("no CA")?;
    eprintln!("without the CA: {error}");
    assert!(error.to_string().contains(&url));
    Ok(())
}

#[test]
fn mtls_needs_the_client_certificate() -> Result<()> {
    let (root, cache) = (TempDir::new()?, TempDir::new()?);
    let app = GitRepoDir::init_bare(root.path(), "app")?;
    let c1 = app.commit_files(&[("app.yaml", "v: 1\n")], "v1")?;
    let server = GitHttpServer::start(root.path())?;
    let url = server.mtls_url("app");
    let credentials = Arc::new(TestCredentials::default());
    let repos = repos_in(cache.path(), credentials.clone());

    // Only the CA: no client certificate, refused.
    credentials.set(
        &url,
        GitAuth {
            ca_pem: Some(server.ca_pem().to_owned()),
            ..GitAuth::default()
        },
    );
    let error = repos
        .snapshot(&url, "HEAD")
        .err()
        .context("no certificate")?;
    eprintln!("mTLS without a client certificate: {error}");
    assert!(error.to_string().contains(&url));

    credentials.set(
        &url,
        GitAuth {
            creds: Some(RepoCredentials {
                secret: "argocd/mtls".to_owned(),
                tls_client_cert: Some(server.client_cert_pem().to_owned().into()),
                tls_client_key: Some(server.client_key_pem().to_owned().into()),
                ..RepoCredentials::default()
            }),
            known_hosts: String::new(),
            ca_pem: Some(server.ca_pem().to_owned()),
        },
    );
    assert_eq!(
        read_at(&repos, &url, "HEAD", "app.yaml")?,
        (c1, b"v: 1\n".to_vec())
    );
    assert!(
        server
            .access_log()
            .iter()
            .any(|e| e.path.starts_with("/app.git/") && e.status == 200)
    );
    Ok(())
}

#[test]
fn ssh_needs_the_key_and_checks_the_host_key() -> Result<()> {
    let (root, cache) = (TempDir::new()?, TempDir::new()?);
    let app = GitRepoDir::init_bare(root.path(), "app")?;
    let c1 = app.commit_files(&[("app.yaml", "v: 1\n")], "v1")?;
    let server = GitSshServer::start(root.path())?;
    let url = server.url("app");
    let auth = |secret: &str, known_hosts: &str, insecure: bool| GitAuth {
        creds: Some(RepoCredentials {
            secret: secret.to_owned(),
            ssh_private_key: Some(server.client_private_key_pem().to_owned().into()),
            insecure_ignore_host_key: insecure,
            ..RepoCredentials::default()
        }),
        known_hosts: format!("{known_hosts}\n"),
        ca_pem: None,
    };
    let credentials = Arc::new(TestCredentials::default());
    let repos = repos_in(cache.path(), credentials.clone());

    credentials.set(&url, auth("argocd/ssh", server.known_hosts_line(), false));
    assert_eq!(
        read_at(&repos, &url, "HEAD", "app.yaml")?,
        (c1.clone(), b"v: 1\n".to_vec())
    );
    assert_eq!(server.requests("app"), 1, "{}", server.log());

    // Another key for the host: refused before any Git request.
    server.reset_requests();
    credentials.set(
        &url,
        auth("argocd/impostor", server.wrong_known_hosts_line(), false),
    );
    let error = repos
        .snapshot(&url, "HEAD")
        .err()
        .context("wrong host key")?;
    let message = error.to_string();
    eprintln!("wrong host key: {message}");
    assert!(message.contains(&redact_url(&url)), "{message}");
    assert!(message.to_lowercase().contains("host key"), "{message}");
    // No temporary file is named: the message is the same on every attempt.
    assert!(!message.contains("known-hosts-"), "{message}");
    assert!(
        !message.contains("PRIVATE KEY"),
        "the key leaked: {message}"
    );
    assert_eq!(server.requests("app"), 0);

    // No key: the server refuses the login, and the error says so.
    let mut keyless = auth("argocd/keyless", server.known_hosts_line(), false);
    if let Some(creds) = keyless.creds.as_mut() {
        creds.ssh_private_key = None;
    }
    credentials.set(&url, keyless);
    let error = repos.snapshot(&url, "HEAD").err().context("no key")?;
    eprintln!("no key: {error}");
    // The user name stays readable (it is no secret; the key is).
    let refused = format!("{}@127.0.0.1: Permission denied", server.user());
    assert!(error.to_string().contains(&refused), "{error}");

    // insecureIgnoreHostKey accepts it.
    credentials.set(
        &url,
        auth("argocd/insecure", server.wrong_known_hosts_line(), true),
    );
    assert_eq!(
        read_at(&repos, &url, "HEAD", "app.yaml")?,
        (c1, b"v: 1\n".to_vec())
    );
    assert_eq!(server.requests("app"), 1);
    Ok(())
}

#[test]
fn a_repository_larger_than_the_budget_is_still_served() -> Result<()> {
    let (root, cache) = (TempDir::new()?, TempDir::new()?);
    let app = GitRepoDir::init_bare(root.path(), "app")?;
    let big = random_bytes(7, 1024 * 1024);
    let head = commit_direct(&app, "main", &[("big.bin", &big), ("app.yaml", b"v: 1\n")])?;
    let server = GitHttpServer::start(root.path())?;
    let url = server.http_url("app");
    let other = GitRepoDir::init_bare(root.path(), "other")?;
    other.commit_files(&[("app.yaml", "other: 1\n")], "other")?;
    let other_url = server.http_url("other");
    let repos = repos_in(cache.path(), Arc::default()).with_max_bytes(MIB / 2);
    let cache_dir = cache.path().join("cache");
    assert!(repos.snapshot(&other_url, "HEAD").is_ok());

    // The copy just fetched is served, over the budget: the other one goes instead.
    let (commit, content) = read_at(&repos, &url, "main", "app.yaml")?;
    assert_eq!(
        (commit.as_str(), content.as_slice()),
        (head.as_str(), &b"v: 1\n"[..])
    );
    assert_eq!(
        copies(&cache_dir).len(),
        1,
        "only the copy being served is left"
    );
    // And it stays cached: the next request needs no download.
    server.reset_requests();
    assert_eq!(repos.snapshot(&url, "main")?.read("big.bin")?, big);
    assert_eq!(server.requests("app"), 0);
    let stats = repos.stats(&url).context("stats")?;
    assert_eq!((stats.ref_checks, stats.fetches), (0, 1), "{stats:?}");
    Ok(())
}

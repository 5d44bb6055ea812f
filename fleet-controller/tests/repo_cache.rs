//! The remote repository cache against a real Git smart-HTTP server: `git http-backend`
//! (the CGI program Git ships for this) behind a small axum server started by each test on
//! 127.0.0.1. The server counts the requests it answers, so "no network traffic" is seen
//! from the server's side as well as from `GitRepos::stats`.
//!
//! The served repository starts with a `write_commit`; later commits and tags are pushed to
//! it from a working clone with the `git` CLI (tests only: the product never runs `git`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argosy_generators::source::RepoSource;
use argosy_sync_engine::repo::{GitRepos, RepoStats, write_commit};
use argosy_sync_engine::url_policy::UrlPolicy;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use tokio::io::AsyncWriteExt;

/// A Git smart-HTTP server for the repositories under a directory.
struct GitHttpServer {
    base: String,
    requests: Arc<AtomicUsize>,
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: tokio::runtime::Runtime,
}

struct Served {
    root: PathBuf,
    requests: Arc<AtomicUsize>,
}

impl GitHttpServer {
    fn start(root: &Path) -> Self {
        Self::start_at(root, "127.0.0.1:0")
    }

    fn start_at(root: &Path, addr: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .fallback(cgi)
            .with_state(Arc::new(Served {
                root: root.to_owned(),
                requests: requests.clone(),
            }));
        let task = runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            requests,
            task: Some(task),
            runtime,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Closes the listening socket: later connections are refused.
    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = self.runtime.block_on(task);
        }
    }
}

/// Runs one request through `git http-backend` (CGI/1.1: request as environment and stdin,
/// response headers then body on stdout).
async fn cgi(State(served): State<Arc<Served>>, request: Request) -> Response {
    served.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &served.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move { stdin.write_all(&body).await });
    let output = child.wait_with_output().await.unwrap();
    writer.await.unwrap().unwrap();

    let out = output.stdout;
    let (head_len, sep_len) = find(&out, b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| find(&out, b"\n\n").map(|i| (i, 2)))
        .expect("CGI response without a header block");
    let mut response = Response::new(Body::from(out[head_len + sep_len..].to_vec()));
    for line in String::from_utf8_lossy(&out[..head_len]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap().parse().unwrap();
            *response.status_mut() = StatusCode::from_u16(code).unwrap();
        } else {
            response.headers_mut().append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
    }
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A served repository `repo.git` with one commit, and a working clone that pushes to it
/// with the `git` CLI.
struct Remote {
    work: PathBuf,
}

impl Remote {
    /// Creates `root/repo.git` with one commit; returns it and that commit.
    fn create(root: &Path) -> (Self, String) {
        std::fs::create_dir_all(root).unwrap();
        let served = root.join("repo.git");
        let files = BTreeMap::from([("app/config.yaml".to_owned(), "version: v1\n".to_owned())]);
        let first = write_commit(&served, "HEAD", &files).unwrap().to_string();
        let work = root.join("work");
        git(
            root,
            &[
                "clone",
                "-q",
                served.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
        (Self { work }, first)
    }

    /// Pushes a commit whose `app/config.yaml` says `version`; returns its id.
    fn push_commit(&self, version: &str) -> String {
        std::fs::write(
            self.work.join("app/config.yaml"),
            format!("version: {version}\n"),
        )
        .unwrap();
        git(&self.work, &["commit", "-q", "-am", version]);
        git(&self.work, &["push", "-q", "origin", "HEAD"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Pushes an annotated tag on the current commit; returns the commit's id.
    fn push_tag(&self, name: &str) -> String {
        git(&self.work, &["tag", "-a", name, "-m", name]);
        git(&self.work, &["push", "-q", "origin", name]);
        git(&self.work, &["rev-parse", &format!("{name}^{{commit}}")])
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A repository cache that may fetch from the test's loopback server over plain http (the
/// URL policy refuses both by default).
fn loopback_repos(dir: &tempfile::TempDir) -> GitRepos {
    GitRepos::new(BTreeMap::new(), dir.path().join("cache")).with_url_policy(UrlPolicy {
        allow_http: true,
        allow_internal_hosts: true,
        ..UrlPolicy::default()
    })
}

fn served_commit(repos: &GitRepos, url: &str) -> String {
    repos.snapshot(url, "HEAD").unwrap().commit().to_owned()
}

fn stats(ref_checks: u64, fetches: u64) -> RepoStats {
    RepoStats {
        ref_checks,
        fetches,
        backed_off: 0,
        last_error: None,
    }
}

#[test]
fn clones_once_then_serves_from_the_cache_until_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, first) = Remote::create(&dir.path().join("served"));
    let server = GitHttpServer::start(&dir.path().join("served"));
    let url = format!("{}/repo.git", server.base);
    let repos = loopback_repos(&dir).with_refresh_interval(Duration::from_secs(3600));

    assert_eq!(repos.stats(&url), None, "nothing asked yet");
    assert_eq!(served_commit(&repos, &url), first);
    assert_eq!(
        repos.stats(&url),
        Some(stats(0, 1)),
        "the first request clones"
    );
    let after_clone = server.requests();
    assert!(after_clone > 0);

    for _ in 0..5 {
        assert_eq!(served_commit(&repos, &url), first);
    }
    assert_eq!(repos.stats(&url), Some(stats(0, 1)));
    assert_eq!(
        server.requests(),
        after_clone,
        "within the interval: no traffic"
    );

    // A new commit on the remote stays unseen until the interval passes or a refresh...
    let second = remote.push_commit("v2");
    assert_eq!(served_commit(&repos, &url), first);

    // ...which any spelling of the URL triggers (as a webhook payload would spell it).
    repos.refresh(&format!(
        "HTTP://{}/repo/",
        server.base.trim_start_matches("http://")
    ));
    let snapshot = repos.snapshot(&url, "HEAD").unwrap();
    assert_eq!(snapshot.commit(), second);
    assert_eq!(snapshot.read("app/config.yaml").unwrap(), b"version: v2\n");
    assert_eq!(repos.stats(&url), Some(stats(1, 2)), "one check, one fetch");

    // A refresh with nothing new: one ref listing, no fetch.
    repos.refresh(&url);
    assert_eq!(served_commit(&repos, &url), second);
    assert_eq!(repos.stats(&url), Some(stats(2, 2)));
}

#[test]
fn checks_refs_once_per_interval_and_fetches_only_when_they_moved() {
    let interval = Duration::from_millis(300);
    let dir = tempfile::tempdir().unwrap();
    let (remote, first) = Remote::create(&dir.path().join("served"));
    let server = GitHttpServer::start(&dir.path().join("served"));
    let url = format!("{}/repo.git", server.base);
    let repos = loopback_repos(&dir).with_refresh_interval(interval);

    assert_eq!(served_commit(&repos, &url), first);
    std::thread::sleep(interval);
    assert_eq!(served_commit(&repos, &url), first);
    assert_eq!(
        repos.stats(&url),
        Some(stats(1, 1)),
        "unchanged: checked, not fetched"
    );

    let second = remote.push_commit("v2");
    std::thread::sleep(interval);
    assert_eq!(served_commit(&repos, &url), second);
    assert_eq!(
        repos.stats(&url),
        Some(stats(2, 2)),
        "moved: checked and fetched"
    );

    // A tag is a ref too: a new one is fetched and resolves.
    let tagged = remote.push_tag("v3");
    std::thread::sleep(interval);
    assert_eq!(repos.snapshot(&url, "v3").unwrap().commit(), tagged);
    assert_eq!(served_commit(&repos, &url), second);
    assert_eq!(repos.stats(&url), Some(stats(3, 3)));
}

#[test]
fn concurrent_first_requests_clone_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_remote, first) = Remote::create(&dir.path().join("served"));
    let server = GitHttpServer::start(&dir.path().join("served"));
    let url = format!("{}/repo.git", server.base);
    let repos = loopback_repos(&dir);

    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| served_commit(&repos, &url)))
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), first);
        }
    });
    assert_eq!(repos.stats(&url), Some(stats(0, 1)));
}

#[test]
fn a_down_server_is_an_error_naming_the_url_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, first) = Remote::create(&dir.path().join("served"));
    let mut server = GitHttpServer::start(&dir.path().join("served"));
    let url = format!("{}/repo.git", server.base);
    let repos = loopback_repos(&dir).with_refresh_interval(Duration::from_secs(3600));
    assert_eq!(served_commit(&repos, &url), first);

    server.stop();
    repos.refresh(&url);
    let err = repos.snapshot(&url, "HEAD").err().unwrap().to_string();
    assert!(err.starts_with(&format!("repository {url}: ")), "{err}");
    assert!(err.contains("listing remote refs"), "{err}");
    let after = repos.stats(&url).unwrap();
    assert_eq!((after.ref_checks, after.fetches), (1, 1));
    assert_eq!(after.last_error.as_deref(), Some(err.as_str()));

    // No silent fallback to the cached copy, and no request storm: during the backoff the
    // next requests get the same error without reaching the server.
    let requests = server.requests();
    for _ in 0..20 {
        let again = repos.snapshot(&url, "HEAD").err().unwrap().to_string();
        assert!(again.contains("backed off after 1 failure"), "{again}");
    }
    let during = repos.stats(&url).unwrap();
    assert_eq!((during.ref_checks, during.backed_off), (1, 20));
    assert_eq!(server.requests(), requests);

    // Back up on the same address: a refresh (a webhook, the annotation) ends the backoff;
    // the next request checks, fetches what it missed and clears the error.
    let second = remote.push_commit("v2");
    let _server = GitHttpServer::start_at(
        &dir.path().join("served"),
        server.base.trim_start_matches("http://"),
    );
    repos.refresh(&url);
    assert_eq!(served_commit(&repos, &url), second);
    let after = repos.stats(&url).unwrap();
    assert_eq!(
        (after.ref_checks, after.fetches, after.backed_off),
        (2, 2, 20)
    );
    assert_eq!(after.last_error, None);
}

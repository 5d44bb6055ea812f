//! Git benchmark (issue #16), run with `cargo bench -p argosy-tests --bench git`.
//!
//! A 10,000-file repository (written with `git fast-import`) served by nginx + `git
//! http-backend` on the plain HTTP listener of `argosy_tests::git_servers::GitHttpServer`
//! (loopback). Timed, in the same run and against the same server:
//!
//! * first clone: Argosy's repository cache (`GitRepos::snapshot`, which clones bare with
//!   gix and lists the commit's 10,000 files) next to `git clone --bare`;
//! * incremental fetch after one new commit changing 10 files: the next `snapshot` (refresh
//!   interval zero: a ref check, then a fetch) next to `git fetch` of the bare clone.
//!
//! Each run starts from empty clones; the order of Argosy and git alternates between runs
//! so neither always gets the warmer page cache. Results replace the `git` section of
//! BENCHMARKS.md at the workspace root.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use argosy_generators::source::RepoSource as _;
use argosy_sync_engine::repo::GitRepos;
use argosy_sync_engine::url_policy::UrlPolicy;
use argosy_tests::bench::{load_average, machine, median, ms, update_benchmarks_md};
use argosy_tests::git_servers::{BRANCH, GitHttpServer, GitRepoDir, git_command};

const FILES: usize = 10_000;
const CHANGED: usize = 10;
const RUNS: usize = 5;
const REPO: &str = "big";

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: measure nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("git benchmark: run with `cargo bench`");
        return;
    }
    // The machine is shared: say how busy it was when the run started.
    let load = load_average();
    let scratch = tempfile::tempdir().expect("scratch dir");
    let root = scratch.path().join("repos");
    std::fs::create_dir_all(&root).expect("repository root");
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home).expect("git HOME");

    let repo = GitRepoDir::init_bare(&root, REPO).expect("git init --bare");
    let start = Instant::now();
    fast_import(&repo, &initial_commit());
    repack(&repo);
    println!(
        "{FILES}-file repository written in {:.0} ms ({:.1} MiB packed)",
        ms(start.elapsed()),
        dir_size(repo.path()) as f64 / (1024.0 * 1024.0)
    );
    let server = GitHttpServer::start(&root).expect("starting nginx + git http-backend");
    let url = server.http_url(REPO);

    let mut rows: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut requests: BTreeMap<&str, usize> = BTreeMap::new();
    for run in 0..RUNS {
        let cache = tempfile::tempdir().expect("cache dir");
        let git_dir = cache.path().join("git-clone.git");
        let repos = GitRepos::new(BTreeMap::new(), cache.path().join("argosy"))
            .with_url_policy(UrlPolicy {
                allow_local: false,
                allow_http: true,
                allow_internal_hosts: true,
            })
            .with_refresh_interval(Duration::ZERO);
        let head = repo.head().expect("head");

        let argosy_clone = || {
            let start = Instant::now();
            let snapshot = repos.snapshot(&url, BRANCH).expect("argosy clone");
            let took = start.elapsed();
            assert_eq!(snapshot.commit(), head);
            assert_eq!(snapshot.files().len(), FILES);
            took
        };
        let git_clone = || {
            let start = Instant::now();
            git(
                &home,
                &["clone", "--bare", "--quiet", &url, path_str(&git_dir)],
            );
            start.elapsed()
        };
        let ((a, ar), (g, gr)) = measure(&server, run, argosy_clone, git_clone);
        rows.entry("clone argosy").or_default().push(a);
        rows.entry("clone git").or_default().push(g);
        requests.insert("clone argosy", ar);
        requests.insert("clone git", gr);

        fast_import(&repo, &change_commit(run));
        let new_head = repo.head().expect("head");
        assert_ne!(new_head, head);
        let argosy_fetch = || {
            let start = Instant::now();
            let snapshot = repos.snapshot(&url, BRANCH).expect("argosy fetch");
            let took = start.elapsed();
            assert_eq!(snapshot.commit(), new_head);
            took
        };
        let git_fetch = || {
            let start = Instant::now();
            git(
                &home,
                &[
                    "--git-dir",
                    path_str(&git_dir),
                    "fetch",
                    "--quiet",
                    "origin",
                    "+refs/heads/*:refs/heads/*",
                ],
            );
            let took = start.elapsed();
            let fetched = git(
                &home,
                &["--git-dir", path_str(&git_dir), "rev-parse", BRANCH],
            );
            assert_eq!(fetched.trim(), new_head);
            took
        };
        let ((a, ar), (g, gr)) = measure(&server, run, argosy_fetch, git_fetch);
        rows.entry("fetch argosy").or_default().push(a);
        rows.entry("fetch git").or_default().push(g);
        requests.insert("fetch argosy", ar);
        requests.insert("fetch git", gr);
        println!(
            "run {run}: clone argosy {:.0} ms, git {:.0} ms; fetch argosy {:.0} ms, git {:.0} ms",
            ms(rows["clone argosy"][run]),
            ms(rows["clone git"][run]),
            ms(rows["fetch argosy"][run]),
            ms(rows["fetch git"][run]),
        );
    }

    // What listing the tree costs git, for reading the clone row: Argosy's snapshot
    // includes it, `git clone --bare` does not.
    let ls_tree = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                git(
                    &home,
                    &[
                        "--git-dir",
                        path_str(repo.path()),
                        "ls-tree",
                        "-r",
                        "--name-only",
                        BRANCH,
                    ],
                );
                start.elapsed()
            })
            .collect(),
    );

    let stat = |key: &str| {
        let mut samples = rows[key].clone();
        samples.sort();
        (
            ms(median(samples.clone())),
            ms(samples[0]),
            ms(samples[samples.len() - 1]),
        )
    };
    let mut table = String::from(
        "| operation | Argosy (`GitRepos::snapshot`) | `git` CLI | ratio argosy/git | HTTP requests argosy / git |\n|---|---|---|---|---|\n",
    );
    println!("\n| operation | argosy median (min-max) | git median (min-max) | ratio |");
    for (op, label) in [
        (
            "clone",
            "first clone (Argosy: `snapshot` = bare clone + listing the 10,000 files; git: `git clone --bare`)",
        ),
        (
            "fetch",
            "incremental fetch, 1 new commit changing 10 files (Argosy: next `snapshot`, refresh interval 0 = ref check + fetch; git: `git fetch`)",
        ),
    ] {
        let (a, a_min, a_max) = stat(&format!("{op} argosy"));
        let (g, g_min, g_max) = stat(&format!("{op} git"));
        println!(
            "| {op} | {a:.0} ms ({a_min:.0}-{a_max:.0}) | {g:.0} ms ({g_min:.0}-{g_max:.0}) | {:.2}x |",
            a / g
        );
        table.push_str(&format!(
            "| {label} | median {a:.0} ms (min {a_min:.0}, max {a_max:.0}) | median {g:.0} ms (min {g_min:.0}, max {g_max:.0}) | {:.2}x | {} / {} |\n",
            a / g,
            requests[format!("{op} argosy").as_str()],
            requests[format!("{op} git").as_str()],
        ));
    }
    println!(
        "git ls-tree -r of the 10,000 files (part of Argosy's clone row): {:.1} ms",
        ms(ls_tree)
    );
    let section = format!(
        "{}. Load average (1 min) at the start: {load}. `cargo bench -p argosy-tests --bench git`, \
         release build; git {}.\n\n\
         A 10,000-file repository ({:.1} MiB packed after the runs) served over plain HTTP on loopback by nginx + \
         `git http-backend` (`tests/src/git_servers.rs`); {RUNS} runs, each from empty clones, \
         Argosy and git alternating which goes first, against the same server in the same run.\n\n\
         {table}\n\
         Listing the 10,000 files with `git ls-tree -r --name-only` takes {:.1} ms (same run): \
         Argosy's clone row includes that listing, git's does not.\n",
        machine(),
        git(&home, &["--version"])
            .trim()
            .trim_start_matches("git version "),
        dir_size(repo.path()) as f64 / (1024.0 * 1024.0),
        ms(ls_tree),
    );
    update_benchmarks_md(
        "git",
        "Git: clone and fetch of a 10,000-file repository",
        &section,
    );
}

/// Times `argosy` and `git` (alternating which goes first by run) and counts the HTTP
/// requests each sent to the server: `((argosy time, requests), (git time, requests))`.
fn measure(
    server: &GitHttpServer,
    run: usize,
    argosy: impl FnOnce() -> Duration,
    git: impl FnOnce() -> Duration,
) -> ((Duration, usize), (Duration, usize)) {
    let counted = |f: Box<dyn FnOnce() -> Duration + '_>| {
        server.reset_requests();
        let took = f();
        (took, server.requests(REPO))
    };
    if run.is_multiple_of(2) {
        let a = counted(Box::new(argosy));
        let g = counted(Box::new(git));
        (a, g)
    } else {
        let g = counted(Box::new(git));
        let a = counted(Box::new(argosy));
        (a, g)
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Runs git (isolated environment) and returns its stdout; panics with stderr on failure.
fn git(home: &Path, args: &[&str]) -> String {
    let out = git_command(home).args(args).output().expect("running git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Feeds a fast-import stream to the bare repository.
fn fast_import(repo: &GitRepoDir, stream: &[u8]) {
    let mut child = repo
        .git()
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting git fast-import");
    child
        .stdin
        .take()
        .expect("fast-import stdin")
        .write_all(stream)
        .expect("writing to git fast-import");
    let out = child.wait_with_output().expect("git fast-import");
    assert!(
        out.status.success(),
        "git fast-import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `git repack -a -d`: fast-import's pack has few deltas; a hosted repository is repacked
/// (gc), and both clients then get packs built the same way.
fn repack(repo: &GitRepoDir) {
    let out = repo
        .git()
        .args(["repack", "-a", "-d", "-q"])
        .output()
        .expect("git repack");
    assert!(
        out.status.success(),
        "git repack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The path and content of file `i` (`generation` changes the content).
fn file(i: usize, generation: usize) -> (String, String) {
    (
        format!("apps/app-{:03}/resource-{i:05}.yaml", i / 100),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: resource-{i:05}\n  namespace: app-{:03}\n  labels:\n    generation: \"{generation}\"\ndata:\n  index: \"{i}\"\n  payload: \"{}\"\n",
            i / 100,
            payload(i as u64 * 1_000 + generation as u64)
        ),
    )
}

/// 512 hex digits from SplitMix64 seeded by `seed`: content that does not delta or
/// compress away, so the pack is about as large as 10,000 real manifests.
fn payload(seed: u64) -> String {
    let mut state = seed;
    (0..32)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            format!("{:016x}", z ^ (z >> 31))
        })
        .collect()
}

fn data(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.push(b'\n');
}

fn commit_header(out: &mut Vec<u8>, message: &str, seconds: u64) {
    out.extend_from_slice(format!("commit refs/heads/{BRANCH}\n").as_bytes());
    for who in ["author", "committer"] {
        out.extend_from_slice(
            format!("{who} Argosy Bench <bench@argosy.invalid> {seconds} +0000\n").as_bytes(),
        );
    }
    data(out, message.as_bytes());
}

fn initial_commit() -> Vec<u8> {
    let mut out = Vec::new();
    commit_header(&mut out, "10,000 files", 1_704_067_200);
    for i in 0..FILES {
        let (path, content) = file(i, 0);
        out.extend_from_slice(format!("M 100644 inline {path}\n").as_bytes());
        data(&mut out, content.as_bytes());
    }
    out
}

/// One commit on top of the branch changing `CHANGED` files spread over the tree.
fn change_commit(run: usize) -> Vec<u8> {
    let mut out = Vec::new();
    commit_header(
        &mut out,
        &format!("change {CHANGED} files (run {run})"),
        1_704_067_200 + 60 * (run as u64 + 1),
    );
    out.extend_from_slice(format!("from refs/heads/{BRANCH}^0\n").as_bytes());
    for k in 0..CHANGED {
        let (path, content) = file((k * FILES / CHANGED + run * 7) % FILES, run + 1);
        out.extend_from_slice(format!("M 100644 inline {path}\n").as_bytes());
        data(&mut out, content.as_bytes());
    }
    out
}

/// Bytes under `dir` (the repository's size on disk).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

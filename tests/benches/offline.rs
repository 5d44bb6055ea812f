//! Offline benchmarks (issue: foundation), run with `cargo bench -p argosy-tests --bench offline`.
//!
//! * render: 100,000 Applications from a goTemplate Matrix of 10,000 cluster Secrets x a
//!   list of 10 elements, through the real pipeline; wall time and peak RSS.
//! * git directories: the Git directory generator over a 10,000-directory repository,
//!   cold (fresh process, tree walked from the object database) and warm, next to
//!   `git ls-tree -r` on the same repository (the baseline, same run).
//!
//! Each scenario runs in a child process (this binary re-executed) so its peak RSS is
//! its own. Results replace the `offline` section of BENCHMARKS.md at the workspace root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use argosy_crds::consts::{SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use argosy_crds::{ApplicationSet, Cluster};
use argosy_generators::memory::{MemoryClusters, MemoryProjects};
use argosy_generators::source::{ClusterEntry, RepoSource};
use argosy_generators::{PipelineOptions, Sources, generate_applications};
use argosy_sync_engine::repo::{GitRepos, write_commit};
use argosy_tests::bench::{machine, median, ms, peak_rss_mib, update_benchmarks_md};
use serde_json::json;

const SCENARIO_ENV: &str = "ARGOSY_BENCH_SCENARIO";
const CLUSTERS: usize = 10_000;
const ELEMENTS: usize = 10;
const DIRECTORIES: usize = 10_000;
const RUNS: usize = 5;

fn main() {
    // `cargo bench` passes `--bench`; a scenario child gets its name in the environment.
    match std::env::var(SCENARIO_ENV).as_deref() {
        Ok("render") => render(),
        Ok("gitdir") => {
            let repo = std::env::args()
                .nth(1)
                .map(PathBuf::from)
                .expect("repo path");
            gitdir(&repo);
        }
        // `cargo test --all-targets` runs this binary without `--bench`: measure nothing.
        _ if !std::env::args().any(|a| a == "--bench") => {
            println!("offline benchmarks: run with `cargo bench`")
        }
        _ => parent(),
    }
}

fn render() {
    let entries: Vec<ClusterEntry> = (0..CLUSTERS)
        .map(|i| {
            ClusterEntry::Valid(Cluster {
                secret: Some(format!("argocd/cluster-{i}")),
                name: format!("cluster-{i}"),
                server: format!("https://cluster-{i}.example.com"),
                labels: BTreeMap::from([
                    (SECRET_TYPE_LABEL.to_owned(), SECRET_TYPE_CLUSTER.to_owned()),
                    ("customer".to_owned(), format!("customer-{}", i % 500)),
                    (
                        "tier".to_owned(),
                        ["gold", "silver", "bronze"][i % 3].to_owned(),
                    ),
                ]),
                ..Cluster::default()
            })
        })
        .collect();
    let elements: Vec<_> = (0..ELEMENTS)
        .map(|i| json!({"app": format!("app-{i}"), "path": format!("apps/app-{i}")}))
        .collect();
    let appset: ApplicationSet = serde_json::from_value(json!({
        "metadata": {"name": "bench", "namespace": "argocd"},
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"matrix": {"generators": [
                {"clusters": {"selector": {"matchExpressions": [{"key": "customer", "operator": "Exists"}]}}},
                {"list": {"elements": elements}}
            ]}}],
            "template": {
                "metadata": {
                    "name": "{{.app}}-{{.nameNormalized}}",
                    "labels": {"customer": "{{.metadata.labels.customer}}", "tier": "{{.metadata.labels.tier}}", "app": "{{.app}}"}
                },
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://git.example.com/fleet.git", "targetRevision": "HEAD",
                               "path": "{{.path}}/overlays/{{.metadata.labels.customer}}"},
                    "destination": {"server": "{{.server}}", "namespace": "{{.app}}"}
                }
            }
        }
    }))
    .expect("benchmark ApplicationSet");
    let clusters = MemoryClusters(entries);
    let repos = argosy_generators::memory::MemoryRepos::default();
    let projects = MemoryProjects::default_only();
    let sources = Sources {
        clusters: &clusters,
        repos: &repos,
        projects: &projects,
    };
    let start = Instant::now();
    let generated =
        generate_applications(&appset, sources, &PipelineOptions::default()).expect("generation");
    let wall = start.elapsed();
    assert_eq!(generated.applications.len(), CLUSTERS * ELEMENTS);
    println!(
        "{}",
        json!({"apps": generated.applications.len(), "wall_ms": wall.as_secs_f64() * 1e3, "peak_rss_mib": peak_rss_mib()})
    );
}

fn gitdir(repo: &Path) {
    let url = "https://git.example.com/big.git";
    let appset: ApplicationSet = serde_json::from_value(json!({
        "metadata": {"name": "dirs", "namespace": "argocd"},
        "spec": {
            "goTemplate": true,
            "generators": [{"git": {"repoURL": url, "revision": "HEAD", "directories": [{"path": "apps/*"}]}}],
            "template": {"metadata": {"name": "{{.path.basename}}"},
                         "spec": {"project": "default", "source": {"repoURL": url, "path": "{{.path.path}}"},
                                  "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"}}}
        }
    }))
    .expect("ApplicationSet");
    let repos = GitRepos::new(
        BTreeMap::from([(url.to_owned(), repo.to_owned())]),
        std::env::temp_dir(),
    );
    let clusters = MemoryClusters::default();
    let projects = MemoryProjects::default_only();
    let sources = Sources {
        clusters: &clusters,
        repos: &repos,
        projects: &projects,
    };
    let run = || {
        let start = Instant::now();
        let generated = generate_applications(&appset, sources, &PipelineOptions::default())
            .expect("generation");
        assert_eq!(generated.applications.len(), DIRECTORIES);
        start.elapsed()
    };
    let cold = run();
    let warm = median((0..RUNS).map(|_| run()).collect());
    // Listing only (no rendering), with the snapshot cache: what a requeue costs the Git side.
    let start = Instant::now();
    let files = repos.snapshot(url, "HEAD").expect("snapshot").files().len();
    let listing = start.elapsed();
    println!(
        "{}",
        json!({"cold_ms": ms(cold), "warm_ms": ms(warm), "listing_ms": ms(listing), "files": files, "peak_rss_mib": peak_rss_mib()})
    );
}

fn child(scenario: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .args(args)
        .env(SCENARIO_ENV, scenario)
        .output()
        .expect("running scenario");
    assert!(
        out.status.success(),
        "{scenario}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scenario output")
}

fn parent() {
    println!("render: {CLUSTERS} clusters x {ELEMENTS} elements ({RUNS} runs)");
    let renders: Vec<serde_json::Value> = (0..RUNS).map(|_| child("render", &[])).collect();
    let mut walls: Vec<f64> = renders
        .iter()
        .map(|r| r["wall_ms"].as_f64().unwrap_or(f64::NAN))
        .collect();
    walls.sort_by(f64::total_cmp);
    let rss = renders
        .iter()
        .map(|r| r["peak_rss_mib"].as_f64().unwrap_or(f64::NAN))
        .fold(0.0, f64::max);
    let (render_median, render_min, render_max) =
        (walls[walls.len() / 2], walls[0], walls[walls.len() - 1]);
    println!(
        "  median {render_median:.0} ms (min {render_min:.0}, max {render_max:.0}), peak RSS {rss:.0} MiB"
    );

    println!("git directories: {DIRECTORIES} directories");
    let scratch = tempfile::tempdir().expect("tempdir");
    let repo = scratch.path().join("big.git");
    let files: BTreeMap<String, String> = (0..DIRECTORIES)
        .map(|i| {
            (
                format!("apps/app-{i:05}/kustomization.yaml"),
                format!("resources: [app-{i}.yaml]\n"),
            )
        })
        .collect();
    write_commit(&repo, "HEAD", &files).expect("writing the repository");
    let git = child("gitdir", &[repo.to_str().expect("utf-8 path")]);
    let ls_tree = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let out = Command::new("git")
                    .args([
                        "-C",
                        repo.to_str().expect("path"),
                        "ls-tree",
                        "-r",
                        "--name-only",
                        "HEAD",
                    ])
                    .output()
                    .expect("git ls-tree");
                assert!(out.status.success());
                start.elapsed()
            })
            .collect(),
    );
    let f = |k: &str| git[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "  cold {:.1} ms, warm {:.1} ms (listing {:.2} ms), git ls-tree -r {:.1} ms, peak RSS {:.0} MiB",
        f("cold_ms"),
        f("warm_ms"),
        f("listing_ms"),
        ms(ls_tree),
        f("peak_rss_mib")
    );

    let section = format!(
        "{}. `cargo bench -p argosy-tests --bench offline`, release build.\n\n\
         | benchmark | result | target | baseline (same run) | ratio |\n|---|---|---|---|---|\n\
         | render 100,000 Applications (Matrix: 10,000 cluster Secrets x 10 list elements, goTemplate, `missingkey=error`) | median {render_median:.0} ms (min {render_min:.0}, max {render_max:.0}; {RUNS} runs) | <= 1,000 ms | - | - |\n\
         | peak RSS of that process | {rss:.0} MiB ({:.0} MB) | <= 300 MB | - | - |\n\
         | Git directory generator, 10,000 directories, cold (new process: resolve, walk tree from the object database, match, render) | {:.1} ms | - | `git ls-tree -r --name-only HEAD`: {:.1} ms | {:.2}x |\n\
         | same, warm (median of {RUNS}; snapshot cached by commit, match + render 10,000 Applications) | {:.1} ms | <= 50 ms | `git ls-tree -r`: {:.1} ms | {:.2}x |\n\
         | warm listing only (ref resolve + cached snapshot) | {:.2} ms | - | `git ls-tree -r`: {:.1} ms | {:.3}x |\n",
        machine(),
        rss * 1.048_576,
        f("cold_ms"),
        ms(ls_tree),
        f("cold_ms") / ms(ls_tree),
        f("warm_ms"),
        ms(ls_tree),
        f("warm_ms") / ms(ls_tree),
        f("listing_ms"),
        ms(ls_tree),
        f("listing_ms") / ms(ls_tree),
    );
    update_benchmarks_md(
        "offline",
        "Offline pipeline (generators + templates + Git)",
        &section,
    );
}

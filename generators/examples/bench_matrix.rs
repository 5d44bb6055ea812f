//! Timing run for the 100,000-Application case: a goTemplate matrix of 10,000 cluster
//! Secrets x a list of 10 elements. Prints the wall time of `generate_applications` and
//! the process's peak RSS. Target: <= 1 s and <= 300 MB on a 2-core machine.
//!
//! `cargo run --release -p argosy-generators --example bench_matrix [clusters] [elements]`

use std::collections::BTreeMap;
use std::time::Instant;

use argosy_crds::consts::{SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use argosy_crds::{ApplicationSet, Cluster};
use argosy_generators::memory::{MemoryClusters, MemoryProjects, MemoryRepos};
use argosy_generators::source::ClusterEntry;
use argosy_generators::{PipelineOptions, Sources, generate_applications};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let clusters: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let elements: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);

    let entries = (0..clusters)
        .map(|i| {
            let labels = BTreeMap::from([
                (SECRET_TYPE_LABEL.to_owned(), SECRET_TYPE_CLUSTER.to_owned()),
                ("customer".to_owned(), format!("customer-{}", i % 500)),
                (
                    "tier".to_owned(),
                    ["gold", "silver", "bronze"][i % 3].to_owned(),
                ),
            ]);
            ClusterEntry::Valid(Cluster {
                secret: Some(format!("argocd/cluster-{i}")),
                name: format!("cluster-{i}"),
                server: format!("https://cluster-{i}.example.com"),
                labels,
                ..Cluster::default()
            })
        })
        .collect();
    let elements: Vec<_> = (0..elements)
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
                    "labels": {
                        "customer": "{{.metadata.labels.customer}}",
                        "tier": "{{.metadata.labels.tier}}",
                        "app": "{{.app}}"
                    }
                },
                "spec": {
                    "project": "default",
                    "source": {
                        "repoURL": "https://github.com/example/apps.git",
                        "targetRevision": "HEAD",
                        "path": "{{.path}}/overlays/{{.metadata.labels.customer}}"
                    },
                    "destination": {"server": "{{.server}}", "namespace": "{{.app}}"}
                }
            }
        }
    }))?;

    let clusters = MemoryClusters(entries);
    let repos = MemoryRepos::default();
    let projects = MemoryProjects::default_only();
    let sources = Sources {
        clusters: &clusters,
        repos: &repos,
        projects: &projects,
    };
    let before = peak_rss_kb();
    let start = Instant::now();
    let generated = generate_applications(&appset, sources, &PipelineOptions::default())?;
    let elapsed = start.elapsed();
    println!(
        "{} applications ({} validation errors) in {:.3} s (process CPU {:.3} s), peak RSS {} MB ({} MB before generating)",
        generated.applications.len(),
        generated.validation_errors.len(),
        elapsed.as_secs_f64(),
        cpu_seconds(),
        peak_rss_kb() / 1024,
        before / 1024
    );
    Ok(())
}

/// `VmHWM` of this process (0 where /proc is unavailable).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time of this process so far (0 where /proc is unavailable): unlike
/// wall time, not inflated by other processes competing for the cores.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

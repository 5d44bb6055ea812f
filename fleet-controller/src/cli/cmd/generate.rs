//! `argosy generate`: the offline pipeline, files in, Applications out.
//!
//! Clusters come from Secret files, repositories from local paths or remote clones, and
//! projects from AppProject documents next to the ApplicationSets (`default` always
//! exists, as in a stock Argo CD install).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use argosy_crds::Application;
use argosy_generators::memory::{MemoryClusters, MemoryProjects};
use argosy_generators::pipeline::{GeneratedApp, PipelineOptions, generate_applications};
use argosy_generators::source::{ClusterEntry, Sources};

use crate::cli::inputs::{Manifests, load_clusters, load_manifests};
use argosy_sync_engine::repo::GitRepos;
use argosy_sync_engine::url_policy::UrlPolicy;

/// What `argosy generate` was asked to do.
#[derive(Debug)]
pub struct GenerateArgs {
    pub files: Vec<PathBuf>,
    pub clusters: Vec<PathBuf>,
    pub repos: BTreeMap<String, PathBuf>,
    pub format: OutputFormat,
    pub explain: bool,
    pub repo_cache: PathBuf,
}

/// Output format of generated Applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Yaml,
    Json,
}

/// What the offline commands read: the `-f` files, the clusters of the cluster Secret
/// files, Git (local paths for `--repo URL=PATH`, remote clones otherwise) and the
/// projects (`default` plus the AppProjects in the files).
pub struct Offline {
    pub manifests: Manifests,
    pub clusters: MemoryClusters,
    pub repos: GitRepos,
    pub projects: MemoryProjects,
}

impl Offline {
    /// Reads the files; Git is read when the pipeline asks.
    pub fn load(
        files: &[PathBuf],
        clusters: &[PathBuf],
        repos: BTreeMap<String, PathBuf>,
        repo_cache: PathBuf,
    ) -> anyhow::Result<Offline> {
        let manifests = load_manifests(files)?;
        let clusters = MemoryClusters(
            load_clusters(clusters)?
                .into_iter()
                .map(ClusterEntry::Valid)
                .collect(),
        );
        // The user's own machine and repositories: local paths are what offline generation reads.
        let repos = GitRepos::new(repos, repo_cache).with_url_policy(UrlPolicy::permissive());
        let projects = MemoryProjects::with_default(manifests.projects.iter().cloned());
        Ok(Offline {
            manifests,
            clusters,
            repos,
            projects,
        })
    }

    /// The generators' view of them.
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            clusters: &self.clusters,
            repos: &self.repos,
            projects: &self.projects,
        }
    }
}

/// Runs the pipeline for every ApplicationSet in `args.files` and formats the result.
pub fn run(args: &GenerateArgs) -> anyhow::Result<String> {
    let offline = Offline::load(
        &args.files,
        &args.clusters,
        args.repos.clone(),
        args.repo_cache.clone(),
    )?;
    let (manifests, sources) = (&offline.manifests, offline.sources());

    let mut apps: Vec<GeneratedApp> = Vec::new();
    for (path, appset) in &manifests.application_sets {
        let name = appset.metadata.name.as_deref().unwrap_or("<unnamed>");
        let options = PipelineOptions {
            keep_params: args.explain,
            ..PipelineOptions::default()
        };
        let generated = generate_applications(appset, sources, &options)
            .map_err(|e| anyhow!("{}: ApplicationSet {name}: {e}", path.display()))?;
        if let Some(first) = generated.validation_errors.first() {
            let more = generated.validation_errors.len() - 1;
            let suffix = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            bail!(
                "{}: ApplicationSet {name}: {}{suffix}",
                path.display(),
                first.message
            );
        }
        apps.extend(generated.applications);
    }
    format(&apps, args.format, args.explain)
}

fn format(apps: &[GeneratedApp], format: OutputFormat, explain: bool) -> anyhow::Result<String> {
    match format {
        OutputFormat::Json => {
            let items: Vec<&Application> = apps.iter().map(|a| &a.application).collect();
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            let mut text =
                serde_json::to_string_pretty(&list).context("serializing Applications")?;
            text.push('\n');
            Ok(text)
        }
        OutputFormat::Yaml => {
            let mut out = String::new();
            for app in apps {
                out.push_str("---\n");
                if explain {
                    out.push_str(&crate::cli::explain::explain(app));
                }
                out.push_str(
                    &serde_yaml_ng::to_string(&app.application)
                        .context("serializing Application")?,
                );
            }
            if apps.is_empty() {
                let _ = writeln!(out, "# no Applications generated");
            }
            Ok(out)
        }
    }
}

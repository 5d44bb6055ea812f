//! `argosy plan`: what moving the repositories an ApplicationSet reads from one revision
//! to another changes across its fleet, offline. The plan itself is the sync engine's
//! ([`argosy_sync_engine::fleet_plan`]); this command feeds it the files, the cluster
//! Secret files and Git, and formats it ([`crate::cli::format::plan`]).

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow, bail};
use argosy_crds::{ApplicationSet, Cluster};
use argosy_generators::pipeline::{PipelineOptions, generate_applications};
use argosy_generators::source::{ClusterEntry, Sources};
use argosy_sync_engine::charts::ChartRepos;
use argosy_sync_engine::fleet_plan::collect::{PlanRequest, PlanSources, plan};
use argosy_sync_engine::render::{Limits, Renderer};
use argosy_sync_engine::repo::RemoteSettings;
use argosy_sync_engine::url_policy::UrlPolicy;

use crate::cli::args::{PlanFlags, PlanFormat};
use crate::cli::cmd::generate::Offline;
use crate::defaults::default_cache_dir;

/// What `argosy plan` prints, and how many Applications it could not plan (exit 1 then).
#[derive(Debug)]
pub struct Outcome {
    pub text: String,
    pub problems: usize,
}

/// Plans the one ApplicationSet of `flags.files`.
pub fn run(flags: &PlanFlags) -> anyhow::Result<Outcome> {
    let repo_cache = flags.repo_cache.clone().unwrap_or_else(default_cache_dir);
    let offline = Offline::load(
        &flags.files,
        &flags.clusters,
        flags.repos.iter().cloned().collect::<BTreeMap<_, _>>(),
        repo_cache.clone(),
    )?;
    let (path, appset) = match offline.manifests.application_sets.as_slice() {
        [one] => one,
        many => bail!(
            "argosy plan takes one ApplicationSet; the files hold {}",
            many.len()
        ),
    };
    let clusters: Vec<Cluster> = offline
        .clusters
        .0
        .iter()
        .filter_map(|entry| match entry {
            ClusterEntry::Valid(cluster) => Some(cluster.clone()),
            ClusterEntry::Invalid { .. } => None,
        })
        .collect();
    // Rendered trees live as long as the command: a scratch directory, removed at the end.
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let renderer = Renderer::new(scratch.path().to_path_buf(), Limits::default());
    let charts = ChartRepos::new(repo_cache.join("charts")).with_remote(RemoteSettings {
        url_policy: UrlPolicy::permissive(),
        ..RemoteSettings::default()
    });
    let generator_sources: Sources<'_> = offline.sources();
    let pipeline = PipelineOptions::default();
    let generate =
        |appset: &ApplicationSet| generate_applications(appset, generator_sources, &pipeline);
    let sources = PlanSources {
        generate: &generate,
        generator_repos: &offline.repos,
        clusters: &clusters,
        projects: &offline.projects,
        repos: &offline.repos,
        charts: &charts,
        renderer: &renderer,
    };
    let request = PlanRequest {
        from: flags.from.clone(),
        to: flags.to.clone(),
        repo_urls: flags.repo_urls.clone(),
        group_by: flags.group_by.clone(),
        max_apps: flags.max_apps,
        max_diff_lines: flags.max_diff_lines,
        deadline: None,
    };
    let name = appset.metadata.name.as_deref().unwrap_or("<unnamed>");
    let planned = plan(appset, &sources, &request)
        .map_err(|e| anyhow!("{}: ApplicationSet {name}: {e}", path.display()))?;
    let text = match flags.output {
        PlanFormat::Text => crate::cli::format::plan::text(&planned),
        PlanFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&planned).context("serializing the plan")?;
            text.push('\n');
            text
        }
    };
    Ok(Outcome {
        text,
        problems: planned.problems(),
    })
}

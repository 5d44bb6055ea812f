//! Every source of one Application read and rendered: Git trees at their revisions, chart
//! packages at their versions, `$ref` sources handed to the others, and a Git chart's
//! dependencies held to the project's `sourceRepos`.
//!
//! The Application controller renders through here before it compares, and the fleet plan
//! ([`crate::fleet_plan`]) renders both sides of a revision range through here, so a plan
//! shows what a sync would deploy.

use std::sync::Arc;

use argosy_crds::ProjectPolicy;
use argosy_crds::application::ApplicationSource;
use argosy_generators::source::{RepoSnapshot, RepoSource};
use serde_json::Value;

use crate::charts::{ChartRequest, ProjectCharts};
use crate::render::{ChartFetcher, Inputs, RenderTarget, Rendered, Renderer};
use crate::repo::ProjectRepos;
use crate::target::{Wanted, is_reference_only};

/// What reads and renders an Application's sources, all with its project's credentials.
pub struct SourceReaders<'a> {
    /// Git, as the project's Applications read it.
    pub repos: ProjectRepos<'a>,
    /// Helm repositories and OCI registries, as the project's Applications read them.
    pub charts: ProjectCharts<'a>,
    /// The project's boundary (chart dependencies must come from its `sourceRepos`).
    pub policy: &'a ProjectPolicy,
    /// The renderer (and its result cache).
    pub renderer: &'a Renderer,
}

/// The sources of one Application, rendered.
pub struct RenderedSources {
    /// Per source, in order: the commit (Git) or chart version it resolved to.
    pub commits: Vec<String>,
    /// Per source that renders (not a reference-only one), in order.
    pub renders: Vec<Arc<Rendered>>,
}

/// Why an Application's sources could not be rendered. The message names the source
/// (`spec.sources[i]: ...`) when the Application has several.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourcesError {
    /// A Git revision or chart version could not be read.
    #[error("{0}")]
    Fetch(String),
    /// A source did not render.
    #[error("{0}")]
    Render(String),
}

/// Reads every source of `wanted` first (a `$ref` value file may name a later one), then
/// renders each one that renders. Blocking (Git, chart downloads, the tools): callers use
/// `spawn_blocking`.
pub fn render_sources(
    readers: &SourceReaders<'_>,
    wanted: &Wanted,
    target: RenderTarget<'_>,
) -> Result<RenderedSources, SourcesError> {
    let which = |i: usize, e: String| {
        if wanted.multi {
            format!("spec.sources[{i}]: {e}")
        } else {
            e
        }
    };
    let mut commits = Vec::new();
    let mut trees = Vec::new();
    for (i, (source, revision)) in wanted.sources.iter().enumerate() {
        let (revision, tree) = if source.chart.is_empty() {
            let snapshot = readers
                .repos
                .snapshot(&source.repo_url, revision)
                .map_err(|e| SourcesError::Fetch(which(i, e.to_string())))?;
            (snapshot.commit().to_owned(), snapshot)
        } else {
            let fetched = readers
                .charts
                .fetch(ChartRequest {
                    repo_url: &source.repo_url,
                    chart: &source.chart,
                    wanted: revision,
                    pass_credentials: passes_credentials(source),
                })
                .map_err(|e| SourcesError::Fetch(which(i, e.to_string())))?;
            let tree = fetched.snapshot();
            (fetched.version, tree)
        };
        commits.push(revision);
        trees.push(tree);
    }
    let refs: Vec<(String, Arc<dyn RepoSnapshot>)> = wanted
        .sources
        .iter()
        .zip(&trees)
        .filter_map(|((source, _), tree)| {
            let name = source.extra.get("ref")?.as_str()?;
            Some((name.to_owned(), tree.clone()))
        })
        .collect();
    let dependencies = TenantCharts {
        charts: &readers.charts,
        policy: readers.policy,
    };
    let inputs = Inputs {
        refs: &refs,
        dependencies: Some(&dependencies),
    };
    let mut rendered = Vec::new();
    for (i, ((source, _), tree)) in wanted.sources.iter().zip(&trees).enumerate() {
        if !is_reference_only(source) {
            let one = readers
                .renderer
                .render_with(&source.repo_url, tree.as_ref(), source, target, inputs)
                .map_err(|e| SourcesError::Render(which(i, e.to_string())))?;
            rendered.push(one);
        }
    }
    Ok(RenderedSources {
        commits,
        renders: rendered,
    })
}

/// Where a Git chart's dependencies come from: the project's chart cache, and only from
/// repositories its `sourceRepos` permit. A dependency is a source the chart's author chose,
/// so it is held to the tenant's boundary like `repoURL` (Argo CD only withholds credentials
/// from such repositories and fetches them anyway).
struct TenantCharts<'a> {
    charts: &'a ProjectCharts<'a>,
    policy: &'a ProjectPolicy,
}

impl ChartFetcher for TenantCharts<'_> {
    fn scope(&self) -> &str {
        self.charts.scope()
    }

    fn fetch_chart(
        &self,
        repository: &str,
        name: &str,
        version: &str,
        pass_credentials: bool,
    ) -> Result<(String, Arc<dyn RepoSnapshot>), String> {
        self.policy
            .check_source(repository)
            .map_err(|v| v.to_string())?;
        self.charts
            .fetch_chart(repository, name, version, pass_credentials)
    }
}

/// `helm.passCredentials` of a source.
fn passes_credentials(source: &ApplicationSource) -> bool {
    source
        .helm
        .as_ref()
        .and_then(|h| h.get("passCredentials"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

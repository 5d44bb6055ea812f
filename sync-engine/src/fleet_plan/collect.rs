//! Both sides of a fleet plan, generated and rendered: the `ApplicationSet` pinned to each
//! revision ([`super::revisions`]) is generated as its controller would generate it, and
//! every Application it generates is rendered as the sync engine would render it
//! ([`crate::app_sources`]), each source first checked against its project's
//! `sourceRepos`. Reads Git (and chart repositories) only; writes nothing anywhere but the
//! caches. Blocking: callers use `spawn_blocking`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use argosy_crds::{AppProject, Application, ApplicationSet, Cluster, ProjectPolicy};
use argosy_generators::pipeline::{GenerateError, Generated};
use argosy_generators::source::{ProjectSource, RepoError, RepoSource};
use serde::Serialize;

use super::revisions::{Pins, pin_generators, pin_sources, review_repos};
use super::{Comparison, Destination, DiffOptions, PlannedApp, application_view, compare};
use crate::app_sources::{SourceReaders, render_sources};
use crate::charts::ChartRepos;
use crate::render::{RenderTarget, Renderer};
use crate::repo::GitRepos;
use crate::target::Wanted;

/// Generates an `ApplicationSet`'s Applications from the caller's clusters, projects and
/// Git, as its controller would.
pub type Generate<'a> = dyn Fn(&ApplicationSet) -> Result<Generated, GenerateError> + Sync + 'a;

/// Where a plan reads from.
pub struct PlanSources<'a> {
    /// The generators' pipeline.
    pub generate: &'a Generate<'a>,
    /// Resolves the revisions under review, with the credentials the generators read with.
    pub generator_repos: &'a dyn RepoSource,
    /// The registered clusters (destinations, the grouping label, projects' destinations).
    pub clusters: &'a [Cluster],
    /// The `AppProject`s (each Application's `sourceRepos`).
    pub projects: &'a dyn ProjectSource,
    /// Git, for the Applications' sources (read with their project's credentials).
    pub repos: &'a GitRepos,
    /// Helm repositories and OCI registries, for chart sources.
    pub charts: &'a ChartRepos,
    /// The renderer.
    pub renderer: &'a Renderer,
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The old side's revision; `None`: each generator and source at the revision the
    /// `ApplicationSet` names now.
    pub from: Option<String>,
    /// The new side's revision.
    pub to: String,
    /// The repositories the revisions are of; empty: those the Git generators read.
    pub repo_urls: Vec<String>,
    /// The cluster label destinations are grouped by (`customer`).
    pub group_by: String,
    /// A side generating more Applications than this is refused (bounds the work).
    pub max_apps: usize,
    /// Lines kept of each diff.
    pub max_diff_lines: usize,
    /// The plan fails once this passes (checked between Applications).
    pub deadline: Option<Instant>,
}

/// A fleet plan: both sides and their comparison per destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetPlan {
    /// `namespace/name` of the `ApplicationSet`.
    pub application_set: String,
    /// The cluster label destinations are grouped by.
    pub group_by: String,
    /// The repositories under review.
    pub repositories: Vec<String>,
    /// The old side.
    pub from: Side,
    /// The new side.
    pub to: Side,
    /// Counts and the destinations.
    #[serde(flatten)]
    pub comparison: Comparison,
}

impl FleetPlan {
    /// Applications that could not be rendered or would not be written (invalid), on
    /// either side: a plan with any is not a complete answer.
    #[must_use]
    pub fn problems(&self) -> usize {
        self.comparison.summary.apps_failed + self.from.invalid.len() + self.to.invalid.len()
    }
}

/// One side of the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    /// The revision asked for; `None`: as the `ApplicationSet` names it.
    pub revision: Option<String>,
    /// The commit it resolved to, per repository under review.
    pub commits: BTreeMap<String, String>,
    /// Generated Applications the controller would not write, and why.
    pub invalid: Vec<String>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No repository to plan a revision of.
    #[error(
        "no repository under review: the ApplicationSet has no Git generator with a literal repoURL (name one with --repo-url / repoURL=)"
    )]
    NoRepository,
    /// A revision could not be resolved.
    #[error("{side} revision {revision}: {source}")]
    ResolveRevision {
        /// `from` or `to`.
        side: &'static str,
        /// The revision asked for.
        revision: String,
        /// Why.
        #[source]
        source: RepoError,
    },
    /// Generation failed on one side.
    #[error("{side}: generating the Applications: {source}")]
    Generate {
        /// `from` or `to`.
        side: &'static str,
        /// Why.
        #[source]
        source: GenerateError,
    },
    /// One side generates more Applications than the plan renders.
    #[error(
        "{side}: the ApplicationSet generates {count} Applications, more than a plan renders ({limit})"
    )]
    TooManyApps {
        /// `from` or `to`.
        side: &'static str,
        /// How many it generates.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The deadline passed.
    #[error(
        "the plan took too long ({rendered} Applications rendered); narrow it or raise the limit"
    )]
    Deadline {
        /// Applications rendered by then.
        rendered: usize,
    },
}

/// Plans `appset` from `request.from` to `request.to`.
pub fn plan(
    appset: &ApplicationSet,
    sources: &PlanSources<'_>,
    request: &PlanRequest,
) -> Result<FleetPlan, PlanError> {
    let repositories = review_repos(appset, &request.repo_urls);
    if repositories.is_empty() {
        return Err(PlanError::NoRepository);
    }
    let mut rendered = 0;
    let mut plan_side = |side: &'static str, revision: Option<&str>| {
        let commits = match revision {
            Some(revision) => resolve(sources, &repositories, side, revision)?,
            None => BTreeMap::new(),
        };
        // Each repository pinned to the commit it resolved to: a branch that moves while
        // the plan renders does not mix two commits into one side.
        let pins = Pins::new(commits.iter().map(|(r, c)| (r.as_str(), c.as_str())));
        let (apps, invalid) = side_apps(appset, sources, request, side, &pins, &mut rendered)?;
        let side = Side {
            revision: revision.map(str::to_owned),
            commits,
            invalid,
        };
        Ok::<_, PlanError>((side, apps))
    };
    let (from, from_apps) = plan_side("from", request.from.as_deref())?;
    let (to, to_apps) = plan_side("to", Some(&request.to))?;
    let options = DiffOptions {
        max_diff_lines: request.max_diff_lines,
        from_label: label(&from),
        to_label: label(&to),
    };
    Ok(FleetPlan {
        application_set: format!(
            "{}/{}",
            appset.metadata.namespace.as_deref().unwrap_or_default(),
            appset.metadata.name.as_deref().unwrap_or_default()
        ),
        group_by: request.group_by.clone(),
        repositories,
        from,
        to,
        comparison: compare(from_apps, to_apps, &options),
    })
}

/// The commit `revision` is, in each repository under review.
fn resolve(
    sources: &PlanSources<'_>,
    repositories: &[String],
    side: &'static str,
    revision: &str,
) -> Result<BTreeMap<String, String>, PlanError> {
    repositories
        .iter()
        .map(|repo| {
            let snapshot = sources
                .generator_repos
                .snapshot(repo, revision)
                .map_err(|source| PlanError::ResolveRevision {
                    side,
                    revision: revision.to_owned(),
                    source,
                })?;
            Ok((repo.clone(), snapshot.commit().to_owned()))
        })
        .collect()
}

/// A side as diff headers and summaries name it: `main (1a2b3c4)`, a commit by its
/// first 7 characters, `current` for the revisions the `ApplicationSet` names now.
#[must_use]
pub fn label(side: &Side) -> String {
    let Some(revision) = &side.revision else {
        return "current".to_owned();
    };
    let short = |c: &'_ str| c.get(..7).unwrap_or(c).to_owned();
    let commits: Vec<String> = side.commits.values().map(|c| short(c)).collect();
    if side
        .commits
        .values()
        .all(|c| c.starts_with(revision.as_str()))
    {
        // The revision is a commit (or a prefix of one).
        commits.first().cloned().unwrap_or_else(|| revision.clone())
    } else {
        format!("{revision} ({})", commits.join(", "))
    }
}

/// One side's Applications, rendered, and its invalid ones.
fn side_apps(
    appset: &ApplicationSet,
    sources: &PlanSources<'_>,
    request: &PlanRequest,
    side: &'static str,
    pins: &Pins,
    rendered: &mut usize,
) -> Result<(Vec<PlannedApp>, Vec<String>), PlanError> {
    let generated = (sources.generate)(&pin_generators(appset, pins))
        .map_err(|source| PlanError::Generate { side, source })?;
    let count = generated.applications.len();
    if count > request.max_apps {
        return Err(PlanError::TooManyApps {
            side,
            count,
            limit: request.max_apps,
        });
    }
    let mut apps = Vec::with_capacity(count);
    for generated_app in &generated.applications {
        if request.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(PlanError::Deadline {
                rendered: *rendered,
            });
        }
        let app = &generated_app.application;
        apps.push(PlannedApp {
            name: app.metadata.name.clone().unwrap_or_default(),
            destination: destination_of(app, sources.clusters, &request.group_by),
            // The Application as generated: its sources' revisions as the template says.
            application: application_view(&serde_json::to_value(app).unwrap_or_default()),
            objects: render_app(&pin_sources(app, pins), sources),
        });
        *rendered += 1;
    }
    let invalid = generated
        .validation_errors
        .into_iter()
        .map(|e| e.message)
        .collect();
    Ok((apps, invalid))
}

/// The destination an Application deploys to, grouped by the cluster's `group_by` label
/// (else its name); an unregistered destination is named as written.
fn destination_of(app: &Application, clusters: &[Cluster], group_by: &str) -> Destination {
    let written = &app.spec.destination;
    if let Ok(cluster) = argosy_crds::resolve_destination(written, clusters) {
        return Destination {
            group: cluster
                .labels
                .get(group_by)
                .filter(|v| !v.is_empty())
                .unwrap_or(&cluster.name)
                .clone(),
            cluster: cluster.name.clone(),
            server: cluster.server.clone(),
        };
    }
    let shown = if written.name.is_empty() {
        &written.server
    } else {
        &written.name
    };
    Destination {
        group: shown.clone(),
        cluster: written.name.clone(),
        server: written.server.clone(),
    }
}

/// Every object of `app`'s sources, rendered as the sync engine renders them (without a
/// destination's `.Capabilities`: the plan contacts no cluster), or why not.
fn render_app(
    app: &Application,
    sources: &PlanSources<'_>,
) -> Result<Vec<serde_json::Value>, String> {
    let wanted = Wanted::of(app, None)?;
    let project_name = if app.spec.project.is_empty() {
        "default"
    } else {
        &app.spec.project
    };
    let project = match sources.projects.project(project_name) {
        Some(project) => project,
        None if project_name == "default" => Arc::new(AppProject::builtin_default()),
        None => return Err(format!("project {project_name} does not exist")),
    };
    let policy = ProjectPolicy::new(&project, sources.clusters);
    for (source, _) in &wanted.sources {
        policy
            .check_source(&source.repo_url)
            .map_err(|v| v.to_string())?;
    }
    let readers = SourceReaders {
        repos: sources.repos.for_project(&app.spec.project),
        charts: sources.charts.for_project(&app.spec.project),
        policy: &policy,
        renderer: sources.renderer,
    };
    let target = RenderTarget {
        app_name: app.metadata.name.as_deref().unwrap_or_default(),
        namespace: &app.spec.destination.namespace,
        kube_version: "",
        api_versions: &[],
    };
    let rendered = render_sources(&readers, &wanted, target).map_err(|e| e.to_string())?;
    Ok(rendered
        .renders
        .iter()
        .flat_map(|r| r.objects.iter().cloned())
        .collect())
}

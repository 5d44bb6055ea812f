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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet_plan::Change;
    use argosy_generators::memory::{MemoryClusters, MemoryProjects};
    use argosy_generators::pipeline::{PipelineOptions, generate_applications};
    use argosy_generators::source::{ClusterEntry, Sources};
    use serde_json::json;

    const URL: &str = "https://git.example.com/fleet.git";

    fn cluster(name: &str, customer: Option<&str>) -> Cluster {
        let mut secret = json!({"metadata": {"name": name, "namespace": "argocd",
            "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
            "stringData": {"name": name, "server": format!("https://{name}:6443"), "config": "{}"}});
        if let Some(customer) = customer {
            secret["metadata"]["labels"]["customer"] = json!(customer);
        }
        Cluster::from_secret(&serde_json::from_value(secret).unwrap()).unwrap()
    }

    /// Apps `<dir>-<cluster>` from the directories under `apps/` of [`URL`], plain manifests.
    fn appset(project: &str) -> ApplicationSet {
        serde_json::from_value(json!({
            "metadata": {"name": "fleet", "namespace": "argocd"},
            "spec": {
                "goTemplate": true,
                "generators": [{"matrix": {"generators": [
                    // The registered clusters only (not the implicit in-cluster one).
                    {"clusters": {"selector": {"matchLabels": {"argocd.argoproj.io/secret-type": "cluster"}}}},
                    {"git": {"repoURL": URL, "revision": "HEAD", "directories": [{"path": "apps/*"}]}},
                ]}}],
                "template": {
                    "metadata": {"name": "{{.path.basename}}-{{.name}}"},
                    "spec": {
                        "project": project,
                        "source": {"repoURL": URL, "targetRevision": "HEAD", "path": "{{.path.path}}"},
                        "destination": {"server": "{{.server}}", "namespace": "{{.path.basename}}"},
                    },
                },
            },
        }))
        .unwrap()
    }

    fn config_map(name: &str, value: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{value}\"\n"
        )
    }

    /// Plans `appset` over a repository with two commits (`one`, then `two`) and the
    /// projects given, from the first commit to the second.
    fn plan_two_commits(
        appset: &ApplicationSet,
        projects: &MemoryProjects,
        one: &[(&str, String)],
        two: &[(&str, String)],
    ) -> Result<FleetPlan, PlanError> {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("fleet.git");
        let files = |f: &[(&str, String)]| {
            f.iter()
                .map(|(p, c)| ((*p).to_owned(), c.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let first = crate::repo::write_commit(&bare, "HEAD", &files(one)).unwrap();
        let second = crate::repo::write_commit(&bare, "HEAD", &files(two)).unwrap();
        let repos = GitRepos::new(
            BTreeMap::from([(URL.to_owned(), bare)]),
            dir.path().join("cache"),
        );
        let clusters = vec![cluster("acme-prod", Some("acme")), cluster("lab", None)];
        let cluster_source =
            MemoryClusters(clusters.iter().cloned().map(ClusterEntry::Valid).collect());
        let generator_sources = Sources {
            clusters: &cluster_source,
            repos: &repos,
            projects,
        };
        let pipeline = PipelineOptions::default();
        let generate = |a: &ApplicationSet| generate_applications(a, generator_sources, &pipeline);
        let charts = ChartRepos::new(dir.path().join("charts"));
        let renderer = Renderer::new(dir.path().join("render"), crate::render::Limits::default());
        let sources = PlanSources {
            generate: &generate,
            generator_repos: &repos,
            clusters: &clusters,
            projects,
            repos: &repos,
            charts: &charts,
            renderer: &renderer,
        };
        plan(
            appset,
            &sources,
            &PlanRequest {
                from: Some(first.to_string()),
                to: second.to_string(),
                repo_urls: Vec::new(),
                group_by: "customer".into(),
                max_apps: 10,
                max_diff_lines: 100,
                deadline: None,
            },
        )
    }

    #[test]
    fn both_sides_are_rendered_at_their_commit_and_grouped_by_customer() {
        let one = [("apps/web/cm.yaml", config_map("web", "1"))];
        let two = [
            ("apps/web/cm.yaml", config_map("web", "2")),
            ("apps/db/cm.yaml", config_map("db", "1")),
        ];
        let plan = plan_two_commits(
            &appset("default"),
            &MemoryProjects::default_only(),
            &one,
            &two,
        )
        .unwrap();
        let shape: Vec<(String, String, Change, usize)> =
            crate::fleet_plan::testing::shape(&plan.comparison)
                .into_iter()
                .map(|(group, app, change, objects)| (group, app, change, objects.len()))
                .collect();
        assert_eq!(
            shape,
            vec![
                ("acme".into(), "db-acme-prod".into(), Change::Added, 1),
                ("acme".into(), "web-acme-prod".into(), Change::Changed, 1),
                // No `customer` label: the cluster's name.
                ("lab".into(), "db-lab".into(), Change::Added, 1),
                ("lab".into(), "web-lab".into(), Change::Changed, 1),
            ]
        );
        assert_eq!(plan.problems(), 0);
        assert_eq!(plan.repositories, vec![URL]);
        // The Applications are the same on both sides (targetRevision HEAD in both).
        let web = &plan.comparison.destinations[0].applications[1];
        assert!(web.application_diff.is_none(), "{web:?}");
        assert!(
            web.objects[0].diff.contains("-  v: '1'\n+  v: '2'\n"),
            "{}",
            web.objects[0].diff
        );
    }

    #[test]
    fn a_project_that_does_not_permit_the_repository_renders_nothing() {
        let project: AppProject = serde_json::from_value(json!({
            "metadata": {"name": "team", "namespace": "argocd"},
            "spec": {"sourceRepos": ["https://git.example.com/other.git"],
                     "destinations": [{"server": "*", "namespace": "*"}]},
        }))
        .unwrap();
        let projects = MemoryProjects::with_default([project]);
        let one = [("apps/web/cm.yaml", config_map("web", "1"))];
        let two = [("apps/web/cm.yaml", config_map("web", "2"))];
        let plan = plan_two_commits(&appset("team"), &projects, &one, &two).unwrap();
        // The generated Applications are invalid on both sides (the controller would not
        // write them), so nothing of theirs is read or rendered.
        assert!(plan.comparison.destinations.is_empty(), "{plan:?}");
        assert_eq!(plan.from.invalid.len(), 2, "{:?}", plan.from.invalid);
        assert!(
            plan.to.invalid[0].contains("is not permitted in project 'team'"),
            "{:?}",
            plan.to.invalid
        );
        assert_eq!(plan.problems(), 4);
    }

    #[test]
    fn too_many_applications_and_no_repository_are_refused() {
        let one = [("apps/a/cm.yaml", config_map("a", "1"))];
        let paths: Vec<String> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|d| format!("apps/{d}/cm.yaml"))
            .collect();
        let many: Vec<(&str, String)> = paths
            .iter()
            .map(|p| (p.as_str(), config_map("x", "1")))
            .collect();
        let err = plan_two_commits(
            &appset("default"),
            &MemoryProjects::default_only(),
            &one,
            &many,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "to: the ApplicationSet generates 12 Applications, more than a plan renders (10)"
        );
        let mut no_generator = appset("default");
        no_generator.spec.generators =
            vec![serde_json::from_value(json!({"list": {"elements": []}})).unwrap()];
        let err = plan_two_commits(&no_generator, &MemoryProjects::default_only(), &one, &one)
            .unwrap_err();
        assert!(matches!(err, PlanError::NoRepository), "{err}");
    }
}

//! Validation of generated Applications (Argo CD's `validateGeneratedApplications`).
//!
//! Checks, in order, with at most one error per Application: a name is set, the name is not
//! already taken by an earlier Application of this generation, the `AppProject` exists,
//! the destination resolves to exactly one known cluster (the implicit in-cluster
//! included), and the project permits the Application's namespace, repositories and
//! destination ([`ProjectPolicy`]). An invalid Application is neither created nor updated, but it still counts
//! as present, so that an existing Application of that name is not deleted.
//!
//! Duplicates: as the Argo CD version Argosy follows, only the later Applications carrying
//! an already generated name are rejected; the first one is kept.

use std::collections::{BTreeSet, HashMap};

use argosy_crds::{Application, Cluster, ProjectPolicy, Violation};
use serde::Serialize;

use crate::app::GeneratedApp;
use crate::context::Context;

/// A generated Application that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    /// The Application's name (empty when it has none).
    pub application: String,
    /// What is wrong, in Argo CD's words.
    pub message: String,
}

pub(crate) struct Validated {
    pub valid: Vec<GeneratedApp>,
    pub errors: Vec<ValidationError>,
    pub invalid_names: Vec<String>,
}

pub(crate) fn validate(ctx: &Context<'_>, mut apps: Vec<GeneratedApp>) -> Validated {
    fn name(app: &GeneratedApp) -> &str {
        app.application.metadata.name.as_deref().unwrap_or_default()
    }
    let appset = ctx.appset.metadata.name.as_deref().unwrap_or_default();
    let clusters = ctx.destinations();
    // Sorted by name, generation order among equal names: the first of a run of equal
    // names is the one generated first. No hash set needed, and the order is reused below.
    let mut order: Vec<usize> = (0..apps.len()).collect();
    order.sort_by(|&a, &b| name(&apps[a]).cmp(name(&apps[b])));
    let mut errors = Vec::new();
    // Each project read and compiled once per generation, not per Application (globs,
    // the scoped clusters: at 2,500 Applications per ApplicationSet that was most of the
    // time a relabelled cluster Secret took).
    let mut policies: HashMap<&str, Option<ProjectPolicy>> = HashMap::new();
    let mut invalid_names = BTreeSet::new();
    let mut keep = Vec::with_capacity(apps.len());
    let mut previous = None;
    for &i in &order {
        let app = &apps[i];
        let name = name(app);
        let spec = &app.application.spec;
        let problem = if name.is_empty() {
            Some(format!(
                "ApplicationSet {appset} contains an application with no name (from {}; generateName is not supported)",
                app.generator_path
            ))
        } else if previous == Some(name) {
            Some(format!(
                "ApplicationSet {appset} contains applications with duplicate name: {name}"
            ))
        } else {
            let policy = policies.entry(spec.project.as_str()).or_insert_with(|| {
                ctx.sources
                    .projects
                    .project(&spec.project)
                    .map(|project| ProjectPolicy::new(&project, clusters.scoped()))
            });
            match policy {
                None => Some(format!(
                    "application references project {} which does not exist",
                    spec.project
                )),
                Some(policy) => match clusters.resolve(&spec.destination) {
                    Err(e) => Some(format!("application destination spec is invalid: {e}")),
                    Ok(cluster) => tenant_check(ctx, policy, &app.application, &cluster)
                        .err()
                        .map(|v| v.to_string()),
                },
            }
        };
        previous = Some(name);
        keep.push(problem.is_none());
        if let Some(message) = problem {
            if !name.is_empty() {
                invalid_names.insert(name.to_owned());
            }
            errors.push(ValidationError {
                application: name.to_owned(),
                message,
            });
        }
    }
    permute(&mut apps, order);
    let mut keep = keep.into_iter();
    apps.retain(|_| keep.next().unwrap_or(false));
    Validated {
        valid: apps,
        errors,
        invalid_names: invalid_names.into_iter().collect(),
    }
}

/// The project's boundary for a generated Application (Argo CD checks only that the project
/// exists; creating an Application its project forbids would only move the refusal to the
/// sync engine, with the Application already written): its namespace may use the project,
/// every source is a permitted repository, the destination a permitted cluster and
/// namespace. Kinds are checked when the sync engine renders the sources.
fn tenant_check(
    ctx: &Context<'_>,
    policy: &ProjectPolicy,
    app: &Application,
    cluster: &Cluster,
) -> Result<(), Violation> {
    if let Some(control_plane) = ctx.sources.projects.control_plane_namespace() {
        let namespace = app
            .metadata
            .namespace
            .as_deref()
            .or(ctx.appset.metadata.namespace.as_deref())
            .unwrap_or_default();
        policy.check_app_namespace(namespace, control_plane)?;
    }
    let spec = &app.spec;
    for source in spec.source.iter().chain(&spec.sources) {
        policy.check_source(&source.repo_url)?;
    }
    policy.check_destination(
        cluster,
        &spec.destination.namespace,
        !spec.destination.name.is_empty(),
    )
}

/// Puts element `order[i]` at position `i`, moving each (large) element about once:
/// sorting the elements themselves would copy them O(n log n) times.
fn permute(apps: &mut [GeneratedApp], mut order: Vec<usize>) {
    for i in 0..order.len() {
        let mut j = i;
        while order[j] != i {
            let k = order[j];
            apps.swap(j, k);
            order[j] = j;
            j = k;
        }
        order[j] = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_moves_each_element_into_place() {
        use crate::params::ParamSet;
        let app = |name: &str| GeneratedApp {
            application: argosy_crds::Application {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(name.to_owned()),
                    ..Default::default()
                },
                ..Default::default()
            },
            generator_path: String::new(),
            params: ParamSet::default(),
        };
        let mut apps: Vec<_> = ["d", "a", "e", "c", "b", "f"]
            .into_iter()
            .map(app)
            .collect();
        permute(&mut apps, vec![1, 4, 3, 0, 2, 5]);
        let names: Vec<_> = apps
            .iter()
            .map(|a| a.application.metadata.name.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
    }
}

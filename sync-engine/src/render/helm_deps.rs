//! The dependencies of a chart in Git, as `helm dependency build` would place them: when a
//! chart's `Chart.yaml` (or, for `apiVersion: v1`, `requirements.yaml`) declares
//! dependencies that its `charts/` does not hold, the chart is copied to a scratch
//! directory of this render and each missing dependency is put in its `charts/`: from a
//! Helm repository or an OCI registry through [`ChartFetcher`] (the Application's project
//! credentials, the URL policy, the chart cache), or from the same repository for a
//! `file://` path. Versions come from `Chart.lock` (`requirements.lock`) when it lists the
//! dependency, else the newest version matching the `version` range, as `helm dependency
//! build` does.
//!
//! Why not run `helm dependency build` itself: it would fetch whatever URL a tenant's
//! `Chart.yaml` names, from the controller's network, with credentials written to a
//! `repositories.yaml`, and read `file://` paths anywhere on the controller's disk (the
//! cache holds other tenants' trees). Here every download passes the URL policy and the
//! project's repository Secrets, and a `file://` dependency must stay inside the chart's
//! repository. `helm template` then finds the dependencies as it would after a build (the
//! end-to-end tests compare the result with `helm dependency build` + `helm template`).
//!
//! The shared materialized tree is never written to: other Applications, perhaps of other
//! projects, render from it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::RenderError;
use super::helm::HelmOptions;
use super::paths::{Resolved, Tree, join};
use super::{Inputs, Renderer};

/// A chart copied with its dependencies; removed when dropped.
pub(super) struct WithDependencies {
    _scratch: tempfile::TempDir,
    /// The chart directory to render.
    pub(super) chart: PathBuf,
}

/// The fields of `Chart.yaml`/`requirements.yaml`/the lock files read here.
#[derive(Debug, Default, Deserialize)]
struct Dependencies {
    #[serde(default, rename = "apiVersion")]
    api_version: String,
    #[serde(default)]
    dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Dependency {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    repository: String,
}

fn read_yaml(tree: &Tree<'_>, path: &str) -> Result<Option<Dependencies>, RenderError> {
    if !tree.is_file(path) {
        return Ok(None);
    }
    let bad = |message: String| RenderError::ParseManifest {
        file: path.to_owned(),
        message,
    };
    let text = String::from_utf8(tree.snap.read(path)?).map_err(|_| bad("not UTF-8".into()))?;
    argosy_crds::yaml_depth::check(&text).map_err(|e| bad(e.to_string()))?;
    serde_yaml_ng::from_str(&text)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// The declared dependencies, with the lock's versions where it has them.
fn declared(tree: &Tree<'_>, app: &str) -> Result<Vec<Dependency>, RenderError> {
    let chart = read_yaml(tree, &join(app, "Chart.yaml"))?.unwrap_or_default();
    let (mut deps, lock) = if chart.api_version == "v1" || chart.api_version.is_empty() {
        let requirements = read_yaml(tree, &join(app, "requirements.yaml"))?.unwrap_or_default();
        let mut deps = chart.dependencies;
        deps.extend(requirements.dependencies);
        (deps, read_yaml(tree, &join(app, "requirements.lock"))?)
    } else {
        (
            chart.dependencies,
            read_yaml(tree, &join(app, "Chart.lock"))?,
        )
    };
    if let Some(lock) = lock {
        for dep in &mut deps {
            if let Some(locked) = lock
                .dependencies
                .iter()
                .find(|l| l.name == dep.name && l.repository == dep.repository)
            {
                dep.version.clone_from(&locked.version);
            }
        }
    }
    Ok(deps)
}

/// Whether the chart's `charts/` holds `name` (a `name-<version>.tgz` or a `name/` chart).
// `.tgz` exactly: the suffix Helm loads archives by.
#[allow(clippy::case_sensitive_file_extension_comparisons)]
fn vendored(tree: &Tree<'_>, app: &str, name: &str) -> bool {
    let charts = join(app, "charts");
    tree.files_under(&charts).any(|(_, rel)| {
        rel == format!("{name}/Chart.yaml")
            || (!rel.contains('/')
                && rel
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|r| r.ends_with(".tgz")))
    })
}

impl Renderer {
    /// `None` when the chart needs nothing (no dependencies, or all in `charts/`).
    pub(super) fn with_dependencies(
        &self,
        tree: &Tree<'_>,
        app: &str,
        opts: &HelmOptions,
        inputs: Inputs<'_>,
    ) -> Result<Option<WithDependencies>, RenderError> {
        let missing: Vec<Dependency> = declared(tree, app)?
            .into_iter()
            .filter(|d| !vendored(tree, app, &d.name))
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let failed = |name: &str, message: String| RenderError::Options {
            field: "chart dependencies".to_owned(),
            message: format!("{name}: {message}"),
        };
        let scratch_root = self.work_dir.join("dependencies");
        let io = |e: std::io::Error| RenderError::Materialize {
            commit: tree.snap.commit().to_owned(),
            message: format!("{}: {e}", scratch_root.display()),
        };
        std::fs::create_dir_all(&scratch_root).map_err(io)?;
        let scratch = tempfile::tempdir_in(&scratch_root).map_err(io)?;
        let chart = scratch.path().join("chart");
        let mut budget = Budget {
            left: self.limits.max_tree_bytes,
            limit: self.limits.max_tree_bytes,
        };
        copy_dir(tree, app, &chart, &mut budget)?;
        let mut placed = std::collections::BTreeSet::new();
        for dep in &missing {
            if !placed.insert((
                dep.repository.clone(),
                dep.name.clone(),
                dep.version.clone(),
            )) {
                continue;
            }
            let repository = dep.repository.trim();
            if let Some(path) = repository.strip_prefix("file://") {
                let dir = match tree.resolve(&join(app, path))? {
                    Resolved::Inside(dir) if tree.is_dir(&dir) && !dir.is_empty() => dir,
                    Resolved::Inside(_) => {
                        return Err(failed(
                            &dep.name,
                            format!("{repository} is not a directory of the repository"),
                        ));
                    }
                    Resolved::Outside => {
                        return Err(failed(
                            &dep.name,
                            format!("{repository} leaves the repository"),
                        ));
                    }
                };
                let dest = chart.join("charts").join(&dep.name);
                copy_dir(tree, &dir, &dest, &mut budget)?;
            } else if repository.starts_with("https://")
                || repository.starts_with("http://")
                || repository.starts_with("oci://")
            {
                let Some(fetcher) = inputs.dependencies else {
                    return Err(failed(
                        &dep.name,
                        "no chart repository access here".to_owned(),
                    ));
                };
                let (version, package) = fetcher
                    .fetch_chart(repository, &dep.name, &dep.version, opts.pass_credentials)
                    .map_err(|e| failed(&dep.name, e))?;
                let package_tree = Tree {
                    snap: package.as_ref(),
                };
                let top = super::package_top(&package_tree)?;
                let dest = chart.join("charts").join(format!("{}-{version}", dep.name));
                copy_dir(&package_tree, &top, &dest, &mut budget)?;
            } else if repository.is_empty() {
                return Err(failed(
                    &dep.name,
                    "has no repository and is not in charts/".to_owned(),
                ));
            } else {
                return Err(RenderError::Unsupported {
                    what: format!(
                        "dependency {} from {repository:?} (repositories by name; give its URL)",
                        dep.name
                    ),
                });
            }
        }
        tracing::debug!(
            chart = app,
            dependencies = missing.len(),
            "chart dependencies placed"
        );
        Ok(Some(WithDependencies {
            _scratch: scratch,
            chart,
        }))
    }
}

/// Bytes a chart with its dependencies may still take.
struct Budget {
    left: u64,
    limit: u64,
}

/// Copies the files under `dir` of `tree` to `dest`. A symlink is copied as the file it
/// resolves to inside the tree; one leading out, or to a directory, fails.
fn copy_dir(
    tree: &Tree<'_>,
    dir: &str,
    dest: &Path,
    budget: &mut Budget,
) -> Result<(), RenderError> {
    let io = |path: &Path, e: std::io::Error| RenderError::Materialize {
        commit: tree.snap.commit().to_owned(),
        message: format!("{}: {e}", path.display()),
    };
    let files: Vec<(String, String)> = tree
        .files_under(dir)
        .map(|(full, rel)| (full.to_owned(), rel.to_owned()))
        .collect();
    for (full, rel) in files {
        let source = if tree.snap.is_symlink(&full) {
            match tree.link_target(&full)? {
                target if tree.is_file(&target) => target,
                _ => {
                    return Err(RenderError::Symlink {
                        link: full,
                        reason: "points to a directory (not copied into a chart with dependencies)",
                    });
                }
            }
        } else {
            full
        };
        let data = tree.snap.read(&source)?;
        budget.left = budget
            .left
            .checked_sub(data.len() as u64)
            .ok_or(RenderError::TooLarge {
                what: "a chart with its dependencies".to_owned(),
                limit: budget.limit,
            })?;
        let path = dest.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, data).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

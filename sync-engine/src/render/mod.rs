//! Rendering: an Application source at one Git commit -> the Kubernetes objects it declares.
//!
//! Owns source-type detection (as Argo CD does it), the three renderers (plain
//! directories, `kustomize build`, `helm template`), the safety rules around them (the
//! source path and every symlink stay inside the repository, size and object limits, a
//! timeout and an output cap for the tools) and the cache of rendered results.
//!
//! Directories are read straight from the [`RepoSnapshot`]. Kustomize and Helm need files
//! on disk: the commit's tree is written once to `<work_dir>/trees/<key>/repo` and reused.
//! Application options (Kustomize images, prefixes, labels...) are applied through a
//! wrapper kustomization next to that tree, so the user's files are never edited and the
//! tree stays shareable between Applications.
//!
//! Modules: `paths` (the snapshot as a tree, source paths and symlinks confined to the
//! repository, the tree on disk), `manifests` (parsing), `directory`, `kustomize` and `helm`
//! (one renderer per source type), `tools` (running the binaries). This module holds the
//! public types, the [`Renderer`] with its dispatch by source type, and the result cache.

mod directory;
mod error;
pub mod helm;
mod helm_deps;
pub mod kustomize;
mod limits;
mod manifests;
mod paths;
mod tools;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use argosy_crds::application::ApplicationSource;
use argosy_generators::source::RepoSnapshot;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

pub use error::RenderError;
pub use limits::Limits;
use paths::Tree;
use tools::Tools;

/// How a source is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SourceType {
    /// Plain manifests (YAML/JSON files).
    Directory,
    /// A Kustomize directory.
    Kustomize,
    /// A Helm chart.
    Helm,
}

/// The objects of one source at one commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The commit rendered.
    pub commit: String,
    /// How it was rendered.
    pub source_type: SourceType,
    /// The rendered objects.
    pub objects: Vec<Value>,
}

/// The Application a source is rendered for: Helm needs its name (the default release
/// name) and destination namespace, and the destination cluster's Kubernetes version and
/// API versions (`.Capabilities`), as Argo CD passes them to `helm template`.
#[derive(Debug, Clone, Copy)]
pub struct RenderTarget<'a> {
    /// The Application's name.
    pub app_name: &'a str,
    /// The destination namespace.
    pub namespace: &'a str,
    /// The destination's Kubernetes version (`1.30.2`); empty: Helm's default. A source's
    /// `helm.kubeVersion` wins.
    pub kube_version: &'a str,
    /// The destination's API group versions (`apps/v1`); empty: Helm's defaults. A
    /// source's `helm.apiVersions` wins.
    pub api_versions: &'a [String],
}

/// What a source may read besides its own tree.
#[derive(Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// The Application's sources with a `ref` (`ref` name without `$`, their tree at the
    /// commit the operation uses): `$name/path` value files and file parameters read them.
    pub refs: &'a [(String, Arc<dyn RepoSnapshot>)],
    /// Where the dependencies of a chart in Git come from (a Helm repository or OCI
    /// registry), read with the Application's project credentials; `None`: such a chart
    /// fails to render unless its `charts/` holds them.
    pub dependencies: Option<&'a dyn ChartFetcher>,
}

/// A chart from a Helm repository or an OCI registry, for a chart's `dependencies`.
pub trait ChartFetcher: Send + Sync {
    /// Whose credentials the charts are read with (the project): part of the result
    /// cache's key, so a render that needed them is never served to another project.
    fn scope(&self) -> &str;

    /// `name` from `repository` (`https://...` or `oci://...`), the newest version matching
    /// `version` (exact or a range): its version and its package as a tree whose one top
    /// directory is the chart.
    fn fetch_chart(
        &self,
        repository: &str,
        name: &str,
        version: &str,
        pass_credentials: bool,
    ) -> Result<(String, Arc<dyn RepoSnapshot>), String>;
}

/// The one top directory of a chart package, which must hold a `Chart.yaml`.
fn package_top(tree: &Tree<'_>) -> Result<String, RenderError> {
    let files = tree.snap.files();
    let top = files
        .first()
        .and_then(|f| f.split_once('/'))
        .map(|(top, _)| top.to_owned())
        .filter(|top| {
            files.iter().all(|f| f.starts_with(&format!("{top}/")))
                && tree.is_file(&format!("{top}/Chart.yaml"))
        });
    top.ok_or_else(|| RenderError::Options {
        field: "chart".to_owned(),
        message: "the chart package has no single top directory with a Chart.yaml".to_owned(),
    })
}

/// Renders sources, caching results by (repo URL, commit, path, options).
pub struct Renderer {
    work_dir: PathBuf,
    limits: Limits,
    tools: Tools,
    cache: Mutex<Lru>,
}

impl Renderer {
    /// Finds the `kustomize` (else `kubectl`) and `helm` binaries on `PATH`, once.
    #[must_use]
    pub fn new(work_dir: PathBuf, limits: Limits) -> Self {
        Self::with_tools(work_dir, limits, Tools::detect())
    }

    fn with_tools(work_dir: PathBuf, limits: Limits, tools: Tools) -> Self {
        let cache = Mutex::new(Lru::new(limits.cache_entries));
        Self {
            work_dir,
            limits,
            tools,
            cache,
        }
    }

    /// Blocking (runs binaries, reads blobs): callers use `spawn_blocking`. A source that
    /// reads nothing but its own tree; see [`Self::render_with`].
    pub fn render(
        &self,
        repo_url: &str,
        snapshot: &dyn RepoSnapshot,
        source: &ApplicationSource,
        target: RenderTarget<'_>,
    ) -> Result<Arc<Rendered>, RenderError> {
        self.render_with(repo_url, snapshot, source, target, Inputs::default())
    }

    /// Renders `source` from `snapshot`: a Git tree, or for a source with `chart` set the
    /// chart package (its one top directory is the chart). `inputs` are the other sources
    /// it may read (`$ref/...` value files) and where chart dependencies come from.
    /// Blocking: callers use `spawn_blocking`.
    pub fn render_with(
        &self,
        repo_url: &str,
        snapshot: &dyn RepoSnapshot,
        source: &ApplicationSource,
        target: RenderTarget<'_>,
        inputs: Inputs<'_>,
    ) -> Result<Arc<Rendered>, RenderError> {
        if source.extra.get("plugin").is_some_and(|p| !p.is_null()) {
            return Err(RenderError::Unsupported {
                what: "config management plugin source".to_owned(),
            });
        }
        let tree = Tree { snap: snapshot };
        let (app, source_type) = if source.chart.is_empty() {
            let app = tree.app_dir(&source.path)?;
            let source_type = detect(source, &tree, &app)?;
            (app, source_type)
        } else {
            (package_top(&tree)?, SourceType::Helm)
        };
        let key = cache_key(
            repo_url,
            snapshot.commit(),
            &app,
            source_type,
            source,
            target,
            inputs,
        );
        if let Some(hit) = self.cache.lock().ok().and_then(|mut c| c.get(&key)) {
            return Ok(hit);
        }
        let objects = match source_type {
            SourceType::Directory => self.directory(&tree, &app, source.directory.as_ref())?,
            SourceType::Kustomize => self.kustomize(&tree, &app, source.kustomize.as_ref())?,
            SourceType::Helm => self.helm(&tree, &app, source.helm.as_ref(), target, inputs)?,
        };
        if objects.len() > self.limits.max_objects {
            return Err(RenderError::TooManyObjects {
                limit: self.limits.max_objects,
            });
        }
        let rendered = Arc::new(Rendered {
            commit: snapshot.commit().to_owned(),
            source_type,
            objects,
        });
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, repo_url, rendered.clone());
        }
        Ok(rendered)
    }

    /// Drops every cached result rendered from `repo_url` (spelled as given to
    /// [`Self::render`]): the next render of it runs the tools again. Argo CD's hard refresh.
    pub fn forget_results(&self, repo_url: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache
                .entries
                .retain(|_, cached| cached.repo_url != repo_url);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Source type detection.

/// Argo CD's rules: exactly one of `helm`/`kustomize`/`directory` set wins; otherwise a
/// kustomization file in the source directory means Kustomize, else a `*Chart.yaml`
/// means Helm, else plain manifests.
fn detect(
    source: &ApplicationSource,
    tree: &Tree<'_>,
    app: &str,
) -> Result<SourceType, RenderError> {
    let explicit: Vec<SourceType> = [
        (source.kustomize.is_some(), SourceType::Kustomize),
        (source.helm.is_some(), SourceType::Helm),
        (source.directory.is_some(), SourceType::Directory),
    ]
    .into_iter()
    .filter_map(|(set, t)| set.then_some(t))
    .collect();
    match explicit.as_slice() {
        [one] => return Ok(*one),
        [] => {}
        many => {
            return Err(RenderError::Options {
                field: "source".to_owned(),
                message: format!("multiple application sources defined: {many:?}"),
            });
        }
    }
    let names: Vec<&str> = tree
        .files_under(app)
        .map(|(_, rel)| rel)
        .filter(|rel| !rel.contains('/'))
        .collect();
    Ok(if names.iter().any(|n| KUSTOMIZATION_FILES.contains(n)) {
        SourceType::Kustomize
    } else if names.iter().any(|n| n.ends_with("Chart.yaml")) {
        SourceType::Helm
    } else {
        SourceType::Directory
    })
}

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Parses an option block, naming the block in the error.
fn options<T: for<'de> Deserialize<'de> + Default>(
    field: &str,
    value: Option<&Value>,
) -> Result<T, RenderError> {
    match value {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| RenderError::Options {
            field: field.to_owned(),
            message: e.to_string(),
        }),
    }
}

fn display_path(app: &str) -> String {
    if app.is_empty() {
        ".".to_owned()
    } else {
        app.to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// The result cache.

/// The cache key: everything a rendering depends on. The Application's name and
/// namespace only matter to Helm, so other sources are shared between Applications
/// (an `ApplicationSet`'s many Applications of one path render once).
fn cache_key(
    repo_url: &str,
    commit: &str,
    app: &str,
    source_type: SourceType,
    source: &ApplicationSource,
    target: RenderTarget<'_>,
    inputs: Inputs<'_>,
) -> String {
    let helm_target = (source_type == SourceType::Helm).then_some((
        target.app_name,
        target.namespace,
        target.kube_version,
        target.api_versions,
    ));
    let refs: Vec<(&str, &str)> = inputs
        .refs
        .iter()
        .map(|(name, snap)| (name.as_str(), snap.commit()))
        .collect();
    let key = json!([
        repo_url,
        commit,
        app,
        source_type,
        source.directory,
        source.kustomize,
        source.helm,
        source.chart,
        helm_target,
        refs,
        inputs.dependencies.map(ChartFetcher::scope),
    ]);
    hex::encode(sha2::Sha256::digest(key.to_string().as_bytes()))
}

/// A least-recently-used map with a fixed number of entries; eviction scans the entries,
/// which at a few hundred is cheaper than keeping an order list.
struct Lru {
    capacity: usize,
    clock: u64,
    entries: HashMap<String, Cached>,
}

/// One cached result.
struct Cached {
    rendered: Arc<Rendered>,
    /// The clock value of its last use.
    used: u64,
    /// The repository it was rendered from (a hard refresh drops its results).
    repo_url: String,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &str) -> Option<Arc<Rendered>> {
        self.clock += 1;
        let cached = self.entries.get_mut(key)?;
        cached.used = self.clock;
        Some(cached.rendered.clone())
    }

    fn insert(&mut self, key: String, repo_url: &str, rendered: Arc<Rendered>) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, cached)| cached.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.clock += 1;
        let cached = Cached {
            rendered,
            used: self.clock,
            repo_url: repo_url.to_owned(),
        };
        self.entries.insert(key, cached);
    }
}

/// Snapshots, sources and renderers for the tests of every module.
impl Renderer {
    /// The snapshot's tree on disk for the tools (see [`paths::materialize`]).
    fn materialize(&self, tree: &Tree<'_>) -> Result<std::path::PathBuf, RenderError> {
        paths::materialize(&self.work_dir, self.limits.max_tree_bytes, tree)
    }
}

#[cfg(test)]
mod testing {
    pub(super) use std::collections::{BTreeMap, BTreeSet};
    pub(super) use std::path::{Path, PathBuf};
    pub(super) use std::sync::Arc;

    pub(super) use argosy_crds::application::ApplicationSource;
    pub(super) use argosy_generators::memory::MemoryRepos;
    pub(super) use argosy_generators::source::{RepoError, RepoSnapshot, RepoSource};
    pub(super) use serde_json::{Value, json};

    pub(super) use super::tools::{KustomizeCommand, Tools};
    pub(super) use super::{Limits, RenderError, RenderTarget, Rendered, Renderer, SourceType};
    pub(super) use crate::repo::{GitRepos, TreeEntry, write_tree_commit};

    pub(super) const URL: &str = "https://example.com/repo.git";
    pub(super) const TARGET: RenderTarget<'static> = RenderTarget {
        app_name: "app",
        namespace: "ns",
        kube_version: "",
        api_versions: &[],
    };

    /// A [`MemoryRepos`] tree where the paths in `links` are symlinks (content = target).
    pub(super) struct Linked {
        inner: Arc<dyn RepoSnapshot>,
        links: BTreeSet<String>,
    }

    impl RepoSnapshot for Linked {
        fn commit(&self) -> &str {
            self.inner.commit()
        }
        fn files(&self) -> &[String] {
            self.inner.files()
        }
        fn read(&self, path: &str) -> Result<Vec<u8>, RepoError> {
            self.inner.read(path)
        }
        fn is_symlink(&self, path: &str) -> bool {
            self.links.contains(path)
        }
    }

    pub(super) fn snapshot(files: &[(&str, &str)], links: &[(&str, &str)]) -> Linked {
        let mut repos = MemoryRepos::default();
        let tree = files
            .iter()
            .chain(links)
            .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
            .collect();
        repos.insert(URL, "HEAD", tree);
        Linked {
            inner: repos.snapshot(URL, "HEAD").unwrap(),
            links: links.iter().map(|(p, _)| (*p).to_owned()).collect(),
        }
    }

    pub(super) fn source(path: &str, extra: Value) -> ApplicationSource {
        let mut v = json!({"repoURL": URL, "path": path});
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        serde_json::from_value(v).unwrap()
    }

    pub(super) fn renderer(limits: Limits) -> (tempfile::TempDir, Renderer) {
        let dir = tempfile::tempdir().unwrap();
        let r = Renderer::with_tools(dir.path().to_path_buf(), limits, Tools::default());
        (dir, r)
    }

    pub(super) fn render(
        snap: &dyn RepoSnapshot,
        src: &ApplicationSource,
    ) -> Result<Arc<Rendered>, RenderError> {
        renderer(Limits::default()).1.render(URL, snap, src, TARGET)
    }

    pub(super) fn names(r: &Rendered) -> Vec<String> {
        r.objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    pub(super) fn cm(name: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    }

    pub(super) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A real bare repository read through [`GitRepos`], as the controller reads it.
    pub(super) fn git_snapshot(dir: &Path, entries: &[(&str, TreeEntry)]) -> Arc<dyn RepoSnapshot> {
        std::fs::create_dir_all(dir).unwrap();
        let repo = dir.join("repo.git");
        let entries = entries
            .iter()
            .map(|(p, e)| ((*p).to_owned(), e.clone()))
            .collect();
        write_tree_commit(&repo, "HEAD", &entries).unwrap();
        let repos = GitRepos::new(BTreeMap::from([(URL.to_owned(), repo)]), dir.join("cache"));
        repos.snapshot(URL, "HEAD").unwrap()
    }

    pub(super) fn file(s: &str) -> TreeEntry {
        TreeEntry::File(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::*;

    #[test]
    fn source_type_detection() {
        let snap = snapshot(
            &[
                ("k/kustomization.yaml", "resources: []"),
                ("k/Chart.yaml", "name: x"),
                ("h/Chart.yaml", "name: x"),
                ("h/templates/a.yaml", &cm("a")),
                ("d/a.yaml", &cm("a")),
                ("d/sub/kustomization.yaml", "resources: []"),
            ],
            &[],
        );
        let tree = Tree { snap: &snap };
        let ty = |path: &str, extra: Value| detect(&source(path, extra), &tree, path);
        assert_eq!(ty("k", json!({})).unwrap(), SourceType::Kustomize);
        assert_eq!(ty("h", json!({})).unwrap(), SourceType::Helm);
        assert_eq!(ty("d", json!({})).unwrap(), SourceType::Directory);
        assert_eq!(
            ty("k", json!({"directory": {}})).unwrap(),
            SourceType::Directory
        );
        assert_eq!(ty("d", json!({"helm": {}})).unwrap(), SourceType::Helm);
        let err = ty("d", json!({"helm": {}, "kustomize": {}}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "source: multiple application sources defined: [Kustomize, Helm]"
        );

        let err = render(&snap, &source("h", json!({}))).unwrap_err();
        assert_eq!(err.category(), "tool_unavailable");
        assert_eq!(
            err.to_string(),
            "Helm chart at h needs the `helm` binary, which is not installed"
        );
        let err = render(&snap, &source("k", json!({}))).unwrap_err();
        assert_eq!(err.category(), "tool_unavailable");
        // A chart source rendered from a Git tree (not a package) is refused.
        let err = render(&snap, &source("d", json!({"chart": "nginx"}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "chart: the chart package has no single top directory with a Chart.yaml"
        );
        for (extra, want) in [
            (
                json!({"plugin": {"name": "x"}}),
                "config management plugin source is not supported",
            ),
            (
                json!({"directory": {"jsonnet": {"tlas": [{"name": "a", "value": "b"}]}}}),
                "directory.jsonnet is not supported",
            ),
        ] {
            let err = render(&snap, &source("d", extra)).unwrap_err();
            assert_eq!(err.category(), "unsupported");
            assert_eq!(err.to_string(), want);
        }
        // The empty `jsonnet: {}` Argo CD's UI writes is no Jsonnet; a .jsonnet file is.
        let src = source(
            "d",
            json!({"directory": {"jsonnet": {"tlas": [], "libs": []}}}),
        );
        assert!(render(&snap, &src).is_ok());
        let jsonnet = snapshot(&[("j/a.jsonnet", "{}")], &[]);
        let err = render(&jsonnet, &source("j", json!({})))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "Jsonnet file j/a.jsonnet is not supported");
    }

    #[test]
    fn results_are_cached_per_commit_path_and_options() {
        let snap = snapshot(&[("app/a.yaml", &cm("a"))], &[]);
        let (_dir, r) = renderer(Limits {
            cache_entries: 1,
            ..Limits::default()
        });
        let one = r
            .render(URL, &snap, &source("app", json!({})), TARGET)
            .unwrap();
        let again = r
            .render(URL, &snap, &source("app", json!({})), TARGET)
            .unwrap();
        assert!(Arc::ptr_eq(&one, &again));
        // Another Application of the same directory shares the result...
        let other = RenderTarget {
            app_name: "other",
            namespace: "x",
            ..TARGET
        };
        assert!(Arc::ptr_eq(
            &one,
            &r.render(URL, &snap, &source("app", json!({})), other)
                .unwrap()
        ));
        // ...other options do not, and evict it (one entry).
        let recurse = r
            .render(
                URL,
                &snap,
                &source("app", json!({"directory": {"recurse": true}})),
                TARGET,
            )
            .unwrap();
        assert!(!Arc::ptr_eq(&one, &recurse));
        let after = r
            .render(URL, &snap, &source("app", json!({})), TARGET)
            .unwrap();
        assert!(!Arc::ptr_eq(&one, &after));
        assert_eq!(one, after);
    }

    #[test]
    fn a_hard_refresh_forgets_the_results_of_its_repository_only() {
        let snap = snapshot(&[("app/a.yaml", &cm("a"))], &[]);
        let (_dir, r) = renderer(Limits::default());
        let src = source("app", json!({}));
        let other_url = "https://git.example.com/other.git";
        let one = r.render(URL, &snap, &src, TARGET).unwrap();
        let other = r.render(other_url, &snap, &src, TARGET).unwrap();
        r.forget_results(URL);
        let again = r.render(URL, &snap, &src, TARGET).unwrap();
        assert!(!Arc::ptr_eq(&one, &again), "rendered again");
        assert_eq!(one, again);
        assert!(
            Arc::ptr_eq(&other, &r.render(other_url, &snap, &src, TARGET).unwrap()),
            "another repository's result is kept"
        );
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let entry = || {
            Arc::new(Rendered {
                commit: String::new(),
                source_type: SourceType::Directory,
                objects: vec![],
            })
        };
        let mut lru = Lru::new(2);
        lru.insert("a".into(), URL, entry());
        lru.insert("b".into(), URL, entry());
        assert!(lru.get("a").is_some());
        lru.insert("c".into(), URL, entry());
        assert!(lru.get("b").is_none());
        assert!(lru.get("a").is_some() && lru.get("c").is_some());
    }
}

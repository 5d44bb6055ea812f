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

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use argosy_crds::application::ApplicationSource;
use argosy_generators::source::{RepoError, RepoSnapshot};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

/// Bounds on what one render may read, produce and take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest manifest file a directory source may contain.
    pub max_file_bytes: u64,
    /// Largest total of manifest bytes (directory files read, or tool output).
    pub max_total_bytes: u64,
    /// Most objects one render may produce (after `List` expansion).
    pub max_objects: usize,
    /// Largest commit tree written to disk for Kustomize or Helm.
    pub max_tree_bytes: u64,
    /// How long `kustomize`/`helm` may run before being killed.
    pub tool_timeout: Duration,
    /// How many rendered results the cache keeps (least recently used go first).
    pub cache_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 << 20,
            max_total_bytes: 64 << 20,
            max_objects: 20_000,
            max_tree_bytes: 512 << 20,
            tool_timeout: Duration::from_secs(60),
            cache_entries: 512,
        }
    }
}

/// How a source is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SourceType {
    Directory,
    Kustomize,
    Helm,
}

/// The objects of one source at one commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub commit: String,
    pub source_type: SourceType,
    pub objects: Vec<Value>,
}

/// The Application a source is rendered for: Helm needs its name (the default release
/// name) and destination namespace, as `argocd` passes them to `helm template`.
#[derive(Debug, Clone, Copy)]
pub struct RenderTarget<'a> {
    pub app_name: &'a str,
    pub namespace: &'a str,
}

/// Why a source could not be rendered. Messages name the file, link or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    ReadRepo(#[from] RepoError),
    #[error("source path {path:?}: {reason}")]
    SourcePath { path: String, reason: &'static str },
    #[error("symlink {link}: {reason}")]
    Symlink { link: String, reason: &'static str },
    #[error("{what} is not supported")]
    Unsupported { what: String },
    #[error("{field}: {message}")]
    Options { field: String, message: String },
    #[error("{file} is {size} bytes, over the {limit}-byte limit for one manifest file")]
    FileTooLarge { file: String, size: u64, limit: u64 },
    #[error("{what} exceeds the {limit}-byte limit")]
    TooLarge { what: String, limit: u64 },
    #[error("the source renders more than {limit} objects")]
    TooManyObjects { limit: usize },
    #[error("{file}: {message}")]
    ParseManifest { file: String, message: String },
    #[error("writing the tree of commit {commit} to disk: {message}")]
    Materialize { commit: String, message: String },
    #[error(
        "Kustomize application at {path} needs the `kustomize` or `kubectl` binary, which is not installed"
    )]
    KustomizeUnavailable { path: String },
    #[error("Helm chart at {path} needs the `helm` binary, which is not installed")]
    HelmUnavailable { path: String },
    #[error("{tool} failed: {message}")]
    Tool { tool: &'static str, message: String },
    #[error("{tool} did not finish within {timeout:?} and was killed")]
    ToolTimeout {
        tool: &'static str,
        timeout: Duration,
    },
}

impl RenderError {
    /// A bounded label for metrics and Events.
    pub fn category(&self) -> &'static str {
        match self {
            Self::ReadRepo(_) => "repo",
            Self::SourcePath { .. } => "source_path",
            Self::Symlink { .. } => "symlink",
            Self::Unsupported { .. } => "unsupported",
            Self::Options { .. } => "options",
            Self::FileTooLarge { .. } | Self::TooLarge { .. } | Self::TooManyObjects { .. } => {
                "limit"
            }
            Self::ParseManifest { .. } => "manifest",
            Self::Materialize { .. } => "materialize",
            Self::KustomizeUnavailable { .. } | Self::HelmUnavailable { .. } => "tool_unavailable",
            Self::Tool { .. } => "tool",
            Self::ToolTimeout { .. } => "tool_timeout",
        }
    }
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

    /// Blocking (runs binaries, reads blobs): callers use `spawn_blocking`.
    pub fn render(
        &self,
        repo_url: &str,
        snapshot: &dyn RepoSnapshot,
        source: &ApplicationSource,
        target: RenderTarget<'_>,
    ) -> Result<Arc<Rendered>, RenderError> {
        if !source.chart.is_empty() {
            return Err(RenderError::Unsupported {
                what: format!("Helm repository chart {:?}", source.chart),
            });
        }
        if source.extra.get("plugin").is_some_and(|p| !p.is_null()) {
            return Err(RenderError::Unsupported {
                what: "config management plugin source".to_owned(),
            });
        }
        let tree = Tree { snap: snapshot };
        let app = tree.app_dir(&source.path)?;
        let source_type = detect(source, &tree, &app)?;
        let key = cache_key(
            repo_url,
            snapshot.commit(),
            &app,
            source_type,
            source,
            target,
        );
        if let Some(hit) = self.cache.lock().ok().and_then(|mut c| c.get(&key)) {
            return Ok(hit);
        }
        let objects = match source_type {
            SourceType::Directory => self.directory(&tree, &app, source.directory.as_ref())?,
            SourceType::Kustomize => self.kustomize(&tree, &app, source.kustomize.as_ref())?,
            SourceType::Helm => self.helm(&tree, &app, source.helm.as_ref(), target)?,
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
            cache.insert(key, rendered.clone());
        }
        Ok(rendered)
    }
}

// ---------------------------------------------------------------------------------------
// The snapshot as a file tree: path normalization and symlink resolution.

/// Symlinks followed while resolving one path before giving up (Linux's limit).
const MAX_LINK_HOPS: usize = 40;

/// Read-only view of a snapshot as a directory tree whose symlinks are resolved in
/// memory, so that where a link leads is decided before anything touches the disk.
struct Tree<'a> {
    snap: &'a dyn RepoSnapshot,
}

impl Tree<'_> {
    fn is_file(&self, path: &str) -> bool {
        self.snap
            .files()
            .binary_search_by(|f| f.as_str().cmp(path))
            .is_ok()
    }

    /// The files under directory `dir` ("" for the root), with their paths relative to it.
    fn files_under<'s>(&'s self, dir: &str) -> impl Iterator<Item = (&'s str, &'s str)> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let files = self.snap.files();
        let start = files.partition_point(|f| f.as_str() < prefix.as_str());
        let skip = prefix.len();
        files[start..]
            .iter()
            .take_while(move |f| f.starts_with(&prefix))
            .map(move |f| (f.as_str(), &f[skip..]))
    }

    fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || self.files_under(path).next().is_some()
    }

    /// The source's `path` as a repo-relative directory, after following symlinks.
    fn app_dir(&self, path: &str) -> Result<String, RenderError> {
        let bad = |reason| RenderError::SourcePath {
            path: path.to_owned(),
            reason,
        };
        if path.starts_with('/') {
            return Err(bad("absolute paths are not allowed"));
        }
        let dir = match self.resolve(path)? {
            Resolved::Inside(dir) => dir,
            Resolved::Outside => return Err(bad("leaves the repository")),
        };
        if !self.is_dir(&dir) {
            return Err(bad("no such directory in the repository"));
        }
        Ok(dir)
    }

    /// Where the symlink `link` leads; an error when that is outside the repository.
    fn link_target(&self, link: &str) -> Result<String, RenderError> {
        match self.resolve(link)? {
            Resolved::Inside(target) => Ok(target),
            Resolved::Outside => Err(RenderError::Symlink {
                link: link.to_owned(),
                reason: "points outside the repository",
            }),
        }
    }

    /// Normalizes a repo-relative path, following every symlink on the way (in a link's
    /// target too), the way the kernel would in a checkout of this tree.
    fn resolve(&self, path: &str) -> Result<Resolved, RenderError> {
        let mut pending: Vec<String> = path.rsplit('/').map(str::to_owned).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => {}
                ".." => {
                    if resolved.pop().is_none() {
                        return Ok(Resolved::Outside);
                    }
                }
                _ => {
                    resolved.push(part);
                    let current = resolved.join("/");
                    if !self.snap.is_symlink(&current) {
                        continue;
                    }
                    hops += 1;
                    let link_err = |reason| RenderError::Symlink {
                        link: current.clone(),
                        reason,
                    };
                    if hops > MAX_LINK_HOPS {
                        return Err(link_err("has too many levels of symlinks"));
                    }
                    let target = String::from_utf8(self.snap.read(&current)?)
                        .map_err(|_| link_err("has a target that is not UTF-8"))?;
                    if target.starts_with('/') {
                        return Ok(Resolved::Outside);
                    }
                    resolved.pop();
                    pending.extend(target.rsplit('/').map(str::to_owned));
                }
            }
        }
        Ok(Resolved::Inside(resolved.join("/")))
    }
}

enum Resolved {
    Inside(String),
    Outside,
}

/// `dir/name`, or `name` at the root.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
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

// ---------------------------------------------------------------------------------------
// Plain directories.

/// `spec.source.directory`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DirectoryOptions {
    #[serde(default)]
    recurse: bool,
    #[serde(default)]
    include: String,
    #[serde(default)]
    exclude: String,
    #[serde(default)]
    jsonnet: Option<Value>,
}

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

/// A `directory.include`/`exclude` glob as Argo CD applies it (gobwas/glob without
/// separators): `*` also matches `/`, `{a,b}` alternatives, matched against the path
/// relative to the source directory. An empty pattern is "not set".
fn directory_glob(field: &str, pattern: &str) -> Result<Option<globset::GlobMatcher>, RenderError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| Some(g.compile_matcher()))
        .map_err(|e| RenderError::Options {
            field: field.to_owned(),
            message: e.to_string(),
        })
}

impl Renderer {
    /// Argo CD's directory rules (`findManifests`): files named `*.yaml`, `*.yml`,
    /// `*.json` (and `*.jsonnet`, refused here) directly in the directory or, with
    /// `recurse`, below it; symlinks are followed inside the repository and are an
    /// error when they lead out of it (even for excluded files, as in Argo CD), links to
    /// missing files or directories are skipped; then `exclude`, then `include`.
    fn directory(
        &self,
        tree: &Tree<'_>,
        app: &str,
        options_value: Option<&Value>,
    ) -> Result<Vec<Value>, RenderError> {
        let opts: DirectoryOptions = options("directory", options_value)?;
        if opts.jsonnet.as_ref().is_some_and(jsonnet_is_set) {
            return Err(RenderError::Unsupported {
                what: "directory.jsonnet".to_owned(),
            });
        }
        let include = directory_glob("directory.include", &opts.include)?;
        let exclude = directory_glob("directory.exclude", &opts.exclude)?;
        let mut total = 0u64;
        let mut objects = Vec::new();
        for (path, rel) in tree.files_under(app) {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            let is_manifest = [".yaml", ".yml", ".json", ".jsonnet"]
                .iter()
                .any(|ext| name.ends_with(ext));
            if (!opts.recurse && rel.contains('/')) || !is_manifest {
                continue;
            }
            let mut real = path.to_owned();
            if tree.snap.is_symlink(path) {
                real = tree.link_target(path)?;
                if !tree.is_file(&real) {
                    tracing::warn!(
                        file = path,
                        "skipping a symlink to a missing file or a directory"
                    );
                    continue;
                }
            }
            if exclude.as_ref().is_some_and(|g| g.is_match(rel))
                || include.as_ref().is_some_and(|g| !g.is_match(rel))
            {
                continue;
            }
            if name.ends_with(".jsonnet") {
                return Err(RenderError::Unsupported {
                    what: format!("Jsonnet file {path}"),
                });
            }
            let data = tree.snap.read(&real)?;
            let size = data.len() as u64;
            if size > self.limits.max_file_bytes {
                return Err(RenderError::FileTooLarge {
                    file: path.to_owned(),
                    size,
                    limit: self.limits.max_file_bytes,
                });
            }
            total += size;
            if total > self.limits.max_total_bytes {
                return Err(RenderError::TooLarge {
                    what: format!("the manifests of {:?} (at {path})", app),
                    limit: self.limits.max_total_bytes,
                });
            }
            let found = if name.ends_with(".json") {
                json_file(path, &data)?
            } else {
                yaml_file(path, &data)?
            };
            for object in found {
                expand_list(path, object, &mut objects)?;
                if objects.len() > self.limits.max_objects {
                    return Err(RenderError::TooManyObjects {
                        limit: self.limits.max_objects,
                    });
                }
            }
        }
        Ok(objects)
    }
}

/// Argo CD's UI writes `jsonnet: {}`; only real settings mean Jsonnet is wanted.
fn jsonnet_is_set(jsonnet: &Value) -> bool {
    match jsonnet {
        Value::Null => false,
        Value::Object(m) => m.values().any(|v| match v {
            Value::Array(a) => !a.is_empty(),
            Value::Null => false,
            _ => true,
        }),
        _ => true,
    }
}

/// One object per JSON file, as in Argo CD.
fn json_file(file: &str, data: &[u8]) -> Result<Vec<Value>, RenderError> {
    let value: Value =
        serde_json::from_slice(strip_bom(data)).map_err(|e| RenderError::ParseManifest {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
    check_object(value)
        .map(|o| vec![o])
        .map_err(|message| RenderError::ParseManifest {
            file: file.to_owned(),
            message,
        })
}

/// The documents of a YAML file, with Argo CD's leniency: a file that yields no object
/// and does not look like a manifest (lacks `apiVersion:`, `kind:` or `metadata:`) is
/// some other YAML (Helm values, configuration) and is skipped; otherwise the first bad
/// document is an error naming the file.
fn yaml_file(file: &str, data: &[u8]) -> Result<Vec<Value>, RenderError> {
    match yaml_objects(data) {
        Ok(objects) => Ok(objects),
        Err((found, message)) => {
            let text = String::from_utf8_lossy(data);
            let looks_like_manifest = ["apiVersion:", "kind:", "metadata:"]
                .iter()
                .all(|k| text.contains(k));
            if found == 0 && !looks_like_manifest {
                tracing::debug!(file, %message, "skipping a YAML file that is not a manifest");
                return Ok(Vec::new());
            }
            Err(RenderError::ParseManifest {
                file: file.to_owned(),
                message,
            })
        }
    }
}

/// Every non-empty document as an object; on failure, how many came before and why.
fn yaml_objects(data: &[u8]) -> Result<Vec<Value>, (usize, String)> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_slice(strip_bom(data)).enumerate() {
        let fail = |message: String| (objects.len(), format!("document {}: {message}", index + 1));
        let value = Value::deserialize(document).map_err(|e| fail(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let object = check_object(value).map_err(fail)?;
        objects.push(object);
    }
    Ok(objects)
}

fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data)
}

/// A Kubernetes object needs to be a mapping with a non-empty `apiVersion` and `kind`.
fn check_object(value: Value) -> Result<Value, String> {
    let Value::Object(map) = &value else {
        return Err("not a Kubernetes object (expected a mapping)".to_owned());
    };
    for field in ["apiVersion", "kind"] {
        if map
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!("object has no {field}"));
        }
    }
    Ok(value)
}

/// Appends `object`, or the items of a `List`/`*List` (an `items: null` list is empty).
fn expand_list(file: &str, object: Value, out: &mut Vec<Value>) -> Result<(), RenderError> {
    let is_list = object
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    match object.get("items") {
        Some(Value::Array(_)) if is_list => {}
        Some(Value::Null)
            if is_list && object.get("spec").is_none() && object.get("status").is_none() =>
        {
            return Ok(());
        }
        _ => {
            out.push(object);
            return Ok(());
        }
    }
    let Value::Object(mut map) = object else {
        return Ok(());
    };
    let Some(Value::Array(items)) = map.remove("items") else {
        return Ok(());
    };
    for (i, item) in items.into_iter().enumerate() {
        let item = check_object(item).map_err(|m| RenderError::ParseManifest {
            file: file.to_owned(),
            message: format!("items[{i}]: {m}"),
        })?;
        out.push(item);
    }
    Ok(())
}

/// Parses a tool's YAML output strictly: every document must be an object.
fn tool_output(tool: &'static str, data: &[u8]) -> Result<Vec<Value>, RenderError> {
    let docs = yaml_objects(data).map_err(|(_, message)| RenderError::ParseManifest {
        file: format!("{tool} output"),
        message,
    })?;
    let mut objects = Vec::new();
    for doc in docs {
        expand_list(tool, doc, &mut objects)?;
    }
    Ok(objects)
}

// ---------------------------------------------------------------------------------------
// The tree on disk, for the tools.

impl Renderer {
    /// Writes the snapshot's tree once per commit to `<work_dir>/trees/<key>/repo`
    /// (atomically: built in a temporary directory, then renamed) and returns the
    /// `<key>` directory. Symlinks are written as symlinks, after checking that they
    /// resolve inside the repository, so a tool following them stays in the tree; one
    /// leading out fails the render wherever it is, like Argo CD's out-of-bounds
    /// symlink check of the whole checkout.
    fn materialize(&self, tree: &Tree<'_>) -> Result<PathBuf, RenderError> {
        let commit = tree.snap.commit();
        let err = |message: String| RenderError::Materialize {
            commit: commit.to_owned(),
            message,
        };
        // The key is the commit, but only when it is safe as a directory name.
        let key = if !commit.is_empty() && commit.chars().all(|c| c.is_ascii_hexdigit()) {
            commit.to_owned()
        } else {
            hex::encode(&sha2::Sha256::digest(commit.as_bytes())[..16])
        };
        let trees = self.work_dir.join("trees");
        let dir = trees.join(key);
        if dir.join("repo").is_dir() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&trees).map_err(|e| err(format!("{}: {e}", trees.display())))?;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&trees)
            .map_err(|e| err(format!("{}: {e}", trees.display())))?;
        let root = staging.path().join("repo");
        let mut total = 0u64;
        for file in tree.snap.files() {
            if file
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c == ".git")
            {
                return Err(err(format!("refusing the tree entry {file:?}")));
            }
            let dest = root.join(file);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| err(format!("{file}: {e}")))?;
            }
            let data = tree.snap.read(file)?;
            total += data.len() as u64;
            if total > self.limits.max_tree_bytes {
                return Err(RenderError::TooLarge {
                    what: format!("the tree of commit {commit}"),
                    limit: self.limits.max_tree_bytes,
                });
            }
            if tree.snap.is_symlink(file) {
                tree.link_target(file)?;
                let target = String::from_utf8(data).map_err(|_| RenderError::Symlink {
                    link: file.clone(),
                    reason: "has a target that is not UTF-8",
                })?;
                std::os::unix::fs::symlink(target, &dest)
                    .map_err(|e| err(format!("{file}: {e}")))?;
            } else {
                std::fs::write(&dest, data).map_err(|e| err(format!("{file}: {e}")))?;
            }
        }
        match std::fs::rename(staging.path(), &dir) {
            Ok(()) => Ok(dir),
            // Another render of the same commit got there first: its tree is as good.
            Err(_) if dir.join("repo").is_dir() => Ok(dir),
            Err(e) => Err(err(format!("{}: {e}", dir.display()))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Kustomize.

/// `spec.source.kustomize`: the options Argo CD applies with `kustomize edit`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KustomizeOptions {
    #[serde(default)]
    name_prefix: String,
    #[serde(default)]
    name_suffix: String,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    /// A wrapper's labels and annotations always win over the app's own, which is what
    /// `force` asks for; without it Argo CD fails on a conflict and Argosy does not.
    #[serde(default, rename = "forceCommonLabels")]
    _force_common_labels: bool,
    #[serde(default, rename = "forceCommonAnnotations")]
    _force_common_annotations: bool,
    #[serde(default)]
    label_without_selector: bool,
    #[serde(default)]
    label_include_templates: bool,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    replicas: Vec<Replica>,
    #[serde(default)]
    patches: Vec<Value>,
    #[serde(default)]
    components: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replica {
    name: String,
    count: Value,
}

impl KustomizeOptions {
    /// The wrapper kustomization applying these options to the directory `resource`
    /// (relative to the wrapper), or `None` when there is nothing to apply. `read`
    /// fetches a patch file named relative to the app directory, for inlining.
    fn wrapper(
        &self,
        resource: &str,
        mut read: impl FnMut(&str) -> Result<String, RenderError>,
    ) -> Result<Option<Value>, RenderError> {
        let mut k = serde_json::Map::new();
        let set = |k: &mut serde_json::Map<String, Value>, key: &str, v: Value| {
            k.insert(key.to_owned(), v);
        };
        if !self.name_prefix.is_empty() {
            set(&mut k, "namePrefix", json!(self.name_prefix));
        }
        if !self.name_suffix.is_empty() {
            set(&mut k, "nameSuffix", json!(self.name_suffix));
        }
        if !self.namespace.is_empty() {
            set(&mut k, "namespace", json!(self.namespace));
        }
        if !self.images.is_empty() {
            let images: Vec<Value> = self.images.iter().map(|i| kustomize_image(i)).collect();
            set(&mut k, "images", Value::Array(images));
        }
        if !self.common_labels.is_empty() {
            if self.label_without_selector {
                let labels = json!([{
                    "pairs": self.common_labels,
                    "includeSelectors": false,
                    "includeTemplates": self.label_include_templates,
                }]);
                set(&mut k, "labels", labels);
            } else {
                set(&mut k, "commonLabels", json!(self.common_labels));
            }
        }
        if !self.common_annotations.is_empty() {
            set(&mut k, "commonAnnotations", json!(self.common_annotations));
        }
        if !self.replicas.is_empty() {
            let mut replicas = Vec::new();
            for r in &self.replicas {
                let count = match &r.count {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| RenderError::Options {
                    field: format!("kustomize.replicas[{}].count", r.name),
                    message: format!("{} is not an integer", r.count),
                })?;
                replicas.push(json!({"name": r.name, "count": count}));
            }
            set(&mut k, "replicas", Value::Array(replicas));
        }
        if !self.patches.is_empty() {
            let mut patches = Vec::new();
            for (i, patch) in self.patches.iter().enumerate() {
                let mut patch = patch.clone();
                if let Some(map) = patch.as_object_mut()
                    && let Some(path) = map.remove("path")
                {
                    let path = path.as_str().ok_or_else(|| RenderError::Options {
                        field: format!("kustomize.patches[{i}].path"),
                        message: "not a string".to_owned(),
                    })?;
                    map.insert("patch".to_owned(), json!(read(path)?));
                }
                patches.push(patch);
            }
            set(&mut k, "patches", Value::Array(patches));
        }
        if !self.components.is_empty() {
            let components = self
                .components
                .iter()
                .map(|c| component_path(resource, c))
                .collect::<Result<Vec<_>, _>>()?;
            set(&mut k, "components", json!(components));
        }
        if k.is_empty() {
            return Ok(None);
        }
        k.insert(
            "apiVersion".to_owned(),
            json!("kustomize.config.k8s.io/v1beta1"),
        );
        k.insert("kind".to_owned(), json!("Kustomization"));
        k.insert("resources".to_owned(), json!([resource]));
        Ok(Some(Value::Object(k)))
    }
}

/// A component of the app directory, as seen from the wrapper: remote components pass
/// through, local ones must stay inside the repository.
fn component_path(resource: &str, component: &str) -> Result<String, RenderError> {
    if component.contains("://") {
        return Ok(component.to_owned());
    }
    let bad = || RenderError::Options {
        field: "kustomize.components".to_owned(),
        message: format!("{component:?} leaves the repository"),
    };
    if component.starts_with('/') {
        return Err(bad());
    }
    // `resource` is `../repo/<app>`: normalize below `repo`.
    let app = resource
        .trim_start_matches("../repo")
        .trim_start_matches('/');
    let mut parts: Vec<&str> = app.split('/').filter(|p| !p.is_empty()).collect();
    for part in component.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(bad)?;
            }
            p => parts.push(p),
        }
    }
    Ok(format!("../repo/{}", parts.join("/")))
}

/// `kustomize edit set image` syntax -> a kustomization `images` entry:
/// `name[:tag|@digest]` or `name=newName[:tag|@digest]`.
fn kustomize_image(spec: &str) -> Value {
    let (name, new) = match spec.split_once('=') {
        Some((name, new)) => (name.to_owned(), Some(new)),
        None => (split_image(spec).0.to_owned(), None),
    };
    let mut image = serde_json::Map::new();
    image.insert("name".to_owned(), json!(name));
    let (new_name, tag, digest) = split_image(new.unwrap_or(spec));
    if new.is_some() {
        image.insert("newName".to_owned(), json!(new_name));
    }
    if let Some(tag) = tag {
        image.insert("newTag".to_owned(), json!(tag));
    }
    if let Some(digest) = digest {
        image.insert("digest".to_owned(), json!(digest));
    }
    Value::Object(image)
}

/// `name[:tag][@digest]`; a `:` before the last `/` is a registry port, not a tag.
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

impl Renderer {
    fn kustomize(
        &self,
        tree: &Tree<'_>,
        app: &str,
        options_value: Option<&Value>,
    ) -> Result<Vec<Value>, RenderError> {
        let opts: KustomizeOptions = options("kustomize", options_value)?;
        let Some(tool) = &self.tools.kustomize else {
            return Err(RenderError::KustomizeUnavailable {
                path: display_path(app),
            });
        };
        let resource = format!("../repo/{app}");
        let read_patch = |path: &str| {
            let file = match tree.resolve(&join(app, path))? {
                Resolved::Inside(f) if tree.is_file(&f) => f,
                _ => {
                    return Err(RenderError::Options {
                        field: "kustomize.patches".to_owned(),
                        message: format!("patch file {path:?} is not a file in the repository"),
                    });
                }
            };
            String::from_utf8(tree.snap.read(&file)?).map_err(|_| RenderError::Options {
                field: "kustomize.patches".to_owned(),
                message: format!("patch file {path:?} is not UTF-8"),
            })
        };
        let wrapper = opts.wrapper(&resource, read_patch)?;
        let dir = self.materialize(tree)?;
        // The wrapper lives next to `repo`, never inside it: kustomize refuses a
        // resource directory that contains the kustomization referring to it.
        let wrap_dir = match &wrapper {
            Some(w) => {
                let tmp = tempfile::Builder::new()
                    .prefix("wrapper-")
                    .tempdir_in(&dir)
                    .map_err(|e| RenderError::Materialize {
                        commit: tree.snap.commit().to_owned(),
                        message: e.to_string(),
                    })?;
                std::fs::write(tmp.path().join("kustomization.yaml"), w.to_string()).map_err(
                    |e| RenderError::Materialize {
                        commit: tree.snap.commit().to_owned(),
                        message: e.to_string(),
                    },
                )?;
                Some(tmp)
            }
            None => None,
        };
        let build_dir = match &wrap_dir {
            Some(w) => w.path().to_path_buf(),
            None => dir.join("repo").join(app),
        };
        let mut args = tool.args.clone();
        args.push(build_dir.to_string_lossy().into_owned());
        let out = run_tool("kustomize", &tool.program, &args, &dir, &self.limits)?;
        tool_output("kustomize", &out)
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
// Helm.

/// `spec.source.helm`, the options Argo CD passes to `helm template`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HelmOptions {
    #[serde(default)]
    value_files: Vec<String>,
    #[serde(default)]
    values: String,
    #[serde(default)]
    values_object: Option<Value>,
    #[serde(default)]
    parameters: Vec<HelmParameter>,
    #[serde(default)]
    release_name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    ignore_missing_value_files: bool,
    #[serde(default)]
    skip_crds: bool,
    #[serde(default)]
    skip_tests: bool,
    #[serde(default)]
    kube_version: String,
    #[serde(default)]
    api_versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HelmParameter {
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    force_string: bool,
}

/// The `helm template` arguments for a chart in the working directory's `chart`:
/// `value_files` are paths relative to the working directory, `inline_values` the file
/// holding `values`/`valuesObject`.
fn helm_args(
    chart: &str,
    opts: &HelmOptions,
    target: RenderTarget<'_>,
    value_files: &[String],
    inline_values: Option<&str>,
) -> Vec<String> {
    let release = if opts.release_name.is_empty() {
        target.app_name
    } else {
        &opts.release_name
    };
    let namespace = if opts.namespace.is_empty() {
        target.namespace
    } else {
        &opts.namespace
    };
    let mut args = vec![
        "template".to_owned(),
        chart.to_owned(),
        "--name-template".to_owned(),
        release.to_owned(),
    ];
    if !namespace.is_empty() {
        args.extend(["--namespace".to_owned(), namespace.to_owned()]);
    }
    if !opts.kube_version.is_empty() {
        args.extend(["--kube-version".to_owned(), opts.kube_version.clone()]);
    }
    for file in value_files.iter().map(String::as_str).chain(inline_values) {
        args.extend(["--values".to_owned(), file.to_owned()]);
    }
    for p in &opts.parameters {
        let flag = if p.force_string {
            "--set-string"
        } else {
            "--set"
        };
        args.extend([flag.to_owned(), format!("{}={}", p.name, p.value)]);
    }
    for v in &opts.api_versions {
        args.extend(["--api-versions".to_owned(), v.clone()]);
    }
    if !opts.skip_crds {
        args.push("--include-crds".to_owned());
    }
    if opts.skip_tests {
        args.push("--skip-tests".to_owned());
    }
    args
}

impl Renderer {
    fn helm(
        &self,
        tree: &Tree<'_>,
        app: &str,
        options_value: Option<&Value>,
        target: RenderTarget<'_>,
    ) -> Result<Vec<Value>, RenderError> {
        let opts: HelmOptions = options("helm", options_value)?;
        let Some(helm) = &self.tools.helm else {
            return Err(RenderError::HelmUnavailable {
                path: display_path(app),
            });
        };
        // Value files are relative to the chart and must stay in the repository.
        let mut value_files = Vec::new();
        for file in &opts.value_files {
            if file.contains("://") || file.starts_with('$') || file.starts_with('/') {
                return Err(RenderError::Unsupported {
                    what: format!("helm.valueFiles entry {file:?} (only files of this repository)"),
                });
            }
            match tree.resolve(&join(app, file))? {
                Resolved::Inside(f) if tree.is_file(&f) => value_files.push(format!("repo/{f}")),
                Resolved::Outside => {
                    return Err(RenderError::Options {
                        field: "helm.valueFiles".to_owned(),
                        message: format!("{file:?} leaves the repository"),
                    });
                }
                Resolved::Inside(_) if opts.ignore_missing_value_files => {}
                Resolved::Inside(_) => {
                    return Err(RenderError::Options {
                        field: "helm.valueFiles".to_owned(),
                        message: format!("{file:?} is not a file in the repository"),
                    });
                }
            }
        }
        let dir = self.materialize(tree)?;
        let materialize_err = |e: std::io::Error| RenderError::Materialize {
            commit: tree.snap.commit().to_owned(),
            message: e.to_string(),
        };
        // `valuesObject` wins over `values`, as in Argo CD.
        let inline = match (&opts.values_object, opts.values.is_empty()) {
            (Some(v), _) if !v.is_null() => Some(v.to_string()),
            (_, false) => Some(opts.values.clone()),
            _ => None,
        };
        let values_file = match inline {
            Some(text) => {
                let mut file = tempfile::Builder::new()
                    .prefix("values-")
                    .suffix(".yaml")
                    .tempfile_in(&dir)
                    .map_err(materialize_err)?;
                std::io::Write::write_all(&mut file, text.as_bytes()).map_err(materialize_err)?;
                Some(file)
            }
            None => None,
        };
        let values_name = values_file
            .as_ref()
            .and_then(|f| f.path().file_name())
            .map(|n| n.to_string_lossy().into_owned());
        let args = helm_args(
            &format!("repo/{}", display_path(app)),
            &opts,
            target,
            &value_files,
            values_name.as_deref(),
        );
        let out = run_tool("helm", helm, &args, &dir, &self.limits)?;
        tool_output("helm", &out)
    }
}

// ---------------------------------------------------------------------------------------
// Running the tools.

/// The binaries found on `PATH` when the renderer was built.
#[derive(Debug, Clone, Default)]
struct Tools {
    kustomize: Option<KustomizeCommand>,
    helm: Option<PathBuf>,
}

/// `kustomize build DIR` or `kubectl kustomize DIR`.
#[derive(Debug, Clone)]
struct KustomizeCommand {
    program: PathBuf,
    args: Vec<String>,
}

impl Tools {
    fn detect() -> Self {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let find = |name: &str| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| is_executable(p))
        };
        let kustomize = find("kustomize")
            .map(|program| KustomizeCommand {
                program,
                args: vec!["build".to_owned()],
            })
            .or_else(|| {
                find("kubectl").map(|program| KustomizeCommand {
                    program,
                    args: vec!["kustomize".to_owned()],
                })
            });
        let tools = Self {
            kustomize,
            helm: find("helm"),
        };
        tracing::info!(kustomize = ?tools.kustomize, helm = ?tools.helm, "rendering tools");
        tools
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How much of a failing tool's stderr is kept for the error message.
const STDERR_KEEP: usize = 4096;

/// Runs a tool in `cwd` with a scrubbed environment (it needs none of the controller's
/// secrets), killing it after the timeout or once its stdout passes the total limit.
fn run_tool(
    tool: &'static str,
    program: &Path,
    args: &[String],
    cwd: &Path,
    limits: &Limits,
) -> Result<Vec<u8>, RenderError> {
    let failed = |message: String| RenderError::Tool { tool, message };
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("starting {}: {e}", program.display())))?;
    let (tx, rx) = mpsc::channel();
    let cap = limits.max_total_bytes;
    if let Some(stdout) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let result = stdout.take(cap + 1).read_to_end(&mut out);
            let _ = tx.send(Stream::Stdout(result.map(|_| out)));
        });
    }
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut err = Vec::new();
            let _ = (&mut stderr).take(STDERR_KEEP as u64).read_to_end(&mut err);
            // Keep draining so a chatty tool never blocks on a full pipe.
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            let _ = tx.send(Stream::Stderr(err));
        });
    }
    let deadline = Instant::now() + limits.tool_timeout;
    let timeout = || RenderError::ToolTimeout {
        tool,
        timeout: limits.tool_timeout,
    };
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(remaining) {
            Ok(Stream::Stdout(out)) => {
                let out = out.map_err(|e| failed(format!("reading output: {e}")))?;
                if out.len() as u64 > cap {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RenderError::TooLarge {
                        what: format!("{tool} output"),
                        limit: cap,
                    });
                }
                stdout = Some(out);
            }
            Ok(Stream::Stderr(err)) => stderr = Some(err),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(timeout());
            }
        }
    }
    // Both pipes are closed; the process is exiting, but still bound the wait.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(timeout());
            }
            Err(e) => return Err(failed(format!("waiting: {e}"))),
        }
    };
    if !status.success() {
        let stderr = String::from_utf8_lossy(stderr.as_deref().unwrap_or_default())
            // Paths on this machine mean nothing to the user; the repository root does.
            .replace(&format!("{}/repo", cwd.display()), "<repo>")
            .trim()
            .to_owned();
        return Err(failed(format!("{status}: {stderr}")));
    }
    Ok(stdout.unwrap_or_default())
}

enum Stream {
    Stdout(std::io::Result<Vec<u8>>),
    Stderr(Vec<u8>),
}

// ---------------------------------------------------------------------------------------
// The result cache.

/// The cache key: everything a rendering depends on. The Application's name and
/// namespace only matter to Helm, so other sources are shared between Applications
/// (an ApplicationSet's many Applications of one path render once).
fn cache_key(
    repo_url: &str,
    commit: &str,
    app: &str,
    source_type: SourceType,
    source: &ApplicationSource,
    target: RenderTarget<'_>,
) -> String {
    let helm_target =
        (source_type == SourceType::Helm).then_some((target.app_name, target.namespace));
    let key = json!([
        repo_url,
        commit,
        app,
        source_type,
        source.directory,
        source.kustomize,
        source.helm,
        helm_target,
    ]);
    hex::encode(sha2::Sha256::digest(key.to_string().as_bytes()))
}

/// A least-recently-used map with a fixed number of entries; eviction scans the entries,
/// which at a few hundred is cheaper than keeping an order list.
struct Lru {
    capacity: usize,
    clock: u64,
    /// Key -> (result, clock value of its last use).
    entries: HashMap<String, (Arc<Rendered>, u64)>,
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
        let (rendered, used) = self.entries.get_mut(key)?;
        *used = self.clock;
        Some(rendered.clone())
    }

    fn insert(&mut self, key: String, value: Arc<Rendered>) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.clock += 1;
        self.entries.insert(key, (value, self.clock));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use argosy_generators::memory::MemoryRepos;
    use argosy_generators::source::RepoSource;

    use super::*;
    use crate::repo::{GitRepos, TreeEntry, write_tree_commit};

    const URL: &str = "https://example.com/repo.git";
    const TARGET: RenderTarget<'static> = RenderTarget {
        app_name: "app",
        namespace: "ns",
    };

    /// A [`MemoryRepos`] tree where the paths in `links` are symlinks (content = target).
    struct Linked {
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

    fn snapshot(files: &[(&str, &str)], links: &[(&str, &str)]) -> Linked {
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

    fn source(path: &str, extra: Value) -> ApplicationSource {
        let mut v = json!({"repoURL": URL, "path": path});
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        serde_json::from_value(v).unwrap()
    }

    fn renderer(limits: Limits) -> (tempfile::TempDir, Renderer) {
        let dir = tempfile::tempdir().unwrap();
        let r = Renderer::with_tools(dir.path().to_path_buf(), limits, Tools::default());
        (dir, r)
    }

    fn render(
        snap: &dyn RepoSnapshot,
        src: &ApplicationSource,
    ) -> Result<Arc<Rendered>, RenderError> {
        renderer(Limits::default()).1.render(URL, snap, src, TARGET)
    }

    fn names(r: &Rendered) -> Vec<String> {
        r.objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    fn cm(name: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    }

    #[test]
    fn directory_reads_yaml_and_json_and_skips_what_argo_skips() {
        let multi = format!("---\n{}---\n\n---\n{}", cm("a"), cm("b"));
        let json = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"}}"#;
        let bom = format!("\u{feff}{}", cm("d"));
        let snap = snapshot(
            &[
                ("app/multi.yaml", &multi),
                ("app/c.json", json),
                ("app/d.yml", &bom),
                ("app/README.md", "# not yaml: [}"),
                // Helm-style values: not a manifest, skipped as Argo CD does.
                ("app/values.yaml", "replicas: 3\nimage: {tag: x}\n"),
                ("app/sub/e.yaml", &cm("e")),
                ("other/f.yaml", &cm("f")),
            ],
            &[],
        );
        let r = render(&snap, &source("app", json!({}))).unwrap();
        assert_eq!(r.source_type, SourceType::Directory);
        assert_eq!(r.commit, snap.commit());
        assert_eq!(names(&r), ["c", "d", "a", "b"]);
        let r = render(
            &snap,
            &source("./app/", json!({"directory": {"recurse": true}})),
        )
        .unwrap();
        assert_eq!(names(&r), ["c", "d", "a", "b", "e"]);
        let root = render(&snap, &source("", json!({"directory": {"recurse": true}}))).unwrap();
        assert_eq!(names(&root).len(), 6);
    }

    #[test]
    fn include_and_exclude_use_argo_globs() {
        let snap = snapshot(
            &[
                ("app/a.yaml", &cm("a")),
                ("app/b.yaml", &cm("b")),
                (
                    "app/c.json",
                    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
                ),
                ("app/sub/d.yaml", &cm("d")),
            ],
            &[],
        );
        let with = |dir: Value| {
            let mut d = json!({"recurse": true});
            d.as_object_mut()
                .unwrap()
                .extend(dir.as_object().unwrap().clone());
            names(&render(&snap, &source("app", json!({"directory": d}))).unwrap())
        };
        assert_eq!(with(json!({"include": "{a.yaml,c.json}"})), ["a", "c"]);
        assert_eq!(
            with(json!({"include": "*.yaml"})),
            ["a", "b", "d"],
            "* crosses /"
        );
        assert_eq!(with(json!({"exclude": "sub/*"})), ["a", "b", "c"]);
        assert_eq!(
            with(json!({"include": "*.yaml", "exclude": "{b.yaml,sub/d.yaml}"})),
            ["a"]
        );
        let err = render(
            &snap,
            &source("app", json!({"directory": {"include": "{a"}})),
        )
        .unwrap_err();
        assert_eq!(err.category(), "options");
        assert!(err.to_string().starts_with("directory.include:"), "{err}");
    }

    #[test]
    fn lists_are_expanded() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}",
            r#"{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}"#,
            r#"{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}"#
        );
        let typed = "apiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n";
        let null = "apiVersion: v1\nkind: ConfigMapList\nitems: null\n";
        let bad_item = "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n- {kind: ConfigMap}\n";
        let snap = snapshot(
            &[
                ("a/1.yaml", &list),
                ("a/2.yaml", typed),
                ("a/3.yaml", null),
                ("b/x.yaml", bad_item),
            ],
            &[],
        );
        assert_eq!(
            names(&render(&snap, &source("a", json!({}))).unwrap()),
            ["a", "b", "c"]
        );
        let err = render(&snap, &source("b", json!({})))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "b/x.yaml: items[0]: object has no apiVersion");
    }

    #[test]
    fn bad_manifests_are_errors_naming_the_file() {
        let cases = [
            // A YAML syntax error in something that looks like a manifest.
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [}\n",
                "document 1",
            ),
            // A good document, then one without a kind.
            (
                &*format!("{}---\napiVersion: v1\nmetadata: {{}}\n", cm("a")),
                "document 2: object has no kind",
            ),
            // apiVersion missing although the file looks like a manifest.
            (
                "kind: ConfigMap\nmetadata: {name: x}\n# apiVersion: v1\n",
                "document 1: object has no apiVersion",
            ),
        ];
        for (content, want) in cases {
            let snap = snapshot(
                &[("app/bad.yaml", content), ("app/ok.yaml", &cm("ok"))],
                &[],
            );
            let err = render(&snap, &source("app", json!({}))).unwrap_err();
            assert_eq!(err.category(), "manifest");
            let err = err.to_string();
            assert!(err.starts_with("app/bad.yaml: "), "{err}");
            assert!(err.contains(want), "{err} lacks {want}");
        }
        let snap = snapshot(&[("app/x.json", "[1, 2]")], &[]);
        let err = render(&snap, &source("app", json!({})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "app/x.json: not a Kubernetes object (expected a mapping)"
        );
    }

    #[test]
    fn alias_bombs_do_not_blow_up() {
        let mut bomb = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let snap = snapshot(&[("app/bomb.yaml", &bomb)], &[]);
        let err = render(&snap, &source("app", json!({})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("repetition limit exceeded"), "{err}");
    }

    #[test]
    fn source_path_must_stay_in_the_repository() {
        let snap = snapshot(
            &[("app/a.yaml", &cm("a"))],
            &[("alias", "app"), ("up", "app/../.."), ("abs", "/etc")],
        );
        for path in ["../x", "app/../../x", "/app", "up", "abs/x"] {
            let err = render(&snap, &source(path, json!({}))).unwrap_err();
            assert_eq!(err.category(), "source_path", "{path}: {err}");
            assert!(err.to_string().contains(&format!("{path:?}")), "{err}");
        }
        let err = render(&snap, &source("nope", json!({})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "source path \"nope\": no such directory in the repository"
        );
        // A path through an in-repo symlink is the directory it leads to.
        assert_eq!(
            names(&render(&snap, &source("alias", json!({}))).unwrap()),
            ["a"]
        );
        assert_eq!(
            names(&render(&snap, &source("app/..//app/.", json!({}))).unwrap()),
            ["a"]
        );
    }

    #[test]
    fn symlinks_are_followed_inside_and_refused_outside() {
        let inside = snapshot(
            &[("shared/s.yaml", &cm("s")), ("app/a.yaml", &cm("a"))],
            &[
                ("app/link.yaml", "../shared/s.yaml"),
                ("app/dangling.yaml", "../missing.yaml"),
                ("app/dir.yaml", "../shared"),
            ],
        );
        assert_eq!(
            names(&render(&inside, &source("app", json!({}))).unwrap()),
            ["a", "s"]
        );
        let escapes = [
            ("../../etc/passwd.yaml", "app/evil.yaml"),
            ("/etc/passwd.yaml", "app/evil.yaml"),
        ];
        for (target, link) in escapes {
            let snap = snapshot(&[("app/a.yaml", &cm("a"))], &[("app/evil.yaml", target)]);
            // Refused even when excluded: Argo CD checks links before the globs.
            let src = source("app", json!({"directory": {"exclude": "evil.yaml"}}));
            let err = render(&snap, &src).unwrap_err();
            assert_eq!(err.category(), "symlink");
            assert_eq!(
                err.to_string(),
                format!("symlink {link}: points outside the repository")
            );
        }
        // Each link is inside on its own, but following `p/q/d` (-> `e` at the root)
        // makes `x`'s `../..` leave the repository: resolution must follow links.
        let chained = snapshot(
            &[("e/f.yaml", &cm("f"))],
            &[("p/q/d", "../../e"), ("p/q/x.yaml", "d/../../../f.yaml")],
        );
        let src = source("p/q", json!({}));
        let err = render(&chained, &src).unwrap_err().to_string();
        assert_eq!(err, "symlink p/q/x.yaml: points outside the repository");
        let looped = snapshot(&[], &[("a/x.yaml", "y.yaml"), ("a/y.yaml", "x.yaml")]);
        let err = render(&looped, &source("a", json!({})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("too many levels of symlinks"), "{err}");
    }

    #[test]
    fn size_and_count_limits() {
        let big = format!("{}data:\n  x: \"{}\"\n", cm("big"), "x".repeat(50 << 20));
        let snap = snapshot(&[("app/big.yaml", &big), ("app/ok.yaml", &cm("ok"))], &[]);
        let err = render(&snap, &source("app", json!({}))).unwrap_err();
        assert_eq!(err.category(), "limit");
        assert_eq!(
            err.to_string(),
            format!(
                "app/big.yaml is {} bytes, over the 10485760-byte limit for one manifest file",
                big.len()
            )
        );

        let snap = snapshot(&[("app/a.yaml", &cm("a")), ("app/b.yaml", &cm("b"))], &[]);
        let small = |limits: Limits| {
            renderer(limits)
                .1
                .render(URL, &snap, &source("app", json!({})), TARGET)
        };
        let total = cm("a").len() as u64 + 1;
        let err = small(Limits {
            max_total_bytes: total,
            ..Limits::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the manifests of \"app\" (at app/b.yaml) exceeds the {total}-byte limit")
        );
        let err = small(Limits {
            max_objects: 1,
            ..Limits::default()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "the source renders more than 1 objects");
        assert!(
            small(Limits {
                max_objects: 2,
                ..Limits::default()
            })
            .is_ok()
        );
    }

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
        for (extra, want) in [
            (
                json!({"chart": "nginx"}),
                "Helm repository chart \"nginx\" is not supported",
            ),
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
    fn lru_evicts_the_least_recently_used() {
        let entry = || {
            Arc::new(Rendered {
                commit: String::new(),
                source_type: SourceType::Directory,
                objects: vec![],
            })
        };
        let mut lru = Lru::new(2);
        lru.insert("a".into(), entry());
        lru.insert("b".into(), entry());
        assert!(lru.get("a").is_some());
        lru.insert("c".into(), entry());
        assert!(lru.get("b").is_none());
        assert!(lru.get("a").is_some() && lru.get("c").is_some());
    }

    #[test]
    fn kustomize_images_parse_like_kustomize_edit_set_image() {
        let cases = [
            ("nginx:1.2", json!({"name": "nginx", "newTag": "1.2"})),
            (
                "nginx=reg.io:5000/team/nginx:2",
                json!({"name": "nginx", "newName": "reg.io:5000/team/nginx", "newTag": "2"}),
            ),
            ("reg.io:5000/nginx", json!({"name": "reg.io:5000/nginx"})),
            (
                "nginx@sha256:abc",
                json!({"name": "nginx", "digest": "sha256:abc"}),
            ),
            (
                "nginx=other@sha256:abc",
                json!({"name": "nginx", "newName": "other", "digest": "sha256:abc"}),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(kustomize_image(spec), want, "{spec}");
        }
    }

    #[test]
    fn kustomize_wrapper_carries_the_application_options() {
        let opts: KustomizeOptions = options(
            "kustomize",
            Some(&json!({
                "namePrefix": "p-", "nameSuffix": "-s", "namespace": "ns",
                "commonLabels": {"team": "a"}, "labelWithoutSelector": true,
                "commonAnnotations": {"x": "y"},
                "replicas": [{"name": "web", "count": "3"}],
                "patches": [{"path": "patch.yaml", "target": {"kind": "Deployment"}}],
                "components": ["../comp"],
            })),
        )
        .unwrap();
        let wrapper = opts
            .wrapper("../repo/apps/web", |p| Ok(format!("content of {p}")))
            .unwrap()
            .unwrap();
        assert_eq!(
            wrapper,
            json!({
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                "resources": ["../repo/apps/web"],
                "namePrefix": "p-", "nameSuffix": "-s", "namespace": "ns",
                "labels": [{"pairs": {"team": "a"}, "includeSelectors": false, "includeTemplates": false}],
                "commonAnnotations": {"x": "y"},
                "replicas": [{"name": "web", "count": 3}],
                "patches": [{"patch": "content of patch.yaml", "target": {"kind": "Deployment"}}],
                "components": ["../repo/apps/comp"],
            })
        );
        let empty: KustomizeOptions = options("kustomize", Some(&json!({}))).unwrap();
        assert!(
            empty
                .wrapper("../repo/x", |_| unreachable!())
                .unwrap()
                .is_none()
        );
        let err =
            options::<KustomizeOptions>("kustomize", Some(&json!({"version": "v4"}))).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kustomize: unknown field `version`"),
            "{err}"
        );
        let escape: KustomizeOptions =
            options("kustomize", Some(&json!({"components": ["../../../x"]}))).unwrap();
        let err = escape
            .wrapper("../repo/a/b", |_| unreachable!())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "kustomize.components: \"../../../x\" leaves the repository"
        );
    }

    #[test]
    fn helm_arguments_follow_argo() {
        let opts: HelmOptions = options(
            "helm",
            Some(&json!({
                "parameters": [{"name": "a", "value": "1"}, {"name": "b", "value": "x,y", "forceString": true}],
                "kubeVersion": "1.30", "apiVersions": ["v1"], "skipTests": true,
            })),
        )
        .unwrap();
        let args = helm_args(
            "repo/chart",
            &opts,
            TARGET,
            &["repo/chart/v.yaml".to_owned()],
            Some("values-1.yaml"),
        );
        assert_eq!(
            args,
            [
                "template",
                "repo/chart",
                "--name-template",
                "app",
                "--namespace",
                "ns",
                "--kube-version",
                "1.30",
                "--values",
                "repo/chart/v.yaml",
                "--values",
                "values-1.yaml",
                "--set",
                "a=1",
                "--set-string",
                "b=x,y",
                "--api-versions",
                "v1",
                "--include-crds",
                "--skip-tests",
            ]
        );
        let opts: HelmOptions = options(
            "helm",
            Some(&json!({"releaseName": "r", "namespace": "n2", "skipCrds": true})),
        )
        .unwrap();
        assert_eq!(
            helm_args("repo/c", &opts, TARGET, &[], None),
            [
                "template",
                "repo/c",
                "--name-template",
                "r",
                "--namespace",
                "n2"
            ]
        );
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn tools_are_killed_after_the_timeout_and_their_output_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            tool_timeout: Duration::from_millis(300),
            max_total_bytes: 1000,
            ..Limits::default()
        };
        let slow = script(dir.path(), "slow", "sleep 30");
        let started = Instant::now();
        let err = run_tool("kustomize", &slow, &[], dir.path(), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kustomize did not finish within 300ms and was killed"
        );
        assert_eq!(err.category(), "tool_timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
        let loud = script(dir.path(), "loud", "yes");
        let err = run_tool("helm", &loud, &[], dir.path(), &limits).unwrap_err();
        assert_eq!(err.to_string(), "helm output exceeds the 1000-byte limit");
        let fails = script(
            dir.path(),
            "fails",
            "echo \"bad file $PWD/repo/x.yaml\" >&2; exit 3",
        );
        let err = run_tool("helm", &fails, &[], dir.path(), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "helm failed: exit status: 3: bad file <repo>/x.yaml"
        );
        // The tool does not see the controller's environment.
        let env = script(dir.path(), "env", "env");
        let out = run_tool("helm", &env, &[], dir.path(), &Limits::default()).unwrap();
        let vars: Vec<_> = String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        assert!(
            vars.iter()
                .all(|v| ["PATH", "HOME", "PWD", "SHLVL", "_"].contains(&v.as_str())),
            "{vars:?}"
        );
    }

    /// A real bare repository read through [`GitRepos`], as the controller reads it.
    fn git_snapshot(dir: &Path, entries: &[(&str, TreeEntry)]) -> Arc<dyn RepoSnapshot> {
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

    fn file(s: &str) -> TreeEntry {
        TreeEntry::File(s.to_owned())
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1.0}]}
";

    fn kubectl_renderer(dir: &Path) -> Renderer {
        let tools = Tools {
            kustomize: Some(KustomizeCommand {
                program: "/usr/bin/kubectl".into(),
                args: vec!["kustomize".into()],
            }),
            helm: None,
        };
        Renderer::with_tools(dir.join("work"), Limits::default(), tools)
    }

    #[test]
    fn kustomize_overlay_with_application_options() {
        let dir = tempfile::tempdir().unwrap();
        let snap = git_snapshot(
            dir.path(),
            &[
                (
                    "base/kustomization.yaml",
                    file("resources: [deploy.yaml]\n"),
                ),
                ("base/deploy.yaml", file(DEPLOYMENT)),
                (
                    "overlays/prod/kustomization.yaml",
                    file(
                        "resources: [../../base]\nnameSuffix: -prod\npatches: [{path: replicas.yaml}]\n",
                    ),
                ),
                (
                    "overlays/prod/replicas.yaml",
                    file(
                        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n",
                    ),
                ),
                (
                    "overlays/prod/extra.yaml",
                    file("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"),
                ),
                (
                    "overlays/prod/link.yaml",
                    TreeEntry::Symlink("extra.yaml".into()),
                ),
            ],
        );
        let r = kubectl_renderer(dir.path());
        let plain = r
            .render(URL, &*snap, &source("overlays/prod", json!({})), TARGET)
            .unwrap();
        assert_eq!(plain.source_type, SourceType::Kustomize);
        assert_eq!(names(&plain), ["web-prod"]);
        assert_eq!(plain.objects[0]["spec"]["replicas"], 2);

        let options = json!({"kustomize": {
            "images": ["nginx=registry.example.com/nginx:2.0"],
            "namePrefix": "team-",
            "namespace": "shop",
            "commonLabels": {"team": "shop"},
            "replicas": [{"name": "web", "count": 5}],
        }});
        let r2 = r
            .render(URL, &*snap, &source("overlays/prod", options), TARGET)
            .unwrap();
        let web = &r2.objects[0];
        assert_eq!(web["metadata"]["name"], "team-web-prod");
        assert_eq!(web["metadata"]["namespace"], "shop");
        assert_eq!(web["metadata"]["labels"]["team"], "shop");
        assert_eq!(web["spec"]["selector"]["matchLabels"]["team"], "shop");
        assert_eq!(web["spec"]["replicas"], 5);
        assert_eq!(
            web["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example.com/nginx:2.0"
        );
        // The user's tree is untouched and shared: the plain render is unchanged.
        let tree = dir
            .path()
            .join("work/trees")
            .join(snap.commit())
            .join("repo");
        assert_eq!(
            std::fs::read_to_string(tree.join("base/kustomization.yaml")).unwrap(),
            "resources: [deploy.yaml]\n"
        );
        let again = kubectl_renderer(dir.path())
            .render(URL, &*snap, &source("overlays/prod", json!({})), TARGET)
            .unwrap();
        assert_eq!(again, plain);
        // In-repo symlinks are materialized as symlinks.
        assert!(tree.join("overlays/prod/link.yaml").is_symlink());

        // Options on a base that has no overlay (the wrapper sits next to the tree).
        let base = source("base", json!({"kustomize": {"namePrefix": "x-"}}));
        assert_eq!(
            names(&r.render(URL, &*snap, &base, TARGET).unwrap()),
            ["x-web"]
        );
    }

    #[test]
    fn kustomize_errors_and_symlinks_out_of_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let snap = git_snapshot(
            dir.path(),
            &[
                ("app/kustomization.yaml", file("resources: [secret.yaml]\n")),
                (
                    "app/secret.yaml",
                    TreeEntry::Symlink("../../../../etc/passwd".into()),
                ),
                (
                    "broken/kustomization.yaml",
                    file("resources: [missing.yaml]\n"),
                ),
            ],
        );
        let r = kubectl_renderer(dir.path());
        let err = r
            .render(URL, &*snap, &source("app", json!({})), TARGET)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "symlink app/secret.yaml: points outside the repository"
        );
        // Nothing was written for the refused tree.
        assert!(!dir.path().join("work/trees").join(snap.commit()).exists());

        let ok = git_snapshot(
            &dir.path().join("2"),
            &[(
                "broken/kustomization.yaml",
                file("resources: [missing.yaml]\n"),
            )],
        );
        let err = r
            .render(URL, &*ok, &source("broken", json!({})), TARGET)
            .unwrap_err();
        assert_eq!(err.category(), "tool");
        let err = err.to_string();
        assert!(
            err.starts_with("kustomize failed: exit status: 1: "),
            "{err}"
        );
        assert!(
            err.contains("<repo>/broken/missing.yaml") && !err.contains("/work/"),
            "{err}"
        );
    }

    #[test]
    fn helm_runs_the_helm_binary_with_the_materialized_chart() {
        let dir = tempfile::tempdir().unwrap();
        let snap = git_snapshot(
            dir.path(),
            &[
                ("chart/Chart.yaml", file("name: c\nversion: 1.0.0\n")),
                ("chart/values-prod.yaml", file("replicas: 3\n")),
            ],
        );
        // A stand-in `helm` that proves it ran in the tree: it reports its arguments and
        // the value files it could read.
        let fake = script(
            dir.path(),
            "helm",
            r#"echo "apiVersion: v1
kind: ConfigMap
metadata: {name: $4}
data:
  args: \"$*\"
  chart: \"$(cat $2/Chart.yaml | head -1)\"
  values: \"$(cat $8)\"
  inline: '$(cat ${10})'""#,
        );
        let tools = Tools {
            kustomize: None,
            helm: Some(fake),
        };
        let r = Renderer::with_tools(dir.path().join("work"), Limits::default(), tools);
        let src = source(
            "chart",
            json!({"helm": {"valueFiles": ["values-prod.yaml"], "valuesObject": {"a": 1}}}),
        );
        let out = r.render(URL, &*snap, &src, TARGET).unwrap();
        assert_eq!(out.source_type, SourceType::Helm);
        let data = &out.objects[0]["data"];
        assert_eq!(out.objects[0]["metadata"]["name"], "app");
        assert_eq!(data["chart"], "name: c");
        assert_eq!(data["values"], "replicas: 3");
        assert_eq!(data["inline"], r#"{"a":1}"#);
        assert!(data["args"].as_str().unwrap().starts_with("template repo/chart --name-template app --namespace ns --values repo/chart/values-prod.yaml --values values-"));

        let missing = source("chart", json!({"helm": {"valueFiles": ["nope.yaml"]}}));
        let err = r
            .render(URL, &*snap, &missing, TARGET)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "helm.valueFiles: \"nope.yaml\" is not a file in the repository"
        );
        let escape = source("chart", json!({"helm": {"valueFiles": ["../../x.yaml"]}}));
        let err = r
            .render(URL, &*snap, &escape, TARGET)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "helm.valueFiles: \"../../x.yaml\" leaves the repository"
        );
    }
}

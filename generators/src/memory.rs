//! In-memory implementations of the [`source`](crate::source) traits.
//!
//! Used wherever the inputs are already at hand: `argosy generate` and `argosy test` over
//! files, the conformance suite and unit tests.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use argosy_crds::AppProject;
use argosy_crds::cluster::is_cluster_secret;
use k8s_openapi::api::core::v1::Secret;

use crate::source::{
    ClusterEntry, ClusterSource, ProjectSource, RepoError, RepoSnapshot, RepoSource,
};

/// A fixed list of cluster Secrets.
#[derive(Debug, Clone, Default)]
pub struct MemoryClusters(pub Vec<ClusterEntry>);

impl MemoryClusters {
    /// The cluster Secrets among `secrets` (those labelled as clusters and, when
    /// `namespace` is given, in that namespace), parsed; unparsable ones are kept as
    /// [`ClusterEntry::Invalid`].
    pub fn from_secrets(secrets: &[Secret], namespace: Option<&str>) -> Self {
        let entries = secrets
            .iter()
            .filter(|s| is_cluster_secret(s))
            .filter(|s| namespace.is_none_or(|ns| s.metadata.namespace.as_deref() == Some(ns)))
            .map(ClusterEntry::from_secret)
            .collect();
        Self(entries)
    }
}

impl ClusterSource for MemoryClusters {
    fn clusters(&self) -> Vec<ClusterEntry> {
        self.0.clone()
    }
}

/// Repository trees keyed by URL and revision.
#[derive(Default, Clone)]
pub struct MemoryRepos {
    trees: BTreeMap<(String, String), Arc<MemorySnapshot>>,
}

impl MemoryRepos {
    /// Serves `files` (path -> content) as `revision` of `repo`.
    pub fn insert(&mut self, repo: &str, revision: &str, files: BTreeMap<String, Vec<u8>>) {
        let mut hasher = DefaultHasher::new();
        (repo, revision, &files).hash(&mut hasher);
        let snapshot = MemorySnapshot {
            commit: format!("{:016x}", hasher.finish()),
            paths: files.keys().cloned().collect(),
            files,
        };
        self.trees
            .insert((repo.to_owned(), revision.to_owned()), Arc::new(snapshot));
    }
}

impl RepoSource for MemoryRepos {
    fn snapshot(&self, repo_url: &str, revision: &str) -> Result<Arc<dyn RepoSnapshot>, RepoError> {
        match self.trees.get(&(repo_url.to_owned(), revision.to_owned())) {
            Some(s) => Ok(s.clone()),
            None => Err(RepoError {
                repo: repo_url.to_owned(),
                message: format!("revision {revision:?} not found"),
            }),
        }
    }
}

/// One tree of a [`MemoryRepos`].
pub struct MemorySnapshot {
    commit: String,
    paths: Vec<String>,
    files: BTreeMap<String, Vec<u8>>,
}

impl RepoSnapshot for MemorySnapshot {
    fn commit(&self) -> &str {
        &self.commit
    }

    fn files(&self) -> &[String] {
        &self.paths
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, RepoError> {
        self.files.get(path).cloned().ok_or_else(|| RepoError {
            repo: format!("commit {}", self.commit),
            message: format!("file {path:?} not found"),
        })
    }
}

/// A fixed set of `AppProject`s, by name.
#[derive(Debug, Clone, Default)]
pub struct MemoryProjects(pub BTreeMap<String, Arc<AppProject>>);

impl MemoryProjects {
    /// Just the stock `default` project (Argo CD's, which permits everything).
    #[must_use]
    pub fn default_only() -> Self {
        Self::default().with(AppProject::builtin_default())
    }

    /// These projects, plus `default` when they have none of that name.
    #[must_use]
    pub fn with_default(projects: impl IntoIterator<Item = AppProject>) -> Self {
        let mut out = Self::default_only();
        for project in projects {
            out = out.with(project);
        }
        out
    }

    /// Adds (or replaces) `project`.
    #[must_use]
    pub fn with(mut self, project: AppProject) -> Self {
        let name = project.metadata.name.clone().unwrap_or_default();
        self.0.insert(name, Arc::new(project));
        self
    }
}

impl ProjectSource for MemoryProjects {
    fn project(&self, name: &str) -> Option<Arc<AppProject>> {
        self.0.get(name).cloned()
    }
}

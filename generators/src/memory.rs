//! In-memory implementations of the [`source`](crate::source) traits.
//!
//! Used wherever the inputs are already at hand: `argosy generate` and `argosy test` over
//! files, the conformance suite and unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

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

/// A fixed set of `AppProject` names.
#[derive(Debug, Clone, Default)]
pub struct MemoryProjects(pub BTreeSet<String>);

impl MemoryProjects {
    /// Just the stock `default` project.
    #[must_use]
    pub fn default_only() -> Self {
        Self(BTreeSet::from(["default".to_owned()]))
    }
}

impl ProjectSource for MemoryProjects {
    fn project_exists(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

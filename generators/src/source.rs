//! The IO boundary of the generators: where clusters, repositories and projects come from.
//!
//! Generators are pure over these traits. The controller implements them over
//! kube-runtime stores and the gix repo cache; `argosy generate`/`argosy test` implement
//! them over files and local repositories; unit tests over plain vectors.

use std::collections::BTreeMap;
use std::sync::Arc;

use argosy_crds::{AppProject, Cluster, ClusterSecretError};

/// One cluster Secret as the generators see it.
// Not boxed: entries are listed once per generation, and other crates build them.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ClusterEntry {
    /// A Secret that parsed into a cluster.
    Valid(Cluster),
    /// A Secret that did not parse. Its labels are kept so that a generator whose
    /// selector matches it fails loudly instead of silently dropping the cluster (and
    /// with it the cluster's Applications).
    Invalid {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The Secret's labels.
        labels: BTreeMap<String, String>,
        /// Why it did not parse.
        error: ClusterSecretError,
    },
}

impl ClusterEntry {
    /// Parses a cluster Secret; one that does not parse is kept as [`ClusterEntry::Invalid`].
    #[must_use]
    pub fn from_secret(secret: &k8s_openapi::api::core::v1::Secret) -> Self {
        match Cluster::from_secret(secret) {
            Ok(cluster) => ClusterEntry::Valid(cluster),
            Err(error) => ClusterEntry::Invalid {
                secret: argosy_crds::cluster::secret_id(secret),
                labels: secret.metadata.labels.clone().unwrap_or_default(),
                error,
            },
        }
    }
}

/// Where cluster Secrets come from (the controller namespace's cluster Secrets).
pub trait ClusterSource: Send + Sync {
    /// Every cluster Secret, parsed or not.
    fn clusters(&self) -> Vec<ClusterEntry>;
}

/// Where Git trees come from.
pub trait RepoSource: Send + Sync {
    /// The tree of `revision` (branch, tag, `HEAD` or commit) of `repo_url`.
    fn snapshot(&self, repo_url: &str, revision: &str) -> Result<Arc<dyn RepoSnapshot>, RepoError>;
}

/// One resolved revision of a repository, read straight from the object database.
pub trait RepoSnapshot: Send + Sync {
    /// The commit id the revision resolved to.
    fn commit(&self) -> &str;
    /// Every tracked file (blob or symlink), repo-relative with `/`, sorted.
    fn files(&self) -> &[String];
    /// The content of a tracked file (for a symlink: its target, as Git stores it).
    fn read(&self, path: &str) -> Result<Vec<u8>, RepoError>;
    /// Whether a tracked file is a symlink. Renderers must know, to keep a link from
    /// leading them out of the repository; snapshots without symlinks keep the default.
    fn is_symlink(&self, _path: &str) -> bool {
        false
    }
}

/// The `AppProject`s (for the git generator's project check and the validator's tenant
/// checks).
pub trait ProjectSource: Send + Sync {
    /// The `AppProject` `name`, if it exists.
    fn project(&self, name: &str) -> Option<Arc<AppProject>>;

    /// Whether the `AppProject` `name` exists.
    fn project_exists(&self, name: &str) -> bool {
        self.project(name).is_some()
    }

    /// The control plane's namespace, where the projects live (Applications there may use
    /// any project); `None` when unknown (offline generation), and then the projects'
    /// `sourceNamespaces` are not checked.
    fn control_plane_namespace(&self) -> Option<&str> {
        None
    }
}

/// A repository could not be read. `message` never contains credentials.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("repository {repo}: {message}")]
pub struct RepoError {
    /// The repository: its URL, or the commit of the snapshot being read.
    pub repo: String,
    /// What went wrong.
    pub message: String,
}

/// The three sources together, as the pipeline takes them.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The cluster Secrets.
    pub clusters: &'a dyn ClusterSource,
    /// The Git repositories.
    pub repos: &'a dyn RepoSource,
    /// The `AppProject`s.
    pub projects: &'a dyn ProjectSource,
}

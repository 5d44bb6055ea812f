//! The cluster and project registries: in-memory views over reflector stores.
//!
//! The watches keep the stores current; generators read them through the
//! `ClusterSource`/`ProjectSource` traits and never talk to the API server.

use argosy_crds::cluster::is_cluster_secret;
use argosy_crds::{AppProject, Cluster};
use argosy_generators::source::{ClusterEntry, ClusterSource, ProjectSource};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::Store;

/// Cluster Secrets of the controller namespace, parsed on read.
#[derive(Clone)]
pub struct ClusterRegistry {
    secrets: Store<Secret>,
    namespace: String,
}

impl ClusterRegistry {
    pub fn new(secrets: Store<Secret>, namespace: impl Into<String>) -> Self {
        Self {
            secrets,
            namespace: namespace.into(),
        }
    }

    /// Waits for the initial list of Secrets; false if the watch is gone.
    pub async fn ready(&self) -> bool {
        self.secrets.wait_until_ready().await.is_ok()
    }

    /// Every registered cluster that parses (for destination checks).
    pub fn valid_clusters(&self) -> Vec<Cluster> {
        self.clusters()
            .into_iter()
            .filter_map(|e| match e {
                ClusterEntry::Valid(c) => Some(c),
                ClusterEntry::Invalid { .. } => None,
            })
            .collect()
    }
}

impl ClusterSource for ClusterRegistry {
    fn clusters(&self) -> Vec<ClusterEntry> {
        self.secrets
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(self.namespace.as_str()))
            .filter(|s| is_cluster_secret(s))
            .map(|s| ClusterEntry::from_secret(s))
            .collect()
    }
}

/// AppProjects of the controller namespace.
#[derive(Clone)]
pub struct ProjectRegistry {
    projects: Store<AppProject>,
    namespace: String,
}

impl ProjectRegistry {
    pub fn new(projects: Store<AppProject>, namespace: impl Into<String>) -> Self {
        Self {
            projects,
            namespace: namespace.into(),
        }
    }
}

impl ProjectRegistry {
    /// Waits for the initial list of AppProjects; false if the watch is gone.
    pub async fn ready(&self) -> bool {
        self.projects.wait_until_ready().await.is_ok()
    }
}

impl ProjectSource for ProjectRegistry {
    fn project_exists(&self, name: &str) -> bool {
        self.projects.state().iter().any(|p| {
            p.metadata.namespace.as_deref() == Some(self.namespace.as_str())
                && p.metadata.name.as_deref() == Some(name)
        })
    }
}

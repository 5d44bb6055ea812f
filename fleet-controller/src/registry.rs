//! The cluster and project registries: in-memory views over reflector stores.
//!
//! The watches keep the stores current; generators read them through the
//! `ClusterSource`/`ProjectSource` traits and never talk to the API server.
//! [`StoreReady`] is the wait for a store's initial list that many tasks may share.

use std::hash::Hash;

use argosy_crds::cluster::is_cluster_secret;
use argosy_crds::{AppProject, Cluster};
use argosy_generators::source::{ClusterEntry, ClusterSource, ProjectSource};
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{Lookup, Store};

/// The initial list of a reflector store, awaitable by any number of tasks at once.
///
/// `Store::wait_until_ready` (kube-runtime 5) parks a single waker: of several tasks
/// waiting at the same time, only the last one to poll is woken when the list completes,
/// and the others sleep until something else polls them (a timeout, or never). The
/// controllers' workers all wait at startup, so they share one wait here instead.
#[derive(Clone)]
pub struct StoreReady(Shared<BoxFuture<'static, bool>>);

impl StoreReady {
    pub fn of<K>(store: &Store<K>) -> Self
    where
        K: Lookup + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + Hash + Clone + Send + Sync,
    {
        let store = store.clone();
        Self(
            async move { store.wait_until_ready().await.is_ok() }
                .boxed()
                .shared(),
        )
    }

    /// Waits for the initial list; false if the store's writer is gone.
    pub async fn wait(&self) -> bool {
        self.0.clone().await
    }
}

/// Cluster Secrets of the controller namespace, parsed on read.
#[derive(Clone)]
pub struct ClusterRegistry {
    secrets: Store<Secret>,
    ready: StoreReady,
    namespace: String,
}

impl ClusterRegistry {
    pub fn new(secrets: Store<Secret>, namespace: impl Into<String>) -> Self {
        Self {
            ready: StoreReady::of(&secrets),
            secrets,
            namespace: namespace.into(),
        }
    }

    /// Waits for the initial list of Secrets; false if the watch is gone.
    pub async fn ready(&self) -> bool {
        self.ready.wait().await
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
    ready: StoreReady,
    namespace: String,
}

impl ProjectRegistry {
    pub fn new(projects: Store<AppProject>, namespace: impl Into<String>) -> Self {
        Self {
            ready: StoreReady::of(&projects),
            projects,
            namespace: namespace.into(),
        }
    }
}

impl ProjectRegistry {
    /// Waits for the initial list of AppProjects; false if the watch is gone.
    pub async fn ready(&self) -> bool {
        self.ready.wait().await
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kube::runtime::{reflector, watcher};

    use super::*;

    /// Every one of several concurrent waiters wakes when the initial list completes
    /// (with `Store::wait_until_ready` alone, all but the last one stay asleep).
    #[tokio::test]
    async fn concurrent_waiters_all_wake_on_the_initial_list() {
        let (store, mut writer) = reflector::store::<Secret>();
        let registry = ClusterRegistry::new(store, "argocd");
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let registry = registry.clone();
                tokio::spawn(async move { registry.ready().await })
            })
            .collect();
        // Let every waiter park before the list completes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        for waiter in waiters {
            let ready = tokio::time::timeout(Duration::from_secs(2), waiter)
                .await
                .expect("a waiter was not woken")
                .expect("waiter task");
            assert!(ready);
        }
    }
}

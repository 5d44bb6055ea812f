//! The cluster and project registries: in-memory views over reflector stores.
//!
//! The watches keep the stores current; generators read them through the
//! `ClusterSource`/`ProjectSource` traits and never talk to the API server.
//! [`StoreReady`] is the wait for a store's initial list that many tasks may share.

use argosy_crds::cluster::is_cluster_secret;
use argosy_crds::{AppProject, Cluster};
use argosy_generators::source::{ClusterEntry, ClusterSource, ProjectSource};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::Store;

pub use argosy_sync_engine::ready::{ReadySignal, StoreReady};

/// Cluster Secrets of the controller namespace, parsed on read.
#[derive(Clone)]
pub struct ClusterRegistry {
    secrets: Store<Secret>,
    ready: StoreReady,
    namespace: String,
}

impl ClusterRegistry {
    pub fn new(secrets: Store<Secret>, ready: StoreReady, namespace: impl Into<String>) -> Self {
        Self {
            ready,
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
    pub fn new(
        projects: Store<AppProject>,
        ready: StoreReady,
        namespace: impl Into<String>,
    ) -> Self {
        Self {
            ready,
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
    use kube::runtime::watcher;
    use std::time::Duration;

    use futures::StreamExt as _;
    use kube::runtime::reflector;

    use super::*;

    fn cluster_secret(name: &str) -> Secret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "argocd",
                         "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
            "stringData": {"name": name, "server": format!("https://{name}.example")},
        }))
        .expect("a Secret")
    }

    /// Every waiter wakes when the initial list completes: several registries over the
    /// same store (the ApplicationSet controller and the sync engine each have one) and,
    /// beside them, a `Store::wait_until_ready` as kube's controllers do on their own store.
    #[tokio::test]
    async fn every_waiter_wakes_on_the_initial_list() {
        let (store, writer) = reflector::store::<Secret>();
        let (signal, ready) = StoreReady::new();
        let (events, rx) = futures::channel::mpsc::unbounded();
        let reflector = tokio::spawn(
            reflector::reflector(writer, rx)
                .inspect(move |event: &Result<_, watcher::Error>| signal.observe(event))
                .for_each(|_| async {}),
        );
        let registries = [
            ClusterRegistry::new(store.clone(), ready.clone(), "argocd"),
            ClusterRegistry::new(store.clone(), ready, "argocd"),
        ];
        let mut waiters: Vec<_> = registries
            .iter()
            .flat_map(|r| [r.clone(), r.clone()])
            .map(|registry| tokio::spawn(async move { registry.ready().await }))
            .collect();
        let kube_store = store.clone();
        waiters.push(tokio::spawn(async move {
            kube_store.wait_until_ready().await.is_ok()
        }));
        // Let every waiter park before the list completes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            waiters.iter().all(|w| !w.is_finished()),
            "nothing is listed yet"
        );
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(cluster_secret("edge-1")),
            watcher::Event::InitDone,
        ] {
            events.unbounded_send(Ok(event)).expect("reflector running");
        }
        for waiter in waiters {
            let ready = tokio::time::timeout(Duration::from_secs(2), waiter)
                .await
                .expect("a waiter was not woken")
                .expect("waiter task");
            assert!(ready);
        }
        assert_eq!(
            registries[0].valid_clusters().len(),
            1,
            "the list is in the store"
        );
        drop(events);
        reflector.await.expect("reflector task");
    }
}

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
use kube::runtime::watcher;

/// Whether a reflector's store has had its initial list; any number of tasks may wait.
///
/// Set from the reflector's own event stream ([`ReadySignal::observe`]), never from
/// `Store::wait_until_ready`: that (kube-runtime 5) parks a single waker, so of several
/// tasks waiting at the same time only the last one to poll is woken when the list
/// completes, and the others sleep until something else polls them (a timeout, or never).
/// kube's own controllers wait on their stores that way, so any second wait of ours on the
/// same store either steals their wake-up or loses its own. (It did: an ApplicationSet
/// controller beside the sync engine sometimes waited its full 60 s for a store that had
/// long been listed.)
#[derive(Clone, Debug)]
pub struct StoreReady(tokio::sync::watch::Receiver<bool>);

/// The setting half of a [`StoreReady`], owned by the task that drives the reflector.
#[derive(Debug)]
pub struct ReadySignal(tokio::sync::watch::Sender<bool>);

impl StoreReady {
    /// A wait and the signal that ends it.
    pub fn new() -> (ReadySignal, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (ReadySignal(tx), Self(rx))
    }

    /// Ready from the start: for a store filled before anyone reads it (the CLI, tests).
    pub fn already() -> Self {
        let (signal, ready) = Self::new();
        signal.0.send_replace(true);
        ready
    }

    /// Waits for the initial list; false if the reflector stopped before it completed.
    pub async fn wait(&self) -> bool {
        self.0.clone().wait_for(|ready| *ready).await.is_ok()
    }
}

impl ReadySignal {
    /// Looks at an event the reflector yielded (reflectors yield an event after applying
    /// it to their store) and signals ready at the end of the first list.
    pub fn observe<K, E>(&self, event: &Result<watcher::Event<K>, E>) {
        if matches!(event, Ok(watcher::Event::InitDone)) {
            self.0
                .send_if_modified(|ready| !std::mem::replace(ready, true));
        }
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

    /// A reflector that stops before its first list completes ends the wait with `false`.
    #[tokio::test]
    async fn a_reflector_gone_before_its_list_is_not_ready() {
        let (signal, ready) = StoreReady::new();
        signal.observe::<Secret, ()>(&Ok(watcher::Event::Init));
        drop(signal);
        assert!(!ready.wait().await);
        assert!(StoreReady::already().wait().await);
    }
}

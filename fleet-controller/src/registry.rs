//! The cluster and project registries: in-memory views over reflector stores.
//!
//! The watches keep the stores current; generators read them through the
//! `ClusterSource`/`ProjectSource` traits and never talk to the API server.
//! [`StoreReady`] is the wait for a store's initial list that many tasks may share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use argosy_crds::cluster::is_cluster_secret;
use argosy_crds::{AppProject, Cluster};
use argosy_generators::source::{ClusterEntry, ClusterSource, ProjectSource};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{ObjectRef, Store};

pub use argosy_sync_engine::ready::{ReadySignal, StoreReady};

/// Cluster Secrets of the controller namespace, each parsed once per version.
///
/// Every Application reconcile and every dashboard stream tick lists the clusters, so
/// decoding (base64, the `config` JSON, TLS data) on each read cost far more than the
/// reads themselves; the parse of a Secret is kept until the watch delivers a new version.
#[derive(Clone)]
pub struct ClusterRegistry {
    secrets: Store<Secret>,
    ready: StoreReady,
    namespace: String,
    /// Shared by the clones, like the store they read.
    parsed: Arc<Mutex<ParsedSecrets>>,
}

/// The parse of each cluster Secret of the store, by Secret name.
///
/// Filled lazily on read rather than from the watch's event stream, so the reflector's
/// wiring stays as it is; an entry is used only while the Secret in the store still has
/// the uid and resourceVersion it was parsed from, and entries of Secrets no longer in the
/// store are dropped on the read that no longer sees them.
#[derive(Default)]
struct ParsedSecrets {
    entries: HashMap<String, Parsed>,
    /// Number of the current read, to tell which entries it saw.
    pass: u64,
    /// The valid clusters as of the last [`ClusterRegistry::valid_clusters`], shared until
    /// a Secret is added, changed or removed (every reconcile asks; at fleet size copying
    /// a thousand clusters each time was most of the cost).
    valid: Option<Arc<[Cluster]>>,
    /// Secrets decoded so far: the tests' evidence that the cache is used.
    #[cfg(test)]
    decodes: u64,
}

struct Parsed {
    /// The Secret's uid and resourceVersion when it was parsed.
    version: (Option<String>, String),
    entry: ClusterEntry,
    /// The last read that saw the Secret.
    seen: u64,
}

impl ParsedSecrets {
    /// The parse of `secret`, from the cache when its version is the one parsed.
    fn entry(&mut self, secret: &Secret) -> ClusterEntry {
        match self.touch(secret) {
            Some(uncached) => uncached,
            None => self
                .entries
                .get(secret.metadata.name.as_deref().unwrap_or_default())
                .map(|p| p.entry.clone())
                .unwrap_or_else(|| self.decode(secret)),
        }
    }

    /// Caches the parse of `secret` (decoding it if new or changed) and marks it seen by
    /// this pass. Returns the parse only when it cannot be cached: a Secret without
    /// resourceVersion (objects not from an API server), whose change cannot be told from
    /// no change, is parsed on every read, as before.
    fn touch(&mut self, secret: &Secret) -> Option<ClusterEntry> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let Some(resource_version) = secret.metadata.resource_version.clone() else {
            self.valid = None;
            return Some(self.decode(secret));
        };
        let version = (secret.metadata.uid.clone(), resource_version);
        let pass = self.pass;
        if let Some(parsed) = self.entries.get_mut(&name)
            && parsed.version == version
        {
            parsed.seen = pass;
            return None;
        }
        let entry = self.decode(secret);
        self.entries.insert(
            name,
            Parsed {
                version,
                entry,
                seen: pass,
            },
        );
        self.valid = None;
        None
    }

    /// Drops the entries of Secrets the current pass did not see.
    fn drop_unseen(&mut self) {
        let (pass, before) = (self.pass, self.entries.len());
        self.entries.retain(|_, p| p.seen == pass);
        if self.entries.len() != before {
            self.valid = None;
        }
    }

    fn decode(&mut self, secret: &Secret) -> ClusterEntry {
        #[cfg(test)]
        {
            self.decodes += 1;
        }
        ClusterEntry::from_secret(secret)
    }
}

impl ClusterRegistry {
    pub fn new(secrets: Store<Secret>, ready: StoreReady, namespace: impl Into<String>) -> Self {
        Self {
            ready,
            secrets,
            namespace: namespace.into(),
            parsed: Arc::default(),
        }
    }

    /// Waits for the initial list of Secrets; false if the watch is gone.
    pub async fn ready(&self) -> bool {
        self.ready.wait().await
    }

    /// Every registered cluster that parses (for destination checks), by Secret name;
    /// one shared copy until a cluster Secret changes.
    pub fn valid_clusters(&self) -> Arc<[Cluster]> {
        let secrets = self.secrets.state();
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        parsed.pass += 1;
        let mut uncached = Vec::new();
        for secret in secrets
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(self.namespace.as_str()))
            .filter(|s| is_cluster_secret(s))
        {
            if let Some(ClusterEntry::Valid(cluster)) = parsed.touch(secret) {
                uncached.push((secret.metadata.name.clone().unwrap_or_default(), cluster));
            }
        }
        parsed.drop_unseen();
        if let Some(valid) = &parsed.valid {
            return valid.clone();
        }
        let mut named: Vec<(String, Cluster)> = parsed
            .entries
            .iter()
            .filter_map(|(name, p)| match &p.entry {
                ClusterEntry::Valid(cluster) => Some((name.clone(), cluster.clone())),
                ClusterEntry::Invalid { .. } => None,
            })
            .collect();
        let cacheable = uncached.is_empty();
        named.extend(uncached);
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let valid: Arc<[Cluster]> = named.into_iter().map(|(_, c)| c).collect();
        if cacheable {
            parsed.valid = Some(valid.clone());
        }
        valid
    }

    /// How many Secrets this registry (and its clones) decoded so far.
    #[cfg(test)]
    fn decodes(&self) -> u64 {
        self.parsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .decodes
    }
}

impl ClusterSource for ClusterRegistry {
    fn clusters(&self) -> Vec<ClusterEntry> {
        let secrets = self.secrets.state();
        // A panic while the cache was held leaves it consistent (entries are inserted
        // whole), so a poisoned lock is still usable.
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        parsed.pass += 1;
        let entries = secrets
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(self.namespace.as_str()))
            .filter(|s| is_cluster_secret(s))
            .map(|s| parsed.entry(s))
            .collect();
        parsed.drop_unseen();
        entries
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
    fn project(&self, name: &str) -> Option<Arc<AppProject>> {
        self.projects
            .get(&ObjectRef::new(name).within(&self.namespace))
    }

    fn control_plane_namespace(&self) -> Option<&str> {
        Some(&self.namespace)
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

    /// A cluster Secret as the API server returns it, with a uid and a resourceVersion;
    /// `config` is the raw `config` value (`None`: no config).
    fn stored_secret(name: &str, uid: &str, version: &str, config: Option<&str>) -> Secret {
        let mut secret = cluster_secret(name);
        secret.metadata.uid = Some(uid.to_owned());
        secret.metadata.resource_version = Some(version.to_owned());
        if let (Some(config), Some(data)) = (config, secret.string_data.as_mut()) {
            data.insert("config".to_owned(), config.to_owned());
        }
        secret
    }

    /// What `valid_clusters` returned before the cache: every Secret decoded afresh.
    fn decoded_afresh(store: &Store<Secret>) -> Vec<Cluster> {
        let mut clusters: Vec<Cluster> = store
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some("argocd"))
            .filter(|s| is_cluster_secret(s))
            .filter_map(|s| Cluster::from_secret(s).ok())
            .collect();
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        clusters
    }

    fn sorted(mut clusters: Vec<Cluster>) -> Vec<Cluster> {
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        clusters
    }

    #[test]
    fn each_secret_version_is_decoded_once() {
        let (store, mut writer) = reflector::store::<Secret>();
        let mut apply = |secret| writer.apply_watcher_event(&watcher::Event::Apply(secret));
        apply(stored_secret("edge-1", "u1", "10", None));
        apply(stored_secret(
            "edge-2",
            "u2",
            "11",
            Some(r#"{"bearerToken": "t"}"#),
        ));
        // Invalid: listed by `clusters()`, left out of `valid_clusters()`, cached too.
        apply(stored_secret("broken", "u3", "12", Some("{not json")));
        let registry = ClusterRegistry::new(store.clone(), StoreReady::already(), "argocd");

        let first = sorted(registry.valid_clusters().to_vec());
        assert_eq!(first.len(), 2);
        assert_eq!(first, decoded_afresh(&store));
        assert_eq!(
            registry.decodes(),
            3,
            "every Secret decoded on the first read"
        );
        // Again, and through a clone (the controllers share one registry by cloning it).
        assert_eq!(sorted(registry.valid_clusters().to_vec()), first);
        assert_eq!(sorted(registry.clone().valid_clusters().to_vec()), first);
        assert_eq!(registry.clusters().len(), 3);
        assert_eq!(
            registry.decodes(),
            3,
            "unchanged Secrets are not decoded again"
        );

        // A new resourceVersion is decoded again, and only that Secret.
        let mut changed = stored_secret("edge-1", "u1", "20", None);
        if let Some(data) = changed.string_data.as_mut() {
            data.insert("server".to_owned(), "https://moved.example".to_owned());
        }
        apply(changed);
        let second = sorted(registry.valid_clusters().to_vec());
        assert_eq!(registry.decodes(), 4);
        assert_eq!(second, decoded_afresh(&store));
        assert_eq!(second[0].server, "https://moved.example");
        // Deleted and recreated under the same name and version number: a new uid.
        apply(stored_secret("edge-2", "u9", "11", None));
        assert_eq!(
            sorted(registry.valid_clusters().to_vec()),
            decoded_afresh(&store)
        );
        assert_eq!(registry.decodes(), 5);

        // A deleted Secret leaves the cache on the next read.
        writer.apply_watcher_event(&watcher::Event::Delete(stored_secret(
            "broken", "u3", "12", None,
        )));
        assert_eq!(registry.clusters().len(), 2);
        assert_eq!(registry.decodes(), 5);
        let cached = registry
            .parsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len();
        assert_eq!(cached, 2);
    }

    /// Every reconcile asks for the cluster list: one shared copy serves them all until a
    /// cluster Secret is added, changed or removed, whichever read saw the change first.
    #[test]
    fn the_valid_clusters_are_one_shared_copy_until_a_secret_changes() {
        let (store, mut writer) = reflector::store::<Secret>();
        let mut apply = |secret| writer.apply_watcher_event(&watcher::Event::Apply(secret));
        apply(stored_secret("edge-1", "u1", "10", None));
        let registry = ClusterRegistry::new(store.clone(), StoreReady::already(), "argocd");
        let first = registry.valid_clusters();
        assert!(Arc::ptr_eq(&first, &registry.valid_clusters()));
        assert!(Arc::ptr_eq(&first, &registry.clone().valid_clusters()));
        apply(stored_secret("edge-2", "u2", "11", None));
        // The generators' read sees the new Secret first; the list is not stale after it.
        assert_eq!(registry.clusters().len(), 2);
        let second = registry.valid_clusters();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(second.len(), 2);
        apply(stored_secret("edge-2", "u2", "12", None));
        let third = registry.valid_clusters();
        assert!(!Arc::ptr_eq(&second, &third), "a new version is a change");
        writer.apply_watcher_event(&watcher::Event::Delete(stored_secret(
            "edge-1", "u1", "10", None,
        )));
        let fourth = registry.valid_clusters();
        assert_eq!(fourth.len(), 1, "a deleted Secret is gone from the list");
        assert!(Arc::ptr_eq(&fourth, &registry.valid_clusters()));
    }

    /// Secrets without a resourceVersion (not from an API server) cannot be told apart
    /// from their next version: they are decoded on every read, as before the cache.
    #[test]
    fn secrets_without_a_version_are_decoded_on_every_read() {
        let (store, mut writer) = reflector::store::<Secret>();
        writer.apply_watcher_event(&watcher::Event::Apply(cluster_secret("edge-1")));
        let registry = ClusterRegistry::new(store, StoreReady::already(), "argocd");
        assert_eq!(registry.valid_clusters().len(), 1);
        assert_eq!(registry.valid_clusters().len(), 1);
        assert_eq!(registry.decodes(), 2);
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

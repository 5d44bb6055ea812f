//! The live state of the destination clusters: watches of the kinds and namespaces the
//! Applications deploy to, kept in memory, plus an index of which objects each app tracks.
//!
//! Every change to a tracked object re-triggers its app, so drift is seen in
//! milliseconds instead of at the next periodic resync, and comparisons read memory, not
//! the API server: a full no-change resync costs zero requests. A watch that fails (the
//! cluster went away) marks the cluster unreachable and re-triggers its apps, which then
//! report Unknown and hold every write; the watch's own backoff re-lists when it is back.
//!
//! A cluster that hangs (connections accepted, nothing answered) fails no watch at once:
//! each watch has a deadline ([`WatchClient::timeout_seconds`]), and one silent past it is
//! re-made, which then fails; sooner, the periodic probe ([`crate::probe`]) reports it here
//! ([`LiveCache::probed`]), which marks it unreachable the same way until a probe answers.
//!
//! What is watched follows what the apps need ([`LiveCache::need`]): each app declares the
//! kinds it deploys or deployed and the namespaces it uses (its rendered objects', its
//! destination's and those of the resources its status still lists, so objects left in a
//! namespace it no longer renders to are seen and pruned). A namespaced kind is watched per
//! namespace in use on the cluster, and over the whole cluster only when more than
//! `max_namespaces` namespaces are in use there (or an app uses the empty namespace): one
//! watch of every `ConfigMap` of a cluster that runs 50,000 of them for other teams would
//! cost more memory than all the apps' own objects. A cluster Secret that lists
//! `namespaces` is never watched beyond them (its credentials may be good for nothing
//! else). Watches no app needs any more are dropped, but only once whatever replaces them
//! has listed, so no read ever sees an empty store that was not empty.
//!
//! Cached objects are trimmed to what diff and health read: no
//! `kubectl.kubernetes.io/last-applied-configuration`, no `managedFields` but Argosy's own
//! apply entry and those of the managers an app's `ignoreDifferences` names
//! ([`crate::ssa::trim_for_cache_keeping`]), and each is kept as its JSON text, parsed when
//! a comparison reads it: a tree of `serde_json` values and Kubernetes metadata allocates
//! a B-tree node per map (labels, annotations, data) and a `String` per field, several
//! times the text (`BENCHMARKS.md`, fleet section, has the measured difference). [`LiveCache::footprint`] says what each cluster's cache holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, TypeMeta};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use crate::clients::WatchClient;
use crate::echo::{Echoes, version_of};
use crate::ready::StoreReady;
use crate::resource::{ObjKey, TRACKING_ANNOTATION, tracking_app};

/// Called with an app instance name (see [`crate::resource::app_instance`]) whenever
/// something it tracks changed or its cluster's reachability changed.
pub type Trigger = Arc<dyn Fn(&str) + Send + Sync>;

/// Above this many namespaces in use on one cluster, a namespaced kind is watched over
/// the whole cluster instead of per namespace (the `--watch-namespaces-max` default).
pub const DEFAULT_MAX_NAMESPACES: usize = 20;

/// Why live state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The cluster could not be reached.
    #[error("{}", crate::status::Unreachable { server: server.clone(), reason: reason.clone() })]
    Unreachable {
        /// API server URL of the cluster.
        server: String,
        /// Why it is unreachable.
        reason: String,
    },
    /// The first list of a kind did not finish in time.
    #[error("listing {kind} on cluster {server} did not finish within {seconds} s")]
    ListTimeout {
        /// API server URL of the cluster.
        server: String,
        /// The kind being listed.
        kind: String,
        /// The time limit, in seconds.
        seconds: u64,
    },
}

impl LiveError {
    /// A static category for metrics labels.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            LiveError::Unreachable { .. } => "cluster_unreachable",
            LiveError::ListTimeout { .. } => "list_timeout",
        }
    }
}

/// One watch on one cluster: a kind (`group/version/kind`) in one namespace, or over the
/// whole cluster (empty namespace; always so for a cluster-scoped kind).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchId {
    /// `group/version/kind`.
    pub kind: String,
    /// The namespace watched; empty for the whole cluster.
    pub namespace: String,
}

impl WatchId {
    fn new(kind: &str, namespace: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
        }
    }

    /// Whether this watch sees objects `other` would see (one of them is cluster-wide).
    fn overlaps(&self, other: &WatchId) -> bool {
        self.kind == other.kind && (self.namespace.is_empty() || other.namespace.is_empty())
    }
}

/// What a cluster Secret lets Argosy watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Visibility {
    /// Anything (the Secret lists no `namespaces`).
    #[default]
    All,
    /// Only these namespaces, and cluster-scoped kinds only with `clusterResources`.
    Namespaces {
        /// The Secret's `namespaces`.
        allowed: BTreeSet<String>,
        /// The Secret's `clusterResources`.
        cluster_resources: bool,
    },
}

/// What one app needs watched on its cluster ([`LiveCache::need`]).
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// The kinds it deploys or deployed, by `group/version/kind`: resource and whether it
    /// is namespaced.
    kinds: BTreeMap<String, (ApiResource, bool)>,
    /// The namespaces its objects are or were in, and its destination namespace.
    namespaces: BTreeSet<String>,
    /// Managers whose `managedFields` entries its `ignoreDifferences` reads.
    managers: BTreeSet<String>,
}

impl Needs {
    /// A kind the app deploys or deployed.
    pub fn kind(&mut self, resource: &ApiResource, namespaced: bool) {
        self.kinds
            .insert(gvk_id(resource), (resource.clone(), namespaced));
    }

    /// A namespace the app uses (empty: every namespace, a cluster-wide watch).
    pub fn namespace(&mut self, namespace: &str) {
        self.namespaces.insert(namespace.to_owned());
    }

    /// A manager whose `managedFields` entry the app's comparison reads.
    pub fn manager(&mut self, manager: &str) {
        self.managers.insert(manager.to_owned());
    }
}

/// Watches by id, with the resource each one watches and whether it is namespaced.
type Wanted = BTreeMap<WatchId, (ApiResource, bool)>;

/// The watches the apps of one cluster need, with the resource each one watches: a pure
/// function of their [`Needs`], the cluster Secret's [`Visibility`] and the namespace
/// limit above which a namespaced kind is watched cluster-wide.
fn wanted_watches<'a>(
    apps: impl IntoIterator<Item = &'a Needs>,
    visibility: &Visibility,
    max_namespaces: usize,
) -> Wanted {
    let mut kinds: BTreeMap<&str, &(ApiResource, bool)> = BTreeMap::new();
    let mut namespaces: BTreeSet<&str> = BTreeSet::new();
    for needs in apps {
        kinds.extend(needs.kinds.iter().map(|(id, k)| (id.as_str(), k)));
        namespaces.extend(needs.namespaces.iter().map(String::as_str));
    }
    let mut out = BTreeMap::new();
    for (kind, (resource, namespaced)) in kinds {
        let mut add = |namespace: &str| {
            out.insert(
                WatchId::new(kind, namespace),
                (resource.clone(), *namespaced),
            );
        };
        match (visibility, namespaced) {
            (Visibility::All, false) => add(""),
            (
                Visibility::Namespaces {
                    cluster_resources, ..
                },
                false,
            ) => {
                if *cluster_resources {
                    add("");
                }
            }
            (Visibility::All, true) => {
                if namespaces.len() > max_namespaces || namespaces.contains("") {
                    add("");
                } else {
                    for ns in &namespaces {
                        add(ns);
                    }
                }
            }
            (Visibility::Namespaces { allowed, .. }, true) => {
                // Never beyond the Secret's namespaces; "every namespace" means all of them.
                if namespaces.contains("") {
                    for ns in allowed {
                        add(ns);
                    }
                } else {
                    allowed
                        .iter()
                        .filter(|ns| namespaces.contains(ns.as_str()))
                        .for_each(|ns| add(ns));
                }
            }
        }
    }
    out
}

/// The current watches to drop (`current`: each one's id and whether it has listed):
/// those not wanted, except one whose wanted replacement (a watch of the same kind that
/// sees the same objects) has not listed yet.
fn retired(current: &BTreeMap<WatchId, bool>, wanted: &Wanted) -> Vec<WatchId> {
    current
        .keys()
        .filter(|id| !wanted.contains_key(*id))
        .filter(|id| {
            !wanted
                .keys()
                .any(|w| w.overlaps(id) && !current.get(w).copied().unwrap_or(false))
        })
        .cloned()
        .collect()
}

/// The wanted watches that see the objects `needs` names (its own kind and namespace
/// watch, else the kind's cluster-wide one).
fn covering(needs: &Needs, wanted: &Wanted) -> BTreeSet<WatchId> {
    let mut out = BTreeSet::new();
    for (kind, (_, namespaced)) in &needs.kinds {
        let namespaces: Vec<&str> = if *namespaced {
            needs.namespaces.iter().map(String::as_str).collect()
        } else {
            vec![""]
        };
        for namespace in namespaces {
            let own = WatchId::new(kind, namespace);
            let wide = WatchId::new(kind, "");
            if wanted.contains_key(&own) {
                out.insert(own);
            } else if wanted.contains_key(&wide) {
                out.insert(wide);
            }
        }
    }
    out
}

struct Watch {
    resource: ApiResource,
    /// Whether the kind is namespaced (a cluster-wide watch of it sees every namespace).
    namespaced: bool,
    /// The first list, awaited by every reconcile that needs this kind meanwhile.
    ready: StoreReady,
    /// The other managers whose `managedFields` entries its objects keep.
    managers: BTreeSet<String>,
    state: Arc<Mutex<WatchState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct WatchState {
    /// The error of the last failed list/watch, cleared by the next successful one.
    failing: Option<String>,
    /// Tracked objects by app instance, from the objects' tracking annotations.
    by_app: HashMap<String, BTreeSet<ObjKey>>,
    /// The app instance each tracked object belongs to (to move it on relabel).
    owner: HashMap<ObjKey, String>,
    /// Objects seen during a re-list, swapped in at its end.
    relist: Option<HashMap<ObjKey, String>>,
    /// The sync engine's applies under way or awaiting their watch event, whose echo
    /// re-triggers nobody.
    echoes: Echoes<ObjKey>,
    /// The watched objects by namespace and name.
    objects: HashMap<(String, String), Cached>,
    /// Objects delivered by a re-list so far, swapped in at its end.
    relist_objects: Option<HashMap<(String, String), Cached>>,
}

/// One watched object as the cache keeps it.
struct Cached {
    /// The trimmed object as JSON text.
    json: Box<str>,
    /// Not owned by another object and tracked by no app: a candidate orphan.
    untracked_top_level: bool,
}

impl Cached {
    fn of(object: &DynamicObject) -> Option<((String, String), Cached)> {
        let (key, app) = key_and_app(object)?;
        let json = serde_json::to_string(object).ok()?.into_boxed_str();
        let top_level = object
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(Vec::is_empty);
        let cached = Cached {
            json,
            untracked_top_level: top_level && app.is_none(),
        };
        Some(((key.namespace, key.name), cached))
    }

    fn value(&self) -> Option<Value> {
        serde_json::from_str(&self.json).ok()
    }
}

impl WatchState {
    fn footprint(&self) -> Footprint {
        Footprint {
            objects: self.objects.len() as u64,
            bytes: self.objects.values().map(|c| c.json.len() as u64).sum(),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a cache holds: objects, and their size as JSON (the text the cache keeps, most of
/// its memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Cached objects.
    pub objects: u64,
    /// Their JSON size, in bytes.
    pub bytes: u64,
}

/// What one cluster's live cache holds ([`LiveCache::footprint`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFootprint {
    /// Open watches (each one a list, a watch connection and a store).
    pub watches: u64,
    /// Of those, the cluster-wide watches of namespaced kinds (more namespaces in use than
    /// the limit).
    pub cluster_wide: u64,
    /// The objects of every watch.
    pub cached: Footprint,
}

/// The watches of one cluster and what its apps need.
#[derive(Default)]
struct ClusterWatches {
    watches: BTreeMap<WatchId, Arc<Watch>>,
    /// Watches replaced by one keeping more managers' `managedFields`, serving reads
    /// until the new one has listed.
    replaced: BTreeMap<WatchId, Arc<Watch>>,
    /// What each app on this cluster needs, by instance.
    apps: HashMap<String, Needs>,
    /// What the cluster Secret lets Argosy watch (as the last app to ask saw it).
    visibility: Visibility,
}

impl ClusterWatches {
    fn wanted(&self, max_namespaces: usize) -> Wanted {
        wanted_watches(self.apps.values(), &self.visibility, max_namespaces)
    }

    fn managers(&self) -> BTreeSet<String> {
        self.apps
            .values()
            .flat_map(|n| n.managers.iter().cloned())
            .collect()
    }

    /// The watch serving reads at `id`: the current one once listed, else the one it
    /// replaced while there is one.
    fn serving(&self, id: &WatchId) -> Option<&Arc<Watch>> {
        let current = self.watches.get(id);
        match (current, self.replaced.get(id)) {
            (Some(w), Some(old)) if !w.ready.is_ready() => Some(old),
            (Some(w), _) => Some(w),
            (None, old) => old,
        }
    }

    /// The watch serving reads of `kind` objects in `namespace`: the namespace's own,
    /// else the cluster-wide one.
    fn serving_at(&self, kind: &str, namespace: &str) -> Option<&Arc<Watch>> {
        (!namespace.is_empty())
            .then(|| self.serving(&WatchId::new(kind, namespace)))
            .flatten()
            .or_else(|| self.serving(&WatchId::new(kind, "")))
    }

    /// Drops the watches no app needs once their replacements have listed, and the
    /// replaced ones whose successors have.
    fn retire(&mut self, max_namespaces: usize) -> Vec<Arc<Watch>> {
        let wanted = self.wanted(max_namespaces);
        let current: BTreeMap<WatchId, bool> = self
            .watches
            .iter()
            .map(|(id, w)| (id.clone(), w.ready.is_ready()))
            .collect();
        let mut dropped: Vec<Arc<Watch>> = retired(&current, &wanted)
            .iter()
            .filter_map(|id| self.watches.remove(id))
            .collect();
        let watches = &self.watches;
        let done: Vec<WatchId> = self
            .replaced
            .keys()
            .filter(|id| watches.get(*id).is_none_or(|w| w.ready.is_ready()))
            .cloned()
            .collect();
        dropped.extend(done.iter().filter_map(|id| self.replaced.remove(id)));
        dropped
    }
}

#[derive(Default)]
struct Clusters {
    by_server: HashMap<String, ClusterWatches>,
    /// The cluster each app's needs were last declared on.
    app_server: HashMap<String, String>,
}

/// Watches and indexes of every destination cluster.
pub struct LiveCache {
    clusters: Mutex<Clusters>,
    trigger: Trigger,
    list_timeout: Duration,
    max_namespaces: usize,
    /// Clusters whose last probe got no answer, and why: unreachable like a failing watch.
    probe_failures: Mutex<HashMap<String, String>>,
    /// Told when a cluster gets its first watch, so the probe starts asking it at once.
    servers_added: tokio::sync::Notify,
}

fn gvk_id(resource: &ApiResource) -> String {
    format!("{}/{}/{}", resource.group, resource.version, resource.kind)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the index inconsistent in a
    // way worse than stale; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LiveCache {
    /// An empty cache: `trigger` is told about live changes; a first list that takes longer
    /// than `list_timeout` is an error; namespaced kinds are watched per namespace up to
    /// [`DEFAULT_MAX_NAMESPACES`] namespaces in use per cluster.
    pub fn new(trigger: Trigger, list_timeout: Duration) -> Self {
        Self {
            clusters: Mutex::default(),
            trigger,
            list_timeout,
            max_namespaces: DEFAULT_MAX_NAMESPACES,
            probe_failures: Mutex::default(),
            servers_added: tokio::sync::Notify::new(),
        }
    }

    /// Watches a namespaced kind over the whole cluster once more than `max` namespaces
    /// are in use there (per namespace up to it).
    #[must_use]
    pub fn with_max_namespaces(mut self, max: usize) -> Self {
        self.max_namespaces = max;
        self
    }

    /// Records what `app` (an instance name) needs watched on `server` (whatever it needed
    /// on another cluster before is released), starts the watches that are missing, and
    /// waits for the first lists of those that serve `app`. Watches nobody needs any more
    /// are then dropped. Fails when the cluster is unreachable (the watches keep retrying
    /// on their own).
    pub async fn need(
        &self,
        server: &str,
        client: &WatchClient,
        app: &str,
        needs: Needs,
        visibility: Visibility,
    ) -> Result<(), LiveError> {
        let (mine, moved_from, first_of_server) = {
            let mut clusters = lock(&self.clusters);
            let first_of_server = clusters
                .by_server
                .get(server)
                .is_none_or(|c| c.watches.is_empty() && c.replaced.is_empty());
            let moved_from = clusters
                .app_server
                .insert(app.to_owned(), server.to_owned())
                .filter(|previous| previous != server);
            if let Some(previous) = &moved_from
                && let Some(cluster) = clusters.by_server.get_mut(previous)
            {
                cluster.apps.remove(app);
            }
            let cluster = clusters.by_server.entry(server.to_owned()).or_default();
            cluster.visibility = visibility;
            let covered =
                |watch: &Watch, managers: &BTreeSet<String>| managers.is_subset(&watch.managers);
            cluster.apps.insert(app.to_owned(), needs);
            let wanted = cluster.wanted(self.max_namespaces);
            let managers = cluster.managers();
            for (id, (resource, namespaced)) in &wanted {
                match cluster.watches.get(id) {
                    Some(watch) if covered(watch, &managers) => {}
                    _ => {
                        let kind = (resource.clone(), *namespaced);
                        let watch = self.start(server, client.clone(), kind, id, &managers);
                        if let Some(old) = cluster.watches.insert(id.clone(), watch)
                            && old.ready.is_ready()
                        {
                            // It keeps serving reads until the new one has listed.
                            cluster.replaced.insert(id.clone(), old);
                        }
                    }
                }
            }
            let needs = &cluster.apps[app];
            let mine: Vec<Arc<Watch>> = covering(needs, &wanted)
                .iter()
                .filter_map(|id| cluster.watches.get(id).cloned())
                .collect();
            (mine, moved_from, first_of_server)
        };
        if first_of_server {
            // One waiter, the probe: the permit is kept if it is not waiting right now.
            self.servers_added.notify_one();
        }
        if let Some(previous) = moved_from {
            self.retire(&previous);
        }
        futures::future::try_join_all(mine.iter().map(|w| self.listed(server, w))).await?;
        self.retire(server);
        Ok(())
    }

    /// `app` (an instance name) needs nothing any more (it was deleted): the watches only
    /// it needed are dropped.
    pub fn release(&self, app: &str) {
        let server = {
            let mut clusters = lock(&self.clusters);
            let Some(server) = clusters.app_server.remove(app) else {
                return;
            };
            if let Some(cluster) = clusters.by_server.get_mut(&server) {
                cluster.apps.remove(app);
            }
            server
        };
        self.retire(&server);
    }

    fn retire(&self, server: &str) {
        let dropped = {
            let mut clusters = lock(&self.clusters);
            match clusters.by_server.get_mut(server) {
                Some(cluster) if cluster.apps.is_empty() => clusters
                    .by_server
                    .remove(server)
                    .map(|c| {
                        c.watches
                            .into_values()
                            .chain(c.replaced.into_values())
                            .collect()
                    })
                    .unwrap_or_default(),
                Some(cluster) => cluster.retire(self.max_namespaces),
                None => Vec::new(),
            }
        };
        if !dropped.is_empty() {
            tracing::debug!(
                server,
                watches = dropped.len(),
                "dropped watches no app needs"
            );
        }
    }

    /// Waits for the first list of `watch` on `server`.
    async fn listed(&self, server: &str, watch: &Watch) -> Result<(), LiveError> {
        if let Some(reason) = lock(&watch.state).failing.clone() {
            return Err(LiveError::Unreachable {
                server: server.to_owned(),
                reason,
            });
        }
        match tokio::time::timeout(self.list_timeout, watch.ready.wait()).await {
            Ok(true) => Ok(()),
            _ => match lock(&watch.state).failing.clone() {
                Some(reason) => Err(LiveError::Unreachable {
                    server: server.to_owned(),
                    reason,
                }),
                None => Err(LiveError::ListTimeout {
                    server: server.to_owned(),
                    kind: watch.resource.kind.clone(),
                    seconds: self.list_timeout.as_secs(),
                }),
            },
        }
    }

    /// The watches of `server` serving reads (see [`ClusterWatches::serving`]).
    fn serving(&self, server: &str, namespace: Option<&str>) -> Vec<Arc<Watch>> {
        let clusters = lock(&self.clusters);
        let Some(cluster) = clusters.by_server.get(server) else {
            return Vec::new();
        };
        let ids: BTreeSet<&WatchId> = cluster
            .watches
            .keys()
            .chain(cluster.replaced.keys())
            .collect();
        ids.into_iter()
            .filter(|id| namespace.is_none_or(|ns| id.namespace.is_empty() || id.namespace == ns))
            .filter_map(|id| cluster.serving(id).cloned())
            .collect()
    }

    /// Why `server` is unreachable: its last probe got no answer, or one of its watches is
    /// failing.
    pub fn unreachable(&self, server: &str) -> Option<String> {
        if let Some(why) = lock(&self.probe_failures).get(server) {
            return Some(why.clone());
        }
        let clusters = lock(&self.clusters);
        clusters
            .by_server
            .get(server)?
            .watches
            .values()
            .find_map(|w| lock(&w.state).failing.clone())
    }

    /// The live object at `key`, as JSON, if its kind is watched on `server`.
    pub fn get(&self, server: &str, resource: &ApiResource, key: &ObjKey) -> Option<Value> {
        let watch = self.watch(server, resource, &key.namespace, true)?;
        let state = lock(&watch.state);
        state
            .objects
            .get(&(key.namespace.clone(), key.name.clone()))
            .and_then(Cached::value)
    }

    /// Every watched live object on `server` whose tracking id names `app`, with the
    /// `apiVersion` to reach it by.
    pub fn tracked(&self, server: &str, app: &str) -> Vec<(ObjKey, Value)> {
        let mut out = Vec::new();
        for watch in self.serving(server, None) {
            let state = lock(&watch.state);
            for key in state.by_app.get(app).into_iter().flatten() {
                if let Some(value) = state
                    .objects
                    .get(&(key.namespace.clone(), key.name.clone()))
                    .and_then(Cached::value)
                {
                    out.push((key.clone(), value));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// The top-level objects (no owner) in `namespace` on `server` that no app tracks, among
    /// the kinds watched there: the candidates for Argo CD's orphaned-resource warning.
    /// Kinds no app deploys to that cluster are not watched, so not seen.
    pub fn untracked_top_level(&self, server: &str, namespace: &str) -> Vec<ObjKey> {
        let mut out: Vec<ObjKey> = Vec::new();
        for watch in self.serving(server, Some(namespace)) {
            let group = crate::resource::group_of(&watch.resource.api_version);
            let state = lock(&watch.state);
            out.extend(
                state
                    .objects
                    .iter()
                    .filter(|((ns, _), cached)| ns == namespace && cached.untracked_top_level)
                    .map(|((ns, name), _)| ObjKey {
                        group: group.to_owned(),
                        kind: watch.resource.kind.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    }),
            );
        }
        out.sort();
        out.dedup();
        out
    }

    /// `key` (of `resource` on `server`) is about to be applied by the app that tracks it:
    /// its watch events are held back until [`Self::written`] tells the version applied.
    pub fn writing(&self, server: &str, resource: &ApiResource, key: &ObjKey) {
        if let Some(watch) = self.watch(server, resource, &key.namespace, false) {
            lock(&watch.state).echoes.writing(key.clone());
        }
    }

    /// The apply of `key` returned `resource_version` (`None`: it failed). The event at
    /// that version will re-trigger nobody; one held back that was somebody else's change
    /// triggers the object's app now.
    pub fn written(
        &self,
        server: &str,
        resource: &ApiResource,
        key: &ObjKey,
        resource_version: Option<u64>,
    ) {
        let Some(watch) = self.watch(server, resource, &key.namespace, false) else {
            return;
        };
        let app = {
            let mut state = lock(&watch.state);
            if !state.echoes.written(key.clone(), resource_version) {
                return;
            }
            state.owner.get(key).cloned()
        };
        if let Some(app) = app {
            (self.trigger)(&app);
        }
    }

    /// Re-checks `app` (by instance name), as a change to what it tracks would.
    pub fn wake(&self, app: &str) {
        (self.trigger)(app);
    }

    /// The watch that sees objects of `resource` in `namespace` on `server`: the
    /// namespace's own, else the cluster-wide one; `reading`: the one serving reads (a
    /// replaced watch until its successor has listed), else the newest (which will see
    /// the next events).
    fn watch(
        &self,
        server: &str,
        resource: &ApiResource,
        namespace: &str,
        reading: bool,
    ) -> Option<Arc<Watch>> {
        let clusters = lock(&self.clusters);
        let cluster = clusters.by_server.get(server)?;
        let kind = gvk_id(resource);
        if reading {
            return cluster.serving_at(&kind, namespace).cloned();
        }
        (!namespace.is_empty())
            .then(|| cluster.watches.get(&WatchId::new(&kind, namespace)))
            .flatten()
            .or_else(|| cluster.watches.get(&WatchId::new(&kind, "")))
            .cloned()
    }

    /// The servers with at least one watch: the clusters some app uses (what the probe
    /// asks).
    #[must_use]
    pub fn servers(&self) -> BTreeSet<String> {
        let clusters = lock(&self.clusters);
        clusters
            .by_server
            .iter()
            .filter(|(_, c)| !c.watches.is_empty() || !c.replaced.is_empty())
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Returns when a cluster got its first watch since the last call (at once if one did
    /// meanwhile): the probe's cue to look at [`Self::servers`] again.
    pub async fn servers_added(&self) {
        self.servers_added.notified().await;
    }

    /// The probe of `server` got no answer (`Some(why)`) or answered (`None`). A cluster
    /// that turns unreachable or reachable again re-triggers every app tracking objects
    /// there: they hold (the Unreachable condition), or compare and sync again. The first
    /// reason is kept while the cluster stays unreachable, so conditions do not churn.
    pub fn probed(&self, server: &str, failure: Option<String>) {
        let changed = {
            let mut failures = lock(&self.probe_failures);
            match failure {
                Some(why) if !failures.contains_key(server) => {
                    failures.insert(server.to_owned(), why);
                    true
                }
                None => failures.remove(server).is_some(),
                Some(_) => false,
            }
        };
        if changed {
            for app in self.apps_on(server) {
                (self.trigger)(&app);
            }
        }
    }

    /// The app instances that need watches on `server`, or track objects there.
    fn apps_on(&self, server: &str) -> BTreeSet<String> {
        let clusters = lock(&self.clusters);
        let Some(cluster) = clusters.by_server.get(server) else {
            return BTreeSet::new();
        };
        let mut apps: BTreeSet<String> = cluster.apps.keys().cloned().collect();
        for watch in cluster.watches.values() {
            apps.extend(lock(&watch.state).by_app.keys().cloned());
        }
        apps
    }

    /// Stops every watch of `server` and drops what they cached (its cluster Secret is
    /// gone, or another replica syncs it now), and forgets its probe.
    pub fn forget(&self, server: &str) {
        lock(&self.probe_failures).remove(server);
        let mut clusters = lock(&self.clusters);
        clusters.by_server.remove(server);
        clusters.app_server.retain(|_, s| s != server);
    }

    /// What the cache holds per cluster (server URL), for metrics.
    pub fn footprint(&self) -> Vec<(String, ClusterFootprint)> {
        let clusters = lock(&self.clusters);
        let mut out: Vec<(String, ClusterFootprint)> = clusters
            .by_server
            .iter()
            .map(|(server, cluster)| {
                let mut total = ClusterFootprint::default();
                for (id, watch) in &cluster.watches {
                    let size = lock(&watch.state).footprint();
                    total.watches += 1;
                    total.cluster_wide += u64::from(id.namespace.is_empty() && watch.namespaced);
                    total.cached.objects += size.objects;
                    total.cached.bytes += size.bytes;
                }
                (server.clone(), total)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn start(
        &self,
        server: &str,
        client: WatchClient,
        (resource, namespaced): (ApiResource, bool),
        id: &WatchId,
        managers: &BTreeSet<String>,
    ) -> Arc<Watch> {
        let api: Api<DynamicObject> = if id.namespace.is_empty() {
            Api::all_with(client.client, &resource)
        } else {
            Api::namespaced_with(client.client, &id.namespace, &resource)
        };
        let (listed, ready) = StoreReady::new();
        let state = Arc::new(Mutex::new(WatchState::default()));
        let follower = Follower {
            api,
            // The deadline makes a silent watch end: kube-runtime re-makes a watch that
            // received nothing (not even the bookmark sent before the deadline) for its
            // timeout + 5 s, which against a server that hangs fails.
            config: watcher::Config::default().timeout(client.timeout_seconds),
            types: TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            },
            managers: managers.clone(),
            listed,
            state: state.clone(),
            trigger: self.trigger.clone(),
            server: server.to_owned(),
        };
        let task = tokio::spawn(follower.run());
        Arc::new(Watch {
            resource,
            namespaced,
            ready,
            managers: managers.clone(),
            state,
            task,
        })
    }
}

/// The task behind one [`Watch`]: kube-runtime's watcher into the cached objects and the
/// index.
struct Follower {
    api: Api<DynamicObject>,
    config: watcher::Config,
    types: TypeMeta,
    /// The managers whose `managedFields` the cached objects keep.
    managers: BTreeSet<String>,
    listed: crate::ready::ReadySignal,
    state: Arc<Mutex<WatchState>>,
    trigger: Trigger,
    server: String,
}

impl Follower {
    /// Follows the watch until the task is aborted. The first error marks the watch
    /// failing (its apps are re-triggered and hold) and ends that watcher; a new one starts
    /// after [`restart_delay`] with a full re-list, whose end clears the mark. (kube's
    /// watcher would re-make the watch in place, which after a hang succeeds without a
    /// single event: nothing would ever say the cluster is back.) The cache keeps the last
    /// objects meanwhile: an unreachable cluster never looks empty.
    async fn run(self) {
        let mut failures: u32 = 0;
        loop {
            let (types, kept) = (self.types.clone(), self.managers.clone());
            let stream = watcher(self.api.clone(), self.config.clone())
                .modify(move |object| prepare(object, &types, &kept));
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let failed = event.is_err();
                let touched = match &event {
                    Ok(event) => {
                        if matches!(event, watcher::Event::InitDone) {
                            failures = 0;
                        }
                        let mut state = lock(&self.state);
                        keep(&mut state, event);
                        index(&mut state, event)
                    }
                    Err(e) => self.failed(e),
                };
                // Ready once the first list is in the cache and in the index both.
                self.listed.observe(&event);
                for app in touched {
                    (self.trigger)(&app);
                }
                if failed {
                    break;
                }
            }
            failures = failures.saturating_add(1);
            tokio::time::sleep(restart_delay(failures)).await;
        }
    }

    /// Marks the watch failing; the apps to re-trigger when it was not already.
    fn failed(&self, e: &watcher::Error) -> Vec<String> {
        let mut s = lock(&self.state);
        if s.failing.is_some() {
            // The first reason stays while it fails: conditions do not churn.
            return Vec::new();
        }
        s.failing = Some(e.to_string());
        tracing::warn!(server = %self.server, error = %e, "cluster watch failing; its apps hold");
        s.by_app.keys().cloned().collect()
    }
}

/// The wait before the `failures`-th consecutive restart of a watcher: 0.5 s doubling to
/// 30 s, so a cluster that stays down costs one list attempt per kind every 30 s.
fn restart_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(6);
    Duration::from_millis(500 << doublings).min(Duration::from_secs(30))
}

/// Applies one watch event to the cached objects (a re-list replaces them at its end).
fn keep(state: &mut WatchState, event: &watcher::Event<DynamicObject>) {
    match event {
        watcher::Event::Init => state.relist_objects = Some(HashMap::new()),
        watcher::Event::InitApply(object) => {
            if let (Some(relist), Some((name, cached))) =
                (state.relist_objects.as_mut(), Cached::of(object))
            {
                relist.insert(name, cached);
            }
        }
        watcher::Event::InitDone => {
            if let Some(objects) = state.relist_objects.take() {
                state.objects = objects;
            }
        }
        watcher::Event::Apply(object) => {
            if let Some((name, cached)) = Cached::of(object) {
                state.objects.insert(name, cached);
            }
        }
        watcher::Event::Delete(object) => {
            if let Some((key, _)) = key_and_app(object) {
                state.objects.remove(&(key.namespace, key.name));
            }
        }
    }
}

/// Readies a watched object for the store: the items of a list response carry no
/// `apiVersion`/`kind` (only watch events do), so they are set from the watched resource
/// (the index and comparisons need them); then it is trimmed to what diff and health read
/// ([`crate::ssa::trim_for_cache_keeping`]: no last-applied copy, no `managedFields` but
/// Argosy's apply entry and those of the `managers` some app's `ignoreDifferences` names).
fn prepare(object: &mut DynamicObject, types: &TypeMeta, managers: &BTreeSet<String>) {
    if object.types.is_none() {
        object.types = Some(types.clone());
    }
    crate::ssa::trim_for_cache_keeping(&mut object.metadata, |m| managers.contains(m));
}

fn key_and_app(object: &DynamicObject) -> Option<(ObjKey, Option<String>)> {
    let types = object.types.as_ref()?;
    let key = ObjKey {
        group: crate::resource::group_of(&types.api_version).to_owned(),
        kind: types.kind.clone(),
        namespace: object.metadata.namespace.clone().unwrap_or_default(),
        name: object.metadata.name.clone()?,
    };
    let app = object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TRACKING_ANNOTATION))
        .filter(|id| tracking_app(id).is_some_and(|app| key.tracking_id(app) == **id))
        .and_then(|id| tracking_app(id))
        .map(str::to_owned);
    Some((key, app))
}

/// Updates the app index from one watch event; returns the app instances to re-trigger.
fn index(state: &mut WatchState, event: &watcher::Event<DynamicObject>) -> Vec<String> {
    let mut touched = Vec::new();
    match event {
        watcher::Event::Init => {
            state.relist = Some(HashMap::new());
            // A re-list re-triggers every app at its end anyway.
            state.echoes.clear();
        }
        watcher::Event::InitApply(object) => {
            if let (Some(relist), Some((key, Some(app)))) =
                (state.relist.as_mut(), key_and_app(object))
            {
                relist.insert(key, app);
            }
        }
        watcher::Event::InitDone => {
            let owner = state.relist.take().unwrap_or_default();
            let mut by_app: HashMap<String, BTreeSet<ObjKey>> = HashMap::new();
            for (key, app) in &owner {
                by_app.entry(app.clone()).or_default().insert(key.clone());
            }
            // Everything that was or is tracked may have changed while the watch was down.
            let mut apps: BTreeSet<String> = state.by_app.keys().cloned().collect();
            apps.extend(by_app.keys().cloned());
            state.owner = owner;
            state.by_app = by_app;
            if state.failing.take().is_some() {
                tracing::info!("cluster watch recovered");
            }
            touched.extend(apps);
        }
        watcher::Event::Apply(object) | watcher::Event::Delete(object) => {
            state.failing = None;
            let Some((key, app)) = key_and_app(object) else {
                return touched;
            };
            let deleted = matches!(event, watcher::Event::Delete(_));
            let version = version_of(object.metadata.resource_version.as_deref());
            let echo = !deleted && !state.echoes.event(&key, version);
            let previous = state.owner.remove(&key);
            if echo && previous.as_ref().is_none_or(|p| Some(p) == app.as_ref()) {
                // The app's own write as its reconcile saw it, or held back until the write
                // returns: index it, wake nobody (yet).
                if let Some(app) = app {
                    state.owner.insert(key.clone(), app.clone());
                    state.by_app.entry(app).or_default().insert(key);
                }
                return touched;
            }
            if let Some(previous) = &previous {
                if let Some(set) = state.by_app.get_mut(previous) {
                    set.remove(&key);
                    if set.is_empty() {
                        state.by_app.remove(previous);
                    }
                }
                touched.push(previous.clone());
            }
            if let Some(app) = app {
                if !deleted {
                    state.owner.insert(key.clone(), app.clone());
                    state.by_app.entry(app.clone()).or_default().insert(key);
                }
                if previous.as_ref() != Some(&app) {
                    touched.push(app);
                }
            }
        }
    }
    touched
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(name: &str, tracking: Option<&str>) -> DynamicObject {
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns"}});
        if let Some(t) = tracking {
            o["metadata"]["annotations"] = json!({TRACKING_ANNOTATION: t});
        }
        serde_json::from_value(o).unwrap()
    }

    fn apps(state: &WatchState) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = state
            .by_app
            .iter()
            .map(|(a, k)| (a.clone(), k.iter().map(|k| k.name.clone()).collect()))
            .collect();
        out.sort();
        out
    }

    /// A watch of `server` whose index says `app` tracks an object there (no task runs).
    fn insert_watch(cache: &LiveCache, server: &str, app: &str) {
        let resource = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
        let mut state = WatchState::default();
        index(
            &mut state,
            &watcher::Event::Apply(cm(app, Some(&format!("{app}:/ConfigMap:ns/{app}")))),
        );
        let watch = Watch {
            ready: StoreReady::new().1,
            namespaced: true,
            managers: BTreeSet::new(),
            state: Arc::new(Mutex::new(state)),
            task: tokio::spawn(async {}),
            resource: resource.clone(),
        };
        lock(&cache.clusters)
            .by_server
            .entry(server.to_owned())
            .or_default()
            .watches
            .insert(WatchId::new(&gvk_id(&resource), ""), Arc::new(watch));
    }

    #[tokio::test]
    async fn a_probe_marks_a_cluster_unreachable_and_wakes_its_apps_on_each_change() {
        let woken = Arc::new(Mutex::new(Vec::<String>::new()));
        let record = woken.clone();
        let cache = LiveCache::new(
            Arc::new(move |app: &str| lock(&record).push(app.to_owned())),
            Duration::from_secs(1),
        );
        let (hung, fine) = ("https://hung:6443", "https://fine:6443");
        insert_watch(&cache, hung, "app1");
        insert_watch(&cache, fine, "app2");
        assert_eq!(
            cache.servers(),
            BTreeSet::from([hung.to_owned(), fine.to_owned()])
        );
        let take = || std::mem::take(&mut *lock(&woken));

        cache.probed(hung, Some("no answer to GET /version within 5 s".into()));
        assert_eq!(
            cache.unreachable(hung).as_deref(),
            Some("no answer to GET /version within 5 s")
        );
        assert_eq!(cache.unreachable(fine), None);
        assert_eq!(take(), ["app1"], "only the hung cluster's apps hold");

        // Still unreachable: nobody woken again, the first reason kept.
        cache.probed(hung, Some("GET /version failed: reset".into()));
        assert!(take().is_empty());
        assert_eq!(
            cache.unreachable(hung).as_deref(),
            Some("no answer to GET /version within 5 s")
        );

        // It answers: cleared, its apps compare and sync again; once.
        cache.probed(hung, None);
        assert_eq!(cache.unreachable(hung), None);
        assert_eq!(take(), ["app1"]);
        cache.probed(hung, None);
        assert!(take().is_empty());

        // A forgotten cluster (Secret deleted) keeps no mark.
        cache.probed(hung, Some("no answer".into()));
        cache.forget(hung);
        assert_eq!(cache.unreachable(hung), None);
        assert_eq!(cache.servers(), BTreeSet::from([fine.to_owned()]));
    }

    #[test]
    fn a_failing_watch_is_restarted_at_most_every_30_seconds() {
        let delays: Vec<Duration> = (1..=9).map(restart_delay).collect();
        assert_eq!(delays[0], Duration::from_millis(500));
        assert_eq!(delays[1], Duration::from_secs(1));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(delays[8], Duration::from_secs(30));
        assert_eq!(restart_delay(u32::MAX), Duration::from_secs(30));
        assert_eq!(restart_delay(0), Duration::from_millis(500));
    }

    #[test]
    fn listed_objects_get_the_type_of_the_watched_resource() {
        let types = TypeMeta {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
        };
        let mut listed = cm("a", Some("app1:/ConfigMap:ns/a"));
        listed.types = None;
        prepare(&mut listed, &types, &BTreeSet::new());
        assert_eq!(listed.types, Some(types));
        let mut s = WatchState::default();
        index(&mut s, &watcher::Event::Apply(listed));
        assert_eq!(apps(&s), [("app1".to_owned(), vec!["a".to_owned()])]);
    }

    #[test]
    fn index_follows_tracking_annotations_through_events_and_relists() {
        let mut s = WatchState::default();
        assert_eq!(index(&mut s, &watcher::Event::Init), Vec::<String>::new());
        index(
            &mut s,
            &watcher::Event::InitApply(cm("a", Some("app1:/ConfigMap:ns/a"))),
        );
        index(
            &mut s,
            &watcher::Event::InitApply(cm("copy", Some("app1:/ConfigMap:ns/a"))),
        );
        index(&mut s, &watcher::Event::InitApply(cm("free", None)));
        assert!(
            s.by_app.is_empty(),
            "nothing is indexed before the list completes"
        );
        assert_eq!(index(&mut s, &watcher::Event::InitDone), vec!["app1"]);
        assert_eq!(apps(&s), vec![("app1".into(), vec!["a".into()])]);

        // Re-annotated to another app: both apps are re-triggered.
        let touched = index(
            &mut s,
            &watcher::Event::Apply(cm("a", Some("app2:/ConfigMap:ns/a"))),
        );
        assert_eq!(touched, vec!["app1", "app2"]);
        assert_eq!(apps(&s), vec![("app2".into(), vec!["a".into()])]);

        let touched = index(
            &mut s,
            &watcher::Event::Delete(cm("a", Some("app2:/ConfigMap:ns/a"))),
        );
        assert_eq!(touched, vec!["app2"]);
        assert!(s.by_app.is_empty());

        // A failure is cleared by the next successful re-list, which re-triggers apps.
        index(
            &mut s,
            &watcher::Event::Apply(cm("b", Some("app3:/ConfigMap:ns/b"))),
        );
        s.failing = Some("connection refused".into());
        index(&mut s, &watcher::Event::Init);
        assert_eq!(index(&mut s, &watcher::Event::InitDone), vec!["app3"]);
        assert!(s.failing.is_none() && s.by_app.is_empty());
    }

    #[test]
    fn the_echo_of_an_own_write_triggers_nobody() {
        let tracked = "app1:/ConfigMap:ns/a";
        let at = |version: &str| {
            let mut object = cm("a", Some(tracked));
            object.metadata.resource_version = Some(version.to_owned());
            watcher::Event::Apply(object)
        };
        let key = key_and_app(&cm("a", Some(tracked))).unwrap().0;
        let mut s = WatchState::default();
        assert_eq!(index(&mut s, &at("3")), vec!["app1"]);

        // Applied at 5, the response first: the echo wakes nobody, the next change does.
        s.echoes.writing(key.clone());
        assert!(!s.echoes.written(key.clone(), Some(5)));
        assert_eq!(index(&mut s, &at("5")), Vec::<String>::new());
        assert_eq!(apps(&s), [("app1".to_owned(), vec!["a".to_owned()])]);
        assert_eq!(index(&mut s, &at("6")), vec!["app1"]);

        // The echo before the response: held back, and nobody to wake after it.
        s.echoes.writing(key.clone());
        assert_eq!(index(&mut s, &at("7")), Vec::<String>::new());
        assert!(!s.echoes.written(key.clone(), Some(7)));

        // A create's echo: not indexed before, indexed now, nobody woken.
        let mut fresh = WatchState::default();
        fresh.echoes.writing(key.clone());
        assert_eq!(index(&mut fresh, &at("8")), Vec::<String>::new());
        assert!(!fresh.echoes.written(key, Some(8)));
        assert_eq!(apps(&fresh), [("app1".to_owned(), vec!["a".to_owned()])]);

        // Re-annotated to another app while held back: both are woken at once.
        let mut moved = WatchState::default();
        index(&mut moved, &at("9"));
        let key = key_and_app(&cm("a", Some(tracked))).unwrap().0;
        moved.echoes.writing(key);
        let mut other = cm("a", Some("app2:/ConfigMap:ns/a"));
        other.metadata.resource_version = Some("10".to_owned());
        assert_eq!(
            index(&mut moved, &watcher::Event::Apply(other)),
            vec!["app1", "app2"]
        );
    }

    fn resource(kind: &str) -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: kind.into(),
            plural: format!("{}s", kind.to_lowercase()),
        }
    }

    fn needs(kinds: &[(&str, bool)], namespaces: &[&str]) -> Needs {
        let mut n = Needs::default();
        for (kind, namespaced) in kinds {
            n.kind(&resource(kind), *namespaced);
        }
        for ns in namespaces {
            n.namespace(ns);
        }
        n
    }

    fn ids(wanted: &Wanted) -> Vec<String> {
        wanted
            .keys()
            .map(|id| format!("{}@{}", id.kind.rsplit('/').next().unwrap(), id.namespace))
            .collect()
    }

    #[test]
    fn namespaced_kinds_are_watched_per_namespace_in_use_up_to_the_limit() {
        let a = needs(&[("ConfigMap", true), ("Namespace", false)], &["a"]);
        let b = needs(&[("ServiceAccount", true)], &["b", "c"]);
        let wanted = wanted_watches([&a, &b], &Visibility::All, 3);
        // Every kind in use on the cluster, in every namespace in use there (the orphan
        // warning of each destination namespace sees the cluster's kinds, as before).
        assert_eq!(
            ids(&wanted),
            [
                "ConfigMap@a",
                "ConfigMap@b",
                "ConfigMap@c",
                "Namespace@",
                "ServiceAccount@a",
                "ServiceAccount@b",
                "ServiceAccount@c"
            ]
        );
        // One namespace more than the limit: one cluster-wide watch per namespaced kind.
        let d = needs(&[], &["d"]);
        let wanted = wanted_watches([&a, &b, &d], &Visibility::All, 3);
        assert_eq!(
            ids(&wanted),
            ["ConfigMap@", "Namespace@", "ServiceAccount@"]
        );
        // An app with objects in no namespace needs the whole cluster.
        let anywhere = needs(&[("ConfigMap", true)], &[""]);
        assert_eq!(
            ids(&wanted_watches([&anywhere], &Visibility::All, 3)),
            ["ConfigMap@"]
        );
        assert!(wanted_watches([], &Visibility::All, 3).is_empty());
    }

    #[test]
    fn a_scoped_cluster_is_never_watched_beyond_its_namespaces() {
        let scoped = |cluster_resources| Visibility::Namespaces {
            allowed: ["a", "b", "z"].iter().map(|s| (*s).to_owned()).collect(),
            cluster_resources,
        };
        let app = needs(
            &[("ConfigMap", true), ("Namespace", false)],
            &["a", "b", "x"],
        );
        assert_eq!(
            ids(&wanted_watches([&app], &scoped(false), 1)),
            ["ConfigMap@a", "ConfigMap@b"]
        );
        assert_eq!(
            ids(&wanted_watches([&app], &scoped(true), 1)),
            ["ConfigMap@a", "ConfigMap@b", "Namespace@"]
        );
        let anywhere = needs(&[("ConfigMap", true)], &[""]);
        assert_eq!(
            ids(&wanted_watches([&anywhere], &scoped(false), 1)),
            ["ConfigMap@a", "ConfigMap@b", "ConfigMap@z"]
        );
    }

    #[test]
    fn a_watch_is_retired_only_once_its_replacement_has_listed() {
        let id = |ns: &str| WatchId::new("/v1/ConfigMap", ns);
        let wanted = |namespaces: &[&str]| -> Wanted {
            namespaces
                .iter()
                .map(|ns| (id(ns), (resource("ConfigMap"), true)))
                .collect()
        };
        let current = |watches: &[(&str, bool)]| -> BTreeMap<WatchId, bool> {
            watches.iter().map(|(ns, ready)| (id(ns), *ready)).collect()
        };
        // Per namespace -> cluster-wide: the namespaces' watches serve until it has listed.
        assert!(
            retired(
                &current(&[("a", true), ("b", true), ("", false)]),
                &wanted(&[""])
            )
            .is_empty()
        );
        assert_eq!(
            retired(
                &current(&[("a", true), ("b", true), ("", true)]),
                &wanted(&[""])
            ),
            [id("a"), id("b")]
        );
        // Cluster-wide -> per namespace: the wide one serves until every one has listed.
        assert!(
            retired(
                &current(&[("", true), ("a", true), ("b", false)]),
                &wanted(&["a", "b"])
            )
            .is_empty()
        );
        assert_eq!(
            retired(
                &current(&[("", true), ("a", true), ("b", true)]),
                &wanted(&["a", "b"])
            ),
            [id("")]
        );
        // A namespace no app uses any more goes at once; so does everything of an unused kind.
        let secrets = WatchId::new("/v1/Secret", "a");
        let mut now = current(&[("a", true), ("b", false)]);
        now.insert(secrets.clone(), true);
        assert_eq!(retired(&now, &wanted(&["b"])), [id("a"), secrets]);
    }

    #[test]
    fn an_app_waits_for_the_watches_that_see_its_objects() {
        let app = needs(&[("ConfigMap", true), ("Namespace", false)], &["a"]);
        let other = needs(&[("ConfigMap", true)], &["b"]);
        let wanted = wanted_watches([&app, &other], &Visibility::All, 5);
        let covered: Vec<String> = covering(&app, &wanted)
            .iter()
            .map(|id| format!("{}@{}", id.kind, id.namespace))
            .collect();
        assert_eq!(covered, ["/v1/ConfigMap@a", "/v1/Namespace@"]);
        let wide = wanted_watches([&app, &other], &Visibility::All, 1);
        assert_eq!(covering(&app, &wide).len(), 2);
        assert!(covering(&app, &wide).contains(&WatchId::new("/v1/ConfigMap", "")));
    }

    #[test]
    fn cached_objects_keep_only_the_managed_fields_a_comparison_reads() {
        let types = TypeMeta {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
        };
        let entry = |manager: &str, operation: &str| {
            json!({"manager": manager, "operation": operation, "apiVersion": "v1",
                   "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}})
        };
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "ns",
                "annotations": {crate::ssa::LAST_APPLIED_ANNOTATION: "{\"whole\": \"copy\"}", "team": "a"},
                "managedFields": [entry("argosy", "Apply"), entry("kubectl", "Update"),
                                  entry("hpa", "Update"), entry("argosy", "Update")]},
            "data": {"a": "1"}}))
        .unwrap();
        let before = serde_json::to_string(&object).unwrap().len();
        let managers: BTreeSet<String> = ["hpa".to_owned()].into();
        prepare(&mut object, &types, &managers);
        let value = serde_json::to_value(&object).unwrap();
        let kept: Vec<&str> = value["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["manager"].as_str().unwrap())
            .collect();
        assert_eq!(kept, ["argosy", "hpa"]);
        assert_eq!(value["metadata"]["annotations"], json!({"team": "a"}));
        // What the comparison reads is still there, as it was.
        let tree = json!({"f:data": {"f:a": {}}});
        assert_eq!(
            crate::ssa::owned_fields_json(&value).as_deref(),
            Some(&tree)
        );
        assert_eq!(
            crate::ssa::fields_of_manager_json(&value, "hpa").as_deref(),
            Some(&tree)
        );
        assert!(serde_json::to_string(&object).unwrap().len() < before);
        // Nobody's entry but Argosy's: the other managers' go too.
        prepare(&mut object, &types, &BTreeSet::new());
        assert_eq!(
            object.metadata.managed_fields.as_ref().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn the_cache_follows_events_and_relists() {
        let mut s = WatchState::default();
        let (a, b) = (cm("a", None), cm("b", Some("app1:/ConfigMap:ns/b")));
        let size = |o: &DynamicObject| serde_json::to_string(o).unwrap().len() as u64;
        keep(&mut s, &watcher::Event::Init);
        keep(&mut s, &watcher::Event::InitApply(a.clone()));
        assert_eq!(
            s.footprint(),
            Footprint::default(),
            "kept once the list is complete"
        );
        keep(&mut s, &watcher::Event::InitDone);
        assert_eq!(
            s.footprint(),
            Footprint {
                objects: 1,
                bytes: size(&a)
            }
        );
        keep(&mut s, &watcher::Event::Apply(b.clone()));
        let mut bigger = b.clone();
        bigger.data = json!({"data": {"k": "a longer value than before"}});
        keep(&mut s, &watcher::Event::Apply(bigger.clone()));
        assert_eq!(
            s.footprint(),
            Footprint {
                objects: 2,
                bytes: size(&a) + size(&bigger)
            }
        );
        // What is read back is the object as it came (trimmed), parsed from its text.
        let read = s.objects[&("ns".to_owned(), "b".to_owned())]
            .value()
            .unwrap();
        assert_eq!(read, serde_json::to_value(&bigger).unwrap());
        // Only the untracked object without owners is an orphan candidate.
        let orphans: Vec<&str> = s
            .objects
            .iter()
            .filter(|(_, c)| c.untracked_top_level)
            .map(|((_, name), _)| name.as_str())
            .collect();
        assert_eq!(orphans, ["a"]);
        keep(&mut s, &watcher::Event::Delete(a.clone()));
        assert_eq!(
            s.footprint(),
            Footprint {
                objects: 1,
                bytes: size(&bigger)
            }
        );
        // A re-list replaces the objects with what it delivered.
        keep(&mut s, &watcher::Event::Init);
        keep(&mut s, &watcher::Event::InitDone);
        assert_eq!(s.footprint(), Footprint::default());
    }
}

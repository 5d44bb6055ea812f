//! The live state of the destination clusters: one watch per (cluster, kind) that some
//! Application deploys, kept in memory, plus an index of which objects each app tracks.
//!
//! Watches start lazily, the first time an app needs a kind on a cluster, and stay.
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

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, TypeMeta};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use crate::clients::WatchClient;
use crate::echo::{Echoes, version_of};
use crate::ready::StoreReady;
use crate::resource::{ObjKey, TRACKING_ANNOTATION, tracking_app};

/// Called with an app instance name (see [`crate::resource::app_instance`]) whenever
/// something it tracks changed or its cluster's reachability changed.
pub type Trigger = Arc<dyn Fn(&str) + Send + Sync>;

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

/// `(server, group/version/kind, namespace)`: the namespace is empty for a watch of the
/// whole cluster, else the one namespace a scoped cluster Secret lets Argosy see.
type WatchKey = (String, String, String);

/// Where a kind is watched on one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchScope {
    /// One watch over every namespace (or a cluster-scoped kind).
    Cluster,
    /// One watch per namespace: the cluster Secret lists `namespaces`, and the credentials
    /// may be good for nothing else (a customer who grants namespace-level RBAC only).
    Namespaces(Vec<String>),
}

struct Watch {
    resource: ApiResource,
    store: Store<DynamicObject>,
    /// The first list, awaited by every reconcile that needs this kind meanwhile.
    ready: StoreReady,
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
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches and indexes of every destination cluster.
pub struct LiveCache {
    watches: Mutex<HashMap<WatchKey, Arc<Watch>>>,
    trigger: Trigger,
    list_timeout: Duration,
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
    /// than `list_timeout` is an error.
    pub fn new(trigger: Trigger, list_timeout: Duration) -> Self {
        Self {
            watches: Mutex::default(),
            trigger,
            list_timeout,
            probe_failures: Mutex::default(),
            servers_added: tokio::sync::Notify::new(),
        }
    }

    /// Makes sure `resource` is watched on `server` in `scope` and the first lists have
    /// completed. Fails when the cluster is unreachable (the watches keep retrying on their
    /// own).
    pub async fn ensure(
        &self,
        server: &str,
        client: &WatchClient,
        resource: &ApiResource,
        scope: &WatchScope,
    ) -> Result<(), LiveError> {
        match scope {
            WatchScope::Cluster => self.ensure_one(server, client, resource, "").await,
            WatchScope::Namespaces(namespaces) => {
                futures::future::try_join_all(
                    namespaces
                        .iter()
                        .map(|ns| self.ensure_one(server, client, resource, ns)),
                )
                .await?;
                Ok(())
            }
        }
    }

    async fn ensure_one(
        &self,
        server: &str,
        client: &WatchClient,
        resource: &ApiResource,
        namespace: &str,
    ) -> Result<(), LiveError> {
        let key = (server.to_owned(), gvk_id(resource), namespace.to_owned());
        let (watch, first_of_server) = {
            let mut watches = lock(&self.watches);
            let first_of_server =
                !watches.contains_key(&key) && !watches.keys().any(|(s, _, _)| s == server);
            let watch = watches
                .entry(key)
                .or_insert_with(|| self.start(server, client.clone(), resource.clone(), namespace))
                .clone();
            (watch, first_of_server)
        };
        if first_of_server {
            // One waiter, the probe: the permit is kept if it is not waiting right now.
            self.servers_added.notify_one();
        }
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
                    kind: resource.kind.clone(),
                    seconds: self.list_timeout.as_secs(),
                }),
            },
        }
    }

    /// Why `server` is unreachable: its last probe got no answer, or one of its watches is
    /// failing.
    pub fn unreachable(&self, server: &str) -> Option<String> {
        if let Some(why) = lock(&self.probe_failures).get(server) {
            return Some(why.clone());
        }
        lock(&self.watches)
            .iter()
            .filter(|((s, _, _), _)| s == server)
            .find_map(|(_, w)| lock(&w.state).failing.clone())
    }

    /// The servers with at least one watch: the clusters some app uses (what the probe
    /// asks).
    #[must_use]
    pub fn servers(&self) -> BTreeSet<String> {
        lock(&self.watches)
            .keys()
            .map(|(server, _, _)| server.clone())
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

    /// The app instances tracking objects on `server`.
    fn apps_on(&self, server: &str) -> BTreeSet<String> {
        let watches: Vec<Arc<Watch>> = lock(&self.watches)
            .iter()
            .filter(|((s, _, _), _)| s == server)
            .map(|(_, w)| w.clone())
            .collect();
        watches
            .iter()
            .flat_map(|w| lock(&w.state).by_app.keys().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// The live object at `key`, as JSON, if its kind is watched on `server`.
    pub fn get(&self, server: &str, resource: &ApiResource, key: &ObjKey) -> Option<Value> {
        let watch = self.watch(server, resource, &key.namespace)?;
        let mut reference = ObjectRef::new_with(&key.name, watch.resource.clone());
        if !key.namespace.is_empty() {
            reference = reference.within(&key.namespace);
        }
        watch
            .store
            .get(&reference)
            .and_then(|o| serde_json::to_value(&*o).ok())
    }

    /// Every watched live object on `server` whose tracking id names `app`, with the
    /// `apiVersion` to reach it by.
    pub fn tracked(&self, server: &str, app: &str) -> Vec<(ObjKey, Value)> {
        let watches: Vec<Arc<Watch>> = lock(&self.watches)
            .iter()
            .filter(|((s, _, _), _)| s == server)
            .map(|(_, w)| w.clone())
            .collect();
        let mut out = Vec::new();
        for watch in watches {
            let keys: Vec<ObjKey> = lock(&watch.state)
                .by_app
                .get(app)
                .map(|k| k.iter().cloned().collect())
                .unwrap_or_default();
            for key in keys {
                let mut reference = ObjectRef::new_with(&key.name, watch.resource.clone());
                if !key.namespace.is_empty() {
                    reference = reference.within(&key.namespace);
                }
                if let Some(obj) = watch.store.get(&reference)
                    && let Ok(value) = serde_json::to_value(&*obj)
                {
                    out.push((key, value));
                }
            }
        }
        out
    }

    /// The top-level objects (no owner) in `namespace` on `server` that no app tracks, among
    /// the kinds watched there: the candidates for Argo CD's orphaned-resource warning.
    /// Kinds no app deploys to that cluster are not watched, so not seen.
    pub fn untracked_top_level(&self, server: &str, namespace: &str) -> Vec<ObjKey> {
        let watches: Vec<Arc<Watch>> = lock(&self.watches)
            .iter()
            .filter(|((s, _, ns), _)| s == server && (ns.is_empty() || ns == namespace))
            .map(|(_, w)| w.clone())
            .collect();
        let mut out: Vec<ObjKey> = watches
            .iter()
            .flat_map(|w| w.store.state())
            .filter(|o| o.metadata.namespace.as_deref() == Some(namespace))
            .filter(|o| {
                o.metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(Vec::is_empty)
            })
            .filter_map(|o| key_and_app(&o))
            .filter(|(_, app)| app.is_none())
            .map(|(key, _)| key)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `key` (of `resource` on `server`) is about to be applied by the app that tracks it:
    /// its watch events are held back until [`Self::written`] tells the version applied.
    pub fn writing(&self, server: &str, resource: &ApiResource, key: &ObjKey) {
        if let Some(watch) = self.watch(server, resource, &key.namespace) {
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
        let Some(watch) = self.watch(server, resource, &key.namespace) else {
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
    /// namespace's own, else the cluster-wide one.
    fn watch(&self, server: &str, resource: &ApiResource, namespace: &str) -> Option<Arc<Watch>> {
        let watches = lock(&self.watches);
        let gvk = gvk_id(resource);
        let key = |ns: &str| (server.to_owned(), gvk.clone(), ns.to_owned());
        (!namespace.is_empty())
            .then(|| watches.get(&key(namespace)))
            .flatten()
            .or_else(|| watches.get(&key("")))
            .cloned()
    }

    /// Stops every watch of `server` and drops what they cached (its cluster Secret is
    /// gone, or another replica syncs it now), and forgets its probe.
    pub fn forget(&self, server: &str) {
        lock(&self.watches).retain(|(s, _, _), _| s != server);
        lock(&self.probe_failures).remove(server);
    }

    fn start(
        &self,
        server: &str,
        client: WatchClient,
        resource: ApiResource,
        namespace: &str,
    ) -> Arc<Watch> {
        let api: Api<DynamicObject> = if namespace.is_empty() {
            Api::all_with(client.client, &resource)
        } else {
            Api::namespaced_with(client.client, namespace, &resource)
        };
        let writer = Writer::new(resource.clone());
        let store = writer.as_reader();
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
            writer,
            listed,
            state: state.clone(),
            trigger: self.trigger.clone(),
            server: server.to_owned(),
        };
        let task = tokio::spawn(follower.run());
        Arc::new(Watch {
            resource,
            store,
            ready,
            state,
            task,
        })
    }
}

/// The task behind one [`Watch`]: kube-runtime's watcher into the store and the index.
struct Follower {
    api: Api<DynamicObject>,
    config: watcher::Config,
    types: TypeMeta,
    writer: Writer<DynamicObject>,
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
    /// single event: nothing would ever say the cluster is back.) The store keeps the last
    /// objects meanwhile: an unreachable cluster never looks empty.
    async fn run(mut self) {
        let mut failures: u32 = 0;
        loop {
            let types = self.types.clone();
            let stream = watcher(self.api.clone(), self.config.clone())
                .modify(move |object| prepare(object, &types));
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let failed = event.is_err();
                let touched = match &event {
                    Ok(event) => {
                        if matches!(event, watcher::Event::InitDone) {
                            failures = 0;
                        }
                        self.writer.apply_watcher_event(event);
                        index(&mut lock(&self.state), event)
                    }
                    Err(e) => self.failed(e),
                };
                // Ready once the first list is in the store and in the index both.
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

/// Readies a watched object for the store: the items of a list response carry no
/// `apiVersion`/`kind` (only watch events do), so they are set from the watched resource
/// (the index and comparisons need them); `kubectl.kubernetes.io/last-applied-configuration`
/// is dropped: a second copy of the object that only costs memory here.
fn prepare(object: &mut DynamicObject, types: &TypeMeta) {
    if object.types.is_none() {
        object.types = Some(types.clone());
    }
    if let Some(a) = object.metadata.annotations.as_mut() {
        a.remove(crate::ssa::LAST_APPLIED_ANNOTATION);
    }
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
            store: Writer::new(resource.clone()).as_reader(),
            ready: StoreReady::new().1,
            state: Arc::new(Mutex::new(state)),
            task: tokio::spawn(async {}),
            resource: resource.clone(),
        };
        lock(&cache.watches).insert(
            (server.to_owned(), gvk_id(&resource), String::new()),
            Arc::new(watch),
        );
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
        prepare(&mut listed, &types);
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
}

//! One watch, several consumers: a reflector's objects handed to every subscriber (the
//! Application watch feeds the ApplicationSet controller and the sync engine).
//!
//! kube-runtime's own shared stream (`reflect_shared` + `ReflectHandle`, kube-runtime 5)
//! hands its subscribers object references and looks each one up in the store when it is
//! read. A reference to an object deleted in between makes the subscriber return `Pending`
//! without arranging a wake-up: it sleeps until something else polls its task, and once its
//! buffer is full the watch itself stops, so the store goes stale for everyone. Here
//! subscribers get the objects themselves, deletions included (the owner of a deleted
//! Application hears of it and re-creates it at once, as Argo CD does), also deletions that
//! happened while the watch was down: a re-list forwards the objects it no longer finds.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use async_broadcast::{InactiveReceiver, Receiver, Sender};
use futures::{Stream, StreamExt as _};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::registry::ReadySignal;

/// The sending side of the fan-out: subscribe first, then [`Self::forward`] the events.
pub struct Fanout<K> {
    sender: Sender<Arc<K>>,
    /// Keeps the channel open while there is no subscriber.
    _open: InactiveReceiver<Arc<K>>,
}

impl<K> Fanout<K>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    /// A fan-out whose slowest subscriber may fall `capacity` objects behind before the
    /// watch waits for it (backpressure, never a dropped event).
    pub fn new(capacity: usize) -> Self {
        let (mut sender, receiver) = async_broadcast::broadcast(capacity);
        sender.set_await_active(false);
        sender.set_overflow(false);
        Self {
            sender,
            _open: receiver.deactivate(),
        }
    }

    /// A new subscriber; it sees every object forwarded after this call.
    pub fn subscribe(&self) -> Receiver<Arc<K>> {
        self.sender.new_receiver()
    }

    /// Passes the events of a reflector (which yields each event after applying it to
    /// `store`) to every subscriber: an applied or deleted object as it is, and at the end of
    /// each (re-)list the objects the list no longer has (deleted while the watch was down;
    /// the store has dropped them by then) followed by every object of the store. `listed` is
    /// told when the first list ends.
    pub async fn forward<S>(self, events: S, store: Store<K>, listed: ReadySignal)
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    {
        let mut events = std::pin::pin!(events);
        // The store's objects when a re-list began: the reflector swaps in the new list only
        // at its end.
        let mut before_relist: Vec<Arc<K>> = Vec::new();
        while let Some(event) = events.next().await {
            listed.observe(&event);
            let objects = match event {
                Ok(watcher::Event::Apply(object)) => {
                    // The store holds this very object: share it instead of a copy.
                    vec![
                        store
                            .get(&ObjectRef::from_obj(&object))
                            .unwrap_or_else(|| Arc::new(object)),
                    ]
                }
                Ok(watcher::Event::Delete(object)) => vec![Arc::new(object)],
                Ok(watcher::Event::Init) => {
                    before_relist = store.state();
                    Vec::new()
                }
                Ok(watcher::Event::InitDone) => {
                    let listed = store.state();
                    let kept: HashSet<ObjectRef<K>> = listed
                        .iter()
                        .map(|o| ObjectRef::from_obj(o.as_ref()))
                        .collect();
                    let mut objects: Vec<Arc<K>> = std::mem::take(&mut before_relist)
                        .into_iter()
                        .filter(|o| !kept.contains(&ObjectRef::from_obj(o.as_ref())))
                        .collect();
                    objects.extend(listed);
                    objects
                }
                Ok(watcher::Event::InitApply(_)) | Err(_) => Vec::new(),
            };
            for object in objects {
                // Fails only when the channel is closed, which `_open` prevents.
                let _ = self.sender.broadcast_direct(object).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use argosy_crds::Application;
    use kube::runtime::reflector;

    use super::*;
    use crate::registry::StoreReady;

    fn app(name: &str) -> Application {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default", "destination": {}, "source": {"repoURL": "r"}},
        }))
        .expect("an Application")
    }

    fn names(objects: &[Arc<Application>]) -> Vec<&str> {
        objects
            .iter()
            .map(|a| a.metadata.name.as_deref().unwrap_or_default())
            .collect()
    }

    /// Every subscriber gets every object, including one already deleted from the store
    /// when it reads (kube's shared stream stalls on that one), and deletions themselves.
    #[tokio::test]
    async fn every_subscriber_sees_every_object_even_one_deleted_since() {
        let (store, writer) = reflector::store::<Application>();
        let fanout = Fanout::new(16);
        let subscribers = [fanout.subscribe(), fanout.subscribe()];
        let (listed, ready) = StoreReady::new();
        let (events, rx) = futures::channel::mpsc::unbounded();
        let forward =
            tokio::spawn(fanout.forward(reflector::reflector(writer, rx), store.clone(), listed));
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(app("a")),
            watcher::Event::InitDone,
            watcher::Event::Apply(app("b")),
            watcher::Event::Delete(app("b")),
        ] {
            events.unbounded_send(Ok(event)).expect("forwarding");
        }
        drop(events);
        tokio::time::timeout(Duration::from_secs(2), forward)
            .await
            .expect("the forwarder ends with its events")
            .expect("forwarder task");
        assert!(ready.wait().await, "the first list ended");
        assert_eq!(store.state().len(), 1, "b is gone from the store");
        for subscriber in subscribers {
            let seen: Vec<Arc<Application>> = tokio::time::timeout(
                Duration::from_secs(2),
                subscriber.take(3).collect::<Vec<_>>(),
            )
            .await
            .expect("no subscriber stalls");
            assert_eq!(names(&seen), ["a", "b", "b"]);
        }
    }

    /// An object deleted while the watch was down is missing from the re-list: subscribers
    /// hear of it (before the listed objects), so its owner can re-create it and the sync
    /// engine can drop what it kept about it.
    #[tokio::test]
    async fn a_relist_forwards_the_objects_it_no_longer_finds() {
        let (store, writer) = reflector::store::<Application>();
        let fanout = Fanout::new(16);
        let subscriber = fanout.subscribe();
        let (listed, _ready) = StoreReady::new();
        let (events, rx) = futures::channel::mpsc::unbounded();
        let forward = tokio::spawn(fanout.forward(reflector::reflector(writer, rx), store, listed));
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(app("a")),
            watcher::Event::InitApply(app("b")),
            watcher::Event::InitDone,
            // The watch restarts; b was deleted meanwhile.
            watcher::Event::Init,
            watcher::Event::InitApply(app("a")),
            watcher::Event::InitDone,
        ] {
            events.unbounded_send(Ok(event)).expect("forwarding");
        }
        drop(events);
        forward.await.expect("forwarder task");
        let seen: Vec<Arc<Application>> =
            tokio::time::timeout(Duration::from_secs(2), subscriber.collect::<Vec<_>>())
                .await
                .expect("the subscriber ends with the forwarder");
        let mut first_list = names(&seen[..2]).to_vec();
        first_list.sort_unstable();
        assert_eq!(first_list, ["a", "b"]);
        assert_eq!(names(&seen[2..]), ["b", "a"], "b as gone, then the list");
    }

    /// A subscriber that falls behind holds the watch back rather than losing events.
    #[tokio::test]
    async fn a_slow_subscriber_holds_the_watch_back_and_loses_nothing() {
        let (store, writer) = reflector::store::<Application>();
        let fanout = Fanout::new(2);
        let mut slow = fanout.subscribe();
        let (listed, _ready) = StoreReady::new();
        let (events, rx) = futures::channel::mpsc::unbounded();
        let forward = tokio::spawn(fanout.forward(reflector::reflector(writer, rx), store, listed));
        for name in ["a", "b", "c", "d"] {
            events
                .unbounded_send(Ok(watcher::Event::Apply(app(name))))
                .expect("forwarding");
        }
        drop(events);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!forward.is_finished(), "the watch waits for the subscriber");
        let mut seen = Vec::new();
        while let Some(object) = slow.next().await {
            seen.push(object);
            if seen.len() == 4 {
                break;
            }
        }
        assert_eq!(names(&seen), ["a", "b", "c", "d"]);
        forward.await.expect("forwarder task");
    }
}

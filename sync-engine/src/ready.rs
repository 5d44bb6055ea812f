//! Readiness of a reflector's store: the wait for its initial list, which any number of
//! tasks (both controllers, the live cache, the dashboard) may share.

use kube::runtime::watcher;

/// Whether a reflector's store has had its initial list; any number of tasks may wait.
///
/// Set from the reflector's own event stream ([`ReadySignal::observe`]), never from
/// `Store::wait_until_ready`: that (kube-runtime 5) parks a single waker, so of several
/// tasks waiting at the same time only the last one to poll is woken when the list
/// completes, and the others sleep until something else polls them (a timeout, or never).
/// kube's own controllers wait on their stores that way, so any second wait of ours on the
/// same store either steals their wake-up or loses its own. (It did: an `ApplicationSet`
/// controller beside the sync engine sometimes waited its full 60 s for a store that had
/// long been listed.)
#[derive(Clone, Debug)]
pub struct StoreReady(tokio::sync::watch::Receiver<bool>);

/// The setting half of a [`StoreReady`], owned by the task that drives the reflector.
#[derive(Debug)]
pub struct ReadySignal(tokio::sync::watch::Sender<bool>);

impl StoreReady {
    /// A wait and the signal that ends it.
    #[must_use]
    pub fn new() -> (ReadySignal, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (ReadySignal(tx), Self(rx))
    }

    /// Ready from the start: for a store filled before anyone reads it (the CLI, tests).
    #[must_use]
    pub fn already() -> Self {
        let (signal, ready) = Self::new();
        signal.0.send_replace(true);
        ready
    }

    /// Whether the initial list has completed, without waiting (`/readyz` asks this).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    /// A reflector that stops before its first list completes ends the wait with `false`.
    #[tokio::test]
    async fn a_reflector_gone_before_its_list_is_not_ready() {
        let (signal, ready) = StoreReady::new();
        signal.observe::<Secret, ()>(&Ok(watcher::Event::Init));
        assert!(!ready.is_ready());
        drop(signal);
        assert!(!ready.wait().await);
        assert!(StoreReady::already().is_ready());
        assert!(StoreReady::already().wait().await);
    }
}

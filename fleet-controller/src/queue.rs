//! Bounded trigger queues: "re-check this" signals (an object of an app changed, a push
//! arrived) from watches and HTTP handlers to the controllers.
//!
//! A sender never waits: the watch or the request handler that sends must not stall
//! behind a slow reconcile. When the queue is full the trigger is dropped and counted
//! (`argosy_queue_dropped_total{queue}`); that loses no work for good, because every
//! Application and ApplicationSet is re-checked on its periodic resync anyway, and the
//! controllers' own schedulers already merge repeated triggers for one object.

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

/// How many triggers wait at most in each queue before new ones are dropped. The
/// controllers take triggers as fast as they arrive (kube's scheduler de-duplicates them),
/// so a full queue means a stuck consumer, not a busy one.
pub const TRIGGER_CAPACITY: usize = 4096;

/// The sending half of a bounded trigger queue.
#[derive(Clone, Debug)]
pub struct TriggerSender<T> {
    tx: mpsc::Sender<T>,
    dropped: Counter,
}

/// A queue of at most `capacity` triggers whose drops count in `dropped`.
pub fn trigger_queue<T>(
    capacity: usize,
    dropped: Counter,
) -> (TriggerSender<T>, mpsc::Receiver<T>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (TriggerSender { tx, dropped }, rx)
}

impl<T> TriggerSender<T> {
    /// Queues `trigger` unless the queue is full (then it is dropped and counted) or its
    /// consumer is gone (shutting down: nothing to count). Never waits.
    pub fn send(&self, trigger: T) -> bool {
        match self.tx.try_send(trigger) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.inc();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let dropped = Counter::default();
        let (tx, mut rx) = trigger_queue::<u32>(2, dropped.clone());
        assert!(tx.send(1));
        assert!(tx.send(2));
        assert!(!tx.send(3), "full: dropped");
        assert_eq!(dropped.get(), 1);
        assert_eq!(rx.recv().await, Some(1));
        assert!(tx.send(4), "room again");
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(4));
        drop(rx);
        assert!(!tx.send(5));
        assert_eq!(dropped.get(), 1, "a closed queue is not a drop");
    }
}

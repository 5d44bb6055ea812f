//! Sharding of the sync engine by destination cluster, and the per-cluster write fence.
//!
//! # Flow
//!
//! Every replica holds a `coordination.k8s.io` Lease of its own (its membership; see
//! [`member`]), labelled with the group they share, and watches the group's Leases. The
//! live members, sorted ([`assign::shard_order`]), and the registered clusters give each
//! replica the clusters it should sync ([`assign::assign`], the same pure function on every
//! replica). What a replica may sync right now is its **held** set, kept in a
//! [`ShardFence`]:
//!
//! 1. when the assignment takes a cluster away, the cluster leaves the held set at once
//!    (nothing is written to it or for its Applications from then on);
//! 2. the replica then writes its **claims** (the clusters assigned to it,
//!    [`claims::Claims`]) into its Lease, together with the renewal;
//! 3. a cluster assigned to it but not held yet is gained only after that write succeeded
//!    and a quorum read of the group's Leases (a list without resourceVersion, answered
//!    from etcd, not from a cache) shows no other live member claiming it.
//!
//! A member is live while the resourceVersion of its Lease last changed less than the
//! Lease's duration ago on this replica's monotonic clock (no wall clocks compared across
//! machines). A replica's own writes pass only while its last renewal was sent less than
//! one duration ago: a paused or partitioned replica stops writing before the others
//! consider its Lease expired.
//!
//! # Guarantees
//!
//! * **At most one replica writes a cluster at a time** (up to one request's flight
//!   time, as the leader fence): a replica writes cluster C only while C is held, so its
//!   Lease in etcd claims C (claims are written before a gain and dropped only after the
//!   cluster left the held set). Two replicas gaining C both wrote their claims and then
//!   read all claims from etcd; the later read sees the earlier claim, so at most one of
//!   them gains. An expired member is ignored only after its own fence has closed.
//! * **Takeover**: a replica that dies is taken as gone one Lease duration after its last
//!   renewal was seen; its clusters are gained by the others at their next step (one
//!   second) after that: within the duration (10 s by default) plus about two seconds.
//! * **Every write passes the gate**: destination clients and the Application
//!   controller's management client are wrapped per cluster ([`ShardFence::wrap`]);
//!   a refused write fails with [`crate::fence::Fenced::NotHeld`] and is counted.
//!
//! # Caveats
//!
//! * While members disagree on the membership (for a watch event's latency) a cluster may
//!   be held by nobody: it waits, it is never written twice.
//! * A restarted replica waits for its previous Lease to expire (or to have been released
//!   by a clean shutdown) before it joins, as a new leader would.
//! * Claims are 32-bit hashes: a collision makes a gain wait for the other cluster's
//!   holder to let go; it never lets two replicas write one cluster.

pub mod assign;
pub mod claims;
pub mod member;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::fence::{Fenced, gated};

/// What this replica may sync; cheap to clone (one shared state).
#[derive(Clone, Debug)]
pub struct ShardFence {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    identity: String,
    state: Mutex<State>,
    refused: AtomicU64,
    /// Bumped whenever clusters are gained (their Applications need a reconcile) or lost.
    changes: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Until when this replica's own membership Lease is held: one duration after the
    /// last renewal that succeeded was sent.
    valid_until: Option<Instant>,
    /// Clusters (server keys) this replica may write now.
    held: HashSet<String>,
    /// Clusters the assignment gives this replica (held or waiting for a claim to end).
    assigned: usize,
    /// The live members as this replica last saw them, in shard order.
    members: Vec<String>,
}

/// This replica's share, for metrics, the API and logs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShardStatus {
    /// This replica's identity.
    pub identity: String,
    /// Its shard number (position among the live members), if it is one.
    pub shard: Option<usize>,
    /// The live members in shard order.
    pub members: Vec<String>,
    /// The clusters it syncs now (server keys, sorted).
    pub held: Vec<String>,
    /// How many clusters the assignment gives it (held plus waiting).
    pub assigned: usize,
    /// Whether its membership Lease is currently held.
    pub member: bool,
}

impl ShardFence {
    /// A fence for the replica `identity`, holding nothing until its membership starts.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                identity: identity.into(),
                state: Mutex::default(),
                refused: AtomicU64::new(0),
                changes: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    /// This replica's identity.
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// Whether a write to or for the cluster `key` (a server key) may go out now.
    #[must_use]
    pub fn permits(&self, key: &str) -> bool {
        self.permits_at(key, Instant::now())
    }

    fn permits_at(&self, key: &str, now: Instant) -> bool {
        let state = self.lock();
        state.valid_until.is_some_and(|until| now < until) && state.held.contains(key)
    }

    /// `client` with the gate of cluster `key` in front of every write.
    #[must_use]
    pub fn wrap(&self, key: &str, client: kube::Client) -> kube::Client {
        let fence = self.clone();
        let key = key.to_owned();
        gated(client, move || {
            if fence.permits(&key) {
                Ok(())
            } else {
                fence.inner.refused.fetch_add(1, Ordering::Relaxed);
                Err(Fenced::NotHeld {
                    cluster: key.clone(),
                })
            }
        })
    }

    /// How many writes this fence refused since the process started.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Ticks whenever the held set changes.
    #[must_use]
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// This replica's share now.
    #[must_use]
    pub fn status(&self) -> ShardStatus {
        let state = self.lock();
        let identity = self.inner.identity.clone();
        ShardStatus {
            shard: state.members.iter().position(|m| *m == identity),
            identity,
            members: state.members.clone(),
            held: state
                .held
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            assigned: state.assigned,
            member: state.valid_until.is_some_and(|u| Instant::now() < u),
        }
    }

    /// Whether the cluster `key` is in the held set (whatever the Lease's state).
    #[must_use]
    pub fn holds(&self, key: &str) -> bool {
        self.lock().held.contains(key)
    }

    /// A renewal sent at `sent` succeeded: the Lease is held until `valid_until`.
    pub(crate) fn renewed(&self, valid_until: Instant) {
        self.lock().valid_until = Some(valid_until);
    }

    /// The Lease is lost (taken, deleted, or released): nothing is held.
    pub(crate) fn lost(&self) {
        let dropped = {
            let mut state = self.lock();
            state.valid_until = None;
            state.assigned = 0;
            std::mem::take(&mut state.held)
        };
        if !dropped.is_empty() {
            self.changed();
        }
    }

    /// Records the membership and the assignment; drops at once every held cluster not
    /// in `assigned`. Returns the assigned clusters not held yet.
    pub(crate) fn assign(&self, members: Vec<String>, assigned: &HashSet<String>) -> Vec<String> {
        let (dropped, pending) = {
            let mut state = self.lock();
            state.members = members;
            state.assigned = assigned.len();
            let before = state.held.len();
            state.held.retain(|key| assigned.contains(key));
            let pending: Vec<String> = assigned
                .iter()
                .filter(|key| !state.held.contains(*key))
                .cloned()
                .collect();
            (before != state.held.len(), pending)
        };
        if dropped {
            self.changed();
        }
        pending
    }

    /// Starts holding `gained` (their claims are in etcd and nobody else claims them).
    pub(crate) fn gain(&self, gained: &[String]) {
        if gained.is_empty() {
            return;
        }
        self.lock().held.extend(gained.iter().cloned());
        self.changed();
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// FNV-1a 32 (Go's `hash/fnv` `New32a`): Argo CD's legacy method hashes cluster IDs with
/// it, and the claims are hashed with it (stable across builds and platforms).
pub(crate) fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn set(keys: &[&str]) -> HashSet<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn nothing_is_permitted_before_the_lease_and_the_gain() {
        let fence = ShardFence::new("a");
        let now = Instant::now();
        assert!(!fence.permits_at("c1", now));
        let pending = fence.assign(vec!["a".into()], &set(&["c1"]));
        assert_eq!(pending, ["c1"]);
        assert!(!fence.permits_at("c1", now), "assigned is not held");
        fence.gain(&pending);
        assert!(!fence.permits_at("c1", now), "held, but no renewal seen");
        fence.renewed(now + Duration::from_secs(10));
        assert!(fence.permits_at("c1", now));
        assert!(!fence.permits_at("c2", now), "only the held cluster");
        assert!(
            !fence.permits_at("c1", now + Duration::from_secs(10)),
            "the Lease runs out on the local clock"
        );
    }

    #[test]
    fn an_assignment_that_takes_a_cluster_away_closes_it_at_once() {
        let fence = ShardFence::new("a");
        let now = Instant::now();
        fence.renewed(now + Duration::from_secs(10));
        let pending = fence.assign(vec!["a".into()], &set(&["c1", "c2"]));
        fence.gain(&pending);
        let mut changes = fence.changes();
        changes.mark_unchanged();
        let pending = fence.assign(vec!["a".into(), "b".into()], &set(&["c2"]));
        assert!(pending.is_empty());
        assert!(!fence.permits_at("c1", now));
        assert!(fence.permits_at("c2", now));
        assert!(changes.has_changed().unwrap_or(false), "a loss is a change");
        assert_eq!(fence.status().held, ["c2"]);
        assert_eq!(fence.status().shard, Some(0));
    }

    #[test]
    fn a_lost_lease_drops_everything() {
        let fence = ShardFence::new("a");
        let now = Instant::now();
        fence.renewed(now + Duration::from_secs(10));
        fence.gain(&["c1".to_owned()]);
        fence.lost();
        assert!(!fence.permits_at("c1", now));
        assert!(fence.status().held.is_empty());
    }

    #[tokio::test]
    async fn a_wrapped_client_refuses_writes_to_a_cluster_not_held_unsent() {
        use std::sync::atomic::AtomicUsize;
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let service = tower::service_fn(move |_request: http::Request<kube::client::Body>| {
            counter.fetch_add(1, Ordering::Relaxed);
            async move {
                Ok::<_, std::convert::Infallible>(http::Response::new(kube::client::Body::from(
                    br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"}}"#.to_vec(),
                )))
            }
        });
        let fence = ShardFence::new("a");
        let client = fence.wrap("c1", kube::Client::new(service, "default"));
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "default");
        let patch = kube::api::Patch::Merge(serde_json::json!({"data": {"k": "v"}}));
        let error = api
            .patch("x", &kube::api::PatchParams::default(), &patch)
            .await
            .expect_err("not held");
        assert!(crate::fence::is_fenced(&error), "{error}");
        assert_eq!(sent.load(Ordering::Relaxed), 0, "the write was not sent");
        assert!(api.get("x").await.is_ok(), "reads pass");
        assert_eq!(fence.refused(), 1);
        fence.renewed(Instant::now() + Duration::from_secs(10));
        fence.gain(&["c1".to_owned()]);
        assert!(
            api.patch("x", &kube::api::PatchParams::default(), &patch)
                .await
                .is_ok()
        );
    }
}

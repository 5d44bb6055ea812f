//! Which replica reconciles an Application, and the client its writes go through.
//!
//! With sharding ([`argosy_sync_engine::shard`]), an Application belongs to the replica
//! that holds its destination cluster: only that replica reconciles it, and every write
//! for it (status, Events, the finalizer, refresh-request removals) passes the gate of
//! that cluster, as the writes to the cluster itself do. An Application whose destination
//! does not resolve to a registered cluster (a typo, a deleted or unreadable cluster
//! Secret) has no cluster to shard by: the leader reports on it, through the leader fence.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use argosy_crds::Application;
use argosy_crds::cluster::Cluster;
use argosy_crds::destination::{resolve, server_key};
use argosy_sync_engine::shard::ShardFence;
use kube::Client;

/// Who reconciles an Application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The replica holding this cluster (its server key).
    Cluster(String),
    /// The leader: the destination names no registered cluster.
    Leader,
}

impl Owner {
    /// The owner of `app` among the registered `clusters` (pure).
    #[must_use]
    pub fn of(app: &Application, clusters: &[Cluster]) -> Self {
        match resolve(&app.spec.destination, clusters) {
            Ok(cluster) => Self::Cluster(server_key(&cluster.server)),
            Err(_) => Self::Leader,
        }
    }
}

/// Which Applications are this replica's: all (while it leads) without sharding, else
/// those of the clusters its shard holds (and the unresolved ones while it leads).
#[derive(Clone, Debug)]
pub struct Ownership(Option<ShardFence>);

impl Ownership {
    /// Whether this replica reconciles an Application of `owner` now.
    #[must_use]
    pub fn reconciles(&self, owner: &Owner, leads: bool) -> bool {
        match (&self.0, owner) {
            (None, _) | (Some(_), Owner::Leader) => leads,
            (Some(shard), Owner::Cluster(key)) => shard.holds(key),
        }
    }
}

/// The write clients of the Application controller.
pub struct Writers {
    /// Fenced by the leader Lease (or open without election): unsharded writes.
    leader: Client,
    /// Present with sharding: the unfenced client each cluster's gate wraps.
    sharded: Option<(ShardFence, Client)>,
    /// One gated client per cluster (each wrap starts a buffer task: built once).
    per_cluster: Mutex<HashMap<String, Client>>,
}

impl Writers {
    /// Every write through `leader` (one replica, or a leader that syncs everything).
    #[must_use]
    pub fn unsharded(leader: Client) -> Self {
        Self {
            leader,
            sharded: None,
            per_cluster: Mutex::default(),
        }
    }

    /// Writes for a cluster through `shard`'s gate over `unfenced`; the rest through
    /// `leader`.
    #[must_use]
    pub fn sharded(leader: Client, shard: ShardFence, unfenced: Client) -> Self {
        Self {
            leader,
            sharded: Some((shard, unfenced)),
            per_cluster: Mutex::default(),
        }
    }

    /// Whether this replica reconciles an Application of `owner` now.
    #[must_use]
    pub fn reconciles(&self, owner: &Owner, leads: bool) -> bool {
        self.ownership().reconciles(owner, leads)
    }

    /// What decides which Applications are this replica's (cheap to clone).
    #[must_use]
    pub fn ownership(&self) -> Ownership {
        Ownership(self.sharded.as_ref().map(|(shard, _)| shard.clone()))
    }

    /// This replica's shard (`None`: not sharded).
    #[must_use]
    pub fn shard_status(&self) -> Option<argosy_sync_engine::shard::ShardStatus> {
        self.sharded.as_ref().map(|(shard, _)| shard.status())
    }

    /// Whether this replica syncs the cluster at `server` (always, without sharding).
    #[must_use]
    pub fn holds_server(&self, server: &str) -> bool {
        self.sharded
            .as_ref()
            .is_none_or(|(shard, _)| shard.holds(&server_key(server)))
    }

    /// The client an Application of `owner` is written through.
    #[must_use]
    pub fn client(&self, owner: Option<&Owner>) -> Client {
        match (&self.sharded, owner) {
            (Some((shard, unfenced)), Some(Owner::Cluster(key))) => self
                .per_cluster
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key.clone())
                .or_insert_with(|| shard.wrap(key, unfenced.clone()))
                .clone(),
            _ => self.leader.clone(),
        }
    }

    /// Forgets the gated clients of clusters this replica no longer holds.
    pub fn retain_held(&self) {
        if let Some((shard, _)) = &self.sharded {
            self.per_cluster
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|key, _| shard.holds(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argosy_crds::application::ApplicationDestination;

    fn app(server: &str, name: &str) -> Application {
        let mut app = Application::default();
        app.spec.destination = ApplicationDestination {
            server: server.to_owned(),
            name: name.to_owned(),
            ..Default::default()
        };
        app
    }

    fn cluster(name: &str, server: &str) -> Cluster {
        Cluster {
            name: name.to_owned(),
            server: server.to_owned(),
            ..Cluster::default()
        }
    }

    #[test]
    fn an_app_belongs_to_its_resolved_cluster_by_server_key() {
        let clusters = [cluster("w1", "https://w1:6443/")];
        assert_eq!(
            Owner::of(&app("", "w1"), &clusters),
            Owner::Cluster("https://w1:6443".to_owned())
        );
        assert_eq!(
            Owner::of(&app("https://w1:6443", ""), &clusters),
            Owner::Cluster("https://w1:6443".to_owned()),
            "by name or by server: one owner"
        );
        assert_eq!(
            Owner::of(&app("https://kubernetes.default.svc", ""), &clusters),
            Owner::Cluster("https://kubernetes.default.svc".to_owned())
        );
    }

    #[test]
    fn an_app_without_a_registered_cluster_belongs_to_the_leader() {
        let clusters = [cluster("w1", "https://w1:6443")];
        assert_eq!(Owner::of(&app("", "missing"), &clusters), Owner::Leader);
        assert_eq!(
            Owner::of(&app("https://x:1", "w1"), &clusters),
            Owner::Leader
        );
    }
}

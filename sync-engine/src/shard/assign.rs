//! Which replica syncs which cluster: a pure function of the live members and the
//! registered clusters, computed alike by every replica.
//!
//! Argo CD's three methods, by their `--sharding-method` names, over a membership that
//! changes at run time (Argo CD reads a fixed replica count): a member's shard number is
//! its position among the live members sorted by identity (numeric suffixes compared as
//! numbers, so a `StatefulSet`'s `argosy-2` comes before `argosy-10`, and its ordinal is
//! its shard while every pod is up).
//!
//! * `legacy`: FNV-1a (32 bit) of the cluster's ID (its Secret's UID) modulo the member
//!   count; a cluster without ID (the implicit in-cluster one) goes to shard 0. As Argo
//!   CD's: balanced only on average.
//! * `round-robin`: clusters sorted by ID, the i-th to shard `i mod members`. Balanced,
//!   but adding one cluster can move many.
//! * `consistent-hashing`: rendezvous hashing with bounded loads. Each cluster ranks the
//!   members by a hash of (member, cluster); clusters, in key order, go to their first
//!   ranked member still below `ceil(clusters / members)`. No member holds more than its
//!   share, and a member joining or leaving moves mostly the clusters it takes or gives.
//!
//! Under every method a cluster Secret's `shard` field pins the cluster to that shard
//! number while it is below the member count (Argo CD's rule); pinned clusters count
//! towards the bounded loads.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::Hasher as _;

/// How clusters are spread over the live members (`--sharding-method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShardingMethod {
    /// Argo CD's default: hash of the cluster ID modulo the member count.
    Legacy,
    /// Clusters sorted by ID, dealt out in turn.
    RoundRobin,
    /// Rendezvous hashing with bounded loads (Argosy's default).
    #[default]
    ConsistentHashing,
}

impl ShardingMethod {
    /// The name as Argo CD spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::RoundRobin => "round-robin",
            Self::ConsistentHashing => "consistent-hashing",
        }
    }
}

impl std::str::FromStr for ShardingMethod {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [Self::Legacy, Self::RoundRobin, Self::ConsistentHashing]
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown sharding method {name:?} (legacy, round-robin or consistent-hashing)"
                )
            })
    }
}

/// What assignment needs to know of one registered cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRef {
    /// The normalized server URL ([`argosy_crds::destination::server_key`]): what the
    /// per-cluster fence and the claims are keyed by.
    pub key: String,
    /// The cluster Secret's UID (Argo CD's cluster ID); empty for the implicit in-cluster
    /// cluster.
    pub id: String,
    /// The Secret's `shard` field, if it parses.
    pub pinned: Option<u32>,
}

/// The members in shard order: sorted by identity, numeric suffixes compared as numbers.
#[must_use]
pub fn shard_order(mut members: Vec<String>) -> Vec<String> {
    members.sort_by(|a, b| natural(a, b));
    members.dedup();
    members
}

/// Compares `argosy-2` before `argosy-10`: the trailing decimal digits as a number.
fn natural(a: &str, b: &str) -> Ordering {
    let split = |s: &str| {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (stem, number) = s.split_at(s.len() - digits);
        (stem.to_owned(), number.parse::<u128>().ok(), s.to_owned())
    };
    split(a).cmp(&split(b))
}

/// The shard number (index into `members`, which must be in [`shard_order`]) of every
/// cluster. Empty when there are no members.
#[must_use]
pub fn assign(
    method: ShardingMethod,
    members: &[String],
    clusters: &[ClusterRef],
) -> HashMap<String, usize> {
    let count = members.len();
    let mut shards = HashMap::with_capacity(clusters.len());
    if count == 0 {
        return shards;
    }
    let pinned = |c: &ClusterRef| {
        c.pinned
            .and_then(|s| usize::try_from(s).ok())
            .filter(|s| *s < count)
    };
    let mut free: Vec<&ClusterRef> = Vec::new();
    for cluster in clusters {
        match pinned(cluster) {
            Some(shard) => {
                shards.insert(cluster.key.clone(), shard);
            }
            None => free.push(cluster),
        }
    }
    match method {
        ShardingMethod::Legacy => {
            for cluster in free {
                let shard = if cluster.id.is_empty() {
                    0
                } else {
                    super::fnv1a32(cluster.id.as_bytes()) as usize % count
                };
                shards.insert(cluster.key.clone(), shard);
            }
        }
        ShardingMethod::RoundRobin => {
            // Argo CD indexes every cluster (pinned ones too) in ID order.
            let mut order: Vec<&ClusterRef> = clusters.iter().collect();
            order.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.key.cmp(&b.key)));
            for (index, cluster) in order.into_iter().enumerate() {
                if pinned(cluster).is_none() {
                    shards.insert(cluster.key.clone(), index % count);
                }
            }
        }
        ShardingMethod::ConsistentHashing => {
            let cap = clusters.len().div_ceil(count);
            let mut load = vec![0usize; count];
            for shard in shards.values() {
                load[*shard] += 1;
            }
            free.sort_by(|a, b| a.key.cmp(&b.key));
            for cluster in free {
                let mut ranked: Vec<(u64, usize)> = members
                    .iter()
                    .enumerate()
                    .map(|(shard, member)| (rendezvous(member, &cluster.key), shard))
                    .collect();
                ranked.sort_unstable_by(|a, b| b.cmp(a));
                // Pinned clusters can fill a member past the cap; then the least loaded.
                let shard = ranked
                    .iter()
                    .map(|(_, shard)| *shard)
                    .find(|shard| load[*shard] < cap)
                    .unwrap_or_else(|| {
                        (0..count)
                            .min_by_key(|s| (load[*s], *s))
                            .unwrap_or_default()
                    });
                load[shard] += 1;
                shards.insert(cluster.key.clone(), shard);
            }
        }
    }
    shards
}

/// The keys of the clusters `members[me]` syncs.
#[must_use]
pub fn clusters_of(
    method: ShardingMethod,
    members: &[String],
    me: &str,
    clusters: &[ClusterRef],
) -> Vec<String> {
    let Some(mine) = members.iter().position(|m| m == me) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = assign(method, members, clusters)
        .into_iter()
        .filter(|(_, shard)| *shard == mine)
        .map(|(key, _)| key)
        .collect();
    keys.sort();
    keys
}

/// The weight of `member` for `cluster` (FNV-1a 64 of both, then a finalizer so nearby
/// inputs spread).
fn rendezvous(member: &str, cluster: &str) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(member.as_bytes());
    hasher.write(&[0]);
    hasher.write(cluster.as_bytes());
    let mut x = hasher.finish();
    // splitmix64's finalizer.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters(n: usize) -> Vec<ClusterRef> {
        (0..n)
            .map(|i| ClusterRef {
                key: format!("https://10.0.{}.{}:6443", i / 250, i % 250),
                id: format!("uid-{i:04}"),
                pinned: None,
            })
            .collect()
    }

    fn members(n: usize) -> Vec<String> {
        shard_order((0..n).map(|i| format!("argosy-{i}")).collect())
    }

    fn loads(method: ShardingMethod, members: &[String], clusters: &[ClusterRef]) -> Vec<usize> {
        let mut load = vec![0; members.len()];
        for shard in assign(method, members, clusters).values() {
            load[*shard] += 1;
        }
        load
    }

    const METHODS: [ShardingMethod; 3] = [
        ShardingMethod::Legacy,
        ShardingMethod::RoundRobin,
        ShardingMethod::ConsistentHashing,
    ];

    #[test]
    fn every_cluster_has_exactly_one_member_under_every_method() {
        let clusters = clusters(100);
        for method in METHODS {
            for n in 1..=5 {
                let members = members(n);
                let shards = assign(method, &members, &clusters);
                assert_eq!(shards.len(), 100, "{method:?} {n}");
                assert!(shards.values().all(|s| *s < n));
                let union: usize = members
                    .iter()
                    .map(|m| clusters_of(method, &members, m, &clusters).len())
                    .sum();
                assert_eq!(union, 100, "the members' shares are disjoint and complete");
            }
        }
    }

    #[test]
    fn no_members_assign_nothing() {
        for method in METHODS {
            assert!(assign(method, &[], &clusters(3)).is_empty());
        }
    }

    #[test]
    fn shard_order_compares_ordinals_as_numbers() {
        let order = shard_order(vec![
            "argosy-10".into(),
            "argosy-2".into(),
            "argosy-0".into(),
            "argosy-2".into(),
            "other".into(),
        ]);
        assert_eq!(order, ["argosy-0", "argosy-2", "argosy-10", "other"]);
    }

    #[test]
    fn consistent_hashing_bounds_every_load_by_the_share() {
        for (n_clusters, n_members) in [(6, 3), (7, 3), (1000, 3), (10, 4), (2, 5)] {
            let load = loads(
                ShardingMethod::ConsistentHashing,
                &members(n_members),
                &clusters(n_clusters),
            );
            let cap = n_clusters.div_ceil(n_members);
            assert!(load.iter().all(|l| *l <= cap), "{load:?} cap {cap}");
        }
    }

    #[test]
    fn round_robin_is_balanced_to_one() {
        let load = loads(ShardingMethod::RoundRobin, &members(3), &clusters(100));
        assert_eq!(load, [34, 33, 33]);
    }

    #[test]
    fn a_member_leaving_moves_only_part_of_the_fleet_under_consistent_hashing() {
        let clusters = clusters(300);
        let three = members(3);
        let two: Vec<String> = three[..2].to_vec();
        let before = assign(ShardingMethod::ConsistentHashing, &three, &clusters);
        let after = assign(ShardingMethod::ConsistentHashing, &two, &clusters);
        let stayed = clusters
            .iter()
            .filter(|c| before[&c.key] < 2 && before[&c.key] == after[&c.key])
            .count();
        let kept_before = clusters.iter().filter(|c| before[&c.key] < 2).count();
        // Bounded loads move some of the survivors' clusters too, but most stay.
        assert!(
            stayed * 10 >= kept_before * 8,
            "{stayed} of {kept_before} stayed"
        );
    }

    #[test]
    fn a_pinned_shard_wins_while_it_exists() {
        let mut clusters = clusters(10);
        clusters[3].pinned = Some(2);
        clusters[4].pinned = Some(7);
        for method in METHODS {
            let shards = assign(method, &members(3), &clusters);
            assert_eq!(shards[&clusters[3].key], 2, "{method:?}");
            assert!(shards[&clusters[4].key] < 3, "an absent shard falls back");
            let two = assign(method, &members(2), &clusters);
            assert!(two[&clusters[3].key] < 2, "shard 2 is gone with 2 members");
        }
    }

    #[test]
    fn legacy_matches_go_fnv32a_and_puts_the_id_less_cluster_on_shard_zero() {
        // Go: fnv.New32a().Write([]byte("a")) -> 0xe40c292c.
        assert_eq!(super::super::fnv1a32(b"a"), 0xe40c_292c);
        let in_cluster = ClusterRef {
            key: "https://kubernetes.default.svc".into(),
            id: String::new(),
            pinned: None,
        };
        let shards = assign(
            ShardingMethod::Legacy,
            &members(3),
            std::slice::from_ref(&in_cluster),
        );
        assert_eq!(shards[&in_cluster.key], 0);
    }

    #[test]
    fn every_replica_computes_the_same_assignment_from_any_input_order() {
        let mut clusters = clusters(50);
        let members = members(4);
        let first = assign(ShardingMethod::ConsistentHashing, &members, &clusters);
        clusters.reverse();
        assert_eq!(
            first,
            assign(ShardingMethod::ConsistentHashing, &members, &clusters)
        );
        let shuffled = shard_order(members.iter().rev().cloned().collect());
        assert_eq!(
            first,
            assign(ShardingMethod::ConsistentHashing, &shuffled, &clusters)
        );
    }
}

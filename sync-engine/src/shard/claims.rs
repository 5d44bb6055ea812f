//! What a member's Lease says it syncs: its claims, one 32-bit hash per cluster key.
//!
//! A member writes its claims into its own Lease before it starts syncing a cluster, and
//! stops syncing a cluster before it writes claims without it; a member gains a cluster
//! only when no other live member's Lease claims it (see [`super`]). Hashes keep a Lease
//! small (9 bytes per cluster: 1,000 clusters in 9 KB); two keys with the same hash only
//! make a gain wait, never let two members write one cluster.

use std::collections::BTreeSet;

/// The annotation on a member's Lease holding its claims.
pub const CLAIMS_ANNOTATION: &str = "argosy.io/shard-claims";

/// The claim of one cluster key.
#[must_use]
pub fn claim_of(key: &str) -> u32 {
    // Stable across builds and platforms: other replicas read it.
    super::fnv1a32(key.as_bytes())
}

/// A member's claims as read from its Lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Claims {
    /// These clusters (by [`claim_of`]).
    Some(BTreeSet<u32>),
    /// An annotation that does not parse: every cluster is taken as claimed, so a corrupt
    /// Lease stops gains rather than letting two members write one cluster.
    #[default]
    Unreadable,
}

impl Claims {
    /// The claims of the cluster `keys`.
    pub fn of<'a>(keys: impl IntoIterator<Item = &'a String>) -> Self {
        Self::Some(keys.into_iter().map(|k| claim_of(k)).collect())
    }

    /// Claims nothing.
    #[must_use]
    pub fn none() -> Self {
        Self::Some(BTreeSet::new())
    }

    /// Whether the cluster `key` is claimed.
    #[must_use]
    pub fn claims(&self, key: &str) -> bool {
        match self {
            Self::Some(hashes) => hashes.contains(&claim_of(key)),
            Self::Unreadable => true,
        }
    }

    /// How many clusters are claimed (`None`: unreadable).
    #[must_use]
    pub fn len(&self) -> Option<usize> {
        match self {
            Self::Some(hashes) => Some(hashes.len()),
            Self::Unreadable => None,
        }
    }

    /// Whether nothing is claimed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The annotation's value: space-separated lowercase hex, in order.
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            Self::Some(hashes) => hashes
                .iter()
                .map(|h| format!("{h:08x}"))
                .collect::<Vec<_>>()
                .join(" "),
            Self::Unreadable => "unreadable".to_owned(),
        }
    }

    /// Reads an annotation (`None`, absent: nothing claimed; a member writes it when it
    /// takes its Lease).
    #[must_use]
    pub fn decode(annotation: Option<&str>) -> Self {
        let Some(text) = annotation else {
            return Self::none();
        };
        text.split_ascii_whitespace()
            .map(|word| {
                (word.len() == 8)
                    .then(|| u32::from_str_radix(word, 16).ok())
                    .flatten()
            })
            .collect::<Option<BTreeSet<u32>>>()
            .map_or(Self::Unreadable, Self::Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_through_the_annotation() {
        let keys: Vec<String> = (0..50)
            .map(|i| format!("https://127.0.0.{i}:6443"))
            .collect();
        let claims = Claims::of(&keys);
        let read = Claims::decode(Some(&claims.encode()));
        assert_eq!(read, claims);
        assert!(keys.iter().all(|k| read.claims(k)));
        assert!(!read.claims("https://elsewhere:6443"));
        assert_eq!(read.len(), Some(50));
    }

    #[test]
    fn an_absent_annotation_claims_nothing_and_a_corrupt_one_everything() {
        assert!(Claims::decode(None).is_empty());
        assert!(Claims::decode(Some("")).is_empty());
        for corrupt in ["zz", "0000000g", "123", "000000001", "deadbeef x"] {
            let claims = Claims::decode(Some(corrupt));
            assert_eq!(claims, Claims::Unreadable, "{corrupt}");
            assert!(claims.claims("https://any:6443"));
        }
    }

    #[test]
    fn the_hash_is_fnv1a_32() {
        assert_eq!(claim_of("a"), 0xe40c_292c);
    }
}

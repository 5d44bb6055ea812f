//! Telling the watch echo of the engine's own writes from real changes.
//!
//! Every write the sync engine makes (a server-side apply, a status patch) comes back as
//! a watch event. The reconcile that wrote already compared against the write's result,
//! so that event, at exactly the resourceVersion the write returned, needs no reconcile;
//! any other event of the object does. The write's response and its event race each
//! other, so a write is marked before it is sent: events arriving meanwhile are held
//! back and judged when the response tells the version.
//!
//! resourceVersions are compared as integers (etcd revisions, on every API server Argosy
//! supports); an event without one always triggers. A write whose outcome is never
//! reported (its reconcile was cancelled) holds nothing back after `HOLD_LIMIT`.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The longest a write holds its object's events back.
const HOLD_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Echo {
    /// The write is under way since then; the versions of the events held back meanwhile.
    InFlight(Instant, Vec<u64>),
    /// Written at this version; its event is still to come.
    Expected(u64),
}

/// The engine's writes under way or awaiting their echo, by object.
#[derive(Debug)]
pub struct Echoes<K> {
    entries: HashMap<K, Echo>,
    hold_limit: Duration,
}

impl<K> Default for Echoes<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            hold_limit: HOLD_LIMIT,
        }
    }
}

impl<K: Hash + Eq> Echoes<K> {
    /// `key` is about to be written: hold back its events until [`Self::written`].
    pub fn writing(&mut self, key: K) {
        self.entries
            .insert(key, Echo::InFlight(Instant::now(), Vec::new()));
    }

    /// The write of `key` returned `version` (`None`: it failed). True when an event held
    /// back meanwhile was somebody else's change, which must trigger now.
    pub fn written(&mut self, key: K, version: Option<u64>) -> bool {
        let held = match self.entries.remove(&key) {
            Some(Echo::InFlight(_, held)) => held,
            // Forgotten meanwhile (a re-list): nothing held back.
            _ => Vec::new(),
        };
        let Some(version) = version else {
            return !held.is_empty();
        };
        if !held.contains(&version) {
            self.entries.insert(key, Echo::Expected(version));
        }
        held.iter().any(|&seen| seen != version)
    }

    /// An event of `key` at `version`: true when it should trigger a reconcile now.
    pub fn event(&mut self, key: &K, version: Option<u64>) -> bool {
        match (self.entries.get_mut(key), version) {
            (None, _) => true,
            (Some(Echo::InFlight(since, _)), _) if since.elapsed() >= self.hold_limit => {
                // Its outcome never came: release the key.
                self.entries.remove(key);
                true
            }
            (Some(Echo::InFlight(_, held)), Some(version)) => {
                held.push(version);
                false
            }
            (Some(Echo::Expected(expected)), Some(version)) if version < *expected => {
                // A change from before the write, still on its way: the echo follows.
                true
            }
            (Some(Echo::Expected(expected)), Some(version)) => {
                let echo = version == *expected;
                self.entries.remove(key);
                !echo
            }
            (Some(_), None) => {
                self.entries.remove(key);
                true
            }
        }
    }

    /// Forgets the writes of `key` (its object is gone).
    pub fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Forgets every write (a re-list re-triggers everything anyway).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A resourceVersion as [`Echoes`] compares it.
#[must_use]
pub fn version_of(resource_version: Option<&str>) -> Option<u64> {
    resource_version?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_event_at_the_written_version_is_an_echo() {
        let mut echoes = Echoes::default();
        assert!(echoes.event(&"a", Some(1)), "nothing written: a change");

        // The response comes first, then the events.
        echoes.writing("a");
        assert!(!echoes.written("a", Some(5)));
        assert!(echoes.event(&"a", Some(4)), "older: somebody's change");
        assert!(!echoes.event(&"a", Some(5)), "the echo");
        assert!(echoes.event(&"a", Some(6)), "after the echo: a change");

        // The echo comes before the response.
        echoes.writing("a");
        assert!(!echoes.event(&"a", Some(7)));
        assert!(!echoes.written("a", Some(7)));
        assert!(echoes.event(&"a", Some(8)), "nothing expected any more");

        // Somebody else's change lands while the write is under way.
        echoes.writing("a");
        assert!(!echoes.event(&"a", Some(9)));
        assert!(echoes.written("a", Some(10)), "9 was not ours");
        assert!(!echoes.event(&"a", Some(10)), "and 10 still is");

        // A failed write releases what it held back.
        echoes.writing("a");
        assert!(!echoes.written("a", None), "nothing held back");
        echoes.writing("a");
        assert!(!echoes.event(&"a", Some(11)));
        assert!(echoes.written("a", None));
        assert!(echoes.event(&"a", Some(12)));
    }

    #[test]
    fn a_write_never_reported_holds_nothing_back_past_the_limit() {
        let mut echoes = Echoes {
            hold_limit: Duration::ZERO,
            ..Echoes::default()
        };
        echoes.writing("a");
        assert!(
            echoes.event(&"a", Some(3)),
            "released: the write's reconcile is gone"
        );
        assert!(
            !echoes.written("a", Some(4)),
            "a late report holds nothing back"
        );
        assert!(!echoes.event(&"a", Some(4)));
    }

    #[test]
    fn a_skipped_echo_or_an_unversioned_event_clears_the_expectation() {
        let mut echoes = Echoes::default();
        echoes.writing("a");
        echoes.written("a", Some(5));
        assert!(echoes.event(&"a", Some(6)), "the echo was coalesced away");
        assert!(echoes.event(&"a", Some(5)), "no expectation left");

        echoes.writing("b");
        echoes.written("b", Some(5));
        assert!(echoes.event(&"b", None));
        echoes.writing("c");
        echoes.clear();
        assert!(
            !echoes.written("c", Some(3)),
            "forgotten: nothing held back"
        );
        assert!(!echoes.event(&"c", Some(3)), "but the echo is still known");
    }
}

//! A replica's membership: its own Lease, what it sees of the group's Leases, and the
//! step that moves the held set of its [`ShardFence`] (the protocol is in [`super`]).
//!
//! [`Seen`] and the assignment are pure; [`run`] is the loop around them: take the own
//! Lease, then once a second (and on every change of the group's Leases) compute the
//! assignment, drop what is no longer assigned, renew the Lease with the claims, and
//! gain what is assigned and claimed by no other live member in a quorum read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};

use super::ShardFence;
use super::assign::{ClusterRef, ShardingMethod, clusters_of, shard_order};
use super::claims::{CLAIMS_ANNOTATION, Claims};

/// The label naming the group a member Lease belongs to (the replicas of one install).
pub const GROUP_LABEL: &str = "argosy.io/shard-group";

/// How often the step runs without a Lease event (a dead member is noticed by time).
const STEP: Duration = Duration::from_secs(1);

/// What a failed Lease request was doing.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// Reading the own Lease before taking it.
    #[error("reading the member Lease {name}: {source}")]
    Read {
        /// The Lease's name.
        name: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// Creating or taking over the own Lease.
    #[error("taking the member Lease {name}: {source}")]
    Take {
        /// The Lease's name.
        name: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// Renewing the own Lease (with the claims).
    #[error("renewing the member Lease {name}: {source}")]
    Renew {
        /// The Lease's name.
        name: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// Releasing the own Lease at shutdown.
    #[error("releasing the member Lease {name}: {source}")]
    Release {
        /// The Lease's name.
        name: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// The quorum read of the group's Leases before a gain.
    #[error("listing the member Leases of {group}: {source}")]
    List {
        /// The group.
        group: String,
        /// The API server's answer.
        source: kube::Error,
    },
}

impl MemberError {
    /// A bounded label for logs and metrics.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::Take { .. } => "take",
            Self::Renew { .. } => "renew",
            Self::Release { .. } => "release",
            Self::List { .. } => "list",
        }
    }
}

/// Settings of one replica's membership.
#[derive(Clone, Debug)]
pub struct MembershipSettings {
    /// Where the Leases live (the control plane's namespace).
    pub namespace: String,
    /// The group: replicas of one install share it (the leader Lease's name).
    pub group: String,
    /// This replica's identity (unique among the replicas).
    pub identity: String,
    /// How long a renewal counts; renewals are sent every third of it.
    pub duration: Duration,
    /// How clusters are spread.
    pub method: ShardingMethod,
}

/// The clusters to spread, read at every step.
pub type ClusterList = Arc<dyn Fn() -> Vec<ClusterRef> + Send + Sync>;

/// The name of `identity`'s member Lease in `group`: `<group>-member-<identity>`, made a
/// valid object name (lowercase alphanumerics and `-`; a hash suffix when that changed or
/// shortened it, so two identities never share a Lease).
#[must_use]
pub fn lease_name(group: &str, identity: &str) -> String {
    let wanted = format!("{group}-member-{identity}");
    let mut name: String = wanted
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    if name != wanted || name.len() > 200 {
        name.truncate(200);
        name = format!(
            "{}-{:08x}",
            name.trim_end_matches('-'),
            super::fnv1a32(wanted.as_bytes())
        );
    }
    name.trim_matches('-').to_owned()
}

/// One Lease of the group as this replica last saw it.
#[derive(Clone, Debug)]
struct SeenLease {
    holder: Option<String>,
    version: String,
    claims: Claims,
    duration: Duration,
    /// When this version was first seen here.
    seen_at: Instant,
}

/// What this replica saw of the group's Leases (pure: times are passed in).
#[derive(Debug, Default)]
pub struct Seen {
    leases: HashMap<String, SeenLease>,
}

impl Seen {
    /// Records `lease` as seen at `now` (a version seen before keeps its first sighting:
    /// only a new version proves its holder alive).
    pub fn observe(&mut self, lease: &Lease, fallback: Duration, now: Instant) {
        let Some(name) = lease.metadata.name.clone() else {
            return;
        };
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let spec = lease.spec.clone().unwrap_or_default();
        let seen_at = match self.leases.get(&name) {
            Some(previous) if previous.version == version => previous.seen_at,
            _ => now,
        };
        let claims = Claims::decode(
            lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLAIMS_ANNOTATION))
                .map(String::as_str),
        );
        self.leases.insert(
            name,
            SeenLease {
                holder: spec.holder_identity.filter(|h| !h.is_empty()),
                version,
                claims,
                duration: spec
                    .lease_duration_seconds
                    .and_then(|s| u64::try_from(s).ok())
                    .filter(|s| *s > 0)
                    .map_or(fallback, Duration::from_secs),
                seen_at,
            },
        );
    }

    /// Forgets a deleted Lease.
    pub fn forget(&mut self, name: &str) {
        self.leases.remove(name);
    }

    /// Replaces everything by a complete list (a quorum read), seen at `now`.
    pub fn replace_all(&mut self, listed: &[Lease], fallback: Duration, now: Instant) {
        let names: HashSet<&str> = listed
            .iter()
            .filter_map(|l| l.metadata.name.as_deref())
            .collect();
        self.leases.retain(|name, _| names.contains(name.as_str()));
        for lease in listed {
            self.observe(lease, fallback, now);
        }
    }

    fn live<'a>(&'a self, own: &'a str, now: Instant) -> impl Iterator<Item = &'a SeenLease> {
        self.leases
            .iter()
            .filter(move |(name, lease)| {
                name.as_str() != own
                    && lease.holder.is_some()
                    && lease
                        .seen_at
                        .checked_add(lease.duration)
                        .is_none_or(|until| now < until)
            })
            .map(|(_, lease)| lease)
    }

    /// The holders of the live Leases other than `own` (the Lease's name).
    #[must_use]
    pub fn others(&self, own: &str, now: Instant) -> Vec<String> {
        self.live(own, now)
            .filter_map(|l| l.holder.clone())
            .collect()
    }

    /// Which of `keys` a live Lease other than `own` claims.
    #[must_use]
    pub fn claimed_by_others(&self, own: &str, keys: &[String], now: Instant) -> HashSet<String> {
        let live: Vec<&SeenLease> = self.live(own, now).collect();
        keys.iter()
            .filter(|key| live.iter().any(|l| l.claims.claims(key)))
            .cloned()
            .collect()
    }
}

/// Whether `lease` is the own Lease (`own`) held by someone other than `identity`.
fn taken_from(lease: &Lease, own: &str, identity: &str) -> bool {
    lease.metadata.name.as_deref() == Some(own)
        && lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            .is_some_and(|holder| !holder.is_empty() && holder != identity)
}

/// Holds this replica's membership until `shutdown`, then lets go of every cluster and
/// releases the Lease. `client` must not be fenced (it writes the Lease).
pub async fn run(
    fence: ShardFence,
    client: kube::Client,
    settings: MembershipSettings,
    clusters: ClusterList,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let own = lease_name(&settings.group, &settings.identity);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let wake = Arc::new(tokio::sync::Notify::new());
    let watch = {
        let (seen, wake, fallback) = (seen.clone(), wake.clone(), settings.duration);
        let (fence, own, identity) = (fence.clone(), own.clone(), settings.identity.clone());
        let config =
            watcher::Config::default().labels(&format!("{GROUP_LABEL}={}", settings.group));
        watcher(api.clone(), config)
            .default_backoff()
            .for_each(move |event| {
                let now = Instant::now();
                {
                    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    match &event {
                        Ok(watcher::Event::Apply(l) | watcher::Event::InitApply(l)) => {
                            seen.observe(l, fallback, now);
                            if taken_from(l, &own, &identity) {
                                // Another replica wrote the own Lease: stop writing now, not
                                // at the next renewal.
                                fence.lost();
                            }
                        }
                        Ok(watcher::Event::Delete(l)) => {
                            seen.forget(l.metadata.name.as_deref().unwrap_or_default());
                        }
                        Ok(_) => {}
                        Err(error) => tracing::debug!(%error, "watching the member Leases"),
                    }
                }
                wake.notify_one();
                async {}
            })
    };
    let mut member = Member {
        api,
        own,
        settings,
        fence,
        seen,
        clusters,
        lease: None,
        published: None,
        renewed_at: None,
    };
    let hold = async {
        loop {
            member.step().await;
            tokio::select! {
                () = tokio::time::sleep(STEP) => {}
                () = wake.notified() => {}
            }
        }
    };
    tokio::select! {
        () = hold => {}
        () = watch => {}
        () = shutdown => {}
    }
    member.release().await;
}

/// The loop's state.
struct Member {
    api: Api<Lease>,
    own: String,
    settings: MembershipSettings,
    fence: ShardFence,
    seen: Arc<Mutex<Seen>>,
    clusters: ClusterList,
    /// The own Lease as last written (its resourceVersion makes the next write a
    /// compare-and-swap); `None` while not held.
    lease: Option<Lease>,
    /// The claims in the own Lease in etcd.
    published: Option<Claims>,
    /// When the last renewal that succeeded was sent.
    renewed_at: Option<Instant>,
}

impl Member {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn step(&mut self) {
        let now = Instant::now();
        if self.lease.is_some() && self.seen_taken() {
            // Taken (the watch saw it): no renewal is sent over another holder's Lease.
            tracing::warn!(lease = %self.own, "membership Lease taken by another holder");
            self.fence.lost();
            self.lease = None;
            self.published = None;
            self.renewed_at = None;
        }
        let valid = self
            .renewed_at
            .and_then(|at| at.checked_add(self.settings.duration))
            .is_some_and(|until| now < until);
        if !valid {
            // Lapsed (or never held): whatever was held may have been taken meanwhile.
            self.fence.lost();
            self.published = None;
            if self.lease.is_some() {
                tracing::warn!(lease = %self.own, "membership lapsed: renewals failed for a whole Lease duration");
            }
            self.lease = None;
            self.renewed_at = None;
            if let Err(e) = self.take(now).await {
                tracing::warn!(category = e.category(), error = %e, "membership");
            }
            if self.lease.is_none() {
                return;
            }
        }
        let mut members = self.seen().others(&self.own, Instant::now());
        members.push(self.settings.identity.clone());
        let members = shard_order(members);
        let assigned: HashSet<String> = clusters_of(
            self.settings.method,
            &members,
            &self.settings.identity,
            &(self.clusters)(),
        )
        .into_iter()
        .collect();
        let pending = self.fence.assign(members, &assigned);
        let claims = Claims::of(&assigned);
        let renew_due = self
            .renewed_at
            .is_none_or(|at| at.elapsed() >= self.settings.duration / 3);
        if (self.published.as_ref() != Some(&claims) || renew_due)
            && let Err(e) = self.renew(claims).await
        {
            tracing::warn!(category = e.category(), error = %e, "membership");
            return;
        }
        if pending.is_empty() {
            return;
        }
        // Gains: the claims are in etcd (just written); nobody else may claim them.
        match self
            .api
            .list(&ListParams::default().labels(&self.selector()))
            .await
        {
            Ok(list) => {
                let now = Instant::now();
                let blocked = {
                    let mut seen = self.seen();
                    seen.replace_all(&list.items, self.settings.duration, now);
                    seen.claimed_by_others(&self.own, &pending, now)
                };
                let gained: Vec<String> = pending
                    .into_iter()
                    .filter(|k| !blocked.contains(k))
                    .collect();
                if !gained.is_empty() {
                    tracing::info!(
                        clusters = gained.len(),
                        waiting = blocked.len(),
                        "shard: clusters gained"
                    );
                }
                self.fence.gain(&gained);
            }
            Err(source) => {
                let e = MemberError::List {
                    group: self.settings.group.clone(),
                    source,
                };
                tracing::warn!(category = e.category(), error = %e, "membership");
            }
        }
    }

    fn selector(&self) -> String {
        format!("{GROUP_LABEL}={}", self.settings.group)
    }

    /// Takes the own Lease if it is free: absent, released, or unchanged for a whole
    /// duration (a crashed earlier process of this identity).
    async fn take(&mut self, now: Instant) -> Result<(), MemberError> {
        let existing = self
            .api
            .get_opt(&self.own)
            .await
            .map_err(|source| MemberError::Read {
                name: self.own.clone(),
                source,
            })?;
        let fresh = self.lease_object(existing.as_ref(), &Claims::none());
        let sent = Instant::now();
        let written = match &existing {
            None => self.api.create(&PostParams::default(), &fresh).await,
            Some(lease) => {
                self.seen().observe(lease, self.settings.duration, now);
                if self.seen_holder_alive(now) {
                    // Held by an earlier process; wait for it to expire or be released.
                    return Ok(());
                }
                self.api
                    .replace(&self.own, &PostParams::default(), &fresh)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                tracing::info!(lease = %self.own, "membership Lease taken");
                self.lease = Some(lease);
                self.published = Some(Claims::none());
                self.renewed_at = Some(sent);
                self.fence.renewed(sent + self.settings.duration);
                Ok(())
            }
            // Someone else took or renewed it meanwhile: try again next step.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(source) => Err(MemberError::Take {
                name: self.own.clone(),
                source,
            }),
        }
    }

    /// Whether the own Lease, as last seen, is held by someone else.
    fn seen_taken(&self) -> bool {
        self.seen().leases.get(&self.own).is_some_and(|lease| {
            lease
                .holder
                .as_deref()
                .is_some_and(|holder| holder != self.settings.identity)
        })
    }

    /// Whether the own Lease, as seen, has a holder that is still live.
    fn seen_holder_alive(&self, now: Instant) -> bool {
        let seen = self.seen();
        seen.leases.get(&self.own).is_some_and(|lease| {
            lease.holder.is_some()
                && lease
                    .seen_at
                    .checked_add(lease.duration)
                    .is_none_or(|until| now < until)
        })
    }

    /// Renews the own Lease with `claims` (compare-and-swap on the last written version).
    async fn renew(&mut self, claims: Claims) -> Result<(), MemberError> {
        let object = self.lease_object(self.lease.as_ref(), &claims);
        let sent = Instant::now();
        match self
            .api
            .replace(&self.own, &PostParams::default(), &object)
            .await
        {
            Ok(lease) => {
                self.lease = Some(lease);
                self.published = Some(claims);
                self.renewed_at = Some(sent);
                self.fence.renewed(sent + self.settings.duration);
                Ok(())
            }
            Err(source) => {
                if let kube::Error::Api(status) = &source
                    && (status.code == 409 || status.code == 404)
                {
                    // Changed or deleted by someone else: this replica no longer holds it.
                    tracing::warn!(lease = %self.own, code = status.code, "membership Lease lost");
                    self.fence.lost();
                    self.lease = None;
                    self.published = None;
                    self.renewed_at = None;
                }
                Err(MemberError::Renew {
                    name: self.own.clone(),
                    source,
                })
            }
        }
    }

    /// Lets go of every cluster, then releases the Lease (holder cleared, nothing
    /// claimed), so the others take over at their next step instead of after expiry.
    async fn release(&mut self) {
        self.fence.lost();
        let Some(lease) = self.lease.take() else {
            return;
        };
        let mut object = self.lease_object(Some(&lease), &Claims::none());
        if let Some(spec) = object.spec.as_mut() {
            spec.holder_identity = None;
        }
        match self
            .api
            .replace(&self.own, &PostParams::default(), &object)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.own, "membership Lease released"),
            Err(source) => {
                let e = MemberError::Release {
                    name: self.own.clone(),
                    source,
                };
                tracing::warn!(category = e.category(), error = %e, "membership");
            }
        }
    }

    /// The own Lease as it is written: held by this replica now, with `claims`; the
    /// resourceVersion of `current` (if any) makes the write a compare-and-swap.
    fn lease_object(&self, current: Option<&Lease>, claims: &Claims) -> Lease {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let acquired = current
            .and_then(|l| l.spec.as_ref())
            .filter(|s| s.holder_identity.as_deref() == Some(self.settings.identity.as_str()))
            .and_then(|s| s.acquire_time.clone())
            .unwrap_or_else(|| now.clone());
        Lease {
            metadata: ObjectMeta {
                name: Some(self.own.clone()),
                namespace: Some(self.settings.namespace.clone()),
                resource_version: current.and_then(|l| l.metadata.resource_version.clone()),
                labels: Some([(GROUP_LABEL.to_owned(), self.settings.group.clone())].into()),
                annotations: Some([(CLAIMS_ANNOTATION.to_owned(), claims.encode())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.settings.identity.clone()),
                lease_duration_seconds: i32::try_from(self.settings.duration.as_secs().max(1)).ok(),
                acquire_time: Some(acquired),
                renew_time: Some(now),
                ..LeaseSpec::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(10);

    fn lease(name: &str, holder: Option<&str>, version: &str, claims: &[&str]) -> Lease {
        let keys: Vec<String> = claims.iter().map(|c| (*c).to_owned()).collect();
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                resource_version: Some(version.to_owned()),
                annotations: Some(
                    [(CLAIMS_ANNOTATION.to_owned(), Claims::of(&keys).encode())].into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(10),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn lease_names_are_valid_and_distinct() {
        assert_eq!(
            lease_name("argosy-controller", "argosy-0"),
            "argosy-controller-member-argosy-0"
        );
        let a = lease_name("argosy-controller", "Pod_A");
        let b = lease_name("argosy-controller", "pod-a");
        assert_ne!(a, b, "a changed name carries a hash of the original");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        let long = lease_name("g", &"x".repeat(400));
        assert!(long.len() <= 253);
    }

    #[test]
    fn a_member_is_live_until_its_lease_is_unchanged_for_a_duration() {
        let t0 = Instant::now();
        let mut seen = Seen::default();
        seen.observe(&lease("b", Some("b"), "1", &[]), D, t0);
        assert_eq!(seen.others("a", t0 + D / 2), ["b"]);
        // The same version again (a re-list) proves nothing.
        seen.observe(&lease("b", Some("b"), "1", &[]), D, t0 + D / 2);
        assert!(
            seen.others("a", t0 + D).is_empty(),
            "expired on the local clock"
        );
        seen.observe(&lease("b", Some("b"), "2", &[]), D, t0 + D);
        assert_eq!(seen.others("a", t0 + D), ["b"], "a renewal revives it");
        seen.observe(&lease("b", None, "3", &[]), D, t0 + D);
        assert!(seen.others("a", t0 + D).is_empty(), "released");
    }

    #[test]
    fn the_own_lease_is_never_another_member() {
        let t0 = Instant::now();
        let mut seen = Seen::default();
        seen.observe(&lease("a", Some("a"), "1", &["c1"]), D, t0);
        assert!(seen.others("a", t0).is_empty());
        assert!(
            seen.claimed_by_others("a", &["c1".to_owned()], t0)
                .is_empty()
        );
    }

    #[test]
    fn a_claim_blocks_a_gain_until_it_is_dropped_or_its_holder_expires() {
        let t0 = Instant::now();
        let keys = ["c1".to_owned(), "c2".to_owned()];
        let mut seen = Seen::default();
        seen.replace_all(&[lease("b", Some("b"), "5", &["c1"])], D, t0);
        assert_eq!(
            seen.claimed_by_others("a", &keys, t0),
            HashSet::from(["c1".to_owned()])
        );
        // Dropped from the claims: gainable.
        seen.replace_all(&[lease("b", Some("b"), "6", &[])], D, t0 + D / 2);
        assert!(seen.claimed_by_others("a", &keys, t0 + D / 2).is_empty());
        // Claimed again, then never renewed: blocked for one duration, then free.
        seen.replace_all(&[lease("b", Some("b"), "7", &["c2"])], D, t0 + D);
        assert_eq!(seen.claimed_by_others("a", &keys, t0 + D + D / 2).len(), 1);
        assert!(seen.claimed_by_others("a", &keys, t0 + D + D).is_empty());
        // A Lease gone from the list claims nothing.
        seen.replace_all(&[lease("b", Some("b"), "8", &["c2"])], D, t0 + 3 * D);
        seen.replace_all(&[], D, t0 + 3 * D);
        assert!(seen.claimed_by_others("a", &keys, t0 + 3 * D).is_empty());
    }

    #[test]
    fn an_unreadable_claim_blocks_every_gain() {
        let t0 = Instant::now();
        let mut corrupt = lease("b", Some("b"), "1", &[]);
        corrupt
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(CLAIMS_ANNOTATION.to_owned(), "not hex".to_owned());
        let mut seen = Seen::default();
        seen.replace_all(&[corrupt], D, t0);
        assert_eq!(seen.claimed_by_others("a", &["c9".to_owned()], t0).len(), 1);
    }
}

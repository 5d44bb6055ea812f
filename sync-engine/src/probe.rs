//! The periodic probe of the destination clusters in use: how a cluster whose API server
//! hangs (connections accepted, nothing answered) is marked unreachable within seconds.
//!
//! A crashed API server fails its watches at once ([`crate::live`]); a hung one fails
//! nothing: its watches wait for their deadline, and a reconcile that needs no request
//! (everything cached) would compare against an old picture forever. So every cluster some
//! app uses (one with a watch in the [`LiveCache`]) is asked `GET /version` every
//! [`ProbeSettings::interval`], at most one probe in flight per cluster, each bounded by
//! [`ProbeSettings::timeout`]. A probe without an answer marks the cluster unreachable in the
//! live cache ([`LiveCache::probed`]): its apps are re-triggered and hold with the
//! Unreachable condition, and the connection state (metrics, dashboard) shows the error. The
//! cluster's request clients are held too ([`crate::clients::Hold`]): nothing is sent to it,
//! and a request still waiting for it is abandoned, so no reconcile waits out the request
//! timeout. The first probe answered after that clears both and re-triggers them, so they compare and
//! sync again. A cluster that stops answering is marked at most
//! [`ProbeSettings::detection_bound`] after its last answer, or after the reconcile that
//! first watched it (the live cache tells the probe at once: [`LiveCache::servers_added`]).
//!
//! Owns: the schedule ([`Schedule`], pure: which cluster is due, which probe is in flight,
//! what a result changes), the judgement of one answer ([`judge`], pure) and the loop that
//! runs them ([`run`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clients::{ClusterClients, ClusterConn, RequestFailure};
use crate::live::LiveCache;

/// The shortest interval and timeout a probe runs with: shorter settings would turn the
/// probe into a busy loop, or mark every cluster unreachable.
const MIN_SETTING: Duration = Duration::from_secs(1);

/// How clusters are probed (the `CLUSTER_PROBE_*` settings of `argosy::defaults`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    /// How often each cluster in use is asked (at least 1 s).
    pub interval: Duration,
    /// How long one probe waits for its answer (at least 1 s).
    pub timeout: Duration,
}

impl ProbeSettings {
    /// The settings as the probe runs them: neither below 1 s.
    #[must_use]
    pub fn bounded(self) -> Self {
        Self {
            interval: self.interval.max(MIN_SETTING),
            timeout: self.timeout.max(MIN_SETTING),
        }
    }

    /// The longest a cluster that stops answering goes unmarked: its next probe starts at
    /// most one interval after the last answered one, and gives up after its timeout.
    #[must_use]
    pub fn detection_bound(&self) -> Duration {
        let bounded = self.bounded();
        bounded.interval + bounded.timeout
    }
}

/// Why a probe found a cluster unreachable. Messages become the Unreachable condition's
/// reason, so they name the request and never a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No answer within the probe's timeout: the server hangs, or the network drops.
    #[error("no answer to GET /version within {seconds} s")]
    Wait {
        /// The probe's timeout, in seconds.
        seconds: u64,
    },
    /// The request failed on the way (refused, reset, TLS).
    #[error("GET /version failed: {failure}")]
    Send {
        /// How it failed (credentials blanked out).
        failure: RequestFailure,
    },
    /// The server answered that it cannot serve (5xx).
    #[error("GET /version answered {failure}")]
    Answer {
        /// The answer's status and message.
        failure: RequestFailure,
    },
}

impl ProbeError {
    /// A static category for metrics labels.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            ProbeError::Wait { .. } => "probe_timeout",
            ProbeError::Send { .. } => "probe_request_failed",
            ProbeError::Answer { .. } => "probe_server_error",
        }
    }
}

/// What a probe that got through learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `/version` answered: the request succeeded.
    Version,
    /// The API server answered with a status below 500 (401, 403, ...): it is there; the
    /// requests that matter report their own errors.
    Status(u16),
    /// The request failed before the network for another reason (a credential plugin that
    /// fails, an unreadable answer): nothing learnt about reachability.
    NotJudged(&'static str),
}

impl Answer {
    /// Whether the cluster answered; `None`: the probe cannot tell.
    #[must_use]
    pub fn reached(&self) -> Option<bool> {
        match self {
            Answer::Version | Answer::Status(_) => Some(true),
            Answer::NotJudged(_) => None,
        }
    }
}

/// Judges one probe: `outcome` is `None` when no answer came within `timeout`.
pub fn judge(
    outcome: Option<Result<String, RequestFailure>>,
    timeout: Duration,
) -> Result<Answer, ProbeError> {
    match outcome {
        None => Err(ProbeError::Wait {
            seconds: timeout.as_secs(),
        }),
        Some(Ok(_)) => Ok(Answer::Version),
        Some(Err(failure)) => match failure.code {
            Some(code) if code < 500 => Ok(Answer::Status(code)),
            Some(_) => Err(ProbeError::Answer { failure }),
            None if failure.category == "ClusterUnreachable" => Err(ProbeError::Send { failure }),
            None => Ok(Answer::NotJudged(failure.category)),
        },
    }
}

/// What one probe result changes for its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing: reachable as before, or still unreachable.
    Unchanged,
    /// It stopped answering: mark it unreachable.
    Unreachable,
    /// It answers again: clear the mark.
    Reachable,
}

/// Which cluster is probed when, which probe is in flight and which cluster failed its last
/// one. Pure: the caller passes the time and the clusters in use.
#[derive(Debug)]
pub struct Schedule {
    interval: Duration,
    clusters: BTreeMap<String, Slot>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When the next probe may start.
    due: Instant,
    in_flight: bool,
    /// The last probe that could tell got no answer.
    failing: bool,
}

impl Schedule {
    /// An empty schedule probing each cluster every `interval` (at least 1 s).
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval: interval.max(MIN_SETTING),
            clusters: BTreeMap::new(),
        }
    }

    /// The clusters of `in_use` to probe at `now`, marked in flight: those whose probe is
    /// due and none under way. A cluster seen for the first time is due within one
    /// interval, at an offset its name spreads (a thousand clusters are not asked in the
    /// same instant); a cluster no longer in use is forgotten.
    pub fn start_due<'a>(
        &mut self,
        in_use: impl IntoIterator<Item = &'a String>,
        now: Instant,
    ) -> Vec<String> {
        let interval = self.interval;
        let mut kept = BTreeMap::new();
        for server in in_use {
            let slot = self.clusters.remove(server).unwrap_or_else(|| Slot {
                due: now + spread(server, interval),
                in_flight: false,
                failing: false,
            });
            kept.insert(server.clone(), slot);
        }
        self.clusters = kept;
        let mut due = Vec::new();
        for (server, slot) in &mut self.clusters {
            if !slot.in_flight && slot.due <= now {
                slot.in_flight = true;
                slot.due = now + interval;
                due.push(server.clone());
            }
        }
        due
    }

    /// The probe of `server` ended: the cluster answered (`Some(true)`), did not
    /// (`Some(false)`), or the probe cannot tell (`None`).
    pub fn finished(&mut self, server: &str, reached: Option<bool>) -> Change {
        let Some(slot) = self.clusters.get_mut(server) else {
            // Forgotten while its probe ran: no longer in use, nothing to mark.
            return Change::Unchanged;
        };
        slot.in_flight = false;
        match (reached, slot.failing) {
            (Some(false), false) => {
                slot.failing = true;
                Change::Unreachable
            }
            (Some(true), true) => {
                slot.failing = false;
                Change::Reachable
            }
            _ => Change::Unchanged,
        }
    }

    /// When the next probe is due, if a cluster waits for one (none in flight).
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.clusters
            .values()
            .filter(|slot| !slot.in_flight)
            .map(|slot| slot.due)
            .min()
    }
}

/// Where within `interval` the first probe of `server` falls: FNV-1a of its name, so the
/// offset is the same in every run and different clusters spread out.
fn spread(server: &str, interval: Duration) -> Duration {
    let hash = server.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let millis = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(hash % millis)
}

/// Probes the clusters `live` watches, through the clients `clients` holds, until dropped
/// (the sync engine's future owns it). Each probe records its answer in the cluster's
/// connection state (a success refreshes the last contact; no answer is the last error),
/// and a change of reachability goes to `live`.
pub async fn run(clients: Arc<ClusterClients>, live: Arc<LiveCache>, settings: ProbeSettings) {
    let settings = settings.bounded();
    let mut schedule = Schedule::new(settings.interval);
    let mut probes = tokio::task::JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, String> = HashMap::new();
    // The clusters this loop holds ([`ClusterClients::hold`]): released when they answer,
    // or when no app uses them any more (nothing would probe them again).
    let mut held: BTreeSet<String> = BTreeSet::new();
    loop {
        let now = Instant::now();
        let conns: BTreeMap<String, Arc<ClusterConn>> = live
            .servers()
            .into_iter()
            .filter_map(|server| clients.connection(&server).map(|conn| (server, conn)))
            .collect();
        held.retain(|server| {
            let in_use = conns.contains_key(server);
            if !in_use {
                clients.hold(server, None);
            }
            in_use
        });
        for server in schedule.start_due(conns.keys(), now) {
            let Some(conn) = conns.get(&server).cloned() else {
                // (Only clusters of `conns` are due; never left in flight regardless.)
                schedule.finished(&server, None);
                continue;
            };
            let handle = probes.spawn(probe(conn, settings.timeout));
            in_flight.insert(handle.id(), server);
        }
        // Wake for the next due probe, when a cluster comes into use (its first probe is
        // then due within one interval of the reconcile that just contacted it), and at
        // least once per interval.
        let wake = schedule.next_due().map_or(now + settings.interval, |due| {
            due.min(now + settings.interval)
        });
        tokio::select! {
            Some(done) = probes.join_next_with_id() => {
                let (id, verdict) = match done {
                    Ok((id, verdict)) => (id, Some(verdict)),
                    // A probe that panicked tells nothing.
                    Err(e) => (e.id(), None),
                };
                let Some(server) = in_flight.remove(&id) else {
                    continue;
                };
                tracing::debug!(%server, ?verdict, "cluster probed");
                let reached = verdict.as_ref().and_then(|v| match v {
                    Ok(answer) => answer.reached(),
                    Err(_) => Some(false),
                });
                match (schedule.finished(&server, reached), verdict) {
                    (Change::Unreachable, Some(Err(e))) => {
                        tracing::warn!(%server, error = %e, category = e.category(), "cluster probe got no answer; its apps hold");
                        // The hold first: a reconcile the mark re-triggers then waits for
                        // no request still under way.
                        clients.hold(&server, Some(e.to_string()));
                        held.insert(server.clone());
                        live.probed(&server, Some(e.to_string()));
                    }
                    (Change::Reachable, _) => {
                        tracing::info!(%server, "cluster answers its probe again");
                        clients.hold(&server, None);
                        held.remove(&server);
                        live.probed(&server, None);
                    }
                    _ => {}
                }
            }
            () = live.servers_added() => {}
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

/// One probe of `conn`, recorded in its connection state.
async fn probe(conn: Arc<ClusterConn>, timeout: Duration) -> Result<Answer, ProbeError> {
    let outcome = tokio::time::timeout(timeout, conn.version_now()).await.ok();
    let verdict = judge(outcome, timeout);
    match &verdict {
        Ok(Answer::Version) => conn.record_success(),
        Err(e) => conn.record_error(e),
        // A refusal is the requests' to report; nothing learnt here.
        Ok(Answer::Status(_) | Answer::NotJudged(_)) => {}
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    const INTERVAL: Duration = Duration::from_secs(10);

    #[test]
    fn each_cluster_in_use_is_probed_once_per_interval_never_twice_at_once() {
        let t0 = Instant::now();
        let mut s = Schedule::new(INTERVAL);
        let in_use = servers(&["https://a:6443", "https://b:6443"]);
        // First probes spread within one interval.
        let mut first = BTreeMap::new();
        let mut t = t0;
        while first.len() < 2 {
            for server in s.start_due(&in_use, t) {
                first.insert(server, t);
            }
            assert!(
                t <= t0 + INTERVAL,
                "every new cluster is probed within an interval"
            );
            t += Duration::from_millis(100);
        }
        assert_ne!(
            first["https://a:6443"], first["https://b:6443"],
            "different clusters are not probed in the same instant"
        );
        let a = "https://a:6443";
        let started = first[a];
        // In flight: never a second one, even long past its due time.
        assert!(
            !s.start_due(&in_use, started + INTERVAL * 3)
                .contains(&a.to_owned())
        );
        assert_eq!(s.finished(a, Some(true)), Change::Unchanged);
        // Due again one interval after the last one started, not before.
        let before = started + INTERVAL.saturating_sub(Duration::from_millis(1));
        assert!(!s.start_due(&in_use, before).contains(&a.to_owned()));
        assert!(
            s.start_due(&in_use, started + INTERVAL)
                .contains(&a.to_owned())
        );
    }

    #[test]
    fn a_cluster_that_stops_answering_is_marked_within_interval_plus_timeout() {
        let settings = ProbeSettings {
            interval: INTERVAL,
            timeout: Duration::from_secs(5),
        };
        let t0 = Instant::now();
        let mut s = Schedule::new(settings.interval);
        let in_use = servers(&["https://hung:6443"]);
        let server = "https://hung:6443";
        let mut t = t0;
        let mut answered_at = None;
        // Probe until one answered, then the server hangs right after that answer.
        while answered_at.is_none() {
            if !s.start_due(&in_use, t).is_empty() {
                assert_eq!(s.finished(server, Some(true)), Change::Unchanged);
                answered_at = Some(t);
            }
            t += Duration::from_millis(100);
        }
        let hung_from = answered_at.unwrap();
        let mut t = hung_from;
        let marked_at = loop {
            if !s.start_due(&in_use, t).is_empty() {
                // This probe gets no answer: it ends at its timeout.
                let ended = t + settings.timeout;
                assert_eq!(s.finished(server, Some(false)), Change::Unreachable);
                break ended;
            }
            t += Duration::from_millis(100);
        };
        assert!(
            marked_at.duration_since(hung_from) <= settings.detection_bound(),
            "marked {:?} after the last answer",
            marked_at.duration_since(hung_from)
        );
        // Still failing: not marked again; a probe that cannot tell changes nothing.
        let t = s.next_due().unwrap();
        assert_eq!(s.start_due(&in_use, t), servers(&[server]));
        assert_eq!(s.finished(server, Some(false)), Change::Unchanged);
        let t = s.next_due().unwrap();
        assert_eq!(s.start_due(&in_use, t), servers(&[server]));
        assert_eq!(s.finished(server, None), Change::Unchanged);
        // The first answer clears it, once.
        let t = s.next_due().unwrap();
        assert_eq!(s.start_due(&in_use, t), servers(&[server]));
        assert_eq!(s.finished(server, Some(true)), Change::Reachable);
        let t = s.next_due().unwrap();
        assert_eq!(s.start_due(&in_use, t), servers(&[server]));
        assert_eq!(s.finished(server, Some(true)), Change::Unchanged);
    }

    #[test]
    fn clusters_no_longer_in_use_are_forgotten() {
        let t0 = Instant::now();
        let mut s = Schedule::new(INTERVAL);
        let both = servers(&["https://a:6443", "https://b:6443"]);
        s.start_due(&both, t0);
        let started = s.start_due(&both, t0 + INTERVAL);
        assert_eq!(started, both);
        assert_eq!(
            s.finished("https://b:6443", Some(false)),
            Change::Unreachable
        );
        // b's Secret is gone (its watches stopped): not probed, its late result ignored.
        let only_a = servers(&["https://a:6443"]);
        assert!(
            s.start_due(&only_a, t0 + INTERVAL * 5).is_empty(),
            "a is in flight"
        );
        assert_eq!(s.finished("https://b:6443", Some(true)), Change::Unchanged);
        assert_eq!(s.finished("https://a:6443", Some(true)), Change::Unchanged);
        assert_eq!(
            s.start_due(&only_a, t0 + INTERVAL * 6),
            servers(&["https://a:6443"])
        );
        // Nothing in use: nothing due, nothing to wake for.
        assert!(s.start_due(&Vec::new(), t0 + INTERVAL * 9).is_empty());
        assert_eq!(s.next_due(), None);
        // In use again: a new cluster, not failing.
        let back = servers(&["https://b:6443"]);
        let t = t0 + INTERVAL * 10;
        s.start_due(&back, t);
        let due = s.next_due().unwrap();
        assert!(due < t + INTERVAL);
        assert_eq!(s.start_due(&back, due), back);
        assert_eq!(s.finished("https://b:6443", Some(true)), Change::Unchanged);
    }

    #[test]
    fn settings_never_make_a_busy_loop() {
        let zero = ProbeSettings {
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
        };
        assert_eq!(zero.bounded().interval, MIN_SETTING);
        assert_eq!(zero.bounded().timeout, MIN_SETTING);
        assert_eq!(zero.detection_bound(), MIN_SETTING * 2);
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::ZERO);
        let in_use = servers(&["https://a:6443"]);
        s.start_due(&in_use, t0);
        let t = t0 + MIN_SETTING;
        assert_eq!(s.start_due(&in_use, t), in_use);
        s.finished("https://a:6443", Some(true));
        assert_eq!(s.next_due(), Some(t + MIN_SETTING));
    }

    fn failure(code: Option<u16>, category: &'static str) -> RequestFailure {
        RequestFailure::for_tests(code, category, "it failed")
    }

    #[test]
    fn only_no_answer_means_unreachable() {
        let timeout = Duration::from_secs(5);
        let e = judge(None, timeout).unwrap_err();
        assert_eq!(e.to_string(), "no answer to GET /version within 5 s");
        assert_eq!(e.category(), "probe_timeout");
        assert_eq!(
            judge(Some(Ok("v1.20.2".into())), timeout),
            Ok(Answer::Version)
        );
        // Answered, if not with the version: the server is there.
        for code in [401, 403, 404, 429] {
            let answer = judge(
                Some(Err(failure(Some(code), "ClusterRequestFailed"))),
                timeout,
            );
            assert_eq!(answer, Ok(Answer::Status(code)));
            assert_eq!(answer.unwrap().reached(), Some(true));
        }
        let e = judge(
            Some(Err(failure(Some(503), "ClusterRequestFailed"))),
            timeout,
        )
        .unwrap_err();
        assert_eq!(e.category(), "probe_server_error");
        assert_eq!(e.to_string(), "GET /version answered it failed");
        let e = judge(Some(Err(failure(None, "ClusterUnreachable"))), timeout).unwrap_err();
        assert_eq!(e.category(), "probe_request_failed");
        // A credential plugin that fails says nothing about the network.
        let answer = judge(Some(Err(failure(None, "ClusterUnauthorized"))), timeout).unwrap();
        assert_eq!(answer.reached(), None);
    }
}

//! What one reconcile should do about an Application's comparison: nothing, wait, refuse,
//! hold for a sync window, or sync. Pure: the self-heal attempt counter is a value passed
//! in and handed back (the controller stores it per app), and time comes in as `now`.
//!
//! Sync windows gate every sync this decides to start or continue, as Argo CD does
//! (`controller/appcontroller.go` before an automated sync, `controller/sync.go` before
//! each pass of an operation): an automated sync (self-heal and retries included) is not
//! started, and a requested or running operation stays Running with "Sync operation
//! blocked by sync window" until the window lets it go on.

use std::time::{Duration, Instant};

use argosy_crds::application::SyncPolicy;
use argosy_crds::operation::{
    Operation, OperationError, OperationInitiator, OperationPhase, OperationState, RetryStrategy,
    SyncOperation,
};
use argosy_crds::sync_window::{Blocked, MatchedWindows};
use serde::Deserialize;
use serde_json::Value;

use crate::plan::{DesiredObject, ResourceState, ResourceSync};
use crate::resource::Role;
use crate::target::Deployed;

/// Why the retry policy of a failed sync cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// `syncPolicy.retry` does not have Argo CD's shape.
    #[error("syncPolicy.retry is invalid: {0}; the failed sync is not retried")]
    RetrySpec(#[source] serde_json::Error),
    /// A backoff duration does not parse (or is out of Go's range).
    #[error("syncPolicy.{0}; the failed sync is not retried")]
    RetryBackoff(#[source] OperationError),
}

/// Self-heal attempts of one app: how many reverts in a row, and when the last was.
/// Reset when the app is seen Synced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelfHeal {
    /// Reverts since the app was last Synced.
    pub attempts: u32,
    /// When the last revert started.
    pub last: Option<Instant>,
}

impl SelfHeal {
    /// The wait after `attempts` reverts: none before the first, then 2 s doubling up
    /// to 60 s (a controller fighting another writer backs off instead of spinning).
    #[must_use]
    pub fn backoff(self) -> Duration {
        if self.attempts == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs((1u64 << self.attempts.min(6)).min(60))
        }
    }
}

impl SelfHeal {
    /// The state to keep after the reconcile's final comparison: a Synced app starts
    /// over (its next drift is healed at once), one still out of sync keeps counting.
    #[must_use]
    pub fn after_compare(self, synced: bool) -> SelfHeal {
        if synced { SelfHeal::default() } else { self }
    }
}

/// What [`decide`] looks at.
pub struct DecideInput<'a> {
    /// `Application.operation`, typed (it becomes `operationState.operation`); `None`
    /// when no operation is requested.
    pub operation: Option<&'a Operation>,
    /// `status.operationState` as recorded by the last pass.
    pub recorded: Option<&'a OperationState>,
    /// `spec.syncPolicy`.
    pub policy: Option<&'a SyncPolicy>,
    /// What the source renders.
    pub desired: &'a [DesiredObject],
    /// The comparison of desired and live objects.
    pub states: &'a [ResourceState],
    /// The sources and revisions this pass rendered.
    pub deployed: &'a Deployed,
    /// Why the rendered objects may not be written (the project or the cluster's scope
    /// forbids some of them; see [`crate::boundary`]): no sync of any kind then.
    pub forbidden: Option<&'a str>,
    /// The project's sync windows that match the app.
    pub windows: &'a MatchedWindows,
    /// The wall-clock time the windows are evaluated at.
    pub wall_now: jiff::Timestamp,
}

/// What this reconcile should do about the comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Nothing to do.
    Nothing,
    /// Self-heal is backing off; look again after this long.
    Wait(Duration),
    /// A sync is due but refused, for this reason (reported as a `SyncError` condition).
    Refuse(String),
    /// Sync.
    Sync(Box<SyncRequest>),
    /// A sync is due but a sync window blocks it: nothing is written. `hold` is the
    /// requested or running operation, which stays Running with [`HELD_MESSAGE`]; `None`
    /// for an automated sync that is not started.
    Blocked {
        /// Which window blocks, and when it opens.
        blocked: Blocked,
        /// The operation kept Running.
        hold: Option<Box<Operation>>,
    },
    /// A requested or running operation cannot go on: it ends in the Error phase with this
    /// message, and nothing is written.
    Fail {
        /// The operation that fails.
        operation: Box<Operation>,
        /// Why.
        why: String,
    },
}

/// A sync to run.
#[derive(Clone, Debug, PartialEq)]
// Each flag is an independent Argo CD sync option (prune, hooks, manual, continuing).
#[allow(clippy::struct_excessive_bools)]
pub struct SyncRequest {
    /// Delete tracked objects gone from the source.
    pub prune: bool,
    /// Run hooks (a self-heal revert does not).
    pub hooks: bool,
    /// Requested through `Application.operation` (cleared once it completes).
    pub manual: bool,
    /// Continues a Running operation (keeps its start time and hook identity).
    pub continues: bool,
    /// The operation as recorded in `operationState.operation` (with `initiatedBy`).
    pub operation: Operation,
}

/// The message of an operation held by a sync window (Argo CD's text, which its UI and
/// CLI show); the window and its opening follow after a colon.
pub const HELD_MESSAGE: &str = "Sync operation blocked by sync window";

/// Decides what to do; returns the self-heal state to keep (a revert counts an attempt;
/// the caller resets it when the app is Synced). A sync the windows block is not counted.
#[must_use]
pub fn decide(input: &DecideInput<'_>, heal: SelfHeal, now: Instant) -> (Decision, SelfHeal) {
    let (decision, next_heal) = decide_ignoring_windows(input, heal, now);
    let Decision::Sync(request) = &decision else {
        return (decision, next_heal);
    };
    // Argo CD: manual unless the operation says it was started by automation.
    let manual = request
        .operation
        .initiated_by
        .as_ref()
        .is_none_or(|by| !by.automated);
    // A continued operation's start decides `syncOverrun`.
    let started = input
        .recorded
        .filter(|_| request.continues)
        .and_then(|s| s.started_at.as_deref())
        .and_then(|at| at.parse::<jiff::Timestamp>().ok());
    match input.windows.blocked(manual, started, input.wall_now) {
        None => (decision, next_heal),
        Some(blocked) => {
            let hold =
                (request.manual || request.continues).then(|| Box::new(request.operation.clone()));
            (Decision::Blocked { blocked, hold }, heal)
        }
    }
}

fn decide_ignoring_windows(
    input: &DecideInput<'_>,
    heal: SelfHeal,
    now: Instant,
) -> (Decision, SelfHeal) {
    let phase = input.recorded.map(|s| &s.phase);
    let running = phase.is_some_and(OperationPhase::running);
    if let Some(why) = input.forbidden {
        let operation = input.operation.cloned().or_else(|| {
            running
                .then(|| input.recorded.map(|s| s.operation.clone()))
                .flatten()
        });
        let decision = match operation {
            Some(operation) => Decision::Fail {
                operation: Box::new(operation),
                why: why.to_owned(),
            },
            None => Decision::Refuse(why.to_owned()),
        };
        return (decision, heal);
    }
    if let Some(op) = input.operation {
        let mut operation = op.clone();
        if operation.initiated_by.is_none() {
            operation.initiated_by = Some(OperationInitiator {
                username: "argosy".into(),
                ..OperationInitiator::default()
            });
        }
        let request = SyncRequest {
            prune: op.sync.as_ref().is_some_and(|s| s.prune),
            hooks: true,
            manual: true,
            continues: running,
            operation,
        };
        return (Decision::Sync(Box::new(request)), heal);
    }
    let Some(auto) = input
        .policy
        .and_then(|p| p.automated.as_ref())
        .filter(|a| a.enabled != Some(false))
    else {
        return (Decision::Nothing, heal);
    };
    let out_of_sync = input
        .states
        .iter()
        .any(|s| s.sync == ResourceSync::OutOfSync && (!s.requires_pruning || auto.prune));
    if !out_of_sync && !running {
        return (Decision::Nothing, heal);
    }
    let wants_resources = input.desired.iter().any(|d| d.role == Role::Resource);
    let has_live = input.states.iter().any(|s| !s.missing);
    if !wants_resources && has_live && !auto.allow_empty {
        return (
            Decision::Refuse(
                "the source rendered no resources; automated sync will not prune every resource of the app (syncPolicy.automated.allowEmpty is false)".into(),
            ),
            heal,
        );
    }
    let recorded_result = input
        .recorded
        .and_then(|s| s.sync_result.as_ref())
        .and_then(|r| serde_json::to_value(r).ok());
    let target_changed = !input.deployed.is_recorded_in(recorded_result.as_ref());
    let request = |hooks: bool| {
        Decision::Sync(Box::new(automated_request(
            input.deployed,
            auto.prune,
            hooks,
            running,
        )))
    };
    if running || target_changed {
        return (request(true), heal);
    }
    if phase.is_some_and(|p| matches!(p, OperationPhase::Failed | OperationPhase::Error)) {
        // The same revision failed before: only the retry policy brings it back.
        let retries = input.recorded.map_or(0, |s| s.retry_count);
        let decision = match retry_after(input.policy, retries) {
            Ok(Some(_)) => request(true),
            Ok(None) => Decision::Nothing,
            Err(e) => Decision::Refuse(e.to_string()),
        };
        return (decision, heal);
    }
    if !auto.self_heal {
        return (Decision::Nothing, heal);
    }
    if let Some(last) = heal.last {
        let since = now.saturating_duration_since(last);
        if heal.attempts > 0 && since < heal.backoff() {
            return (Decision::Wait(heal.backoff().saturating_sub(since)), heal);
        }
    }
    let next = SelfHeal {
        attempts: heal.attempts.saturating_add(1),
        last: Some(now),
    };
    (request(false), next)
}

/// The operation of an automated sync to what this pass rendered.
fn automated_request(
    deployed: &Deployed,
    prune: bool,
    hooks: bool,
    continues: bool,
) -> SyncRequest {
    let mut sync = SyncOperation {
        prune,
        ..SyncOperation::default()
    };
    match deployed.revision_field() {
        (_, Value::String(revision)) => sync.revision = revision,
        (_, revisions) => {
            sync.revisions = Vec::<String>::deserialize(revisions).unwrap_or_default();
        }
    }
    SyncRequest {
        prune,
        hooks,
        manual: false,
        continues,
        operation: Operation {
            sync: Some(sync),
            initiated_by: Some(OperationInitiator {
                automated: true,
                ..OperationInitiator::default()
            }),
            ..Operation::default()
        },
    }
}

/// The wait before retrying a failed sync that was retried `retry_count` times already;
/// `Ok(None)` when retries are off or exhausted; an error when the policy cannot be read
/// (a bad `limit`, an unparsable or out-of-range backoff), never a guessed delay.
pub fn retry_after(
    policy: Option<&SyncPolicy>,
    retry_count: i64,
) -> Result<Option<Duration>, DecideError> {
    let Some(raw) = policy.and_then(|p| p.retry.as_ref()) else {
        return Ok(None);
    };
    let retry = RetryStrategy::deserialize(raw).map_err(DecideError::RetrySpec)?;
    if !retry.may_retry(retry_count) {
        return Ok(None);
    }
    retry
        .delay(retry_count)
        .map(Some)
        .map_err(DecideError::RetryBackoff)
}

/// What a deleted Application's finalizer found on its destination this pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalizerView {
    /// No cluster Secret names the destination any more (the registry's first list is
    /// in): nothing can be deleted there, ever; the text names the destination.
    Deregistered(String),
    /// The cluster is registered but could not be read or written (unreachable, a
    /// failing discovery or watch, a failed delete): the text says why.
    Blocked(String),
    /// Every delete went through; `awaiting` names the `Delete=confirm` objects kept
    /// until the Application approves their deletion.
    Deleted {
        /// Kept for approval (`Delete=confirm`).
        awaiting: Vec<String>,
    },
}

/// What the finalizer does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalizerStep {
    /// Everything is gone (or kept by `Delete=false`): remove the finalizer.
    Release,
    /// Keep the finalizer, report `why` (a `DeletionError` condition), look again after
    /// `retry`; `failed` says whether this counts as a failed attempt (backoff grows).
    Hold {
        /// The condition's message.
        why: String,
        /// When to look again.
        retry: Duration,
        /// A failure (backoff grows) rather than a wait for approval.
        failed: bool,
    },
    /// The cluster was deregistered: remove the finalizer without deleting anything and
    /// warn that the workloads were left behind on it.
    Abandon {
        /// The Warning Event's note.
        why: String,
    },
}

/// First wait after a failed finalizer pass; doubles per failure up to
/// [`FINALIZER_BACKOFF_MAX`].
pub const FINALIZER_BACKOFF_BASE: Duration = Duration::from_secs(5);
/// The longest wait between finalizer passes of an unreachable cluster.
pub const FINALIZER_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often a finalizer waiting for `Delete=confirm` approval looks again (the
/// approval annotation itself triggers a reconcile at once).
pub const FINALIZER_APPROVAL_POLL: Duration = Duration::from_secs(30);

/// Decides the finalizer's next step from what it found and how many passes failed in a
/// row before this one. Only a deregistered cluster ends the finalizer without deleting:
/// an unreachable one is temporary, and releasing the Application then would orphan
/// its workloads for good.
#[must_use]
pub fn finalizer_step(view: FinalizerView, failed_before: u32) -> FinalizerStep {
    match view {
        FinalizerView::Deregistered(destination) => FinalizerStep::Abandon {
            why: format!(
                "destination cluster {destination} is not registered any more: the Application's resources on it were not deleted and are left behind"
            ),
        },
        FinalizerView::Blocked(why) => FinalizerStep::Hold {
            why: format!(
                "deleting the app's resources: {why}; the finalizer stays and deletion is retried"
            ),
            retry: finalizer_backoff(failed_before),
            failed: true,
        },
        FinalizerView::Deleted { awaiting } if awaiting.is_empty() => FinalizerStep::Release,
        FinalizerView::Deleted { awaiting } => FinalizerStep::Hold {
            why: format!(
                "waiting for deletion confirmation of {} (argosy app confirm-deletion)",
                awaiting.join(", ")
            ),
            retry: FINALIZER_APPROVAL_POLL,
            failed: false,
        },
    }
}

/// The wait after `failed_before + 1` failed finalizer passes: 5 s doubling, capped at
/// 5 min; saturating, so any count is safe.
#[must_use]
pub fn finalizer_backoff(failed_before: u32) -> Duration {
    let factor = 1u32.checked_shl(failed_before.min(16)).unwrap_or(u32::MAX);
    FINALIZER_BACKOFF_BASE
        .saturating_mul(factor)
        .min(FINALIZER_BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{ObjKey, ResourceOptions};
    use serde_json::json;

    fn key(name: &str) -> ObjKey {
        ObjKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: "web".into(),
            name: name.into(),
        }
    }

    fn desired(name: &str) -> DesiredObject {
        DesiredObject {
            key: key(name),
            object: json!({}),
            role: Role::Resource,
            wave: 0,
            options: ResourceOptions::default(),
        }
    }

    fn state(name: &str, sync: ResourceSync) -> ResourceState {
        ResourceState {
            key: key(name),
            sync,
            differences: vec![],
            requires_pruning: false,
            missing: false,
            wave: 0,
        }
    }

    fn policy(value: Value) -> SyncPolicy {
        serde_json::from_value(value).unwrap()
    }

    fn deployed(revision: &str) -> Deployed {
        Deployed::new(vec![json!({"repoURL": "r"})], vec![revision.into()], false)
    }

    /// A recorded operation in `phase` that synced `revision`, retried `retries` times.
    fn recorded(phase: &str, revision: &str, retries: i64) -> OperationState {
        serde_json::from_value(json!({"phase": phase, "retryCount": retries,
            "syncResult": {"revision": revision, "source": {"repoURL": "r"}}}))
        .unwrap()
    }

    struct Case {
        policy: SyncPolicy,
        recorded: Option<OperationState>,
        operation: Option<Operation>,
        desired: Vec<DesiredObject>,
        states: Vec<ResourceState>,
        deployed: Deployed,
        forbidden: Option<String>,
        windows: MatchedWindows,
        wall_now: jiff::Timestamp,
    }

    impl Case {
        fn new(policy_json: Value, sync: ResourceSync) -> Case {
            Case {
                policy: policy(policy_json),
                recorded: None,
                operation: None,
                desired: vec![desired("a")],
                states: vec![state("a", sync)],
                deployed: deployed("abc"),
                forbidden: None,
                windows: MatchedWindows::default(),
                wall_now: "2026-12-07T22:30:00Z".parse().unwrap(),
            }
        }

        fn decide(&self, heal: SelfHeal, now: Instant) -> (Decision, SelfHeal) {
            let input = DecideInput {
                operation: self.operation.as_ref(),
                recorded: self.recorded.as_ref(),
                policy: Some(&self.policy),
                desired: &self.desired,
                states: &self.states,
                deployed: &self.deployed,
                forbidden: self.forbidden.as_deref(),
                windows: &self.windows,
                wall_now: self.wall_now,
            };
            decide(&input, heal, now)
        }
    }

    #[test]
    fn automated_sync_when_out_of_sync_and_none_when_synced() {
        let now = Instant::now();
        let case = Case::new(
            json!({"automated": {"prune": true}}),
            ResourceSync::OutOfSync,
        );
        let (decision, _) = case.decide(SelfHeal::default(), now);
        let Decision::Sync(request) = decision else {
            panic!("{decision:?}")
        };
        assert!(request.prune && request.hooks && !request.manual && !request.continues);
        let op = serde_json::to_value(&request.operation).unwrap();
        assert_eq!(
            op,
            json!({"sync": {"revision": "abc", "prune": true}, "initiatedBy": {"automated": true}})
        );

        let case = Case::new(json!({"automated": {}}), ResourceSync::Synced);
        assert_eq!(case.decide(SelfHeal::default(), now).0, Decision::Nothing);
        let case = Case::new(json!({}), ResourceSync::OutOfSync);
        assert_eq!(case.decide(SelfHeal::default(), now).0, Decision::Nothing);
    }

    #[test]
    fn a_forbidden_render_is_never_synced() {
        let now = Instant::now();
        let mut case = Case::new(
            json!({"automated": {"prune": true, "selfHeal": true}}),
            ResourceSync::OutOfSync,
        );
        case.forbidden = Some("sync refused: resource x".into());
        assert_eq!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Refuse("sync refused: resource x".into())
        );
        // A requested operation fails instead of waiting forever.
        case.operation = Some(serde_json::from_value(json!({"sync": {}})).unwrap());
        let (decision, _) = case.decide(SelfHeal::default(), now);
        assert!(
            matches!(&decision, Decision::Fail { why, .. } if why == "sync refused: resource x"),
            "{decision:?}"
        );
        // So does a running automated one.
        case.operation = None;
        case.recorded = Some(recorded("Running", "abc", 0));
        assert!(matches!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Fail { .. }
        ));
    }

    #[test]
    fn self_heal_backs_off_between_reverts() {
        let start = Instant::now();
        let mut case = Case::new(
            json!({"automated": {"selfHeal": true}}),
            ResourceSync::OutOfSync,
        );
        // The revision was synced already: a difference now is drift.
        case.recorded = Some(recorded("Succeeded", "abc", 0));
        let (first, heal) = case.decide(SelfHeal::default(), start);
        assert!(matches!(
            first,
            Decision::Sync(r) if !r.hooks
        ));
        assert_eq!(heal.attempts, 1);
        // A second revert within the backoff waits...
        let soon = start + Duration::from_millis(500);
        let (wait, same) = case.decide(heal, soon);
        assert_eq!(wait, Decision::Wait(Duration::from_millis(1500)));
        assert_eq!(same, heal);
        // ...after it, syncs and counts.
        let later = start + Duration::from_secs(2);
        let (second, heal) = case.decide(heal, later);
        assert!(matches!(second, Decision::Sync(_)));
        assert_eq!(heal.attempts, 2);
        assert_eq!(heal.backoff(), Duration::from_secs(4));
        // Seen Synced, the count starts over: the next drift is healed at once.
        let reset = heal.after_compare(true);
        assert_eq!(reset, SelfHeal::default());
        assert_eq!(heal.after_compare(false), heal);
        let (again, heal) = case.decide(reset, later + Duration::from_millis(1));
        assert!(matches!(again, Decision::Sync(_)));
        assert_eq!(heal.attempts, 1);
        // Without selfHeal, drift is left alone.
        case.policy = policy(json!({"automated": {}}));
        assert_eq!(case.decide(SelfHeal::default(), later).0, Decision::Nothing);
    }

    #[test]
    fn retry_limits() {
        let now = Instant::now();
        let mut case = Case::new(
            json!({"automated": {}, "retry": {"limit": 2}}),
            ResourceSync::OutOfSync,
        );
        case.recorded = Some(recorded("Failed", "abc", 1));
        assert!(matches!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Sync(_)
        ));
        case.recorded = Some(recorded("Failed", "abc", 2));
        assert_eq!(case.decide(SelfHeal::default(), now).0, Decision::Nothing);
        // limit: -1 retries forever.
        case.policy = policy(json!({"automated": {}, "retry": {"limit": -1}}));
        case.recorded = Some(recorded("Failed", "abc", 1000));
        assert!(matches!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Sync(_)
        ));
        // No retry policy: a failed revision stays failed until the target changes.
        case.policy = policy(json!({"automated": {}}));
        assert_eq!(case.decide(SelfHeal::default(), now).0, Decision::Nothing);
        case.deployed = deployed("def");
        assert!(matches!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Sync(_)
        ));
    }

    #[test]
    fn an_overflowing_backoff_is_refused_not_a_panic() {
        let mut case = Case::new(
            json!({"automated": {}, "retry": {"limit": 5,
                "backoff": {"duration": "99999999999999999999999h", "factor": 2}}}),
            ResourceSync::OutOfSync,
        );
        case.recorded = Some(recorded("Failed", "abc", 1));
        let Decision::Refuse(why) = case.decide(SelfHeal::default(), Instant::now()).0 else {
            panic!("not retried")
        };
        assert!(why.contains("retry.backoff.duration"), "{why}");
        // Huge but within Go's range: saturates at maxDuration.
        let policy = policy(json!({"retry": {"limit": -1,
            "backoff": {"duration": "2562047h", "factor": 1000}}}));
        let delay = retry_after(Some(&policy), 30).unwrap().unwrap();
        assert_eq!(delay, Duration::from_secs(180));
        // Argo's `1m30s`, not 1 s.
        let policy = policy_of("1m30s");
        assert_eq!(
            retry_after(Some(&policy), 0).unwrap(),
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn no_backoff_input_panics() {
        // Overflowing, huge or negative durations, factors and retry counts: every one is
        // either a delay or an error, never a panic, and never longer than maxDuration.
        let cases = [
            json!({"duration": "99999999999999999999999h"}),
            json!({"maxDuration": "99999999999999999999999h"}),
            json!({"duration": "2562047h", "factor": i64::MAX, "maxDuration": "2562047h"}),
            json!({"duration": "1s", "factor": i64::MIN}),
            json!({"duration": "-5s", "factor": -3, "maxDuration": "-1s"}),
            json!({"duration": "9223372036s", "factor": 9_223_372_036_854_775_807_i64, "maxDuration": "0"}),
        ];
        for backoff in cases {
            let policy = policy(json!({"retry": {"limit": -1, "backoff": backoff}}));
            for count in [0, 1, 62, 63, 64, 1_000_000, i64::MAX, -1, i64::MIN] {
                let _ = retry_after(Some(&policy), count);
            }
        }
    }

    #[test]
    fn the_finalizer_holds_for_an_unreachable_cluster_and_ends_only_when_deregistered() {
        let step = finalizer_step(
            FinalizerView::Blocked("cluster w1 is unreachable".into()),
            0,
        );
        let FinalizerStep::Hold { why, retry, failed } = step else {
            panic!("held: {step:?}")
        };
        assert!(why.contains("cluster w1 is unreachable") && why.contains("finalizer stays"));
        assert_eq!(retry, Duration::from_secs(5));
        assert!(failed);
        assert_eq!(finalizer_backoff(1), Duration::from_secs(10));
        assert_eq!(finalizer_backoff(6), Duration::from_secs(300));
        assert_eq!(finalizer_backoff(u32::MAX), Duration::from_secs(300));
        let step = finalizer_step(FinalizerView::Deregistered("https://w1".into()), 9);
        let FinalizerStep::Abandon { why } = step else {
            panic!("abandoned: {step:?}")
        };
        assert!(why.contains("left behind"), "{why}");
        assert_eq!(
            finalizer_step(FinalizerView::Deleted { awaiting: vec![] }, 3),
            FinalizerStep::Release
        );
        let step = finalizer_step(
            FinalizerView::Deleted {
                awaiting: vec!["Namespace/payments".into()],
            },
            0,
        );
        assert!(
            matches!(&step, FinalizerStep::Hold { why, failed: false, .. } if why.contains("deletion confirmation of Namespace/payments")),
            "{step:?}"
        );
    }

    fn policy_of(duration: &str) -> SyncPolicy {
        policy(json!({"retry": {"limit": 1, "backoff": {"duration": duration}}}))
    }

    #[test]
    fn an_empty_render_does_not_prune_everything_without_allow_empty() {
        let mut case = Case::new(
            json!({"automated": {"prune": true}}),
            ResourceSync::OutOfSync,
        );
        case.desired.clear();
        case.states[0].requires_pruning = true;
        assert!(matches!(
            case.decide(SelfHeal::default(), Instant::now()).0,
            Decision::Refuse(_)
        ));
        case.policy = policy(json!({"automated": {"prune": true, "allowEmpty": true}}));
        assert!(matches!(
            case.decide(SelfHeal::default(), Instant::now()).0,
            Decision::Sync(r) if r.prune
        ));
    }

    #[test]
    fn a_manual_operation_runs_without_an_automated_policy() {
        let mut case = Case::new(json!({}), ResourceSync::Synced);
        case.operation = Some(serde_json::from_value(json!({"sync": {"prune": true}})).unwrap());
        let (decision, heal) = case.decide(SelfHeal::default(), Instant::now());
        let Decision::Sync(request) = decision else {
            panic!("{decision:?}")
        };
        assert!(request.manual && request.prune && !request.continues);
        assert_eq!(
            request
                .operation
                .initiated_by
                .map(|i| i.username)
                .as_deref(),
            Some("argosy")
        );
        assert_eq!(heal, SelfHeal::default());
        // A Running operation continues.
        case.recorded = Some(recorded("Running", "abc", 0));
        let Decision::Sync(request) = case.decide(SelfHeal::default(), Instant::now()).0 else {
            panic!("continues")
        };
        assert!(request.continues);
    }

    /// A deny window over 22:00-23:00 UTC (the cases' `wall_now` is 22:30).
    fn deny_window(manual_sync: bool) -> MatchedWindows {
        let window: argosy_crds::appproject::SyncWindow = serde_json::from_value(json!({
            "kind": "deny", "schedule": "0 22 * * *", "duration": "1h",
            "applications": ["*"], "manualSync": manual_sync}))
        .unwrap();
        MatchedWindows::of(
            &[window],
            "app",
            &argosy_crds::application::ApplicationDestination::default(),
        )
    }

    #[test]
    fn a_deny_window_blocks_automated_syncs_self_heal_and_retries_without_counting() {
        let now = Instant::now();
        let mut case = Case::new(
            json!({"automated": {"selfHeal": true}, "retry": {"limit": 2}}),
            ResourceSync::OutOfSync,
        );
        case.windows = deny_window(false);
        let blocked = |decision: Decision| match decision {
            Decision::Blocked { blocked, hold } => {
                assert_eq!(hold, None, "nothing runs, nothing is held");
                blocked
            }
            other => panic!("{other:?}"),
        };
        // A new revision.
        let (decision, heal) = case.decide(SelfHeal::default(), now);
        let b = blocked(decision);
        assert_eq!(b.opens_at, Some("2026-12-07T23:00:00Z".parse().unwrap()));
        assert_eq!(heal, SelfHeal::default());
        // Drift (self-heal): not counted as an attempt.
        case.recorded = Some(recorded("Succeeded", "abc", 0));
        let (decision, heal) = case.decide(SelfHeal::default(), now);
        blocked(decision);
        assert_eq!(heal.attempts, 0);
        // A retry of a failed sync.
        case.recorded = Some(recorded("Failed", "abc", 1));
        blocked(case.decide(SelfHeal::default(), now).0);
        // After the window: the retry runs.
        case.wall_now = "2026-12-07T23:00:00Z".parse().unwrap();
        assert!(matches!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Sync(_)
        ));
    }

    #[test]
    fn a_blocked_operation_is_held_unless_the_window_allows_manual_syncs() {
        let now = Instant::now();
        let mut case = Case::new(json!({}), ResourceSync::OutOfSync);
        case.operation = Some(serde_json::from_value(json!({"sync": {}})).unwrap());
        case.windows = deny_window(false);
        let Decision::Blocked { blocked, hold } = case.decide(SelfHeal::default(), now).0 else {
            panic!("held")
        };
        let held = hold.expect("the operation is held");
        assert!(held.initiated_by.is_some_and(|by| !by.automated));
        assert!(
            blocked.to_string().contains("deny:0 22 * * *:1h"),
            "{blocked}"
        );
        // A held operation recorded Running is still held.
        case.recorded = Some(recorded("Running", "abc", 0));
        assert!(matches!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Blocked { hold: Some(_), .. }
        ));
        // manualSync lets it run.
        case.windows = deny_window(true);
        assert!(matches!(case.decide(SelfHeal::default(), now).0, Decision::Sync(r) if r.manual));
        // Not one marked automated, as an ApplicationSet RollingSync step is in Argo CD.
        case.operation = Some(
            serde_json::from_value(json!({"sync": {},
                "initiatedBy": {"username": "applicationset-controller", "automated": true}}))
            .unwrap(),
        );
        assert!(matches!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Blocked { hold: Some(_), .. }
        ));
        // An automated operation that is running is held, manualSync or not.
        case.operation = None;
        case.policy = policy(json!({"automated": {}}));
        assert!(matches!(
            case.decide(SelfHeal::default(), now).0,
            Decision::Blocked { hold: Some(op), .. } if op.initiated_by.as_ref().is_some_and(|by| by.automated)
        ));
    }

    #[test]
    fn a_forbidden_render_fails_before_windows_are_looked_at() {
        let mut case = Case::new(json!({}), ResourceSync::OutOfSync);
        case.operation = Some(serde_json::from_value(json!({"sync": {}})).unwrap());
        case.windows = deny_window(false);
        case.forbidden = Some("not permitted".into());
        assert!(matches!(
            case.decide(SelfHeal::default(), Instant::now()).0,
            Decision::Fail { .. }
        ));
    }
}

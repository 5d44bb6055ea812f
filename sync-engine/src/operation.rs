//! The operation state machine: from the recorded `status.operationState` and what one
//! sync pass did, the next `operationState` (pure; the caller supplies the clock).
//!
//! Phases: a pass that waits (for a wave to become healthy, a hook to complete) stays
//! Running and keeps `startedAt`; a failure with `SyncFail` hooks stays Running until they
//! complete, then is Failed with the original failure; otherwise Failed or Succeeded, with
//! `finishedAt`. Failed counts a retry.
//!
//! The `SyncFail` step is marked the way Argo CD marks it, in the written `syncResult`: its
//! hooks are listed with `hookType`/`syncPhase` `SyncFail` (`hookPhase` Running until they
//! complete). A Running operation with such entries has already failed; the next pass
//! does not apply again, it only follows the hooks.

use std::collections::{BTreeMap, BTreeSet};

use argosy_crds::operation::{
    HookType, Operation, OperationPhase, OperationState, ResourceResult, ResultCode,
    SyncOperationResult, SyncPhase,
};
use serde::Deserialize;
use serde_json::Value;

use crate::decide::SyncRequest;
use crate::execute::{Executed, Outcome, SyncFailHooks};
use crate::resource::ObjKey;
use crate::target::Deployed;

/// Appended to the failure in the message of an operation that waits for its `SyncFail`
/// hooks (what users read; the engine recognises the step by its typed results).
const SYNC_FAIL_RUNNING: &str = "; running SyncFail hooks";

/// Message of a sync that completed.
const SUCCEEDED: &str = "successfully synced (all tasks run)";

/// What one sync pass did.
pub struct Pass<'a> {
    /// The sync that ran.
    pub request: &'a SyncRequest,
    /// What was applied, pruned or failed, and what waits.
    pub executed: &'a Executed,
    /// Why the sync failed, this pass or (recorded) an earlier one.
    pub failure: Option<String>,
    /// Where the `SyncFail` hooks are, when the sync failed and has any.
    pub sync_fail: Option<SyncFailHooks>,
    /// The plan's `SyncFail` hooks.
    pub sync_fail_hooks: &'a BTreeSet<ObjKey>,
    /// The sources and revisions synced.
    pub deployed: &'a Deployed,
}

/// How the operation stands after a pass (for the controller's requeue, condition and
/// event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still running, for this reason.
    Running(String),
    /// Failed, for this reason.
    Failed(String),
    /// Completed successfully.
    Succeeded,
}

/// `startedAt` of this pass: the recorded one when it continues a Running operation,
/// else `now`.
#[must_use]
pub fn started_at(recorded: Option<&OperationState>, continues: bool, now: &str) -> String {
    recorded
        .filter(|_| continues)
        .and_then(|s| s.started_at.clone())
        .unwrap_or_else(|| now.to_owned())
}

/// The next `operationState` after `pass`.
#[must_use]
pub fn next(
    recorded: Option<&OperationState>,
    pass: &Pass<'_>,
    started: &str,
    now: &str,
) -> (OperationState, Progress) {
    let request = pass.request;
    // A continuing operation keeps what earlier passes recorded (completed hooks above all).
    let mut by_key: BTreeMap<ObjKey, ResourceResult> = BTreeMap::new();
    if request.continues {
        for r in recorded
            .and_then(|s| s.sync_result.as_ref())
            .into_iter()
            .flat_map(|r| &r.resources)
        {
            by_key.insert(key_of(r), r.clone());
        }
    }
    for (key, outcome) in &pass.executed.results {
        by_key.insert(key.clone(), result_of(key, outcome));
    }
    let (phase, message, progress) = ending(pass);
    if pass.failure.is_some() && pass.sync_fail.is_some() {
        mark_sync_fail(&mut by_key, pass.sync_fail_hooks, phase.running());
    }
    let mut sync_result =
        SyncOperationResult::deserialize(Value::Object(pass.deployed.fields())).unwrap_or_default();
    sync_result.resources = by_key.into_values().collect();
    let previous_retries = recorded
        .filter(|_| request.continues || !request.manual)
        .map_or(0, |s| s.retry_count);
    let state = OperationState {
        operation: request.operation.clone(),
        retry_count: if phase == OperationPhase::Failed {
            previous_retries.saturating_add(1)
        } else {
            0
        },
        finished_at: (!phase.running()).then(|| now.to_owned()),
        phase,
        message,
        sync_result: Some(sync_result),
        started_at: Some(started.to_owned()),
        extra: std::collections::BTreeMap::default(),
    };
    (state, progress)
}

/// The state of an operation a sync window holds: Running with `message`. One already
/// running keeps its start, operation and results; a new one starts `now`.
#[must_use]
pub fn held(
    recorded: Option<&OperationState>,
    operation: Operation,
    message: String,
    now: &str,
) -> OperationState {
    match recorded.filter(|s| s.phase.running()) {
        Some(running) => OperationState {
            message,
            ..running.clone()
        },
        None => OperationState {
            operation,
            phase: OperationPhase::Running,
            message,
            started_at: Some(now.to_owned()),
            ..OperationState::default()
        },
    }
}

/// The state of an operation that could not even start (the app could not be observed).
#[must_use]
pub fn errored(operation: Operation, message: String, now: &str) -> OperationState {
    OperationState {
        operation,
        phase: OperationPhase::Error,
        message,
        started_at: Some(now.to_owned()),
        finished_at: Some(now.to_owned()),
        ..OperationState::default()
    }
}

/// The failure of an operation that waits for its `SyncFail` hooks, from its recorded state:
/// Running, with `SyncFail` results recorded.
#[must_use]
pub fn recorded_sync_failure(recorded: &OperationState) -> Option<String> {
    let in_sync_fail_step = recorded.phase.running()
        && recorded
            .sync_result
            .iter()
            .flat_map(|r| &r.resources)
            .any(|r| r.sync_phase == Some(SyncPhase::SyncFail));
    in_sync_fail_step.then(|| {
        // The failure text is this module's own message minus its fixed ending.
        let message = recorded.message.as_str();
        message
            .strip_suffix(SYNC_FAIL_RUNNING)
            .unwrap_or(message)
            .to_owned()
    })
}

/// Hooks the running operation already completed, from its recorded sync result.
pub fn completed_hooks(recorded: Option<&OperationState>) -> BTreeSet<ObjKey> {
    recorded
        .and_then(|s| s.sync_result.as_ref())
        .into_iter()
        .flat_map(|r| &r.resources)
        .filter(|r| r.hook_phase == Some(OperationPhase::Succeeded))
        .filter(|r| !r.kind.is_empty() && !r.name.is_empty())
        .map(key_of)
        .collect()
}

fn key_of(r: &ResourceResult) -> ObjKey {
    ObjKey {
        group: r.group.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

fn result_of(key: &ObjKey, outcome: &Outcome) -> ResourceResult {
    let (status, message) = match outcome {
        Outcome::Applied(_) | Outcome::HookSucceeded => (ResultCode::Synced, String::new()),
        Outcome::Pruned => (ResultCode::Pruned, String::new()),
        Outcome::Failed(e) => (ResultCode::SyncFailed, e.clone()),
    };
    ResourceResult {
        group: key.group.clone(),
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        status: Some(status),
        message,
        hook_phase: (*outcome == Outcome::HookSucceeded).then_some(OperationPhase::Succeeded),
        ..ResourceResult::default()
    }
}

/// Lists the `SyncFail` hooks as Argo CD does: completed ones marked as `SyncFail` hooks, the
/// others (while the step runs) as Running.
fn mark_sync_fail(
    by_key: &mut BTreeMap<ObjKey, ResourceResult>,
    hooks: &BTreeSet<ObjKey>,
    running: bool,
) {
    for hook in hooks {
        let entry = by_key
            .entry(hook.clone())
            .or_insert_with(|| ResourceResult {
                group: hook.group.clone(),
                kind: hook.kind.clone(),
                namespace: hook.namespace.clone(),
                name: hook.name.clone(),
                hook_phase: running.then_some(OperationPhase::Running),
                ..ResourceResult::default()
            });
        entry.hook_type = Some(HookType::SyncFail);
        entry.sync_phase = Some(SyncPhase::SyncFail);
    }
}

/// Phase, message and progress of a pass.
fn ending(pass: &Pass<'_>) -> (OperationPhase, String, Progress) {
    match (&pass.failure, &pass.sync_fail, &pass.executed.waiting) {
        (Some(failure), Some(SyncFailHooks::Running), _) => {
            let message = format!("{failure}{SYNC_FAIL_RUNNING}");
            (
                OperationPhase::Running,
                message.clone(),
                Progress::Running(message),
            )
        }
        (Some(failure), Some(SyncFailHooks::Failed(hook)), _) => {
            let message = format!("{failure}; SyncFail hook failed: {hook}");
            (
                OperationPhase::Failed,
                message.clone(),
                Progress::Failed(message),
            )
        }
        (Some(failure), _, _) => (
            OperationPhase::Failed,
            failure.clone(),
            Progress::Failed(failure.clone()),
        ),
        (None, _, Some(why)) => (
            OperationPhase::Running,
            why.clone(),
            Progress::Running(why.clone()),
        ),
        (None, _, None) => (
            OperationPhase::Succeeded,
            SUCCEEDED.to_owned(),
            Progress::Succeeded,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(kind: &str, name: &str) -> ObjKey {
        ObjKey {
            group: String::new(),
            kind: kind.into(),
            namespace: "web".into(),
            name: name.into(),
        }
    }

    fn request(continues: bool, manual: bool) -> SyncRequest {
        SyncRequest {
            prune: false,
            hooks: true,
            manual,
            continues,
            operation: serde_json::from_value(json!({"sync": {"revision": "abc"},
                "initiatedBy": {"automated": true}}))
            .unwrap(),
        }
    }

    fn deployed() -> Deployed {
        Deployed::new(vec![json!({"repoURL": "r"})], vec!["abc".into()], false)
    }

    struct Fixture {
        request: SyncRequest,
        executed: Executed,
        failure: Option<String>,
        sync_fail: Option<SyncFailHooks>,
        hooks: BTreeSet<ObjKey>,
        deployed: Deployed,
    }

    impl Fixture {
        fn new(continues: bool) -> Fixture {
            Fixture {
                request: request(continues, false),
                executed: Executed::default(),
                failure: None,
                sync_fail: None,
                hooks: BTreeSet::new(),
                deployed: deployed(),
            }
        }

        fn next(&self, recorded: Option<&OperationState>, now: &str) -> (OperationState, Progress) {
            let started = started_at(recorded, self.request.continues, now);
            let pass = Pass {
                request: &self.request,
                executed: &self.executed,
                failure: self.failure.clone(),
                sync_fail: self.sync_fail.clone(),
                sync_fail_hooks: &self.hooks,
                deployed: &self.deployed,
            };
            next(recorded, &pass, &started, now)
        }
    }

    #[test]
    fn a_clean_pass_succeeds_with_argo_cds_shape() {
        let mut f = Fixture::new(false);
        f.executed
            .results
            .insert(key("ConfigMap", "a"), Outcome::Applied(json!({})));
        let (state, progress) = f.next(None, "T1");
        assert_eq!(progress, Progress::Succeeded);
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            json!({
                "operation": {"sync": {"revision": "abc"}, "initiatedBy": {"automated": true}},
                "phase": "Succeeded",
                "message": SUCCEEDED,
                "syncResult": {
                    "resources": [{"group": "", "version": "", "kind": "ConfigMap",
                        "namespace": "web", "name": "a", "status": "Synced"}],
                    "revision": "abc",
                    "source": {"repoURL": "r"}
                },
                "startedAt": "T1",
                "finishedAt": "T1"
            })
        );
    }

    #[test]
    fn waiting_for_health_stays_running_and_keeps_started_at() {
        let mut f = Fixture::new(false);
        f.executed.waiting = Some("waiting for ConfigMap web/a to become healthy".into());
        let (first, progress) = f.next(None, "T1");
        assert!(matches!(progress, Progress::Running(_)));
        assert_eq!(
            (first.phase.clone(), first.finished_at.clone()),
            (OperationPhase::Running, None)
        );
        // The next pass continues it.
        let mut f = Fixture::new(true);
        f.executed
            .results
            .insert(key("ConfigMap", "b"), Outcome::Applied(json!({})));
        let (second, progress) = f.next(Some(&first), "T2");
        assert_eq!(progress, Progress::Succeeded);
        assert_eq!(second.started_at.as_deref(), Some("T1"));
        assert_eq!(second.finished_at.as_deref(), Some("T2"));
    }

    #[test]
    fn a_failure_waits_for_sync_fail_hooks_then_fails_with_its_message() {
        let notify = key("Job", "notify");
        let mut f = Fixture::new(false);
        f.failure = Some("1 resource(s) failed to sync: x".into());
        f.sync_fail = Some(SyncFailHooks::Running);
        f.hooks = BTreeSet::from([notify.clone()]);
        let (running, progress) = f.next(None, "T1");
        assert!(matches!(progress, Progress::Running(_)));
        assert_eq!(running.phase, OperationPhase::Running);
        assert!(running.message.contains("running SyncFail hooks"));
        let hook = &running.sync_result.as_ref().unwrap().resources[0];
        assert_eq!(
            (
                hook.hook_type.clone(),
                hook.sync_phase.clone(),
                hook.hook_phase.clone()
            ),
            (
                Some(HookType::SyncFail),
                Some(SyncPhase::SyncFail),
                Some(OperationPhase::Running)
            )
        );
        // The next pass finds the failure in the typed record, not by the message alone.
        let failure = recorded_sync_failure(&running);
        assert_eq!(failure.as_deref(), Some("1 resource(s) failed to sync: x"));
        assert!(completed_hooks(Some(&running)).is_empty());

        let mut f = Fixture::new(true);
        f.failure = failure;
        f.sync_fail = Some(SyncFailHooks::Done);
        f.hooks = BTreeSet::from([notify.clone()]);
        f.executed
            .results
            .insert(notify.clone(), Outcome::HookSucceeded);
        let (failed, progress) = f.next(Some(&running), "T2");
        assert_eq!(
            progress,
            Progress::Failed("1 resource(s) failed to sync: x".into())
        );
        assert_eq!(failed.phase, OperationPhase::Failed);
        assert_eq!(failed.message, "1 resource(s) failed to sync: x");
        assert_eq!(failed.started_at.as_deref(), Some("T1"));
        assert_eq!(failed.retry_count, 1);
        assert_eq!(recorded_sync_failure(&failed), None);
        assert_eq!(completed_hooks(Some(&failed)), BTreeSet::from([notify]));
    }

    #[test]
    fn a_failed_sync_fail_hook_fails_the_operation() {
        let mut f = Fixture::new(false);
        f.failure = Some("hook failed: Job web/pre".into());
        f.sync_fail = Some(SyncFailHooks::Failed("Job web/notify: job failed".into()));
        let (state, progress) = f.next(None, "T1");
        assert!(matches!(progress, Progress::Failed(_)));
        assert!(
            state
                .message
                .ends_with("SyncFail hook failed: Job web/notify: job failed")
        );
    }

    #[test]
    fn a_message_alone_does_not_mark_the_sync_fail_step() {
        let state: OperationState = serde_json::from_value(json!({"phase": "Running",
            "message": "waiting; running SyncFail hooks"}))
        .unwrap();
        assert_eq!(recorded_sync_failure(&state), None);
    }

    #[test]
    fn retries_count_up_and_reset() {
        let mut f = Fixture::new(false);
        f.failure = Some("boom".into());
        let (first, _) = f.next(None, "T1");
        assert_eq!(first.retry_count, 1);
        let (second, _) = f.next(Some(&first), "T2");
        assert_eq!(second.retry_count, 2);
        assert_eq!(
            second.started_at.as_deref(),
            Some("T2"),
            "a retry is a new attempt"
        );
        // A manual operation starts its own count.
        f.request.manual = true;
        assert_eq!(f.next(Some(&second), "T3").0.retry_count, 1);
        // Success clears it.
        let f = Fixture::new(false);
        assert_eq!(f.next(Some(&second), "T4").0.retry_count, 0);
    }

    #[test]
    fn an_operation_that_cannot_start_is_an_error() {
        let state = errored(Operation::default(), "no such cluster".into(), "T1");
        assert_eq!(state.phase, OperationPhase::Error);
        assert!(state.phase.completed());
        assert_eq!(state.finished_at.as_deref(), Some("T1"));
    }

    #[test]
    fn a_held_operation_is_running_and_a_running_one_keeps_what_it_recorded() {
        let op: Operation = serde_json::from_value(json!({"sync": {"revision": "abc"}})).unwrap();
        let new = held(None, op.clone(), "blocked".into(), "T2");
        assert_eq!(new.phase, OperationPhase::Running);
        assert_eq!(new.started_at.as_deref(), Some("T2"));
        assert_eq!(new.operation, op);
        let mut running = new.clone();
        running.started_at = Some("T1".into());
        running.retry_count = 1;
        let again = held(
            Some(&running),
            Operation::default(),
            "still blocked".into(),
            "T3",
        );
        assert_eq!(again.started_at.as_deref(), Some("T1"));
        assert_eq!((again.retry_count, again.operation), (1, op));
        assert_eq!(again.message, "still blocked");
        // A finished operation is not continued: a new one starts.
        running.phase = OperationPhase::Succeeded;
        assert_eq!(
            held(Some(&running), Operation::default(), "b".into(), "T4")
                .started_at
                .as_deref(),
            Some("T4")
        );
    }
}

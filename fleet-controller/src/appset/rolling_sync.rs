//! RollingSync: which owned Applications may sync now, and what the rollout reports. Pure.
//!
//! # Flow (one reconcile)
//!
//! 1. **Steps** ([`assign_steps`]): every desired Application is placed in the first step
//!    whose `matchExpressions` all match its labels (Argo CD's rules: `In`/`NotIn`, a missing
//!    label fails only `In`); an Application in no step is never synced by the rollout.
//! 2. **Per Application** (Argo CD's `UpdateApplicationSetApplicationStatus`): a new target
//!    (its `status.sync.revision(s)` changed, or the plan changes its spec) makes it
//!    `Waiting`; a `Waiting` one already Synced becomes `Healthy` or `Progressing`; a
//!    `Pending` one whose sync started becomes `Progressing`; a `Progressing` one Synced and
//!    Healthy becomes `Healthy`.
//! 3. **Argosy's rollout state** ([`RolloutState`]): a halt (a step's failures over the
//!    failure budget, or an abort request) stops every promotion and rolls back the
//!    Applications this rollout synced to the revision they ran before (their newest
//!    `status.history` entry deployed before the rollout's sync); a retry request or a new
//!    target for the failed Applications ends the halt. Pause starts no new sync.
//! 4. **Promotion** (Argo CD's `getAppsToSync` and `maxUpdate`): steps are walked in order;
//!    a step's Applications may sync once every earlier step is Healthy (and, with a bake
//!    time, has been for that long); `Waiting` ones become `Pending` up to `maxUpdate` at a
//!    time. A `Pending` Application gets a sync operation once (remembered in
//!    `status.rollout.synced`), as Argo CD's RollingSync sets `operation` on it.
//!
//! # Guarantees
//!
//! * Nothing here deletes anything; a rollback is a sync to an earlier revision without
//!   prune. An Application without an earlier deployed revision is left as it is.
//! * While halted, aborted or paused no new sync is started.
//! * The result only depends on the inputs (time is `now`): the same inputs give the same
//!   status, so an unchanged rollout writes nothing.
//!
//! # Differences from Argo CD
//!
//! Argo CD counts Applications that match no step into step 1's `maxUpdate` total (a map's
//! zero value); Argosy counts only the step's own Applications. Argo CD also waits for the
//! Application's `reconciledAt` to pass the `Pending` transition; Argosy looks only at the
//! operation's start.

use argosy_sync_engine::target::short_commit;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use argosy_crds::Application;
use argosy_crds::application::ApplicationStatus;
use argosy_crds::applicationset::{ApplicationSetApplicationStatus, RolloutState};
use argosy_crds::operation::{
    HealthStatusCode, Info, Operation, OperationInitiator, OperationPhase, RetryStrategy,
    RevisionHistory, SyncOperation, SyncStatusCode,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{Timestamp, ToSpan as _};
use serde_json::Value;

use super::strategy::{MatchExpression, MaxUpdate, RollingSync};

/// Argo CD's progressive sync statuses of one Application.
pub(crate) const WAITING: &str = "Waiting";
pub(crate) const PENDING: &str = "Pending";
pub(crate) const PROGRESSING: &str = "Progressing";
pub(crate) const HEALTHY: &str = "Healthy";

/// Argosy's rollout phases (`status.rollout.phase`).
pub(crate) mod phase {
    pub(crate) const PROGRESSING: &str = "Progressing";
    pub(crate) const BAKING: &str = "Baking";
    pub(crate) const PAUSED: &str = "Paused";
    pub(crate) const HALTED: &str = "Halted";
    pub(crate) const ABORTED: &str = "Aborted";
    pub(crate) const COMPLETED: &str = "Completed";
}

/// The user name on the operations the rollout starts (Argo CD's).
pub(crate) const INITIATOR: &str = "applicationset-controller";

/// What one reconcile reads.
pub(crate) struct Input<'a> {
    pub rolling: &'a RollingSync,
    /// `status.applicationStatus` as last written.
    pub previous: &'a [ApplicationSetApplicationStatus],
    /// `status.rollout` as last written.
    pub previous_rollout: Option<&'a RolloutState>,
    /// The owned Applications, live.
    pub owned: &'a [&'a Application],
    /// The generated Applications' names and labels.
    pub desired: &'a [Member],
    /// Names whose spec this reconcile's plan changes.
    pub spec_changed: &'a BTreeSet<String>,
    /// `automated.prune` of each generated Application before it was turned off.
    pub prune: &'a BTreeMap<String, bool>,
    pub now: Timestamp,
}

/// What the reconcile should write and say.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Progress {
    pub application_status: Vec<ApplicationSetApplicationStatus>,
    pub rollout: RolloutState,
    /// `RolloutProgressing`, `InvalidRolloutConfig` (Argo CD's) and `RolloutHalted` (Argosy's).
    pub conditions: Vec<RolloutCondition>,
    /// Sync operations to set on Applications (the rollout's syncs).
    pub syncs: Vec<(String, Operation)>,
    /// Sync operations to earlier revisions (the rollback).
    pub rollbacks: Vec<(String, Operation)>,
    /// Events for transitions of the rollout.
    pub events: Vec<RolloutEvent>,
    /// Look again after this long (a bake time ends).
    pub requeue: Option<Duration>,
}

/// One condition the rollout sets on the ApplicationSet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RolloutCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

/// One Event about the rollout.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RolloutEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Where each desired Application goes, and what is wrong with the steps.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Steps {
    /// Names per step, in the desired Applications' order.
    pub members: Vec<Vec<String>>,
    /// The 0-based step of each selected name.
    pub step_of: BTreeMap<String, usize>,
    /// Argo CD's validation issues, for `InvalidRolloutConfig`.
    pub invalid_operators: Vec<(usize, String)>,
    pub duplicates: BTreeMap<String, Vec<usize>>,
    pub invalid_max_updates: Vec<(usize, String)>,
}

/// A generated Application as the steps see it: its name and labels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Member {
    /// The members of `apps`, generated or live (unnamed ones are left out).
    pub(crate) fn of<A: std::borrow::Borrow<Application>>(apps: &[A]) -> Vec<Member> {
        apps.iter()
            .map(std::borrow::Borrow::borrow)
            .filter_map(|app: &Application| {
                Some(Member {
                    name: app.metadata.name.clone()?,
                    labels: app.metadata.labels.clone().unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// Turns automated sync off (`automated.enabled: false`) on every generated Application,
/// as Argo CD's RollingSync does, and returns what each one's `automated.prune` was.
pub(crate) fn disable_automated_sync(desired: &mut [Application]) -> BTreeMap<String, bool> {
    let mut prune = BTreeMap::new();
    for app in desired {
        let Some(automated) = app
            .spec
            .sync_policy
            .as_mut()
            .and_then(|p| p.automated.as_mut())
        else {
            continue;
        };
        if automated.enabled != Some(false)
            && let Some(name) = &app.metadata.name
        {
            prune.insert(name.clone(), automated.prune);
        }
        automated.enabled = Some(false);
    }
    prune
}

/// One round of `deletionOrder: Reverse` (Argo CD's `PerformReverseDeletion`): the
/// Applications of the last step that still has some go first; the next step only once
/// they are gone. Applications in no step go last.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ReverseDeletion {
    /// Delete these now.
    pub delete: Vec<String>,
    /// Being deleted: wait for them before the next step.
    pub waiting: Vec<String>,
}

/// The next round of a reverse deletion of `owned` (done when both lists are empty).
pub(crate) fn reverse_deletion(rolling: &RollingSync, owned: &[&Application]) -> ReverseDeletion {
    let steps = assign_steps(rolling, &Member::of(owned));
    let terminating: BTreeSet<&str> = owned
        .iter()
        .filter(|a| a.metadata.deletion_timestamp.is_some())
        .filter_map(|a| a.metadata.name.as_deref())
        .collect();
    let unselected: Vec<String> = owned
        .iter()
        .filter_map(|a| a.metadata.name.clone())
        .filter(|n| !steps.step_of.contains_key(n))
        .collect();
    // An Application selected by several steps belongs to the first (as when syncing).
    let groups = steps
        .members
        .iter()
        .enumerate()
        .rev()
        .map(|(index, members)| {
            members
                .iter()
                .filter(|n| steps.step_of.get(*n) == Some(&index))
                .cloned()
                .collect::<Vec<_>>()
        })
        .chain(std::iter::once(unselected));
    for group in groups {
        if group.is_empty() {
            continue;
        }
        let (waiting, delete): (Vec<String>, Vec<String>) = group
            .into_iter()
            .partition(|n| terminating.contains(n.as_str()));
        return ReverseDeletion { delete, waiting };
    }
    ReverseDeletion::default()
}

/// Places every desired Application in its step (Argo CD's `buildAppDependencyList`).
pub(crate) fn assign_steps(rolling: &RollingSync, desired: &[Member]) -> Steps {
    let mut steps = Steps {
        members: vec![Vec::new(); rolling.steps.len()],
        ..Steps::default()
    };
    for Member { name, labels } in desired {
        for (index, step) in rolling.steps.iter().enumerate() {
            if !selects(&step.match_expressions, labels, index, &mut steps) {
                continue;
            }
            steps.members[index].push(name.clone());
            match steps.step_of.get(name) {
                Some(first) => {
                    let first = *first;
                    steps
                        .duplicates
                        .entry(name.clone())
                        .or_insert_with(|| vec![first])
                        .push(index);
                }
                None => {
                    steps.step_of.insert(name.clone(), index);
                }
            }
        }
    }
    steps
}

/// True when every expression matches (AND); a missing label fails `In` only.
fn selects(
    expressions: &[MatchExpression],
    labels: &BTreeMap<String, String>,
    index: usize,
    steps: &mut Steps,
) -> bool {
    for expression in expressions {
        let Some(value) = labels.get(&expression.key) else {
            if expression.operator == "In" {
                return false;
            }
            continue;
        };
        let listed = expression.values.iter().any(|v| v == value);
        let matched = match expression.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            other => {
                let issue = (index, other.to_owned());
                if !steps.invalid_operators.contains(&issue) {
                    steps.invalid_operators.push(issue);
                }
                false
            }
        };
        if !matched {
            return false;
        }
    }
    true
}

/// The number of Applications of a step of `total` that may update at once
/// (Kubernetes' `GetScaledValueFromIntOrPercent`, rounded down, at least 1 for a non-zero
/// percentage, as Argo CD does); `Err` names an invalid value, which counts as 1.
fn max_update(value: Option<&MaxUpdate>, total: usize) -> Result<usize, usize> {
    match value {
        None => Ok(usize::MAX),
        Some(MaxUpdate::Count(n)) => Ok(usize::try_from(*n).unwrap_or(0)),
        Some(MaxUpdate::Text(text)) => {
            let percent = text.strip_suffix('%').and_then(|p| p.parse::<i64>().ok());
            match percent {
                Some(p) => {
                    let scaled = usize::try_from(p).unwrap_or(0).saturating_mul(total) / 100;
                    Ok(if scaled < 1 && text != "0%" {
                        1
                    } else {
                        scaled
                    })
                }
                None => Err(1),
            }
        }
    }
}

/// What the rollout reads of one live Application, read once per reconcile: its sync and
/// health, the revisions its status compares against, and `status.operationState` decoded
/// once. The operation state carries the last sync's result (every resource of it), and
/// the questions the rollout asks of it (the revisions a sync was pinned to, whether a
/// Pending one started, whether a synced one failed, what a waiting one is doing) would
/// otherwise decode it up to three times per Application and reconcile.
struct Observed<'a> {
    app: &'a Application,
    sync: SyncStatusCode,
    health: HealthStatusCode,
    /// `status.sync.revision(s)` (`GetRevisions`).
    revisions: Vec<String>,
    /// `status.operationState`, when present and readable.
    operation: Option<ObservedOperation>,
}

/// The part of `status.operationState` the rollout reads.
struct ObservedOperation {
    phase: OperationPhase,
    started: Option<Timestamp>,
    message: String,
    /// The revisions its sync was pinned to (empty: the spec's).
    pinned: Vec<String>,
}

impl<'a> Observed<'a> {
    fn of(app: &'a Application) -> Self {
        let status = app.status.as_ref();
        let operation = status
            .and_then(|s| s.operation_state())
            .and_then(Result::ok)
            .map(|state| ObservedOperation {
                phase: state.phase,
                started: state
                    .started_at
                    .as_deref()
                    .and_then(|t| t.parse::<Timestamp>().ok()),
                message: state.message,
                pinned: state
                    .operation
                    .sync
                    .map(|sync| {
                        if sync.revisions.is_empty() {
                            vec![sync.revision]
                                .into_iter()
                                .filter(|r| !r.is_empty())
                                .collect()
                        } else {
                            sync.revisions
                        }
                    })
                    .unwrap_or_default(),
            });
        Observed {
            app,
            sync: status
                .and_then(|s| s.sync.as_ref())
                .map_or(SyncStatusCode::Unknown, |s| s.code()),
            health: status
                .and_then(|s| s.health.as_ref())
                .map_or(HealthStatusCode::Unknown, |h| h.code()),
            revisions: revisions(status),
            operation,
        }
    }

    /// The revisions its status compares against, when they are its spec's: `None` while
    /// the status shows a sync pinned to an explicit revision (a rollback, or
    /// `argosy app sync --revision`), whose comparison is against that revision instead.
    fn spec_revisions(&self) -> Option<&[String]> {
        match &self.operation {
            Some(op) if !op.pinned.is_empty() && op.pinned == self.revisions => None,
            _ => Some(&self.revisions),
        }
    }

    fn health_message(&self) -> &str {
        self.app
            .status
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .map_or("", |h| h.message.as_str())
    }
}

/// The revisions an Application's status compares against (`GetRevisions`).
fn revisions(status: Option<&ApplicationStatus>) -> Vec<String> {
    let Some(sync) = status.and_then(|s| s.sync.as_ref()) else {
        return Vec::new();
    };
    if !sync.revision.is_empty() {
        return vec![sync.revision.clone()];
    }
    sync.extra
        .get("revisions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The Application's conditions (`status.conditions`), as JSON.
fn conditions_of(app: &Application) -> &[Value] {
    app.status
        .as_ref()
        .and_then(|s| s.extra.get("conditions"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The message of the Application's condition of `type_`, if it has one.
fn condition_message<'a>(app: &'a Application, type_: &str) -> Option<&'a str> {
    conditions_of(app)
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        .and_then(|c| c.get("message").and_then(Value::as_str))
}

/// Argo CD's `isApplicationWithError`: an error that keeps the Application from syncing.
fn has_blocking_error(app: &Application) -> bool {
    conditions_of(app).iter().any(|c| {
        matches!(
            c.get("type").and_then(Value::as_str),
            Some("InvalidSpecError" | "UnknownError")
        )
    })
}

fn entry_time(entry: &ApplicationSetApplicationStatus) -> Option<Timestamp> {
    entry.last_transition_time.as_ref().map(|t| t.0)
}

/// `now` to the second, as the API server keeps times.
fn seconds(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn transition(
    entry: &mut ApplicationSetApplicationStatus,
    status: &str,
    message: &str,
    now: Timestamp,
) {
    entry.status = status.to_owned();
    entry.message = message.to_owned();
    entry.last_transition_time = Some(Time(now));
}

/// Step 2 of the flow: one Application's status after this pass (Argo CD's state machine).
fn next_entry(
    observed: &Observed<'_>,
    name: &str,
    previous: Option<&ApplicationSetApplicationStatus>,
    step: Option<usize>,
    spec_changed: bool,
    now: Timestamp,
) -> ApplicationSetApplicationStatus {
    let step_text = step.map_or("-1".to_owned(), |s| (s + 1).to_string());
    let current = previous
        .cloned()
        .unwrap_or_else(|| ApplicationSetApplicationStatus {
            application: name.to_owned(),
            target_revisions: observed.revisions.clone(),
            last_transition_time: Some(Time(now)),
            message: "No Application status found, defaulting status to Waiting".into(),
            status: WAITING.into(),
            step: step_text.clone(),
            ..ApplicationSetApplicationStatus::default()
        });
    let mut next = current.clone();
    next.step = step_text;
    // While a sync pinned to a revision (a rollback) shows in the status, the target is
    // what it was: a rollback is not a new commit to roll out.
    let current_revisions = observed
        .spec_revisions()
        .map_or_else(|| current.target_revisions.clone(), <[String]>::to_vec);
    let revisions_changed = current.target_revisions != current_revisions;
    if revisions_changed || spec_changed {
        next.target_revisions = current_revisions;
        let message = match (revisions_changed, spec_changed) {
            (true, true) => {
                "Application has pending changes (revision and spec differ), setting status to Waiting"
            }
            (true, false) => "Application has pending changes, setting status to Waiting",
            _ => "Application has pending changes (spec differs), setting status to Waiting",
        };
        transition(&mut next, WAITING, message, now);
    }
    let synced = observed.sync == SyncStatusCode::Synced;
    let healthy = observed.health == HealthStatusCode::Healthy;
    if next.status == WAITING {
        if synced {
            if healthy {
                transition(
                    &mut next,
                    HEALTHY,
                    "Application resource has synced, updating status to Healthy",
                    now,
                );
            } else {
                transition(
                    &mut next,
                    PROGRESSING,
                    "Application resource has synced, updating status to Progressing",
                    now,
                );
            }
        }
        return next;
    }
    if current.status == PENDING {
        let pending_since = entry_time(&current);
        let started = observed.operation.as_ref().filter(
            |op| matches!((op.started, pending_since), (Some(s), Some(p)) if s >= seconds(p)),
        );
        if let Some(ObservedOperation { phase, .. }) = started {
            let message = if *phase == OperationPhase::Succeeded {
                "Application resource completed a sync successfully, updating status from Pending to Progressing"
            } else if phase.completed() {
                "Application resource completed a sync, updating status from Pending to Progressing"
            } else {
                "Application resource became Progressing, updating status from Pending to Progressing"
            };
            transition(&mut next, PROGRESSING, message, now);
        } else if has_blocking_error(observed.app) {
            transition(
                &mut next,
                PROGRESSING,
                "Application resource has error and cannot sync, updating status to Progressing",
                now,
            );
        }
    }
    if current.status == PROGRESSING && healthy && synced {
        transition(
            &mut next,
            HEALTHY,
            "Application resource became Healthy, updating status from Progressing to Healthy",
            now,
        );
    }
    next
}

/// Why an Application of the rollout counts as failed, if it does: once the rollout's sync
/// of it (started at or after `synced_at`) has ended, the sync Failed or Errored, or the
/// Application is Degraded. What it was before that sync (a retry of a Degraded one, a
/// sync still running) does not count.
fn failure(observed: &Observed<'_>, synced_at: Option<Timestamp>) -> Option<String> {
    let op = observed.operation.as_ref()?;
    let ours = matches!((op.started, synced_at), (Some(s), Some(t)) if s >= t);
    if !ours || !op.phase.completed() {
        return None;
    }
    if matches!(op.phase, OperationPhase::Failed | OperationPhase::Error) {
        return Some(format!("sync {}: {}", op.phase, op.message));
    }
    (observed.health == HealthStatusCode::Degraded).then(|| {
        let message = observed.health_message();
        if message.is_empty() {
            "Degraded".to_owned()
        } else {
            format!("Degraded: {message}")
        }
    })
}

/// The sync the rollout sets on an Application (Argo CD's `syncApplication`): its own sync
/// options and retry (5 retries when it has none), prune as its generated automated policy
/// said.
fn rollout_sync(app: &Application, prune: bool) -> Operation {
    let policy = app.spec.sync_policy.as_ref();
    let retry = policy
        .and_then(|p| p.retry.as_ref())
        .and_then(|r| serde_json::from_value::<RetryStrategy>(r.clone()).ok())
        .unwrap_or(RetryStrategy {
            limit: 5,
            ..RetryStrategy::default()
        });
    Operation {
        retry: Some(retry),
        ..rollout_operation(
            SyncOperation {
                prune: prune && policy.is_some(),
                sync_options: policy.map(|p| p.sync_options.clone()).unwrap_or_default(),
                ..SyncOperation::default()
            },
            "ApplicationSet RollingSync triggered a sync of this Application resource".into(),
        )
    }
}

/// An operation the rollout starts: `sync`, initiated by [`INITIATOR`] as an automated
/// one (as Argo CD marks them, so a window's `manualSync` does not let it through), with
/// `reason` as its `Reason` info.
fn rollout_operation(sync: SyncOperation, reason: String) -> Operation {
    Operation {
        sync: Some(sync),
        initiated_by: Some(OperationInitiator {
            username: INITIATOR.into(),
            automated: true,
            ..OperationInitiator::default()
        }),
        info: vec![Info {
            name: "Reason".into(),
            value: reason,
            ..Info::default()
        }],
        ..Operation::default()
    }
}

/// The rollback of one Application the rollout synced at `synced_at`: a sync (no prune) to
/// its newest history entry deployed before then; `None` when it has none.
fn rollback(app: &Application, synced_at: Timestamp, reason: &str) -> Option<(Operation, String)> {
    let history: Vec<RevisionHistory> = app.status.as_ref()?.history()?.ok()?;
    let entry = history
        .iter()
        .filter(|h| {
            h.deployed_at
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|t| t < synced_at)
        })
        .max_by_key(|h| h.id)?;
    let revision = if entry.revisions.is_empty() {
        entry.revision.clone()
    } else {
        entry.revisions.join(",")
    };
    let operation = rollout_operation(
        SyncOperation {
            revision: entry.revision.clone(),
            revisions: entry.revisions.clone(),
            source: entry.source.clone(),
            sources: entry.sources.clone(),
            ..SyncOperation::default()
        },
        format!("{reason}: rolled back to revision {revision}"),
    );
    Some((operation, revision))
}

/// Halted (failures over the budget) or aborted: no sync starts, the rollback runs.
fn is_halted(rollout: &RolloutState) -> bool {
    matches!(rollout.phase.as_str(), phase::HALTED | phase::ABORTED)
}

/// Forgets what the previous rollout synced, rolled back and saw fail: a new one begins.
fn forget_previous(rollout: &mut RolloutState) {
    rollout.synced.clear();
    rollout.rolled_back.clear();
    rollout.failed.clear();
}

/// Records `names` as failed at their current target revisions (a halt ends when they
/// change).
fn mark_failed<'a>(
    rollout: &mut RolloutState,
    names: impl IntoIterator<Item = &'a String>,
    entries: &[ApplicationSetApplicationStatus],
) {
    for name in names {
        let revisions = entries
            .iter()
            .find(|e| e.application == *name)
            .map(|e| e.target_revisions.clone())
            .unwrap_or_default();
        rollout.failed.insert(name.clone(), revisions);
    }
}

/// One reconcile of a RollingSync (the module docs' flow).
#[allow(clippy::too_many_lines)] // one pass of a state machine, read top to bottom
pub(crate) fn advance(input: &Input<'_>) -> Progress {
    let now = input.now;
    let steps = assign_steps(input.rolling, input.desired);
    let total_steps = input.rolling.steps.len();
    let options = &input.rolling.options;
    let mut out = Progress::default();
    let mut rollout = input.previous_rollout.cloned().unwrap_or_default();
    // Each owned Application's status read once, for every question below.
    let live: BTreeMap<&str, Observed<'_>> = input
        .owned
        .iter()
        .filter_map(|a| a.metadata.name.as_deref().map(|n| (n, Observed::of(a))))
        .collect();
    let previous: BTreeMap<&str, &ApplicationSetApplicationStatus> = input
        .previous
        .iter()
        .map(|e| (e.application.as_str(), e))
        .collect();
    let set_phase = |rollout: &mut RolloutState, phase: &str, message: String| {
        if rollout.phase != phase {
            rollout.since = seconds(now).to_string();
        }
        rollout.phase = phase.to_owned();
        rollout.message = message;
    };

    // A retry request ends a halt: the failed and rolled-back Applications start again.
    let mut restart: BTreeSet<String> = BTreeSet::new();
    if let Some(request) = options
        .retry_request
        .as_ref()
        .filter(|r| **r != rollout.handled_retry)
    {
        rollout.handled_retry = request.clone();
        if is_halted(&rollout) {
            restart.extend(rollout.failed.keys().cloned());
            restart.extend(rollout.rolled_back.iter().cloned());
            forget_previous(&mut rollout);
            set_phase(&mut rollout, phase::PROGRESSING, "retry requested".into());
            out.events.push(RolloutEvent {
                warning: false,
                reason: "RolloutRetried",
                message: format!(
                    "retry {request}: {} Application(s) start again",
                    restart.len()
                ),
            });
        }
    }

    // Step 2: every owned Application's status, in name order.
    let mut entries: Vec<ApplicationSetApplicationStatus> = live
        .iter()
        .map(|(name, app)| {
            let mut entry = next_entry(
                app,
                name,
                previous.get(name).copied(),
                steps.step_of.get(*name).copied(),
                input.spec_changed.contains(*name),
                now,
            );
            if restart.contains(*name) {
                transition(
                    &mut entry,
                    WAITING,
                    "Retry of the rollout requested, setting status to Waiting",
                    now,
                );
            }
            entry
        })
        .collect();

    // Step 3: a new rollout, the end of a halt, a halt.
    // A halt ends when every failed Application has a new target: a new commit, or a
    // new spec from the ApplicationSet (a fixed generator parameter).
    let changed_targets = |rollout: &RolloutState| {
        rollout.failed.iter().all(|(name, revs)| {
            input.spec_changed.contains(name)
                || entries
                    .iter()
                    .find(|e| e.application == *name)
                    .is_none_or(|e| e.target_revisions != *revs)
        })
    };
    let halted = is_halted(&rollout);
    let unfinished = entries
        .iter()
        .any(|e| steps.step_of.contains_key(&e.application) && e.status != HEALTHY);
    let idle = matches!(rollout.phase.as_str(), "" | phase::COMPLETED);
    if (idle && unfinished) || (halted && changed_targets(&rollout)) {
        forget_previous(&mut rollout);
        set_phase(&mut rollout, phase::PROGRESSING, "rollout started".into());
        out.events.push(RolloutEvent {
            warning: false,
            reason: "RolloutStarted",
            message: format!(
                "rollout of {} Application(s) over {total_steps} step(s) started",
                entries.iter().filter(|e| e.status != HEALTHY).count()
            ),
        });
    }
    if let Some(request) = options
        .abort_request
        .as_ref()
        .filter(|r| **r != rollout.handled_abort)
    {
        rollout.handled_abort = request.clone();
        if rollout.phase != phase::ABORTED {
            let synced: Vec<String> = rollout.synced.keys().cloned().collect();
            mark_failed(&mut rollout, &synced, &entries);
            let message = format!("aborted by request {request}");
            set_phase(&mut rollout, phase::ABORTED, message.clone());
            out.events.push(RolloutEvent {
                warning: true,
                reason: "RolloutAborted",
                message,
            });
        }
    }
    if let (Some(budget), false) = (options.failure_budget, is_halted(&rollout)) {
        for (index, members) in steps.members.iter().enumerate() {
            let failures: Vec<(String, String)> = members
                .iter()
                .filter_map(|name| {
                    let synced_at = rollout.synced.get(name)?.parse::<Timestamp>().ok();
                    let app = live.get(name.as_str())?;
                    failure(app, synced_at).map(|why| (name.clone(), why))
                })
                .collect();
            let tolerated = budget.tolerated(members.len());
            if failures.len() <= tolerated {
                continue;
            }
            mark_failed(
                &mut rollout,
                failures.iter().map(|(name, _)| name),
                &entries,
            );
            let reasons: Vec<String> = failures
                .iter()
                .map(|(name, why)| format!("{name}: {why}"))
                .collect();
            let message = format!(
                "step {} of {total_steps} halted: {} of {} Application(s) failed, over the failure budget of {tolerated} ({})",
                index + 1,
                failures.len(),
                members.len(),
                reasons.join("; ")
            );
            set_phase(&mut rollout, phase::HALTED, message.clone());
            rollout.step = u32::try_from(index + 1).unwrap_or(u32::MAX);
            out.events.push(RolloutEvent {
                warning: true,
                reason: "RolloutHalted",
                message,
            });
            break;
        }
    }

    let halted = is_halted(&rollout);
    if halted {
        // Roll back what this rollout synced (an abort always; a halt unless turned off).
        if options.rollback || rollout.phase == phase::ABORTED {
            let reason = format!("rollout {}", rollout.phase.to_lowercase());
            let mut done = Vec::new();
            for (name, at) in &rollout.synced {
                if rollout.rolled_back.contains(name) {
                    continue;
                }
                let (Some(app), Ok(at)) = (live.get(name.as_str()), at.parse::<Timestamp>()) else {
                    continue;
                };
                match rollback(app.app, at, &reason) {
                    Some((operation, revision)) => {
                        done.push(format!("{name} to {}", short_commit(&revision)));
                        out.rollbacks.push((name.clone(), operation));
                    }
                    None => done.push(format!("{name} left as is (no earlier revision)")),
                }
                rollout.rolled_back.push(name.clone());
            }
            if !done.is_empty() {
                out.events.push(RolloutEvent {
                    warning: true,
                    reason: "RolloutRolledBack",
                    message: format!("rolled back {}", done.join(", ")),
                });
                rollout.message = format!("{}; rolled back {}", rollout.message, done.join(", "));
            }
        }
    }

    // Step 4: which steps may sync, and the bake time.
    let index_of: BTreeMap<String, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.application.clone(), i))
        .collect();
    let mut allowed: BTreeSet<&str> = BTreeSet::new();
    let mut current_step: Option<usize> = None;
    let mut baking_until: Option<Timestamp> = None;
    for (index, members) in steps.members.iter().enumerate() {
        allowed.extend(members.iter().map(String::as_str));
        let healthy = members.iter().all(|name| {
            index_of
                .get(name)
                .is_some_and(|i| entries[*i].status == HEALTHY)
        });
        if !healthy {
            current_step = Some(index);
            break;
        }
        let bake = options.bake_time(index);
        if bake > Duration::ZERO {
            let since = members
                .iter()
                .filter_map(|n| index_of.get(n).and_then(|i| entry_time(&entries[*i])))
                .max();
            if let Some(since) = since {
                let until = since
                    .checked_add(i64::try_from(bake.as_secs()).unwrap_or(i64::MAX).seconds())
                    .unwrap_or(since);
                // Only a next step waits for the bake.
                if now < until && index + 1 < total_steps {
                    current_step = Some(index);
                    baking_until = Some(until);
                    break;
                }
            }
        }
    }

    // Apps that follow the same repository and revision but report different commits are
    // mid-refresh: a step that looks Healthy may not have seen the new commit yet, and
    // promoting past it would update later customers first (a race Argo CD has).
    let refreshing = disagreeing_revisions(&live);
    let paused = options.paused && !halted;
    let mut invalid_max_updates: Vec<(usize, String)> = Vec::new();
    if !halted && !paused {
        // Argo CD's maxUpdate: Pending and Progressing count against each step's budget.
        let mut updating = vec![0usize; total_steps];
        let mut totals = vec![0usize; total_steps];
        for entry in &entries {
            if let Some(step) = steps.step_of.get(&entry.application) {
                totals[*step] += 1;
                if matches!(entry.status.as_str(), PENDING | PROGRESSING) {
                    updating[*step] += 1;
                }
            }
        }
        for entry in &mut entries {
            let Some(step) = steps.step_of.get(&entry.application).copied() else {
                continue;
            };
            let limit =
                match max_update(input.rolling.steps[step].max_update.as_ref(), totals[step]) {
                    Ok(limit) => limit,
                    Err(limit) => {
                        if let Some(MaxUpdate::Text(text)) = &input.rolling.steps[step].max_update {
                            let issue = (step, text.clone());
                            if !invalid_max_updates.contains(&issue) {
                                invalid_max_updates.push(issue);
                            }
                        }
                        limit
                    }
                };
            if entry.status == WAITING
                && refreshing.is_none()
                && allowed.contains(entry.application.as_str())
                && updating[step] < limit
            {
                transition(
                    entry,
                    PENDING,
                    "Application moved to Pending status, watching for the Application resource to start Progressing",
                    now,
                );
                updating[step] += 1;
            }
        }
        // A Pending Application gets the rollout's sync once.
        for entry in &entries {
            if entry.status != PENDING || !allowed.contains(entry.application.as_str()) {
                continue;
            }
            let pending_since = entry_time(entry).map(seconds);
            let already = rollout
                .synced
                .get(&entry.application)
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|t| pending_since.is_some_and(|p| t >= p));
            let Some(app) = live.get(entry.application.as_str()) else {
                continue;
            };
            if already {
                continue;
            }
            let prune = input
                .prune
                .get(&entry.application)
                .copied()
                .unwrap_or(false);
            out.syncs
                .push((entry.application.clone(), rollout_sync(app.app, prune)));
            rollout
                .synced
                .insert(entry.application.clone(), seconds(now).to_string());
        }
    }
    // The rollout's phase, step and message.
    if !halted {
        let previous_phase = rollout.phase.clone();
        let previous_step = rollout.step;
        match current_step {
            None => {
                rollout.step = 0;
                set_phase(
                    &mut rollout,
                    phase::COMPLETED,
                    format!("all {total_steps} step(s) Healthy"),
                );
            }
            Some(index) => {
                rollout.step = u32::try_from(index + 1).unwrap_or(u32::MAX);
                let message = step_message(
                    index,
                    total_steps,
                    &steps.members[index],
                    &entries,
                    &index_of,
                    &live,
                    baking_until,
                    options.paused,
                );
                let phase = if options.paused {
                    phase::PAUSED
                } else if baking_until.is_some() {
                    phase::BAKING
                } else {
                    phase::PROGRESSING
                };
                let message = match &refreshing {
                    Some(why) => format!("{message}; {why}"),
                    None => message,
                };
                set_phase(&mut rollout, phase, message);
            }
        }
        if rollout.phase == phase::COMPLETED
            && previous_phase != phase::COMPLETED
            && !previous_phase.is_empty()
        {
            out.events.push(RolloutEvent {
                warning: false,
                reason: "RolloutCompleted",
                message: rollout.message.clone(),
            });
        } else if rollout.step != previous_step
            && rollout.step > 0
            && rollout.phase == phase::PROGRESSING
        {
            out.events.push(RolloutEvent {
                warning: false,
                reason: "RolloutStepStarted",
                message: rollout.message.clone(),
            });
        } else if rollout.phase != previous_phase
            && matches!(rollout.phase.as_str(), phase::PAUSED | phase::BAKING)
        {
            out.events.push(RolloutEvent {
                warning: false,
                reason: if rollout.phase == phase::PAUSED {
                    "RolloutPaused"
                } else {
                    "RolloutBaking"
                },
                message: rollout.message.clone(),
            });
        }
    }
    if let Some(until) = baking_until {
        let wait = until.duration_since(now).as_secs();
        out.requeue = Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0).max(1)));
    }
    let steps = Steps {
        invalid_max_updates,
        ..steps
    };
    out.conditions = conditions(&steps, &entries, total_steps, &rollout);
    out.application_status = entries;
    out.rollout = rollout;
    out
}

/// Why no Application may be promoted yet: Applications following the same sources
/// (repository and target revision) report different revisions, so some have not seen a
/// new commit yet. `None` when they agree.
fn disagreeing_revisions(live: &BTreeMap<&str, Observed<'_>>) -> Option<String> {
    let mut seen: BTreeMap<String, BTreeMap<&[String], &str>> = BTreeMap::new();
    for (name, observed) in live {
        let Some(revisions) = observed.spec_revisions() else {
            continue;
        };
        if revisions.is_empty() {
            continue;
        }
        let spec = &observed.app.spec;
        let sources: Vec<String> = spec
            .source
            .iter()
            .chain(&spec.sources)
            .map(|s| format!("{}@{}", s.repo_url, s.target_revision))
            .collect();
        seen.entry(sources.join(" "))
            .or_default()
            .entry(revisions)
            .or_insert(*name);
    }
    seen.iter().find(|(_, by)| by.len() > 1).map(|(source, by)| {
        let examples: Vec<String> = by
            .iter()
            .take(3)
            .map(|(revs, name)| {
                let revs: Vec<&str> = revs.iter().map(|r| short_commit(r)).collect();
                format!("{name} at {}", revs.join(","))
            })
            .collect();
        format!(
            "no new step starts until every Application of {source} sees the same revision ({})",
            examples.join(", ")
        )
    })
}

/// Why the rollout waits at step `index` (for `status.rollout.message` and the CLI).
#[allow(clippy::too_many_arguments)]
fn step_message(
    index: usize,
    total_steps: usize,
    members: &[String],
    entries: &[ApplicationSetApplicationStatus],
    index_of: &BTreeMap<String, usize>,
    live: &BTreeMap<&str, Observed<'_>>,
    baking_until: Option<Timestamp>,
    paused: bool,
) -> String {
    let step = format!("step {} of {total_steps}", index + 1);
    if let Some(until) = baking_until {
        return format!(
            "{step}: all {} Application(s) Healthy; baking until {until}",
            members.len()
        );
    }
    let healthy = members
        .iter()
        .filter(|n| {
            index_of
                .get(*n)
                .is_some_and(|i| entries[*i].status == HEALTHY)
        })
        .count();
    let waiting: Vec<String> = members
        .iter()
        .filter_map(|name| {
            let Some(i) = index_of.get(name) else {
                return Some(format!("{name} (not created yet)"));
            };
            let entry = &entries[*i];
            if entry.status == HEALTHY {
                return None;
            }
            let app = live.get(name.as_str());
            let mut detail = format!("{name} {}", entry.status);
            if let Some(observed) = app {
                detail.push_str(&format!(": {}/{}", observed.sync, observed.health));
                let message = observed.health_message();
                if !message.is_empty() {
                    detail.push_str(&format!(" ({message})"));
                }
                if let Some(op) = &observed.operation
                    && op.phase.running()
                    && !op.message.is_empty()
                {
                    detail.push_str(&format!("; sync {}: {}", op.phase, op.message));
                } else if let Some(window) = condition_message(observed.app, "SyncWindowBlocked") {
                    detail.push_str(&format!("; {window}"));
                }
            }
            Some(detail)
        })
        .take(5)
        .collect();
    let paused = if paused {
        "paused (argosy.io/rollout-paused); "
    } else {
        ""
    };
    format!(
        "{paused}{step}: {healthy} of {} Application(s) Healthy; waiting for {}",
        members.len(),
        waiting.join(", ")
    )
}

/// Argo CD's `RolloutProgressing` and `InvalidRolloutConfig`, and Argosy's `RolloutHalted`.
fn conditions(
    steps: &Steps,
    entries: &[ApplicationSetApplicationStatus],
    total_steps: usize,
    rollout: &RolloutState,
) -> Vec<RolloutCondition> {
    let mut completed: BTreeMap<&str, bool> = BTreeMap::new();
    for entry in entries {
        let done = completed.entry(entry.step.as_str()).or_insert(true);
        *done = *done && entry.status == HEALTHY;
    }
    let progressing = (1..=total_steps)
        .map(|i| i.to_string())
        .find(|step| completed.get(step.as_str()) == Some(&false));
    let mut out = vec![match progressing {
        Some(step) => RolloutCondition {
            type_: "RolloutProgressing",
            status: true,
            reason: "ApplicationSetModified",
            message: format!("ApplicationSet is performing rollout of step {step}"),
        },
        None => RolloutCondition {
            type_: "RolloutProgressing",
            status: false,
            reason: "ApplicationSetRolloutComplete",
            message: "ApplicationSet Rollout has completed".into(),
        },
    }];
    let issue = invalid_config_message(steps);
    out.push(match issue {
        Some(message) => RolloutCondition {
            type_: "InvalidRolloutConfig",
            status: true,
            reason: "ApplicationSetInvalidRolloutConfig",
            message,
        },
        None => RolloutCondition {
            type_: "InvalidRolloutConfig",
            status: false,
            reason: "ApplicationSetValidRolloutConfig",
            message: "Rolling Sync Configured correctly".into(),
        },
    });
    if is_halted(rollout) {
        out.push(RolloutCondition {
            type_: "RolloutHalted",
            status: true,
            reason: if rollout.phase == phase::ABORTED {
                "RolloutAborted"
            } else {
                "FailureBudgetExceeded"
            },
            message: rollout.message.clone(),
        });
    }
    out
}

/// Argo CD's `InvalidRolloutConfig` message: the first kind of issue found, in its order.
/// Its wording agrees in number with what it lists ("Step 2 has", "Steps 2, 3 have").
fn invalid_config_message(steps: &Steps) -> Option<String> {
    let numbers = |indices: &mut dyn Iterator<Item = usize>| -> String {
        let listed: Vec<String> = indices.map(|i| (i + 1).to_string()).collect();
        listed.join(", ")
    };
    let one = |count: usize| count == 1;
    if !steps.invalid_operators.is_empty() {
        let count = steps.invalid_operators.len();
        let ops: Vec<&str> = steps
            .invalid_operators
            .iter()
            .map(|(_, o)| o.as_str())
            .collect();
        let (subject, verb) = if one(count) {
            ("Step", "has")
        } else {
            ("Steps", "have")
        };
        return Some(format!(
            "{subject} {} {verb} invalid matchExpression operators: {}. Supported Operators are 'In' and 'NotIn'",
            numbers(&mut steps.invalid_operators.iter().map(|(i, _)| *i)),
            ops.join(", ")
        ));
    }
    if !steps.duplicates.is_empty() {
        let names: Vec<&str> = steps.duplicates.keys().map(String::as_str).collect();
        let selections: Vec<String> = steps
            .duplicates
            .values()
            .map(|s| numbers(&mut s.iter().copied()).replace(", ", "-"))
            .collect();
        let (subject, verb, open, close) = if one(names.len()) {
            ("Application", "is", "(", ")")
        } else {
            ("Applications", "are", "[(", ")]")
        };
        return Some(format!(
            "{subject} '{}' {verb} selected by multiple steps: {open}{}{close}",
            names.join("', '"),
            selections.join("), (")
        ));
    }
    if !steps.invalid_max_updates.is_empty() {
        let count = steps.invalid_max_updates.len();
        let values: Vec<&str> = steps
            .invalid_max_updates
            .iter()
            .map(|(_, v)| v.as_str())
            .collect();
        let (subject, verb, open, close) = if one(count) {
            ("Step", "has an invalid maxUpdate value", "", "")
        } else {
            ("Steps", "have invalid maxUpdate values", "[", "]")
        };
        return Some(format!(
            "{subject} {} {verb}: {open}{}{close}",
            numbers(&mut steps.invalid_max_updates.iter().map(|(i, _)| *i)),
            values.join(", ")
        ));
    }
    let empty: Vec<String> = steps
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_empty())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    (!empty.is_empty()).then(|| {
        format!(
            "Steps [{}] have no applications matching their criteria",
            empty.join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::strategy::{self, FailureBudget, Strategy};
    use super::*;

    fn rolling(steps: Value, options: RolloutOptionsFor) -> RollingSync {
        let strategy = json!({"type": "RollingSync", "rollingSync": {"steps": steps}});
        let Ok(Strategy::RollingSync(mut rs)) = strategy::parse(Some(&strategy), &BTreeMap::new())
        else {
            panic!("not a rolling sync");
        };
        options(&mut rs.options);
        rs
    }
    type RolloutOptionsFor = fn(&mut strategy::RolloutOptions);

    /// canary, then silver, then gold with maxUpdate 50%.
    fn three_steps(options: RolloutOptionsFor) -> RollingSync {
        let tier = |t: &str| json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": [t]}]});
        let mut gold = tier("gold");
        gold["maxUpdate"] = json!("50%");
        rolling(json!([tier("canary"), tier("silver"), gold]), options)
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    /// A live Application: tier label, sync and health, compared against `revision`.
    fn app(name: &str, tier: &str, sync: &str, health: &str, revision: &str) -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "argocd", "labels": {"tier": tier}},
            "spec": {"project": "default", "destination": {"server": "https://x", "namespace": "a"}},
            "status": {"sync": {"status": sync, "revision": revision}, "health": {"status": health}},
        }))
        .unwrap()
    }

    fn with_operation(mut app: Application, phase: &str, started: Timestamp) -> Application {
        let status = app.status.as_mut().unwrap();
        status.extra.insert(
            "operationState".into(),
            json!({"operation": {"sync": {}}, "phase": phase, "startedAt": started.to_string(), "message": "m"}),
        );
        app
    }

    fn with_history(mut app: Application, entries: &[(i64, &str, Timestamp)]) -> Application {
        let history: Vec<Value> = entries
            .iter()
            .map(|(id, rev, at)| json!({"id": id, "revision": rev, "deployedAt": at.to_string(), "source": {"repoURL": "https://git/x", "path": "p"}}))
            .collect();
        app.status
            .as_mut()
            .unwrap()
            .extra
            .insert("history".into(), json!(history));
        app
    }

    struct World {
        rolling: RollingSync,
        apps: Vec<Application>,
        status: Vec<ApplicationSetApplicationStatus>,
        rollout: Option<RolloutState>,
    }

    impl World {
        fn new(rolling: RollingSync, apps: Vec<Application>) -> Self {
            World {
                rolling,
                apps,
                status: Vec::new(),
                rollout: None,
            }
        }

        /// One reconcile at `now`; the result's status becomes the next one's input.
        fn step(&mut self, now: Timestamp) -> Progress {
            let owned: Vec<&Application> = self.apps.iter().collect();
            let members = Member::of(&self.apps);
            let progress = advance(&Input {
                rolling: &self.rolling,
                previous: &self.status,
                previous_rollout: self.rollout.as_ref(),
                owned: &owned,
                desired: &members,
                spec_changed: &BTreeSet::new(),
                prune: &BTreeMap::new(),
                now,
            });
            self.status = progress.application_status.clone();
            self.rollout = Some(progress.rollout.clone());
            progress
        }

        fn set(&mut self, app: Application) {
            let name = app.metadata.name.clone();
            let slot = self
                .apps
                .iter_mut()
                .find(|a| a.metadata.name == name)
                .unwrap();
            *slot = app;
        }

        fn statuses(&self) -> Vec<(String, String, String)> {
            self.status
                .iter()
                .map(|e| (e.application.clone(), e.status.clone(), e.step.clone()))
                .collect()
        }
    }

    fn names(ops: &[(String, Operation)]) -> Vec<&str> {
        ops.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn fleet() -> Vec<Application> {
        vec![
            app("web-canary", "canary", "OutOfSync", "Healthy", "r2"),
            app("web-silver", "silver", "OutOfSync", "Healthy", "r2"),
            app("web-gold-a", "gold", "OutOfSync", "Healthy", "r2"),
            app("web-gold-b", "gold", "OutOfSync", "Healthy", "r2"),
        ]
    }

    #[test]
    fn steps_follow_argo_cds_matching_rules() {
        let rs = rolling(
            json!([
                {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
                {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dr"]}]},
                {"matchExpressions": [{"key": "env", "operator": "Exists"}]},
            ]),
            |_| {},
        );
        let member = |name: &str, env: Option<&str>| Member {
            name: name.into(),
            labels: env
                .map(|e| [("env".to_owned(), e.to_owned())].into_iter().collect())
                .unwrap_or_default(),
        };
        let steps = assign_steps(
            &rs,
            &[
                member("dev", Some("dev")),
                member("prod", Some("prod")),
                member("nolabel", None),
            ],
        );
        // A missing label fails only `In`: "nolabel" is selected by NotIn (step 1) and by
        // the invalid operator's step, whose check never runs without the label.
        assert_eq!(
            steps.members,
            [vec!["dev", "nolabel"], vec!["prod"], vec!["nolabel"]]
        );
        assert_eq!(steps.step_of["prod"], 1);
        assert_eq!(steps.invalid_operators, [(2, "Exists".to_owned())]);
        assert_eq!(
            invalid_config_message(&steps).unwrap(),
            "Step 3 has invalid matchExpression operators: Exists. Supported Operators are 'In' and 'NotIn'"
        );
        let dup = assign_steps(&rolling(json!([{}, {}]), |_| {}), &[member("a", None)]);
        assert_eq!(
            invalid_config_message(&dup).unwrap(),
            "Application 'a' is selected by multiple steps: (1-2)"
        );
        let two = Steps {
            invalid_operators: vec![(0, "Exists".into()), (2, "Gt".into())],
            ..Steps::default()
        };
        assert_eq!(
            invalid_config_message(&two).unwrap(),
            "Steps 1, 3 have invalid matchExpression operators: Exists, Gt. Supported Operators are 'In' and 'NotIn'"
        );
        let dups = Steps {
            duplicates: [("a".to_owned(), vec![0, 1]), ("b".to_owned(), vec![0, 2])].into(),
            ..Steps::default()
        };
        assert_eq!(
            invalid_config_message(&dups).unwrap(),
            "Applications 'a', 'b' are selected by multiple steps: [(1-2), (1-3)]"
        );
        let max = |list: Vec<(usize, String)>| {
            invalid_config_message(&Steps {
                invalid_max_updates: list,
                ..Steps::default()
            })
            .unwrap()
        };
        assert_eq!(
            max(vec![(1, "x".into())]),
            "Step 2 has an invalid maxUpdate value: x"
        );
        assert_eq!(
            max(vec![(0, "x".into()), (1, "y".into())]),
            "Steps 1, 2 have invalid maxUpdate values: [x, y]"
        );
        let empty = assign_steps(&rs, &[member("dev", Some("dev"))]);
        assert_eq!(
            invalid_config_message(&Steps {
                invalid_operators: vec![],
                ..empty
            })
            .unwrap(),
            "Steps [2 3] have no applications matching their criteria"
        );
    }

    #[test]
    fn max_update_scales_like_kubernetes_and_argo_cd() {
        let text = |s: &str| MaxUpdate::Text(s.into());
        assert_eq!(max_update(None, 7), Ok(usize::MAX));
        assert_eq!(max_update(Some(&text("50%")), 2), Ok(1));
        assert_eq!(max_update(Some(&text("50%")), 5), Ok(2), "rounded down");
        assert_eq!(
            max_update(Some(&text("10%")), 3),
            Ok(1),
            "a non-zero percentage is at least 1"
        );
        assert_eq!(max_update(Some(&text("0%")), 3), Ok(0));
        assert_eq!(max_update(Some(&MaxUpdate::Count(0)), 3), Ok(0));
        assert_eq!(max_update(Some(&MaxUpdate::Count(-2)), 3), Ok(0));
        assert_eq!(max_update(Some(&text("two")), 3), Err(1));
    }

    #[test]
    fn a_rollout_goes_step_by_step_and_gold_half_at_a_time() {
        let mut world = World::new(three_steps(|_| {}), fleet());
        let first = world.step(at(0));
        assert_eq!(names(&first.syncs), ["web-canary"], "only step 1 syncs");
        assert_eq!(
            world.statuses(),
            [
                ("web-canary".into(), PENDING.into(), "1".into()),
                ("web-gold-a".into(), WAITING.into(), "3".into()),
                ("web-gold-b".into(), WAITING.into(), "3".into()),
                ("web-silver".into(), WAITING.into(), "2".into()),
            ]
        );
        let op = &first.syncs[0].1;
        assert_eq!(op.initiated_by.as_ref().unwrap().username, INITIATOR);
        assert_eq!(op.retry.as_ref().unwrap().limit, 5);
        assert_eq!(
            first.conditions[0],
            RolloutCondition {
                type_: "RolloutProgressing",
                status: true,
                reason: "ApplicationSetModified",
                message: "ApplicationSet is performing rollout of step 1".into(),
            }
        );
        assert_eq!(first.rollout.phase, phase::PROGRESSING);
        assert!(first.events.iter().any(|e| e.reason == "RolloutStarted"));

        // Nothing changed: the same status, no second sync.
        let again = world.step(at(1));
        assert!(again.syncs.is_empty());
        assert_eq!(world.statuses()[0].1, PENDING);

        // The sync starts, then the canary is Synced and Healthy.
        world.set(with_operation(
            app("web-canary", "canary", "Synced", "Progressing", "r2"),
            "Running",
            at(2),
        ));
        world.step(at(3));
        assert_eq!(world.statuses()[0].1, PROGRESSING);
        assert!(
            world
                .rollout
                .as_ref()
                .unwrap()
                .message
                .contains("web-canary Progressing: Synced/Progressing")
        );
        world.set(with_operation(
            app("web-canary", "canary", "Synced", "Healthy", "r2"),
            "Succeeded",
            at(2),
        ));
        // Healthy, and the next step is promoted in the same pass (Argo CD updates its
        // in-memory status before choosing the Applications to sync).
        let silver = world.step(at(4));
        assert_eq!(world.statuses()[0].1, HEALTHY);
        assert_eq!(names(&silver.syncs), ["web-silver"]);
        assert!(
            silver
                .events
                .iter()
                .any(|e| e.reason == "RolloutStepStarted")
        );
        assert_eq!(world.rollout.as_ref().unwrap().step, 2);

        world.set(with_operation(
            app("web-silver", "silver", "Synced", "Healthy", "r2"),
            "Succeeded",
            at(6),
        ));
        world.step(at(7));
        let gold = world.step(at(8));
        assert_eq!(
            names(&gold.syncs),
            ["web-gold-a"],
            "maxUpdate 50% of 2 gold apps: one at a time"
        );
        world.set(with_operation(
            app("web-gold-a", "gold", "Synced", "Healthy", "r2"),
            "Succeeded",
            at(10),
        ));
        world.step(at(11));
        let second_gold = world.step(at(12));
        assert_eq!(names(&second_gold.syncs), ["web-gold-b"]);
        world.set(with_operation(
            app("web-gold-b", "gold", "Synced", "Healthy", "r2"),
            "Succeeded",
            at(14),
        ));
        world.step(at(15));
        let done = world.step(at(16));
        assert!(world.statuses().iter().all(|(_, s, _)| s == HEALTHY));
        assert_eq!(done.rollout.phase, phase::COMPLETED);
        assert_eq!(
            done.conditions[0].message,
            "ApplicationSet Rollout has completed"
        );
        let quiet = world.step(at(17));
        assert_eq!(
            quiet,
            Progress {
                events: vec![],
                ..done
            },
            "a finished rollout stays as it is"
        );
    }

    #[test]
    fn a_degraded_canary_halts_the_rollout_and_is_rolled_back() {
        let mut world = World::new(
            three_steps(|o| o.failure_budget = Some(FailureBudget::Count(0))),
            fleet(),
        );
        world.set(with_history(
            app("web-canary", "canary", "OutOfSync", "Healthy", "r2"),
            &[(1, "r0", at(-100)), (2, "r1", at(-50))],
        ));
        let first = world.step(at(0));
        assert_eq!(names(&first.syncs), ["web-canary"]);
        let synced = with_history(
            with_operation(
                app("web-canary", "canary", "Synced", "Degraded", "r2"),
                "Succeeded",
                at(1),
            ),
            &[(1, "r0", at(-100)), (2, "r1", at(-50)), (3, "r2", at(2))],
        );
        world.set(synced);
        let halted = world.step(at(3));
        assert_eq!(halted.rollout.phase, phase::HALTED);
        assert!(
            halted.rollout.message.starts_with("step 1 of 3 halted: 1 of 1 Application(s) failed, over the failure budget of 0 (web-canary: Degraded)"),
            "{}",
            halted.rollout.message
        );
        assert_eq!(names(&halted.rollbacks), ["web-canary"]);
        let sync = halted.rollbacks[0].1.sync.as_ref().unwrap();
        assert_eq!(
            sync.revision, "r1",
            "the revision it ran before the rollout's sync"
        );
        assert!(!sync.prune, "a rollback never prunes");
        assert!(halted.syncs.is_empty());
        assert!(
            halted
                .conditions
                .iter()
                .any(|c| c.type_ == "RolloutHalted" && c.status)
        );
        assert!(
            halted
                .events
                .iter()
                .any(|e| e.reason == "RolloutHalted" && e.warning)
        );
        // While the rollback runs, the status compares against the pinned revision r1:
        // not a new commit, the halt stays.
        let mut rolling_back = with_history(
            with_operation(
                app("web-canary", "canary", "OutOfSync", "Degraded", "r1"),
                "Running",
                at(4),
            ),
            &[(1, "r0", at(-100)), (2, "r1", at(-50)), (3, "r2", at(2))],
        );
        let state = rolling_back.status.as_mut().unwrap();
        state.extra.get_mut("operationState").unwrap()["operation"]["sync"]["revision"] =
            json!("r1");
        world.set(rolling_back);
        // Halted: no promotion, no second rollback, whatever happens next.
        for second in 4..8 {
            let later = world.step(at(second));
            assert!(later.syncs.is_empty() && later.rollbacks.is_empty());
            assert_eq!(later.rollout.phase, phase::HALTED);
        }
        assert!(
            world.statuses()[1..].iter().all(|(_, s, _)| s == WAITING),
            "{:?}",
            world.statuses()
        );
        // A new commit (r3) ends the halt: a new rollout starts at step 1.
        for app in &mut world.apps {
            app.status.as_mut().unwrap().sync.as_mut().unwrap().revision = "r3".into();
            app.status.as_mut().unwrap().sync.as_mut().unwrap().status = "OutOfSync".into();
        }
        let next = world.step(at(20));
        assert_eq!(next.rollout.phase, phase::PROGRESSING);
        assert_eq!(names(&next.syncs), ["web-canary"]);
    }

    #[test]
    fn a_new_spec_for_the_failed_application_ends_the_halt() {
        let rolling = three_steps(|o| o.failure_budget = Some(FailureBudget::Count(0)));
        let mut world = World::new(rolling, fleet());
        world.step(at(0));
        world.set(with_operation(
            app("web-canary", "canary", "Synced", "Degraded", "r2"),
            "Succeeded",
            at(1),
        ));
        assert_eq!(world.step(at(2)).rollout.phase, phase::HALTED);
        // The ApplicationSet changes the canary's spec (same commit): a new rollout.
        let owned: Vec<&Application> = world.apps.iter().collect();
        let members = Member::of(&world.apps);
        let changed = BTreeSet::from(["web-canary".to_owned()]);
        let progress = advance(&Input {
            rolling: &world.rolling,
            previous: &world.status,
            previous_rollout: world.rollout.as_ref(),
            owned: &owned,
            desired: &members,
            spec_changed: &changed,
            prune: &BTreeMap::new(),
            now: at(3),
        });
        assert_eq!(progress.rollout.phase, phase::PROGRESSING);
        assert!(progress.events.iter().any(|e| e.reason == "RolloutStarted"));
    }

    #[test]
    fn no_step_starts_while_the_fleet_is_mid_refresh() {
        let mut world = World::new(three_steps(|_| {}), fleet());
        // Everything Synced and Healthy at r1.
        for app in &mut world.apps {
            let sync = app.status.as_mut().unwrap().sync.as_mut().unwrap();
            sync.status = "Synced".into();
            sync.revision = "r1".into();
        }
        let settled = world.step(at(0));
        assert_eq!(settled.rollout.phase, phase::COMPLETED);
        // r2 is pushed; the silver app is refreshed first, the canary not yet.
        world.set(app("web-silver", "silver", "OutOfSync", "Healthy", "r2"));
        let racing = world.step(at(1));
        assert!(
            racing.syncs.is_empty(),
            "silver must not go before the canary: {racing:?}"
        );
        assert!(
            racing.rollout.message.contains("sees the same revision"),
            "{}",
            racing.rollout.message
        );
        // Everyone sees r2: the canary goes first.
        for app in &mut world.apps {
            let sync = app.status.as_mut().unwrap().sync.as_mut().unwrap();
            sync.revision = "r2".into();
            sync.status = "OutOfSync".into();
        }
        let next = world.step(at(2));
        assert_eq!(names(&next.syncs), ["web-canary"]);
    }

    #[test]
    fn reverse_deletion_goes_from_the_last_step_to_the_first() {
        let rs = three_steps(|_| {});
        let mut apps = fleet();
        apps.push(app("web-none", "bronze", "Synced", "Healthy", "r1"));
        let owned = |apps: &[Application]| -> ReverseDeletion {
            let refs: Vec<&Application> = apps.iter().collect();
            reverse_deletion(&rs, &refs)
        };
        let first = owned(&apps);
        assert_eq!(first.delete, ["web-gold-a", "web-gold-b"]);
        assert!(first.waiting.is_empty());
        // Gold is terminating: wait for it.
        for app in &mut apps[2..4] {
            app.metadata.deletion_timestamp = Some(Time(at(0)));
        }
        let second = owned(&apps);
        assert_eq!((second.delete.len(), second.waiting.len()), (0, 2));
        // Gold gone: silver, then canary, then the Applications in no step.
        apps.retain(|a| a.metadata.deletion_timestamp.is_none());
        assert_eq!(owned(&apps).delete, ["web-silver"]);
        apps.retain(|a| a.metadata.name.as_deref() != Some("web-silver"));
        assert_eq!(owned(&apps).delete, ["web-canary"]);
        apps.retain(|a| a.metadata.name.as_deref() != Some("web-canary"));
        assert_eq!(owned(&apps).delete, ["web-none"]);
        assert_eq!(owned(&[]), ReverseDeletion::default());
    }

    #[test]
    fn without_a_failure_budget_a_degraded_step_waits_as_in_argo_cd() {
        let mut world = World::new(three_steps(|_| {}), fleet());
        world.step(at(0));
        world.set(with_operation(
            app("web-canary", "canary", "Synced", "Degraded", "r2"),
            "Succeeded",
            at(1),
        ));
        for second in 2..5 {
            let p = world.step(at(second));
            assert!(p.syncs.is_empty() && p.rollbacks.is_empty());
            assert_eq!(p.rollout.phase, phase::PROGRESSING);
        }
    }

    #[test]
    fn bake_time_pause_abort_and_retry() {
        let mut world = World::new(
            three_steps(|o| o.bake = vec![Duration::from_secs(60)]),
            fleet(),
        );
        world.step(at(0));
        world.set(with_history(
            with_operation(
                app("web-canary", "canary", "Synced", "Healthy", "r2"),
                "Succeeded",
                at(1),
            ),
            &[(1, "r1", at(-10)), (2, "r2", at(1))],
        ));
        world.step(at(2));
        world.step(at(3));
        let baking = world.step(at(4));
        assert_eq!(baking.rollout.phase, phase::BAKING);
        assert!(baking.syncs.is_empty());
        let wait = baking.requeue.unwrap();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        let baked = world.step(at(80));
        assert_eq!(names(&baked.syncs), ["web-silver"]);

        // Pause: nothing new starts.
        world.rolling.options.paused = true;
        world.set(with_operation(
            app("web-silver", "silver", "Synced", "Healthy", "r2"),
            "Succeeded",
            at(81),
        ));
        for second in 82..86 {
            let paused = world.step(at(second + 100));
            assert!(paused.syncs.is_empty());
        }
        assert_eq!(world.rollout.as_ref().unwrap().phase, phase::PAUSED);
        // Abort: both synced apps go back (the silver one has no earlier revision).
        world.rolling.options.paused = false;
        world.rolling.options.abort_request = Some("req-1".into());
        let aborted = world.step(at(300));
        assert_eq!(aborted.rollout.phase, phase::ABORTED);
        assert_eq!(names(&aborted.rollbacks), ["web-canary"]);
        assert!(
            aborted
                .rollout
                .message
                .contains("web-silver left as is (no earlier revision)"),
            "{}",
            aborted.rollout.message
        );
        let same_request = world.step(at(301));
        assert!(
            same_request.rollbacks.is_empty(),
            "a request is acted on once"
        );
        // Retry: the aborted apps start again from Waiting.
        world.rolling.options.retry_request = Some("req-2".into());
        world.set(app("web-canary", "canary", "OutOfSync", "Healthy", "r2"));
        let retried = world.step(at(302));
        assert_eq!(retried.rollout.phase, phase::PROGRESSING);
        assert_eq!(names(&retried.syncs), ["web-canary"]);
        // Still Degraded from before the retried sync started: not a failure of it.
        world.rolling.options.failure_budget = Some(FailureBudget::Count(0));
        world.set(with_operation(
            app("web-canary", "canary", "OutOfSync", "Degraded", "r2"),
            "Succeeded",
            at(200),
        ));
        assert_eq!(world.step(at(303)).rollout.phase, phase::PROGRESSING);
        // Degraded after it ended: a failure.
        world.set(with_operation(
            app("web-canary", "canary", "Synced", "Degraded", "r2"),
            "Succeeded",
            at(304),
        ));
        assert_eq!(world.step(at(305)).rollout.phase, phase::HALTED);
    }
}

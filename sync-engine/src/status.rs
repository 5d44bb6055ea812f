//! `Application.status` as the sync engine writes it: pure construction and the
//! "did anything change?" test that keeps a quiet fleet at zero writes.
//!
//! Fields and values are Argo CD's (`sync`, `health`, `resources`, `conditions`,
//! `operationState`, `history`, `sourceType`), so Argo CD's UI, CLI and dashboards read
//! them unchanged. `reconciledAt` is only refreshed together with a real change: a
//! timestamp bumped on every reconcile would be a write per app per resync.

use std::fmt;

use serde_json::{Map, Value, json};

use crate::health::{Health, HealthCode};
use crate::plan::{ResourceState, ResourceSync};
use crate::resource::ObjKey;
use crate::target::Deployed;

/// App-level sync status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppSync {
    /// Every resource matches its desired state.
    Synced,
    /// Some resource differs from its desired state, or is missing.
    OutOfSync,
    /// The comparison could not be made (render error, unreachable cluster).
    Unknown,
}

impl AppSync {
    /// The status as Argo CD writes it in `status.sync.status`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AppSync::Synced => "Synced",
            AppSync::OutOfSync => "OutOfSync",
            AppSync::Unknown => "Unknown",
        }
    }
}

/// Argo CD's condition types the engine reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConditionType {
    /// Rendering or comparing failed (Git, manifests, unreachable cluster).
    ComparisonError,
    /// The spec cannot be acted on (unknown cluster or project, unsupported source).
    InvalidSpecError,
    /// A sync was refused or failed.
    SyncError,
    /// Something is off but nothing is blocked (e.g. an unsupported ignore expression).
    Warning,
    /// A deleted Application's resources could not be deleted (yet): its finalizer stays.
    DeletionError,
    /// The controller's reconcile failed internally (a contained panic).
    ReconcileError,
    /// Objects in the destination namespace that no Application tracks (the project's
    /// `orphanedResources.warn`).
    OrphanedResourceWarning,
    /// A sync is due (or requested) but one of the project's sync windows blocks it; the
    /// message names the window and when it opens. Argo CD only logs this; Argosy says it
    /// where users look.
    SyncWindowBlocked,
}

impl ConditionType {
    /// The condition type as Argo CD writes it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::ComparisonError => "ComparisonError",
            ConditionType::InvalidSpecError => "InvalidSpecError",
            ConditionType::SyncError => "SyncError",
            ConditionType::Warning => "Warning",
            ConditionType::DeletionError => "DeletionError",
            ConditionType::ReconcileError => "ReconcileError",
            ConditionType::OrphanedResourceWarning => "OrphanedResourceWarning",
            ConditionType::SyncWindowBlocked => "SyncWindowBlocked",
        }
    }
}

/// The destination cluster cannot be reached: reported as a `ComparisonError` condition.
///
/// A condition has only a type and a message in Argo CD's status shape, so this type is
/// the one writer of that message ([`fmt::Display`]) and the one reader
/// ([`Unreachable::from_message`]); the dashboard and the CLI recognise the condition
/// through it instead of matching a text of their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreachable {
    /// The cluster's server, as the engine connected to it.
    pub server: String,
    /// Why (the failing request or watch).
    pub reason: String,
}

impl Unreachable {
    const PREFIX: &'static str = "cluster ";
    const SEPARATOR: &'static str = " is unreachable: ";

    /// The condition type it is reported under.
    pub const CONDITION: ConditionType = ConditionType::ComparisonError;

    /// Reads a condition message this type wrote.
    #[must_use]
    pub fn from_message(message: &str) -> Option<Unreachable> {
        let (server, reason) = message
            .strip_prefix(Self::PREFIX)?
            .split_once(Self::SEPARATOR)?;
        (!server.is_empty() && !server.contains(' ')).then(|| Unreachable {
            server: server.to_owned(),
            reason: reason.to_owned(),
        })
    }
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}{}",
            Self::PREFIX,
            self.server,
            Self::SEPARATOR,
            self.reason
        )
    }
}

/// One resource line of `status.resources`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceReport {
    /// The resource's key and sync state from the comparison.
    pub state: ResourceState,
    /// The API version the resource is served at.
    pub version: String,
    /// Its health, for kinds that have a health notion.
    pub health: Option<Health>,
}

/// Everything one reconcile learned, to be written as `status`.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `status.sync.status`.
    pub sync: AppSync,
    /// `("revision", …)` or, for several sources, `("revisions", […])`.
    pub revision: Option<(&'static str, Value)>,
    /// `status.sync.comparedTo` (source and destination as in the spec).
    pub compared_to: Value,
    /// `status.health.status`: the worst health of the resources.
    pub health: HealthCode,
    /// `status.health.message`.
    pub health_message: String,
    /// `status.resources`, one line per resource.
    pub resources: Vec<ResourceReport>,
    /// `status.conditions`: type and message.
    pub conditions: Vec<(ConditionType, String)>,
    /// `("sourceType", …)` or, for several sources, `("sourceTypes", […])`.
    pub source_type: Option<(&'static str, Value)>,
    /// A new `operationState`, when an operation ran or progressed.
    pub operation_state: Option<Value>,
    /// A new history entry (a sync completed).
    pub history_entry: Option<Value>,
}

impl Report {
    /// A report for an app whose comparison could not be made: everything Unknown,
    /// resources as last known.
    #[must_use]
    pub fn unknown(existing: &Value, condition: ConditionType, message: String) -> Report {
        Report {
            sync: AppSync::Unknown,
            revision: ["revision", "revisions"].into_iter().find_map(|key| {
                existing
                    .get("sync")
                    .and_then(|s| s.get(key))
                    .map(|v| (key, v.clone()))
            }),
            compared_to: existing
                .pointer("/sync/comparedTo")
                .cloned()
                .unwrap_or(Value::Null),
            health: HealthCode::Unknown,
            health_message: message.clone(),
            resources: Vec::new(),
            conditions: vec![(condition, message)],
            source_type: None,
            operation_state: None,
            history_entry: None,
        }
    }
}

/// App sync status from its resources: `OutOfSync` if any is.
#[must_use]
pub fn app_sync(resources: &[ResourceState]) -> AppSync {
    if resources.iter().any(|r| r.sync == ResourceSync::OutOfSync) {
        AppSync::OutOfSync
    } else {
        AppSync::Synced
    }
}

fn resource_json(r: &ResourceReport) -> Value {
    let ObjKey {
        group,
        kind,
        namespace,
        name,
    } = &r.state.key;
    let mut o = Map::new();
    if !group.is_empty() {
        o.insert("group".into(), json!(group));
    }
    o.insert("version".into(), json!(r.version));
    o.insert("kind".into(), json!(kind));
    if !namespace.is_empty() {
        o.insert("namespace".into(), json!(namespace));
    }
    o.insert("name".into(), json!(name));
    o.insert("status".into(), json!(r.state.sync.as_str()));
    if let Some(h) = &r.health {
        let mut health = Map::new();
        health.insert("status".into(), json!(h.code.as_str()));
        if !h.message.is_empty() {
            health.insert("message".into(), json!(h.message));
        }
        o.insert("health".into(), Value::Object(health));
    }
    if r.state.requires_pruning {
        o.insert("requiresPruning".into(), json!(true));
    }
    if r.state.wave != 0 {
        o.insert("syncWave".into(), json!(r.state.wave));
    }
    Value::Object(o)
}

/// The `status` merge patch for `report`, or `None` when it would change nothing.
/// `existing` is the current `status` JSON (or null); `now` an RFC 3339 timestamp;
/// `history_limit` caps `status.history` (Argo CD's `revisionHistoryLimit`, default 10).
pub fn status_patch(
    existing: &Value,
    report: &Report,
    now: &str,
    history_limit: usize,
) -> Option<Value> {
    let mut status = Map::new();
    let mut sync = Map::new();
    sync.insert("status".into(), json!(report.sync.as_str()));
    if let Some((key, revision)) = &report.revision {
        sync.insert((*key).into(), revision.clone());
    }
    if !report.compared_to.is_null() {
        sync.insert("comparedTo".into(), report.compared_to.clone());
    }
    status.insert("sync".into(), Value::Object(sync));
    let mut health = Map::new();
    health.insert("status".into(), json!(report.health.as_str()));
    if !report.health_message.is_empty() && report.health != HealthCode::Healthy {
        health.insert("message".into(), json!(report.health_message));
    }
    status.insert("health".into(), Value::Object(health));
    if report.sync != AppSync::Unknown || existing.get("resources").is_none() {
        status.insert(
            "resources".into(),
            Value::Array(report.resources.iter().map(resource_json).collect()),
        );
    }
    let old_conditions = existing.get("conditions").and_then(Value::as_array);
    let conditions: Vec<Value> = report
        .conditions
        .iter()
        .map(|(t, message)| {
            // Keep the transition time of a condition that did not change.
            let since = old_conditions
                .and_then(|c| {
                    c.iter().find(|c| {
                        c.get("type").and_then(Value::as_str) == Some(t.as_str())
                            && c.get("message").and_then(Value::as_str) == Some(message)
                    })
                })
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now));
            json!({"type": t.as_str(), "message": message, "lastTransitionTime": since})
        })
        .collect();
    status.insert(
        "conditions".into(),
        if conditions.is_empty() {
            Value::Null
        } else {
            Value::Array(conditions)
        },
    );
    if let Some((key, types)) = &report.source_type {
        status.insert((*key).into(), types.clone());
    }
    if let Some(op) = &report.operation_state {
        status.insert("operationState".into(), op.clone());
    }
    if let Some(entry) = &report.history_entry {
        let mut history: Vec<Value> = existing
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let id = history
            .iter()
            .filter_map(|h| h.get("id").and_then(Value::as_i64))
            .max()
            .map_or(0, |m| m + 1);
        let mut entry = entry.clone();
        entry["id"] = json!(id);
        history.push(entry);
        let excess = history.len().saturating_sub(history_limit.max(1));
        history.drain(..excess);
        status.insert("history".into(), Value::Array(history));
    }
    let status = Value::Object(status);
    if !changes(existing, &status) {
        return None;
    }
    let mut status = status;
    status["reconciledAt"] = json!(now);
    Some(status)
}

/// True when merging `patch` into `existing` would change it.
fn changes(existing: &Value, patch: &Value) -> bool {
    match (existing, patch) {
        (Value::Object(e), Value::Object(p)) => p.iter().any(|(k, pv)| match e.get(k) {
            None => !pv.is_null(),
            Some(ev) => changes(ev, pv),
        }),
        _ => existing != patch,
    }
}

/// The history entry of a completed sync.
#[must_use]
pub fn history_entry(deployed: &Deployed, started: &str, now: &str) -> Value {
    let mut entry = deployed.fields();
    entry.insert("deployStartedAt".into(), json!(started));
    entry.insert("deployedAt".into(), json!(now));
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unreachable_condition_reads_back() {
        let u = Unreachable {
            server: "https://x:6443/".into(),
            reason: "connection refused: is it up?".into(),
        };
        let message = u.to_string();
        assert_eq!(
            message,
            "cluster https://x:6443/ is unreachable: connection refused: is it up?"
        );
        assert_eq!(Unreachable::from_message(&message), Some(u));
        assert_eq!(Unreachable::from_message("cluster x is fine"), None);
        assert_eq!(
            Unreachable::from_message("the cluster x is unreachable: no"),
            None
        );
    }

    fn report() -> Report {
        Report {
            sync: AppSync::Synced,
            revision: Some(("revision", json!("abc"))),
            compared_to: json!({"source": {"repoURL": "r"}}),
            health: HealthCode::Healthy,
            health_message: String::new(),
            resources: vec![ResourceReport {
                state: ResourceState {
                    key: ObjKey {
                        group: "apps".into(),
                        kind: "Deployment".into(),
                        namespace: "shop".into(),
                        name: "web".into(),
                    },
                    sync: ResourceSync::Synced,
                    differences: vec![],
                    requires_pruning: false,
                    missing: false,
                    wave: 0,
                },
                version: "v1".into(),
                health: Some(Health {
                    code: HealthCode::Healthy,
                    message: String::new(),
                }),
            }],
            conditions: vec![],
            source_type: Some(("sourceType", json!("Kustomize"))),
            operation_state: None,
            history_entry: None,
        }
    }

    #[test]
    fn unchanged_status_is_not_written_again() {
        let first = status_patch(&Value::Null, &report(), "t1", 10).unwrap();
        assert_eq!(first["reconciledAt"], "t1");
        assert_eq!(first["resources"][0]["health"]["status"], "Healthy");
        assert_eq!(status_patch(&first, &report(), "t2", 10), None);
        let mut drifted = report();
        drifted.sync = AppSync::OutOfSync;
        let second = status_patch(&first, &drifted, "t3", 10).unwrap();
        assert_eq!(second["sync"]["status"], "OutOfSync");
    }

    #[test]
    fn conditions_keep_their_transition_time_and_clear_with_null() {
        let mut r = report();
        r.conditions = vec![(ConditionType::ComparisonError, "boom".into())];
        let first = status_patch(&Value::Null, &r, "t1", 10).unwrap();
        assert_eq!(status_patch(&first, &r, "t2", 10), None);
        let cleared = status_patch(&first, &report(), "t3", 10).unwrap();
        assert_eq!(cleared["conditions"], Value::Null);
    }

    #[test]
    fn history_gets_increasing_ids_and_is_capped() {
        let mut status = Value::Null;
        for i in 0..4 {
            let mut r = report();
            let deployed = Deployed::new(vec![json!({})], vec![format!("rev{i}")], false);
            r.revision = Some(deployed.revision_field());
            r.history_entry = Some(history_entry(&deployed, "s", "d"));
            let patch = status_patch(&status, &r, "t", 3).unwrap();
            status = patch;
        }
        let ids: Vec<i64> = status["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(status["history"][2]["revision"], "rev3");
    }

    #[test]
    fn unknown_keeps_last_known_resources_and_revision() {
        let first = status_patch(&Value::Null, &report(), "t1", 10).unwrap();
        let r = Report::unknown(
            &first,
            ConditionType::ComparisonError,
            "cluster gone".into(),
        );
        let patch = status_patch(&first, &r, "t2", 10).unwrap();
        assert_eq!(patch["sync"]["status"], "Unknown");
        assert_eq!(patch["sync"]["revision"], "abc");
        assert!(
            patch.get("resources").is_none(),
            "last known resources stay"
        );
        assert_eq!(patch["health"]["status"], "Unknown");
    }
}

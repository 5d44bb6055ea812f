//! `Application`: what to deploy (sources), where (destination) and how (syncPolicy),
//! plus the status the sync engine reports.
//!
//! Typed where Argosy reads a field; everything else rides along in `extra` maps so a
//! live Argo CD Application is never truncated when Argosy writes it back.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::extra::Extra;
use crate::operation::{
    HealthStatusCode, Operation, OperationState, RevisionHistory, SyncStatusCode,
};
use crate::resource::argo_resource;
pub use crate::source::ApplicationSource;

/// An Argo CD Application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// `argoproj.io/v1alpha1`.
    #[serde(default = "crate::resource::default_api_version")]
    pub api_version: String,
    /// `Application`.
    #[serde(default = "Application::default_kind")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to deploy, where, and how to sync it.
    #[serde(default)]
    pub spec: ApplicationSpec,
    /// What the sync engine last reported; `None` before its first report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationStatus>,
    /// A requested sync (set by `argosy app sync`, the CLI or `RollingSync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub operation: Option<Value>,
}
argo_resource!(Application, "Application", "applications");

impl Application {
    /// `operation`, typed. `Ok(None)` when no operation is requested; an error when the
    /// field is not an operation's shape (unknown fields and values are kept, not errors).
    pub fn operation_typed(&self) -> Result<Option<Operation>, serde_json::Error> {
        self.operation
            .as_ref()
            .map(Operation::deserialize)
            .transpose()
    }
}

impl ApplicationStatus {
    /// `status.operationState`, typed; `None` when absent.
    pub fn operation_state(&self) -> Option<Result<OperationState, serde_json::Error>> {
        self.extra
            .get("operationState")
            .map(OperationState::deserialize)
    }

    /// `status.history` (oldest first), typed; `None` when absent.
    pub fn history(&self) -> Option<Result<Vec<RevisionHistory>, serde_json::Error>> {
        self.extra
            .get("history")
            .map(Vec::<RevisionHistory>::deserialize)
    }
}

impl SyncStatus {
    /// `status`, typed (unknown values kept as `Other`).
    #[must_use]
    pub fn code(&self) -> SyncStatusCode {
        SyncStatusCode::from(self.status.as_str())
    }
}

impl HealthStatus {
    /// `status`, typed (unknown values kept as `Other`).
    #[must_use]
    pub fn code(&self) -> HealthStatusCode {
        HealthStatusCode::from(self.status.as_str())
    }
}

/// `spec` of an Application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ApplicationSpec {
    /// The single source (`spec.source`); unused when `sources` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Several sources (`spec.sources`), rendered together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    /// The cluster and namespace to deploy to.
    #[serde(default)]
    pub destination: ApplicationDestination,
    /// The `AppProject` the Application belongs to.
    #[serde(default)]
    pub project: String,
    /// Automated sync, sync options and retries; `None` for manual sync only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    /// Rules for fields to leave out of the comparison, kept as JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub ignore_differences: Vec<Value>,
    /// How many `status.history` entries to keep (Argo CD's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i64>,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Target cluster (by `server` URL or cluster `name`) and namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDestination {
    /// API server URL of the destination cluster (or empty when `name` is used).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// Namespace for namespaced resources that set none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name of the destination cluster (or empty when `server` is used).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// `spec.syncPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct SyncPolicy {
    /// Automated sync; `None` means syncs are only started by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<AutomatedSync>,
    /// Sync options (`Key=value` strings, e.g. `CreateNamespace=true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    /// Retry strategy for failed syncs, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub retry: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// `spec.syncPolicy.automated`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutomatedSync {
    /// Delete resources that are no longer in the desired state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
    /// Sync again when the live state drifts without a new revision.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub self_heal: bool,
    /// Allow a sync (and prune) that would leave the Application with no resources.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty: bool,
    /// Explicit on/off switch; absent means enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `status` of an Application, written by the sync engine.
// Field ownership of the status is tracked as one unit (`x-kubernetes-map-type: atomic`):
// only the sync engine writes it, always whole, and with per-field tracking every write (even
// a no-op) costs the API server a walk over every field of a status that lists each resource
// twice. Measured with 1,000 merge patches on a 1.20 API server: 4.2 to 5.4 s of API server
// CPU granular, 3.0 to 3.2 s atomic (BENCHMARKS.md). Merge patches do not depend on it; only
// a server-side apply of `status` would replace it whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true, "x-kubernetes-map-type" = "atomic"))]
pub struct ApplicationStatus {
    /// Sync status: whether the live state matches the desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncStatus>,
    /// Aggregated health of the Application's resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// Other status fields (`operationState`, `history`, `resources`, ...), kept as JSON.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// `status.sync`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct SyncStatus {
    /// `Synced`, `OutOfSync` or `Unknown`.
    #[serde(default)]
    pub status: String,
    /// The revision the comparison was made against.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// `status.health`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// `Healthy`, `Progressing`, `Degraded`, `Suspended`, `Missing` or `Unknown`.
    #[serde(default)]
    pub status: String,
    /// Why, when the status needs explaining.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::OperationPhase;
    use serde_json::json;

    fn app() -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "web", "namespace": "argocd"},
            "spec": {"destination": {"name": "in-cluster", "namespace": "shop"}, "project": "default"},
            "operation": {
                "sync": {"revision": "HEAD", "prune": true},
                "initiatedBy": {"username": "admin"},
                "retry": {"limit": 2}
            },
            "status": {
                "sync": {"status": "OutOfSync", "revision": "abc"},
                "health": {"status": "Progressing"},
                "operationState": {
                    "operation": {"sync": {"revision": "HEAD"}, "initiatedBy": {"username": "admin"}, "retry": {}},
                    "phase": "Running",
                    "startedAt": "2024-05-01T10:00:00Z"
                },
                "history": [{"id": 1, "revision": "abc", "deployedAt": "2024-04-30T09:00:00Z", "source": {"repoURL": "https://github.com/acme/deploy.git"}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn typed_views_of_json_fields() {
        let app = app();
        let op = app.operation_typed().unwrap().unwrap();
        assert!(op.sync.as_ref().unwrap().prune);
        assert_eq!(op.initiated_by.unwrap().username, "admin");
        assert_eq!(op.retry.unwrap().limit, 2);

        let status = app.status.as_ref().unwrap();
        let state = status.operation_state().unwrap().unwrap();
        assert_eq!(state.phase, OperationPhase::Running);
        let history = status.history().unwrap().unwrap();
        assert_eq!(history[0].id, 1);
        assert_eq!(
            status.sync.as_ref().unwrap().code(),
            SyncStatusCode::OutOfSync
        );
        assert_eq!(
            status.health.as_ref().unwrap().code(),
            HealthStatusCode::Progressing
        );
    }

    #[test]
    fn absent_and_malformed_fields() {
        let mut app = app();
        app.operation = None;
        assert!(app.operation_typed().unwrap().is_none());
        app.operation = Some(json!("sync please"));
        assert!(app.operation_typed().is_err());

        let mut status = ApplicationStatus::default();
        assert!(status.operation_state().is_none());
        assert!(status.history().is_none());
        status
            .extra
            .insert("operationState".into(), json!({"phase": 3}));
        assert!(status.operation_state().unwrap().is_err());
    }
}

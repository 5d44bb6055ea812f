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
    #[serde(default = "crate::resource::default_api_version")]
    pub api_version: String,
    #[serde(default = "Application::default_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ApplicationSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationStatus>,
    /// A requested sync (set by `argosy app sync`, the CLI or RollingSync).
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
    pub fn code(&self) -> SyncStatusCode {
        SyncStatusCode::from(self.status.as_str())
    }
}

impl HealthStatus {
    /// `status`, typed (unknown values kept as `Other`).
    pub fn code(&self) -> HealthStatusCode {
        HealthStatusCode::from(self.status.as_str())
    }
}

/// `spec` of an Application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ApplicationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(default)]
    pub destination: ApplicationDestination,
    #[serde(default)]
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub ignore_differences: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i64>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Target cluster (by `server` URL or cluster `name`) and namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDestination {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// `spec.syncPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct SyncPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<AutomatedSync>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub retry: Option<Value>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// `spec.syncPolicy.automated`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutomatedSync {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub self_heal: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty: bool,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
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
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
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

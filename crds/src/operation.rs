//! Argo CD's operation types: the requested `operation` of an Application, the
//! `status.operationState` the sync engine reports, sync results, retry strategy and
//! revision history (argo-cd `pkg/apis/application/v1alpha1/types.go` and gitops-engine
//! `pkg/sync/common/types.go`).
//!
//! Field presence follows Argo CD's Go writers, so what Argo CD wrote serializes back
//! byte-for-byte equal as JSON: fields Go tags `omitempty` are skipped when empty, the
//! others (`phase`, `revision` of a sync result, the identity of a resource result, `id`
//! of a history entry) are always written. Unknown fields stay in `extra` maps.
//!
//! Phases and codes are enums with an `Other(String)` variant: a value a newer Argo CD
//! writes (or a typo) is kept verbatim and written back unchanged, instead of failing the
//! whole Application.

#![deny(missing_docs)]

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::duration::{DurationError, GoDuration};
use crate::extra::Extra;
use crate::source::ApplicationSource;

/// Why a retry delay could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// `retry.backoff.duration` is neither a number of seconds nor a Go duration. The
    /// text after the field name is Argo CD's (`unable to parse %s as a duration`).
    #[error("retry.backoff.duration: unable to parse {value} as a duration ({source})")]
    BackoffDuration {
        /// The field as written.
        value: String,
        /// Why Go's parser refused it.
        source: DurationError,
    },
    /// `retry.backoff.maxDuration`, likewise.
    #[error("retry.backoff.maxDuration: unable to parse {value} as a duration ({source})")]
    BackoffMaxDuration {
        /// The field as written.
        value: String,
        /// Why Go's parser refused it.
        source: DurationError,
    },
}

/// Declares a string enum with known values and an `Other(String)` fallback, serialized
/// as the plain string.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept verbatim (including the empty
            /// string, Go's zero value).
            Other(String),
        }

        impl $name {
            /// The value as Argo CD writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok($name::from(text.as_ref()))
            }
        }
    };
}

string_enum! {
    /// Phase of an operation (`status.operationState.phase`) or of a hook
    /// (`hookPhase`).
    OperationPhase {
        /// In progress.
        Running = "Running",
        /// Being cancelled.
        Terminating = "Terminating",
        /// Finished; something it did failed.
        Failed = "Failed",
        /// Finished; it could not be carried out.
        Error = "Error",
        /// Finished successfully.
        Succeeded = "Succeeded",
    }
}

/// Go's zero value, `""` (what Argo CD reads when `phase` is absent).
impl Default for OperationPhase {
    fn default() -> Self {
        OperationPhase::Other(String::new())
    }
}

impl OperationPhase {
    /// Failed, Error or Succeeded (gitops-engine `OperationPhase.Completed`). An unknown
    /// phase is not completed: Argosy does not start a new operation over one it cannot
    /// read.
    #[must_use]
    pub fn completed(&self) -> bool {
        matches!(
            self,
            OperationPhase::Failed | OperationPhase::Error | OperationPhase::Succeeded
        )
    }

    /// Succeeded.
    #[must_use]
    pub fn successful(&self) -> bool {
        *self == OperationPhase::Succeeded
    }

    /// Running.
    #[must_use]
    pub fn running(&self) -> bool {
        *self == OperationPhase::Running
    }
}

string_enum! {
    /// Result of syncing one resource (`syncResult.resources[].status`).
    ResultCode {
        /// Applied.
        Synced = "Synced",
        /// Apply failed.
        SyncFailed = "SyncFailed",
        /// Deleted because it is no longer in the source.
        Pruned = "Pruned",
        /// Would be pruned, but pruning is off for it.
        PruneSkipped = "PruneSkipped",
    }
}

string_enum! {
    /// Hook type of a resource (`argocd.argoproj.io/hook`).
    HookType {
        /// Before the sync.
        PreSync = "PreSync",
        /// With the sync.
        Sync = "Sync",
        /// After a successful sync.
        PostSync = "PostSync",
        /// After a failed sync.
        SyncFail = "SyncFail",
        /// Not applied at all.
        Skip = "Skip",
        /// Before the Application's resources are deleted.
        PreDelete = "PreDelete",
        /// After the Application's resources are deleted.
        PostDelete = "PostDelete",
    }
}

string_enum! {
    /// The phase of a sync a resource result belongs to (`syncPhase`).
    SyncPhase {
        /// `PreSync` hooks.
        PreSync = "PreSync",
        /// The resources themselves and Sync hooks.
        Sync = "Sync",
        /// `PostSync` hooks.
        PostSync = "PostSync",
        /// `SyncFail` hooks.
        SyncFail = "SyncFail",
    }
}

string_enum! {
    /// `status.sync.status`.
    SyncStatusCode {
        /// Live state matches the source.
        Synced = "Synced",
        /// Live state differs from the source.
        OutOfSync = "OutOfSync",
        /// Not compared (yet), or the comparison failed.
        Unknown = "Unknown",
    }
}

string_enum! {
    /// `status.health.status`.
    HealthStatusCode {
        /// Healthy.
        Healthy = "Healthy",
        /// Not healthy yet, expected to become healthy.
        Progressing = "Progressing",
        /// Failed or unable to become healthy.
        Degraded = "Degraded",
        /// Paused (e.g. a suspended `CronJob` or paused rollout).
        Suspended = "Suspended",
        /// Not present in the cluster.
        Missing = "Missing",
        /// Health could not be assessed.
        Unknown = "Unknown",
    }
}

/// A requested or running operation (`Application.operation`,
/// `status.operationState.operation`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Parameters of a sync; the only kind of operation Argo CD has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncOperation>,
    /// Who asked for it. Argo CD always writes it (possibly `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<OperationInitiator>,
    /// Informational name/value pairs (e.g. the reason of an automated sync).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<Info>,
    /// What to do when the sync fails. Argo CD always writes it (possibly `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `operation.sync`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperation {
    /// Revision to sync to; empty means the one in the spec.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Per-source revisions of a multi-source Application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
    /// Delete resources no longer in the source.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
    /// Only a dry run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// `apply` or `hook` strategy, kept as JSON (not interpreted yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_strategy: Option<Value>,
    /// Sync only these resources; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<SyncOperationResource>,
    /// Source override (rollbacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Sources override (rollbacks of multi-source Applications).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    /// Sync options for this sync only, e.g. `Validate=false`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    /// Local manifests overriding the source (development).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    /// Fields not modelled here (e.g. `autoHealAttemptsCount`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// One entry of `operation.sync.resources`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResource {
    /// API group; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace; empty matches any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Who started an operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationInitiator {
    /// The user, for manual syncs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// True when the controller started it (automated sync).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automated: bool,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A name/value pair of `operation.info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `status.operationState`: the operation being (or last) carried out and how it went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    /// The operation as requested.
    #[serde(default)]
    pub operation: Operation,
    /// Where it is. Absent reads as `Other("")` (Go's zero value).
    #[serde(default)]
    pub phase: OperationPhase,
    /// Progress or error message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Per-resource results of the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_result: Option<SyncOperationResult>,
    /// RFC 3339 start time, as Argo CD writes it (`2024-05-01T10:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339 completion time; also set on a Running operation waiting for a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How many times the operation has been retried.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_count: i64,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `operationState.syncResult`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResult {
    /// One result per resource (and hook) touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceResult>,
    /// The revision synced to (always written by Argo CD, possibly empty).
    #[serde(default)]
    pub revision: String,
    /// Per-source revisions of a multi-source Application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
    /// The source synced (Argo CD compares it for auto-sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// The sources synced, for multi-source Applications.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    /// Fields not modelled here (e.g. `managedNamespaceMetadata`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Result of syncing one resource or running one hook.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    /// API group (always written, empty for the core group).
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Namespace (empty for cluster-scoped resources).
    #[serde(default)]
    pub namespace: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Outcome; absent while pending and always for hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResultCode>,
    /// Message of the last sync or operation on it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Hook type; absent for ordinary resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_type: Option<HookType>,
    /// Phase of the hook (or of the resource's operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_phase: Option<OperationPhase>,
    /// Sync phase the result was produced in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_phase: Option<SyncPhase>,
    /// Fields not modelled here (e.g. `images`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `syncPolicy.retry` / `operation.retry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Maximum number of retries: 0 none, negative unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: i64,
    /// How long to wait between retries; absent means Argo CD's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Fields not modelled here (e.g. `refresh`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `retry.backoff`. Durations are strings as Argo CD reads them: a Go duration (`2m`)
/// or a plain number of seconds (`"5"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// Delay before the first retry; absent or empty means 5s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Multiplier per retry; absent means 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<i64>,
    /// Longest delay; absent or empty means 3m; zero or negative means no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One entry of `status.history`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionHistory {
    /// Increasing identifier (always written).
    #[serde(default)]
    pub id: i64,
    /// Revision deployed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Per-source revisions of a multi-source Application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
    /// RFC 3339 time the sync completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
    /// RFC 3339 time the sync started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_started_at: Option<String>,
    /// Source deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Sources deployed, for multi-source Applications.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    /// Who started the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<OperationInitiator>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

// serde's `skip_serializing_if` passes the field by reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl RetryStrategy {
    /// Whether a failed operation that has been retried `retry_count` times may be
    /// retried again: below `limit`, or always when `limit` is negative (argo-cd
    /// `controller/appcontroller.go`, `processRequestedAppOperation`).
    #[must_use]
    pub fn may_retry(&self, retry_count: i64) -> bool {
        retry_count < self.limit || self.limit < 0
    }

    /// The wait before retry number `retry_count + 1`, with Argo CD's defaults when there
    /// is no `backoff`; see [`Backoff::delay`].
    pub fn delay(&self, retry_count: i64) -> Result<std::time::Duration, OperationError> {
        match &self.backoff {
            Some(backoff) => backoff.delay(retry_count),
            None => Backoff::default().delay(retry_count),
        }
    }
}

impl Backoff {
    /// Argo CD's `DefaultSyncRetryDuration`.
    pub const DEFAULT_DURATION: GoDuration = GoDuration::from_nanos(5 * 1_000_000_000);
    /// Argo CD's `DefaultSyncRetryFactor`.
    pub const DEFAULT_FACTOR: i64 = 2;
    /// Argo CD's `DefaultSyncRetryMaxDuration`.
    pub const DEFAULT_MAX_DURATION: GoDuration = GoDuration::from_nanos(3 * 60 * 1_000_000_000);

    /// `duration`, parsed, or the default when absent or empty.
    pub fn base_duration(&self) -> Result<GoDuration, OperationError> {
        parse_or(self.duration.as_deref(), Self::DEFAULT_DURATION)
            .map_err(|(value, source)| OperationError::BackoffDuration { value, source })
    }

    /// `maxDuration`, parsed, or the default when absent or empty.
    pub fn max(&self) -> Result<GoDuration, OperationError> {
        parse_or(self.max_duration.as_deref(), Self::DEFAULT_MAX_DURATION)
            .map_err(|(value, source)| OperationError::BackoffMaxDuration { value, source })
    }

    /// The wait before retry number `retry_count + 1` (`retry_count` is
    /// `operationState.retryCount`, 0 before the first retry), as a [`GoDuration`]:
    /// `duration * factor^retry_count`, capped at `maxDuration` when that is positive.
    ///
    /// This is argo-cd's `RetryStrategy.NextRetryAt` (`pkg/apis/application/v1alpha1/
    /// types.go`): `timeToWait := float64(duration) * math.Pow(float64(factor),
    /// float64(retryCounts))`, then `math.Min(float64(maxDuration), timeToWait)` if
    /// `maxDuration > 0`. The same f64 computation is done here, but every step saturates
    /// where Go's float-to-int conversion is undefined: a huge duration, factor or count
    /// gives the cap (or [`GoDuration::MAX`] without one), never an overflow. A negative
    /// result (negative duration, or a negative factor to an odd power) is returned as is;
    /// Argo CD then retries at once, as does [`GoDuration::to_std`] (zero).
    ///
    /// An unparsable `duration` or `maxDuration` is an error, as in Argo CD, whose
    /// controller then fails the operation with that message rather than guess a delay.
    pub fn delay_go(&self, retry_count: i64) -> Result<GoDuration, OperationError> {
        let duration = self.base_duration()?;
        let max = self.max()?;
        let factor = self.factor.unwrap_or(Self::DEFAULT_FACTOR);
        // float64(factor) and float64(retryCounts), exactly as Go computes them: any precision
        // lost above 2^53 is lost in Argo CD too.
        #[allow(clippy::cast_precision_loss)]
        let wait = duration.mul_f64((factor as f64).powf(retry_count as f64));
        Ok(if max > GoDuration::ZERO {
            wait.min(max)
        } else {
            wait
        })
    }

    /// [`Backoff::delay_go`] as a `std::time::Duration` (negative waits are zero).
    pub fn delay(&self, retry_count: i64) -> Result<std::time::Duration, OperationError> {
        self.delay_go(retry_count).map(GoDuration::to_std)
    }
}

/// Parses an optional Argo CD backoff duration; `(text, error)` when it is invalid.
fn parse_or(
    value: Option<&str>,
    default: GoDuration,
) -> Result<GoDuration, (String, DurationError)> {
    match value {
        None | Some("") => Ok(default),
        Some(text) => GoDuration::parse_seconds_or_duration(text).map_err(|e| (text.to_owned(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    /// `status.operationState` of a multi-resource sync with a hook, as Argo CD writes it,
    /// plus fields this module does not model (at every level).
    fn argo_operation_state() -> Value {
        json!({
            "operation": {
                "sync": {
                    "revision": "8d2f0c1a6b7e3f4a5c9d0e1f2a3b4c5d6e7f8a9b",
                    "prune": true,
                    "syncStrategy": {"hook": {}},
                    "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
                    "resources": [
                        {"group": "apps", "kind": "Deployment", "name": "web", "namespace": "shop"},
                        {"kind": "ConfigMap", "name": "settings"}
                    ],
                    "autoHealAttemptsCount": 2
                },
                "initiatedBy": {"automated": true},
                "info": [{"name": "Reason", "value": "ApplicationOutOfSync"}],
                "retry": {
                    "limit": 5,
                    "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m0s"},
                    "refresh": true
                }
            },
            "phase": "Failed",
            "message": "one or more objects failed to apply, reason: Deployment.apps \"web\" is invalid. Retrying attempt #1 at 10:01AM.",
            "syncResult": {
                "resources": [
                    {
                        "group": "apps",
                        "version": "v1",
                        "kind": "Deployment",
                        "namespace": "shop",
                        "name": "web",
                        "status": "SyncFailed",
                        "message": "Deployment.apps \"web\" is invalid",
                        "hookPhase": "Failed",
                        "syncPhase": "Sync",
                        "images": ["ghcr.io/acme/web:1.4.2"]
                    },
                    {
                        "group": "",
                        "version": "v1",
                        "kind": "ConfigMap",
                        "namespace": "shop",
                        "name": "settings",
                        "status": "Synced",
                        "message": "configmap/settings serverside-applied",
                        "hookPhase": "Running",
                        "syncPhase": "Sync"
                    },
                    {
                        "group": "batch",
                        "version": "v1",
                        "kind": "Job",
                        "namespace": "shop",
                        "name": "migrate",
                        "message": "job.batch/migrate created",
                        "hookType": "PreSync",
                        "hookPhase": "Succeeded",
                        "syncPhase": "PreSync"
                    },
                    {
                        "group": "",
                        "version": "v1",
                        "kind": "Secret",
                        "namespace": "shop",
                        "name": "old",
                        "status": "PruneSkipped",
                        "message": "ignored (requires pruning)",
                        "hookType": "PreUpgrade",
                        "hookPhase": "Pending",
                        "syncPhase": "Wave2"
                    }
                ],
                "revision": "8d2f0c1a6b7e3f4a5c9d0e1f2a3b4c5d6e7f8a9b",
                "source": {
                    "repoURL": "https://github.com/acme/deploy.git",
                    "path": "shop",
                    "targetRevision": "HEAD",
                    "plugin": {"name": "sops"}
                },
                "managedNamespaceMetadata": {"labels": {"team": "shop"}}
            },
            "startedAt": "2024-05-01T10:00:00Z",
            "finishedAt": "2024-05-01T10:00:41Z",
            "retryCount": 1,
            "someFutureField": {"nested": [1, 2, 3]}
        })
    }

    #[test]
    fn argo_operation_state_round_trips() {
        let raw = argo_operation_state();
        let state: OperationState = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&state).unwrap(), raw);

        assert_eq!(state.phase, OperationPhase::Failed);
        assert!(state.phase.completed());
        assert!(!state.phase.successful());
        assert_eq!(state.retry_count, 1);
        let sync = state.operation.sync.as_ref().unwrap();
        assert!(sync.prune);
        assert_eq!(sync.resources[1].group, "");
        assert_eq!(sync.extra["autoHealAttemptsCount"], 2);
        assert!(state.operation.initiated_by.as_ref().unwrap().automated);
        let retry = state.operation.retry.as_ref().unwrap();
        assert_eq!(retry.limit, 5);
        assert_eq!(retry.extra["refresh"], true);
        let result = state.sync_result.as_ref().unwrap();
        let r = &result.resources;
        assert_eq!(r[0].status, Some(ResultCode::SyncFailed));
        assert_eq!(r[0].extra["images"][0], "ghcr.io/acme/web:1.4.2");
        assert_eq!(r[2].hook_type, Some(HookType::PreSync));
        assert_eq!(r[2].status, None);
        assert_eq!(r[2].sync_phase, Some(SyncPhase::PreSync));
        // Values a newer Argo CD might write are kept, not refused.
        assert_eq!(r[3].hook_type, Some(HookType::Other("PreUpgrade".into())));
        assert_eq!(
            r[3].hook_phase,
            Some(OperationPhase::Other("Pending".into()))
        );
        assert_eq!(r[3].sync_phase, Some(SyncPhase::Other("Wave2".into())));
        assert_eq!(
            result.source.as_ref().unwrap().extra["plugin"]["name"],
            "sops"
        );
        assert!(result.extra.contains_key("managedNamespaceMetadata"));
        assert_eq!(state.extra["someFutureField"]["nested"][2], 3);
    }

    #[test]
    fn argo_empty_fields_round_trip() {
        // Argo CD writes `initiatedBy` and `retry` even when empty, and a sync result's
        // `revision` and `source` even when empty.
        let raw = json!({
            "operation": {"sync": {}, "initiatedBy": {}, "retry": {}},
            "phase": "Running",
            "message": "waiting for healthy state of apps/Deployment/web",
            "syncResult": {"revision": "", "source": {"repoURL": ""}},
            "startedAt": "2024-05-01T10:00:00Z"
        });
        let state: OperationState = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&state).unwrap(), raw);
        assert!(state.phase.running());
        assert!(!state.phase.completed());
    }

    #[test]
    fn unknown_phase_does_not_fail_and_round_trips() {
        let raw = json!({"operation": {}, "phase": "Paused"});
        let state: OperationState = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(state.phase, OperationPhase::Other("Paused".into()));
        assert!(!state.phase.completed());
        assert!(!state.phase.successful());
        assert_eq!(serde_json::to_value(&state).unwrap(), raw);

        // Absent phase is Go's zero value, "", and is written back as such.
        let state: OperationState = serde_json::from_value(json!({})).unwrap();
        assert_eq!(state.phase, OperationPhase::Other(String::new()));
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            json!({"operation": {}, "phase": ""})
        );
    }

    #[test]
    fn phase_predicates() {
        use OperationPhase::*;
        for (phase, completed, successful) in [
            (Running, false, false),
            (Terminating, false, false),
            (Failed, true, false),
            (Error, true, false),
            (Succeeded, true, true),
        ] {
            assert_eq!(phase.completed(), completed, "{phase}");
            assert_eq!(phase.successful(), successful, "{phase}");
            assert_eq!(OperationPhase::from(phase.as_str()), phase);
        }
    }

    #[test]
    fn status_codes() {
        for code in ["Synced", "OutOfSync", "Unknown"] {
            let parsed: SyncStatusCode = serde_json::from_value(json!(code)).unwrap();
            assert!(!matches!(parsed, SyncStatusCode::Other(_)), "{code}");
            assert_eq!(parsed.as_str(), code);
        }
        // Argo CD's own "Unknown" is a known value, not the fallback.
        assert_eq!(SyncStatusCode::from("Unknown"), SyncStatusCode::Unknown);
        assert_eq!(HealthStatusCode::from("Unknown"), HealthStatusCode::Unknown);
        for code in [
            "Healthy",
            "Progressing",
            "Degraded",
            "Suspended",
            "Missing",
            "Unknown",
        ] {
            let parsed = HealthStatusCode::from(code);
            assert!(!matches!(parsed, HealthStatusCode::Other(_)), "{code}");
            assert_eq!(serde_json::to_value(&parsed).unwrap(), json!(code));
        }
        let odd = HealthStatusCode::from("Sleepy");
        assert_eq!(odd, HealthStatusCode::Other("Sleepy".into()));
        assert_eq!(odd.to_string(), "Sleepy");
        for code in ["Synced", "SyncFailed", "Pruned", "PruneSkipped"] {
            assert!(!matches!(ResultCode::from(code), ResultCode::Other(_)));
        }
        for hook in [
            "PreSync",
            "Sync",
            "PostSync",
            "SyncFail",
            "Skip",
            "PreDelete",
            "PostDelete",
        ] {
            assert_eq!(HookType::from(hook).as_str(), hook);
            assert!(!matches!(HookType::from(hook), HookType::Other(_)));
        }
    }

    #[test]
    fn revision_history_round_trips() {
        let raw = json!([
            {
                "revision": "1.2.3",
                "deployedAt": "2024-05-01T10:00:41Z",
                "id": 7,
                "source": {"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3"},
                "deployStartedAt": "2024-05-01T10:00:00Z",
                "initiatedBy": {"username": "admin"}
            },
            {
                "deployedAt": "2024-05-02T08:00:00Z",
                "id": 8,
                "source": {"repoURL": ""},
                "sources": [
                    {"repoURL": "https://github.com/acme/a.git", "path": "x"},
                    {"repoURL": "https://github.com/acme/b.git", "ref": "values"}
                ],
                "revisions": ["abc", "def"],
                "initiatedBy": {"automated": true}
            }
        ]);
        let history: Vec<RevisionHistory> = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&history).unwrap(), raw);
        assert_eq!(history[0].id, 7);
        assert_eq!(history[0].initiated_by.as_ref().unwrap().username, "admin");
        assert_eq!(history[1].revisions, ["abc", "def"]);
        assert_eq!(history[1].sources[1].extra["ref"], "values");
    }

    fn backoff(duration: Option<&str>, factor: Option<i64>, max: Option<&str>) -> Backoff {
        Backoff {
            duration: duration.map(str::to_owned),
            factor,
            max_duration: max.map(str::to_owned),
            ..Backoff::default()
        }
    }

    /// argo-cd's `TestRetryStrategy_NextRetryAtDefaultBackoff`.
    #[test]
    fn default_backoff_matches_argo() {
        let retry = RetryStrategy::default();
        for (count, secs) in [
            (0, 5),
            (1, 10),
            (2, 20),
            (3, 40),
            (4, 80),
            (80, 180),
            (100, 180),
        ] {
            assert_eq!(retry.delay(count), Ok(Duration::from_secs(secs)), "{count}");
        }
    }

    /// argo-cd's `TestRetryStrategy_NextRetryAtCustomBackoff`.
    #[test]
    fn custom_backoff_matches_argo() {
        let b = backoff(Some("2s"), Some(3), Some("1m"));
        for (count, secs) in [(0, 2), (1, 6), (2, 18), (3, 54), (4, 60)] {
            assert_eq!(b.delay(count), Ok(Duration::from_secs(secs)), "{count}");
        }
    }

    #[test]
    fn plain_numbers_are_seconds() {
        let b = backoff(Some("5"), Some(1), Some("30"));
        assert_eq!(b.delay(0), Ok(Duration::from_secs(5)));
        let b = backoff(Some("1m30s"), Some(1), Some(""));
        assert_eq!(b.delay(3), Ok(Duration::from_secs(90)));
        // Empty strings mean the defaults, as in Argo CD.
        let b = backoff(Some(""), None, Some(""));
        assert_eq!(b.delay(0), Ok(Duration::from_secs(5)));
        assert_eq!(b.delay(10), Ok(Duration::from_secs(180)));
    }

    #[test]
    fn huge_values_give_the_cap_never_a_panic() {
        let cap = Duration::from_secs(180);
        for b in [
            backoff(Some("2562047h"), None, None),
            backoff(Some("9223372036854775807"), None, None),
            backoff(Some("1h"), Some(i64::MAX), Some("3m")),
        ] {
            for count in [0, 1, 62, 63, 64, 1_000, i64::MAX] {
                assert_eq!(b.delay(count), Ok(cap), "{b:?} {count}");
            }
        }
        // factor^0 == 1: the first retry waits `duration` however large the factor.
        let b = backoff(None, Some(i64::MAX), None);
        assert_eq!(b.delay(0), Ok(Duration::from_secs(5)));
        for count in [1, 2, 1_000, i64::MAX] {
            assert_eq!(b.delay(count), Ok(cap), "{count}");
        }
        // No cap (maxDuration <= 0): saturates at the longest duration.
        let b = backoff(Some("1s"), Some(10), Some("0"));
        assert_eq!(b.delay_go(i64::MAX), Ok(GoDuration::MAX));
        assert_eq!(b.delay_go(2), Ok(GoDuration::from_nanos(100_000_000_000)));
        // Zero times infinity is zero, not NaN.
        let b = backoff(Some("0s"), Some(i64::MAX), Some("0"));
        assert_eq!(b.delay(i64::MAX), Ok(Duration::ZERO));
    }

    #[test]
    fn negative_and_zero_factors_follow_argo() {
        // factor^0 == 1, so the first retry waits `duration` whatever the factor.
        assert_eq!(
            backoff(Some("4s"), Some(0), None).delay(0),
            Ok(Duration::from_secs(4))
        );
        assert_eq!(
            backoff(Some("4s"), Some(0), None).delay(1),
            Ok(Duration::ZERO)
        );
        // A negative wait is "retry now".
        assert_eq!(
            backoff(Some("4s"), Some(-2), None).delay_go(1),
            Ok(GoDuration::from_nanos(-8_000_000_000))
        );
        assert_eq!(
            backoff(Some("4s"), Some(-2), None).delay(1),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            backoff(Some("-1s"), None, None).delay(0),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn bad_durations_are_errors_naming_the_field() {
        let err = backoff(Some("5x"), None, None).delay(0).unwrap_err();
        assert!(matches!(err, OperationError::BackoffDuration { .. }));
        assert_eq!(
            err.to_string(),
            r#"retry.backoff.duration: unable to parse 5x as a duration (time: unknown unit "x" in duration "5x")"#
        );
        let err = backoff(None, None, Some("forever")).delay(0).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("retry.backoff.maxDuration: unable to parse forever"),
            "{err}"
        );
        let err = backoff(Some("99999999999999999999999h"), None, None)
            .delay(0)
            .unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn retry_limit() {
        let r = |limit| RetryStrategy {
            limit,
            ..RetryStrategy::default()
        };
        assert!(!r(0).may_retry(0));
        assert!(r(2).may_retry(1));
        assert!(!r(2).may_retry(2));
        assert!(r(-1).may_retry(i64::MAX));
    }
}

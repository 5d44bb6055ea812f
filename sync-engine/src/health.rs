//! Resource health: the pure assessment of one live object (Deployment, Pod, Service, ...)
//! and the aggregation order of health codes, following Argo CD's gitops-engine
//! (`pkg/health`) and the built-in Lua checks Argo CD ships for CronJob, Job and
//! `argoproj.io/Application`.
//!
//! It reads the object as JSON (no typed decode: this runs for every tracked object on
//! every status update and only needs a handful of fields). A field of the wrong type
//! makes the object `Unknown` with a message naming the field, as Argo does when its typed
//! conversion fails; absent fields take Go's zero values, as in Argo's typed structs.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// Ordered from best to worst as Argo CD orders them (gitops-engine `healthOrder`):
/// Healthy < Suspended < Progressing < Missing < Degraded < Unknown.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum HealthCode {
    Healthy,
    Suspended,
    Progressing,
    Missing,
    Degraded,
    Unknown,
}

impl HealthCode {
    const ALL: [HealthCode; 6] = [
        HealthCode::Healthy,
        HealthCode::Suspended,
        HealthCode::Progressing,
        HealthCode::Missing,
        HealthCode::Degraded,
        HealthCode::Unknown,
    ];

    /// The code as Argo CD writes it in `status.health.status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthCode::Healthy => "Healthy",
            HealthCode::Suspended => "Suspended",
            HealthCode::Progressing => "Progressing",
            HealthCode::Missing => "Missing",
            HealthCode::Degraded => "Degraded",
            HealthCode::Unknown => "Unknown",
        }
    }

    fn parse(s: &str) -> Option<HealthCode> {
        Self::ALL.into_iter().find(|code| code.as_str() == s)
    }
}

/// The health of one object: its code and a human-readable message (may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub code: HealthCode,
    pub message: String,
}

impl Health {
    fn new(code: HealthCode, message: impl Into<String>) -> Health {
        Health {
            code,
            message: message.into(),
        }
    }
}

/// Worst of the given codes; Healthy for an empty iterator (Argo: an app whose resources
/// have no health notion is Healthy).
pub fn worst(codes: impl IntoIterator<Item = HealthCode>) -> HealthCode {
    codes.into_iter().max().unwrap_or(HealthCode::Healthy)
}

/// Argo CD's hook finalizer: an object held by it is a hook still being watched, so its
/// deletion timestamp does not make it "Pending deletion".
const HOOK_FINALIZER: &str = "argocd.argoproj.io/hook-finalizer";
/// Pods carrying this annotation are judged like `restartPolicy: Always` pods.
const IGNORE_RESTART_POLICY: &str = "argocd.argoproj.io/ignore-restart-policy";
/// Argo's message for an HPA that has not reported that it can scale.
const HPA_WAITING: &str = "Waiting to Autoscale";
/// Where `autoscaling/v1` HPAs keep their conditions (the v1 schema has no field for them).
const HPA_V1_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";

/// Health of one live object (apiVersion/kind/metadata/spec/status JSON); None when the
/// kind has no health notion (Argo leaves such objects out of the application's health).
pub fn assess(live: &Value) -> Option<Health> {
    if !live.is_object() {
        return None;
    }
    let kind = live.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = live
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // "apps/v1" -> group "apps"; core kinds ("v1") have the empty group.
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));

    let result = pending_deletion(live).and_then(|pending| match pending {
        Some(health) => Ok(Some(health)),
        None => match check_for(group, kind) {
            Some(check) => check(live, version).map(Some),
            None => custom_resource(live),
        },
    });
    result.unwrap_or_else(|err| {
        let meta = live.get("metadata");
        let field = |name| {
            meta.and_then(|m| m.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (namespace, name) = (field("namespace"), field("name"));
        let object = if namespace.is_empty() {
            format!("{kind} {name}")
        } else {
            format!("{kind} {namespace}/{name}")
        };
        Some(Health::new(HealthCode::Unknown, format!("{object}: {err}")))
    })
}

/// A built-in check: the object and its API version (HPA v1 keeps conditions elsewhere).
type Check = fn(&Value, &str) -> Result<Health, Malformed>;

/// The built-in check for a group and kind, as gitops-engine's `GetHealthCheckFunc`
/// dispatches them, plus the kinds Argo CD covers with shipped Lua checks and Namespace.
fn check_for(group: &str, kind: &str) -> Option<Check> {
    let check: Check = match (group, kind) {
        ("apps", "Deployment") => deployment,
        ("apps", "StatefulSet") => stateful_set,
        ("apps", "ReplicaSet") => replica_set,
        ("apps", "DaemonSet") => daemon_set,
        ("extensions" | "networking.k8s.io", "Ingress") => ingress,
        ("", "Service") => service,
        ("", "PersistentVolumeClaim") => pvc,
        ("", "Pod") => pod,
        ("", "Namespace") => namespace,
        ("batch", "Job") => job,
        ("batch", "CronJob") => cron_job,
        ("autoscaling", "HorizontalPodAutoscaler") => hpa,
        ("apiregistration.k8s.io", "APIService") => api_service,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd,
        ("argoproj.io", "Application") => application,
        ("argoproj.io", "Workflow") => workflow,
        _ => return None,
    };
    Some(check)
}

/// A field that is present but not of the type Kubernetes gives it.
#[derive(Debug, thiserror::Error)]
#[error("field {path} is not {expected}")]
struct Malformed {
    path: &'static str,
    expected: &'static str,
}

/// The value at a dotted path; None when any step is absent or null (Go's nil).
fn field<'a>(obj: &'a Value, path: &'static str) -> Result<Option<&'a Value>, Malformed> {
    let mut current = obj;
    for step in path.split('.') {
        match current {
            Value::Object(map) => match map.get(step) {
                None | Some(Value::Null) => return Ok(None),
                Some(next) => current = next,
            },
            _ => {
                return Err(Malformed {
                    path,
                    expected: "inside an object",
                });
            }
        }
    }
    Ok(Some(current))
}

fn opt_int(obj: &Value, path: &'static str) -> Result<Option<i64>, Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_i64().ok_or(Malformed {
                path,
                expected: "an integer",
            })
        })
        .transpose()
}

fn int(obj: &Value, path: &'static str) -> Result<i64, Malformed> {
    Ok(opt_int(obj, path)?.unwrap_or_default())
}

fn string<'a>(obj: &'a Value, path: &'static str) -> Result<&'a str, Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_str().ok_or(Malformed {
                path,
                expected: "a string",
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

fn boolean(obj: &Value, path: &'static str) -> Result<bool, Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_bool().ok_or(Malformed {
                path,
                expected: "a boolean",
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

fn list<'a>(obj: &'a Value, path: &'static str) -> Result<&'a [Value], Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_array().map(Vec::as_slice).ok_or(Malformed {
                path,
                expected: "a list",
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

fn opt_time(obj: &Value, path: &'static str) -> Result<Option<Timestamp>, Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_str()
                .and_then(|s| s.parse::<Timestamp>().ok())
                .ok_or(Malformed {
                    path,
                    expected: "an RFC 3339 time",
                })
        })
        .transpose()
}

/// `metadata.name`, for the messages Argo words with the object's name.
fn name(obj: &Value) -> Result<&str, Malformed> {
    string(obj, "metadata.name")
}

/// One entry of a `conditions` list; absent strings are empty.
struct Condition<'a> {
    type_: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
    observed_generation: Option<i64>,
}

impl Condition<'_> {
    fn is_true(&self) -> bool {
        self.status == "True"
    }
}

fn conditions<'a>(
    entries: &'a [Value],
    path: &'static str,
) -> Result<Vec<Condition<'a>>, Malformed> {
    entries
        .iter()
        .map(|entry| {
            if !entry.is_object() {
                return Err(Malformed {
                    path,
                    expected: "a list of objects",
                });
            }
            Ok(Condition {
                type_: string(entry, "type")?,
                status: string(entry, "status")?,
                reason: string(entry, "reason")?,
                message: string(entry, "message")?,
                observed_generation: opt_int(entry, "observedGeneration")?,
            })
        })
        .collect()
}

/// `status.conditions`.
fn status_conditions(obj: &Value) -> Result<Vec<Condition<'_>>, Malformed> {
    conditions(list(obj, "status.conditions")?, "status.conditions")
}

/// An object being deleted is Progressing whatever its kind (Argo checks this first),
/// unless Argo's hook finalizer holds it.
fn pending_deletion(obj: &Value) -> Result<Option<Health>, Malformed> {
    if field(obj, "metadata.deletionTimestamp")?.is_none() {
        return Ok(None);
    }
    let finalizers = list(obj, "metadata.finalizers")?;
    if finalizers
        .iter()
        .any(|f| f.as_str() == Some(HOOK_FINALIZER))
    {
        return Ok(None);
    }
    Ok(Some(Health::new(
        HealthCode::Progressing,
        "Pending deletion",
    )))
}

fn deployment(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::*;
    if boolean(obj, "spec.paused")? {
        return Ok(Health::new(Suspended, "Deployment is paused"));
    }
    // kubectl's rollout-status rules: only a status that has seen the current spec counts.
    if int(obj, "metadata.generation")? > int(obj, "status.observedGeneration")? {
        return Ok(Health::new(
            Progressing,
            "Waiting for rollout to finish: observed deployment generation less then desired generation",
        ));
    }
    let deadline_exceeded = status_conditions(obj)?
        .iter()
        .find(|c| c.type_ == "Progressing")
        .is_some_and(|c| c.reason == "ProgressDeadlineExceeded");
    if deadline_exceeded {
        return Ok(Health::new(
            Degraded,
            format!("Deployment {:?} exceeded its progress deadline", name(obj)?),
        ));
    }
    let desired = opt_int(obj, "spec.replicas")?;
    let replicas = int(obj, "status.replicas")?;
    let updated = int(obj, "status.updatedReplicas")?;
    let available = int(obj, "status.availableReplicas")?;
    if let Some(desired) = desired.filter(|&d| updated < d) {
        return Ok(Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated..."
            ),
        ));
    }
    if replicas > updated {
        return Ok(Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
        ));
    }
    if available < updated {
        return Ok(Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        ));
    }
    Ok(Health::new(Healthy, ""))
}

fn stateful_set(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::*;
    let observed = int(obj, "status.observedGeneration")?;
    if observed == 0 || int(obj, "metadata.generation")? > observed {
        return Ok(Health::new(
            Progressing,
            "Waiting for statefulset spec update to be observed...",
        ));
    }
    let desired = opt_int(obj, "spec.replicas")?;
    let ready = int(obj, "status.readyReplicas")?;
    let updated = int(obj, "status.updatedReplicas")?;
    if let Some(desired) = desired.filter(|&d| ready < d) {
        return Ok(Health::new(
            Progressing,
            format!("Waiting for {} pods to be ready...", desired - ready),
        ));
    }
    let strategy = string(obj, "spec.updateStrategy.type")?;
    if strategy == "RollingUpdate" && field(obj, "spec.updateStrategy.rollingUpdate")?.is_some() {
        let partition = opt_int(obj, "spec.updateStrategy.rollingUpdate.partition")?;
        if let (Some(desired), Some(partition)) = (desired, partition) {
            let to_update = desired - partition;
            if updated < to_update {
                return Ok(Health::new(
                    Progressing,
                    format!(
                        "Waiting for partitioned roll out to finish: {updated} out of {to_update} new pods have been updated..."
                    ),
                ));
            }
        }
        return Ok(Health::new(
            Healthy,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        ));
    }
    if strategy == "OnDelete" {
        return Ok(Health::new(
            Healthy,
            format!("statefulset has {ready} ready pods ({updated} updated)"),
        ));
    }
    let update_revision = string(obj, "status.updateRevision")?;
    let current_revision = string(obj, "status.currentRevision")?;
    if update_revision != current_revision {
        return Ok(Health::new(
            Progressing,
            format!(
                "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
            ),
        ));
    }
    Ok(Health::new(
        Healthy,
        format!(
            "statefulset rolling update complete {} pods at revision {current_revision}...",
            int(obj, "status.currentReplicas")?
        ),
    ))
}

fn daemon_set(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::*;
    if int(obj, "metadata.generation")? > int(obj, "status.observedGeneration")? {
        return Ok(Health::new(
            Progressing,
            "Waiting for rollout to finish: observed daemon set generation less then desired generation",
        ));
    }
    let desired = int(obj, "status.desiredNumberScheduled")?;
    let updated = int(obj, "status.updatedNumberScheduled")?;
    if string(obj, "spec.updateStrategy.type")? == "OnDelete" {
        return Ok(Health::new(
            Healthy,
            format!("daemon set {updated} out of {desired} new pods have been updated"),
        ));
    }
    if updated < desired {
        return Ok(Health::new(
            Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {updated} out of {desired} new pods have been updated...",
                name(obj)?
            ),
        ));
    }
    let available = int(obj, "status.numberAvailable")?;
    if available < desired {
        return Ok(Health::new(
            Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {available} of {desired} updated pods are available...",
                name(obj)?
            ),
        ));
    }
    Ok(Health::new(Healthy, ""))
}

fn replica_set(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::*;
    if int(obj, "metadata.generation")? > int(obj, "status.observedGeneration")? {
        return Ok(Health::new(
            Progressing,
            "Waiting for rollout to finish: observed replica set generation less then desired generation",
        ));
    }
    if let Some(failure) = status_conditions(obj)?
        .iter()
        .find(|c| c.type_ == "ReplicaFailure" && c.is_true())
    {
        return Ok(Health::new(Degraded, failure.message));
    }
    let available = int(obj, "status.availableReplicas")?;
    if let Some(desired) = opt_int(obj, "spec.replicas")?.filter(|&d| available < d) {
        return Ok(Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {desired} new replicas are available..."
            ),
        ));
    }
    Ok(Health::new(Healthy, ""))
}

/// Healthy once the load balancer reports an address (Service type LoadBalancer, Ingress).
fn load_balancer(obj: &Value) -> Result<Health, Malformed> {
    let code = if list(obj, "status.loadBalancer.ingress")?.is_empty() {
        HealthCode::Progressing
    } else {
        HealthCode::Healthy
    };
    Ok(Health::new(code, ""))
}

fn ingress(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    load_balancer(obj)
}

fn service(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    if string(obj, "spec.type")? == "LoadBalancer" {
        load_balancer(obj)
    } else {
        Ok(Health::new(HealthCode::Healthy, ""))
    }
}

fn pvc(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    let code = match string(obj, "status.phase")? {
        "Bound" => HealthCode::Healthy,
        "Pending" => HealthCode::Progressing,
        "Lost" => HealthCode::Degraded,
        _ => HealthCode::Unknown,
    };
    Ok(Health::new(code, ""))
}

fn namespace(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    Ok(match string(obj, "status.phase")? {
        "Active" => Health::new(HealthCode::Healthy, ""),
        "Terminating" => Health::new(HealthCode::Progressing, "Namespace is terminating"),
        "" => Health::new(HealthCode::Progressing, "Waiting for the namespace phase"),
        phase => Health::new(
            HealthCode::Unknown,
            format!("Unknown namespace phase {phase:?}"),
        ),
    })
}

fn pod(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::*;
    // The API server defaults restartPolicy to Always; a live pod always has it.
    let restart_policy = match string(obj, "spec.restartPolicy")? {
        "" => "Always",
        policy => policy,
    };
    let container_statuses = list(obj, "status.containerStatuses")?;
    let message = string(obj, "status.message")?;

    // Only long-running pods: a hook pod (OnFailure/Never) waiting on a pull error must not
    // fail its hook early, since it will run once the error clears.
    if restart_policy == "Always" {
        let mut failures = Vec::new();
        for status in container_statuses {
            let reason = string(status, "state.waiting.reason")?;
            if reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff")
            {
                // Argo joins the waiting messages; the reason stands in for a missing one.
                let waiting = string(status, "state.waiting.message")?;
                failures.push(if waiting.is_empty() { reason } else { waiting });
            }
        }
        if !failures.is_empty() {
            return Ok(Health::new(Degraded, failures.join(", ")));
        }
    }

    match string(obj, "status.phase")? {
        "Pending" => Ok(Health::new(Progressing, message)),
        "Succeeded" => Ok(Health::new(Healthy, message)),
        "Failed" => {
            if !message.is_empty() {
                return Ok(Health::new(Degraded, message));
            }
            let init_statuses = list(obj, "status.initContainerStatuses")?;
            for status in init_statuses.iter().chain(container_statuses) {
                if let Some(failure) = container_failure(status)? {
                    return Ok(Health::new(Degraded, failure));
                }
            }
            Ok(Health::new(Degraded, ""))
        }
        "Running" => {
            let ignore_policy = field(obj, "metadata.annotations")?
                .and_then(|a| a.get(IGNORE_RESTART_POLICY))
                .is_some();
            match restart_policy {
                _ if ignore_policy => running_pod(obj, container_statuses, message),
                "Always" => running_pod(obj, container_statuses, message),
                // Finite pods (usually hooks) are not done until they succeed.
                "OnFailure" | "Never" => Ok(Health::new(Progressing, message)),
                _ => Ok(Health::new(Unknown, message)),
            }
        }
        _ => Ok(Health::new(Unknown, message)),
    }
}

/// A running pod is Healthy when Ready, Degraded when a container has terminated before.
fn running_pod(
    obj: &Value,
    container_statuses: &[Value],
    message: &str,
) -> Result<Health, Malformed> {
    if status_conditions(obj)?
        .iter()
        .any(|c| c.type_ == "Ready" && c.is_true())
    {
        return Ok(Health::new(HealthCode::Healthy, message));
    }
    for status in container_statuses {
        if field(status, "lastState.terminated")?.is_some() {
            return Ok(Health::new(HealthCode::Degraded, message));
        }
    }
    Ok(Health::new(HealthCode::Progressing, message))
}

/// Why a container of a failed pod failed, if its terminated state says.
fn container_failure(status: &Value) -> Result<Option<String>, Malformed> {
    if field(status, "state.terminated")?.is_none() {
        return Ok(None);
    }
    let message = string(status, "state.terminated.message")?;
    if !message.is_empty() {
        return Ok(Some(message.to_owned()));
    }
    let reason = string(status, "state.terminated.reason")?;
    if reason == "OOMKilled" {
        return Ok(Some(reason.to_owned()));
    }
    let exit_code = int(status, "state.terminated.exitCode")?;
    if exit_code != 0 {
        return Ok(Some(format!(
            "container {:?} failed with exit code {exit_code}",
            string(status, "name")?
        )));
    }
    Ok(None)
}

fn job(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::*;
    let mut failed = None;
    let mut complete = false;
    let mut suspended = false;
    let mut message = "";
    for condition in status_conditions(obj)? {
        // Argo's check looks at the type of Failed and Complete alone: the Job controller
        // only ever adds them as True.
        match condition.type_ {
            "Failed" => failed = Some(condition.message),
            "Complete" => {
                complete = true;
                message = condition.message;
            }
            // Unlike Argo, a Suspended=False condition (a resumed Job, running again) does
            // not count as finished: the Job is Progressing until it completes or fails.
            "Suspended" if condition.is_true() => {
                suspended = true;
                message = condition.message;
            }
            _ => {}
        }
    }
    Ok(match failed {
        Some(fail_message) => Health::new(Degraded, fail_message),
        None if suspended => Health::new(Suspended, message),
        None if complete => Health::new(Healthy, message),
        None => Health::new(Progressing, message),
    })
}

/// Argo CD's shipped CronJob check, with `spec.suspend` first (as its earlier check had).
fn cron_job(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::*;
    if boolean(obj, "spec.suspend")? {
        return Ok(Health::new(Suspended, "CronJob is Suspended"));
    }
    if !list(obj, "status.active")?.is_empty() {
        return Ok(Health::new(Progressing, "CronJob has active jobs"));
    }
    let Some(scheduled) = opt_time(obj, "status.lastScheduleTime")? else {
        return Ok(Health::new(Healthy, "CronJob has never run"));
    };
    // Argo requires strictly later; Kubernetes times have one-second resolution, so a job
    // finishing within the second it was scheduled must count as a success too.
    match opt_time(obj, "status.lastSuccessfulTime")? {
        Some(succeeded) if scheduled <= succeeded => {
            Ok(Health::new(Healthy, "CronJob has run successfully"))
        }
        _ => Ok(Health::new(Degraded, "CronJob has not run successfully")),
    }
}

fn hpa(obj: &Value, version: &str) -> Result<Health, Malformed> {
    if version != "v1" {
        return hpa_conditions(&status_conditions(obj)?);
    }
    let annotation = field(obj, "metadata.annotations")?.and_then(|a| a.get(HPA_V1_CONDITIONS));
    let Some(annotation) = annotation else {
        return Ok(Health::new(HealthCode::Progressing, HPA_WAITING));
    };
    const PATH: &str = "metadata.annotations[autoscaling.alpha.kubernetes.io/conditions]";
    let parsed: Option<Value> = annotation
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok());
    let entries = parsed.as_ref().and_then(Value::as_array).ok_or(Malformed {
        path: PATH,
        expected: "a JSON list of conditions",
    })?;
    if entries.is_empty() {
        return Ok(Health::new(HealthCode::Progressing, HPA_WAITING));
    }
    hpa_conditions(&conditions(entries, PATH)?)
}

/// Degraded on a scaling failure; Healthy when every condition is a True AbleToScale or
/// ScalingLimited (so also when there is none, as in Argo); otherwise still waiting.
fn hpa_conditions(conditions: &[Condition<'_>]) -> Result<Health, Malformed> {
    const DEGRADED: [(&str, &str); 4] = [
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    ];
    let mut healthy = Vec::with_capacity(conditions.len());
    for c in conditions {
        if DEGRADED.contains(&(c.type_, c.reason)) {
            return Ok(Health::new(HealthCode::Degraded, c.message));
        }
        if matches!(c.type_, "AbleToScale" | "ScalingLimited") && c.is_true() {
            healthy.push(c.message);
        }
    }
    if healthy.len() == conditions.len() {
        Ok(Health::new(HealthCode::Healthy, healthy.join(",")))
    } else {
        Ok(Health::new(HealthCode::Progressing, HPA_WAITING))
    }
}

fn api_service(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    let conditions = status_conditions(obj)?;
    Ok(match conditions.iter().find(|c| c.type_ == "Available") {
        Some(c) => {
            let code = if c.is_true() {
                HealthCode::Healthy
            } else {
                HealthCode::Progressing
            };
            Health::new(code, format!("{}: {}", c.reason, c.message))
        }
        None => Health::new(HealthCode::Progressing, "Waiting to be processed"),
    })
}

fn crd(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::*;
    let conditions = status_conditions(obj)?;
    if conditions.is_empty() {
        return Ok(Health::new(Progressing, "Status conditions not found"));
    }
    let find = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
    if let Some(c) = find("Terminating").filter(|c| c.is_true()) {
        return Ok(Health::new(
            Progressing,
            format!("CRD is being terminated: {}", c.message),
        ));
    }
    if let Some(c) = find("NamesAccepted").filter(|c| c.status == "False") {
        return Ok(Health::new(
            Degraded,
            format!("CRD names have not been accepted: {}", c.message),
        ));
    }
    match find("Established") {
        Some(c) if c.is_true() => {}
        established => {
            return Ok(Health::new(
                Degraded,
                format!(
                    "CRD is not established: {}",
                    established.map(|c| c.message).unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(c) = find("NonStructuralSchema").filter(|c| c.is_true()) {
        return Ok(Health::new(
            Degraded,
            format!("Schema violations found: {}", c.message),
        ));
    }
    Ok(Health::new(Healthy, "CRD is healthy"))
}

/// A child Application reports its own aggregated health (Argo CD's documented Lua check
/// for app-of-apps); Progressing until it has one.
fn application(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    let message = string(obj, "status.health.message")?;
    Ok(match string(obj, "status.health.status")? {
        "" => Health::new(HealthCode::Progressing, message),
        status => match HealthCode::parse(status) {
            Some(code) => Health::new(code, message),
            None => Health::new(
                HealthCode::Unknown,
                format!("unknown health status {status:?}"),
            ),
        },
    })
}

fn workflow(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    let message = string(obj, "status.message")?;
    let code = match string(obj, "status.phase")? {
        "" | "Pending" | "Running" => HealthCode::Progressing,
        "Succeeded" => HealthCode::Healthy,
        "Failed" | "Error" => HealthCode::Degraded,
        _ => HealthCode::Unknown,
    };
    Ok(Health::new(code, message))
}

/// Any other kind with the standard `Ready` (else `Available`) status condition; None
/// without one (no health notion). True is Healthy unless the status describes an older
/// generation, False Degraded, anything else Progressing.
fn custom_resource(obj: &Value) -> Result<Option<Health>, Malformed> {
    let conditions = status_conditions(obj)?;
    let Some(ready) = ["Ready", "Available"]
        .iter()
        .find_map(|type_| conditions.iter().find(|c| c.type_ == *type_))
    else {
        return Ok(None);
    };
    let generation = int(obj, "metadata.generation")?;
    let stale = |observed: Option<i64>| observed.is_some_and(|o| o < generation);
    if stale(opt_int(obj, "status.observedGeneration")?) || stale(ready.observed_generation) {
        return Ok(Some(Health::new(
            HealthCode::Progressing,
            "Waiting for the controller to observe the latest generation",
        )));
    }
    Ok(Some(match ready.status {
        "True" => Health::new(HealthCode::Healthy, ready.message),
        "False" => Health::new(HealthCode::Degraded, ready.message),
        _ => Health::new(HealthCode::Progressing, ready.message),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthCode::*;
    use serde_json::json;

    /// An object of the given type named `web` in `prod`, with `body` merged on top.
    fn obj(api_version: &str, kind: &str, body: Value) -> Value {
        let mut value = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": "web", "namespace": "prod"},
        });
        if let (Some(target), Value::Object(fields)) = (value.as_object_mut(), body) {
            for (key, field) in fields {
                if key == "metadata" {
                    if let (Some(meta), Value::Object(extra)) = (
                        target.get_mut("metadata").and_then(Value::as_object_mut),
                        field,
                    ) {
                        meta.extend(extra);
                    }
                } else {
                    target.insert(key, field);
                }
            }
        }
        value
    }

    /// One case: name, object, expected code and exact message (None: no health notion).
    type Case<'a> = (&'a str, Value, Option<(HealthCode, &'a str)>);

    fn check(cases: Vec<Case<'_>>) {
        for (name, live, expected) in cases {
            let got = assess(&live);
            let want = expected.map(|(code, message)| Health::new(code, message));
            assert_eq!(got, want, "case {name}");
        }
    }

    fn deploy(spec: Value, status: Value) -> Value {
        obj(
            "apps/v1",
            "Deployment",
            json!({"metadata": {"generation": 2}, "spec": spec, "status": status}),
        )
    }

    #[test]
    fn deployments() {
        let done = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
        check(vec![
            (
                "healthy",
                deploy(json!({"replicas": 3}), done.clone()),
                Some((Healthy, "")),
            ),
            (
                "paused",
                deploy(json!({"replicas": 3, "paused": true}), done.clone()),
                Some((Suspended, "Deployment is paused")),
            ),
            (
                "generation not observed",
                deploy(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                Some((
                    Progressing,
                    "Waiting for rollout to finish: observed deployment generation less then desired generation",
                )),
            ),
            (
                "no status at all",
                deploy(json!({"replicas": 1}), json!(null)),
                Some((
                    Progressing,
                    "Waiting for rollout to finish: observed deployment generation less then desired generation",
                )),
            ),
            (
                "progress deadline exceeded",
                deploy(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                    "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
                ),
                Some((
                    Degraded,
                    "Deployment \"web\" exceeded its progress deadline",
                )),
            ),
            (
                "updating",
                deploy(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                    "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}),
                ),
                Some((
                    Progressing,
                    "Waiting for rollout to finish: 1 out of 3 new replicas have been updated...",
                )),
            ),
            (
                "old replicas terminating",
                deploy(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                Some((
                    Progressing,
                    "Waiting for rollout to finish: 1 old replicas are pending termination...",
                )),
            ),
            (
                "updated but unavailable",
                deploy(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
                ),
                Some((
                    Progressing,
                    "Waiting for rollout to finish: 2 of 3 updated replicas are available...",
                )),
            ),
            (
                "malformed replicas",
                deploy(json!({"replicas": "three"}), done),
                Some((
                    Unknown,
                    "Deployment prod/web: field spec.replicas is not an integer",
                )),
            ),
        ]);
    }

    fn sts(spec: Value, status: Value) -> Value {
        obj(
            "apps/v1",
            "StatefulSet",
            json!({"metadata": {"generation": 1}, "spec": spec, "status": status}),
        )
    }

    #[test]
    fn stateful_sets() {
        let rolling = |partition: i64| json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}});
        check(vec![
            (
                "never observed",
                sts(rolling(0), json!({"readyReplicas": 3})),
                Some((
                    Progressing,
                    "Waiting for statefulset spec update to be observed...",
                )),
            ),
            (
                "pods not ready",
                sts(
                    rolling(0),
                    json!({"observedGeneration": 1, "readyReplicas": 1}),
                ),
                Some((Progressing, "Waiting for 2 pods to be ready...")),
            ),
            (
                "partitioned rollout pending",
                sts(
                    rolling(1),
                    json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1}),
                ),
                Some((
                    Progressing,
                    "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
                )),
            ),
            (
                "partitioned rollout complete",
                sts(
                    rolling(0),
                    json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3}),
                ),
                Some((
                    Healthy,
                    "partitioned roll out complete: 3 new pods have been updated...",
                )),
            ),
            (
                "on delete",
                sts(
                    json!({"replicas": 2, "updateStrategy": {"type": "OnDelete"}}),
                    json!({"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 1}),
                ),
                Some((Healthy, "statefulset has 2 ready pods (1 updated)")),
            ),
            (
                "revision rolling",
                sts(
                    json!({"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}}),
                    json!({"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"}),
                ),
                Some((
                    Progressing,
                    "waiting for statefulset rolling update to complete 1 pods at revision b...",
                )),
            ),
            (
                "revision complete",
                sts(
                    json!({"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}}),
                    json!({"observedGeneration": 1, "readyReplicas": 2, "currentReplicas": 2, "currentRevision": "b", "updateRevision": "b"}),
                ),
                Some((
                    Healthy,
                    "statefulset rolling update complete 2 pods at revision b...",
                )),
            ),
        ]);
    }

    fn ds(strategy: &str, status: Value) -> Value {
        obj(
            "apps/v1",
            "DaemonSet",
            json!({"metadata": {"generation": 3}, "spec": {"updateStrategy": {"type": strategy}}, "status": status}),
        )
    }

    #[test]
    fn daemon_sets() {
        check(vec![
            (
                "healthy",
                ds(
                    "RollingUpdate",
                    json!({"observedGeneration": 3, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2}),
                ),
                Some((Healthy, "")),
            ),
            (
                "generation not observed",
                ds("RollingUpdate", json!({"observedGeneration": 2})),
                Some((
                    Progressing,
                    "Waiting for rollout to finish: observed daemon set generation less then desired generation",
                )),
            ),
            (
                "on delete",
                ds(
                    "OnDelete",
                    json!({"observedGeneration": 3, "desiredNumberScheduled": 2, "updatedNumberScheduled": 1}),
                ),
                Some((Healthy, "daemon set 1 out of 2 new pods have been updated")),
            ),
            (
                "updating",
                ds(
                    "RollingUpdate",
                    json!({"observedGeneration": 3, "desiredNumberScheduled": 2, "updatedNumberScheduled": 1}),
                ),
                Some((
                    Progressing,
                    "Waiting for daemon set \"web\" rollout to finish: 1 out of 2 new pods have been updated...",
                )),
            ),
            (
                "unavailable",
                ds(
                    "RollingUpdate",
                    json!({"observedGeneration": 3, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 0}),
                ),
                Some((
                    Progressing,
                    "Waiting for daemon set \"web\" rollout to finish: 0 of 2 updated pods are available...",
                )),
            ),
        ]);
    }

    fn rs(status: Value) -> Value {
        obj(
            "apps/v1",
            "ReplicaSet",
            json!({"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": status}),
        )
    }

    #[test]
    fn replica_sets() {
        check(vec![
            (
                "healthy",
                rs(json!({"observedGeneration": 1, "availableReplicas": 2})),
                Some((Healthy, "")),
            ),
            (
                "generation not observed",
                rs(json!({"observedGeneration": 0})),
                Some((
                    Progressing,
                    "Waiting for rollout to finish: observed replica set generation less then desired generation",
                )),
            ),
            (
                "replica failure",
                rs(
                    json!({"observedGeneration": 1, "conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota exceeded"}]}),
                ),
                Some((Degraded, "quota exceeded")),
            ),
            (
                "replica failure cleared",
                rs(
                    json!({"observedGeneration": 1, "availableReplicas": 2, "conditions": [{"type": "ReplicaFailure", "status": "False"}]}),
                ),
                Some((Healthy, "")),
            ),
            (
                "unavailable",
                rs(json!({"observedGeneration": 1, "availableReplicas": 1})),
                Some((
                    Progressing,
                    "Waiting for rollout to finish: 1 out of 2 new replicas are available...",
                )),
            ),
        ]);
    }

    fn pod_obj(restart_policy: &str, status: Value) -> Value {
        obj(
            "v1",
            "Pod",
            json!({"spec": {"restartPolicy": restart_policy}, "status": status}),
        )
    }

    #[test]
    fn pods() {
        let ready = json!([{"type": "Ready", "status": "True"}]);
        let not_ready = json!([{"type": "Ready", "status": "False"}]);
        let mut annotated = pod_obj("Never", json!({"phase": "Running", "conditions": ready}));
        annotated["metadata"]["annotations"] = json!({IGNORE_RESTART_POLICY: "true"});
        check(vec![
            (
                "running and ready",
                pod_obj("Always", json!({"phase": "Running", "conditions": ready})),
                Some((Healthy, "")),
            ),
            (
                "running, never started before",
                pod_obj(
                    "Always",
                    json!({"phase": "Running", "conditions": not_ready, "containerStatuses": [{"name": "app"}]}),
                ),
                Some((Progressing, "")),
            ),
            (
                "running, restarted and not ready",
                pod_obj(
                    "Always",
                    json!({"phase": "Running", "conditions": not_ready,
                    "containerStatuses": [{"name": "app", "lastState": {"terminated": {"exitCode": 1}}}]}),
                ),
                Some((Degraded, "")),
            ),
            (
                "crash loop",
                pod_obj(
                    "Always",
                    json!({"phase": "Running", "containerStatuses": [
                        {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}}},
                        {"name": "pull", "state": {"waiting": {"reason": "ErrImagePull"}}},
                        {"name": "ok", "state": {"waiting": {"reason": "ContainerCreating"}}},
                    ]}),
                ),
                Some((
                    Degraded,
                    "back-off 10s restarting failed container, ErrImagePull",
                )),
            ),
            (
                "restart policy defaults to Always",
                obj(
                    "v1",
                    "Pod",
                    json!({"status": {"phase": "Pending", "containerStatuses": [
                    {"name": "app", "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret not found"}}}]}}),
                ),
                Some((Degraded, "secret not found")),
            ),
            (
                "hook pod waiting on a pull error is not failed",
                pod_obj(
                    "Never",
                    json!({"phase": "Pending", "message": "pulling", "containerStatuses": [
                    {"name": "app", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}),
                ),
                Some((Progressing, "pulling")),
            ),
            (
                "pending",
                pod_obj("Always", json!({"phase": "Pending"})),
                Some((Progressing, "")),
            ),
            (
                "succeeded",
                pod_obj("Never", json!({"phase": "Succeeded", "message": "done"})),
                Some((Healthy, "done")),
            ),
            (
                "failed with pod message",
                pod_obj("Never", json!({"phase": "Failed", "message": "evicted"})),
                Some((Degraded, "evicted")),
            ),
            (
                "failed init container message",
                pod_obj(
                    "Never",
                    json!({"phase": "Failed",
                    "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 2, "message": "migration failed"}}}],
                    "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 1}}}]}),
                ),
                Some((Degraded, "migration failed")),
            ),
            (
                "failed OOMKilled",
                pod_obj(
                    "Never",
                    json!({"phase": "Failed", "containerStatuses": [
                    {"name": "app", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
                ),
                Some((Degraded, "OOMKilled")),
            ),
            (
                "failed exit code",
                pod_obj(
                    "Never",
                    json!({"phase": "Failed", "containerStatuses": [
                    {"name": "ok", "state": {"terminated": {"exitCode": 0}}},
                    {"name": "app", "state": {"terminated": {"exitCode": 3}}}]}),
                ),
                Some((Degraded, "container \"app\" failed with exit code 3")),
            ),
            (
                "failed without detail",
                pod_obj("Never", json!({"phase": "Failed"})),
                Some((Degraded, "")),
            ),
            (
                "running hook pod",
                pod_obj(
                    "OnFailure",
                    json!({"phase": "Running", "conditions": ready}),
                ),
                Some((Progressing, "")),
            ),
            (
                "ignore-restart-policy annotation",
                annotated,
                Some((Healthy, "")),
            ),
            (
                "unknown phase",
                pod_obj("Always", json!({"phase": "Unknown"})),
                Some((Unknown, "")),
            ),
        ]);
    }

    #[test]
    fn services_and_ingresses() {
        let lb = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
        check(vec![
            (
                "cluster IP",
                obj("v1", "Service", json!({"spec": {"type": "ClusterIP"}})),
                Some((Healthy, "")),
            ),
            (
                "no type",
                obj("v1", "Service", json!({})),
                Some((Healthy, "")),
            ),
            (
                "load balancer pending",
                obj(
                    "v1",
                    "Service",
                    json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}}),
                ),
                Some((Progressing, "")),
            ),
            (
                "load balancer ready",
                obj(
                    "v1",
                    "Service",
                    json!({"spec": {"type": "LoadBalancer"}, "status": lb}),
                ),
                Some((Healthy, "")),
            ),
            (
                "ingress pending",
                obj("networking.k8s.io/v1", "Ingress", json!({})),
                Some((Progressing, "")),
            ),
            (
                "ingress ready",
                obj("networking.k8s.io/v1", "Ingress", json!({"status": lb})),
                Some((Healthy, "")),
            ),
            (
                "legacy ingress",
                obj("extensions/v1beta1", "Ingress", json!({"status": lb})),
                Some((Healthy, "")),
            ),
        ]);
    }

    #[test]
    fn claims_and_namespaces() {
        let phase = |kind: &str, phase: &str| obj("v1", kind, json!({"status": {"phase": phase}}));
        check(vec![
            (
                "bound",
                phase("PersistentVolumeClaim", "Bound"),
                Some((Healthy, "")),
            ),
            (
                "pending",
                phase("PersistentVolumeClaim", "Pending"),
                Some((Progressing, "")),
            ),
            (
                "lost",
                phase("PersistentVolumeClaim", "Lost"),
                Some((Degraded, "")),
            ),
            (
                "no phase",
                obj("v1", "PersistentVolumeClaim", json!({})),
                Some((Unknown, "")),
            ),
            ("active", phase("Namespace", "Active"), Some((Healthy, ""))),
            (
                "terminating",
                phase("Namespace", "Terminating"),
                Some((Progressing, "Namespace is terminating")),
            ),
            (
                "namespace without phase",
                obj("v1", "Namespace", json!({})),
                Some((Progressing, "Waiting for the namespace phase")),
            ),
            (
                "odd phase",
                phase("Namespace", "Gone"),
                Some((Unknown, "Unknown namespace phase \"Gone\"")),
            ),
        ]);
    }

    fn job_obj(conditions: Value) -> Value {
        obj(
            "batch/v1",
            "Job",
            json!({"status": {"conditions": conditions}}),
        )
    }

    #[test]
    fn jobs() {
        check(vec![
            (
                "running",
                obj("batch/v1", "Job", json!({"status": {"active": 1}})),
                Some((Progressing, "")),
            ),
            (
                "complete",
                job_obj(json!([{"type": "Complete", "status": "True", "message": "ok"}])),
                Some((Healthy, "ok")),
            ),
            (
                "failed",
                job_obj(
                    json!([{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]),
                ),
                Some((Degraded, "BackoffLimitExceeded")),
            ),
            (
                "suspended",
                job_obj(
                    json!([{"type": "Suspended", "status": "True", "message": "Job suspended"}]),
                ),
                Some((Suspended, "Job suspended")),
            ),
            (
                "resumed and running",
                job_obj(
                    json!([{"type": "Suspended", "status": "False", "message": "Job resumed"}]),
                ),
                Some((Progressing, "")),
            ),
        ]);
    }

    fn cron(spec: Value, status: Value) -> Value {
        obj(
            "batch/v1",
            "CronJob",
            json!({"spec": spec, "status": status}),
        )
    }

    #[test]
    fn cron_jobs() {
        let schedule = json!({"schedule": "*/5 * * * *"});
        check(vec![
            (
                "suspended",
                cron(json!({"suspend": true}), json!({"active": [{"name": "j"}]})),
                Some((Suspended, "CronJob is Suspended")),
            ),
            (
                "active",
                cron(
                    schedule.clone(),
                    json!({"active": [{"name": "j"}], "lastScheduleTime": "2024-01-01T00:05:00Z"}),
                ),
                Some((Progressing, "CronJob has active jobs")),
            ),
            (
                "never run",
                cron(schedule.clone(), json!({})),
                Some((Healthy, "CronJob has never run")),
            ),
            (
                "last run succeeded",
                cron(
                    schedule.clone(),
                    json!({"lastScheduleTime": "2024-01-01T00:05:00Z", "lastSuccessfulTime": "2024-01-01T00:05:07Z"}),
                ),
                Some((Healthy, "CronJob has run successfully")),
            ),
            (
                "succeeded within the scheduled second",
                cron(
                    schedule.clone(),
                    json!({"lastScheduleTime": "2024-01-01T00:05:00Z", "lastSuccessfulTime": "2024-01-01T00:05:00Z"}),
                ),
                Some((Healthy, "CronJob has run successfully")),
            ),
            (
                "last run failed",
                cron(
                    schedule.clone(),
                    json!({"lastScheduleTime": "2024-01-01T00:10:00Z", "lastSuccessfulTime": "2024-01-01T00:05:07Z"}),
                ),
                Some((Degraded, "CronJob has not run successfully")),
            ),
            (
                "never succeeded",
                cron(
                    schedule.clone(),
                    json!({"lastScheduleTime": "2024-01-01T00:10:00Z"}),
                ),
                Some((Degraded, "CronJob has not run successfully")),
            ),
            (
                "bad time",
                cron(schedule, json!({"lastScheduleTime": "yesterday"})),
                Some((
                    Unknown,
                    "CronJob prod/web: field status.lastScheduleTime is not an RFC 3339 time",
                )),
            ),
        ]);
    }

    #[test]
    fn horizontal_pod_autoscalers() {
        let v2 = |conditions: Value| {
            obj(
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                json!({"status": {"conditions": conditions}}),
            )
        };
        let v1 = |annotation: Option<&str>| {
            let mut hpa = obj("autoscaling/v1", "HorizontalPodAutoscaler", json!({}));
            if let Some(text) = annotation {
                hpa["metadata"]["annotations"] = json!({HPA_V1_CONDITIONS: text});
            }
            hpa
        };
        check(vec![
            (
                "able to scale",
                v2(
                    json!([{"type": "AbleToScale", "status": "True", "message": "ready"},
                          {"type": "ScalingLimited", "status": "True", "message": "at max"}]),
                ),
                Some((Healthy, "ready,at max")),
            ),
            (
                "failed metric",
                v2(json!([{"type": "AbleToScale", "status": "True"},
                          {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric", "message": "no metrics"}])),
                Some((Degraded, "no metrics")),
            ),
            (
                "scaling active is not yet healthy",
                v2(
                    json!([{"type": "AbleToScale", "status": "True"}, {"type": "ScalingActive", "status": "True"}]),
                ),
                Some((Progressing, "Waiting to Autoscale")),
            ),
            ("v2 without conditions", v2(json!([])), Some((Healthy, ""))),
            (
                "v1 without annotation",
                v1(None),
                Some((Progressing, "Waiting to Autoscale")),
            ),
            (
                "v1 empty annotation list",
                v1(Some("[]")),
                Some((Progressing, "Waiting to Autoscale")),
            ),
            (
                "v1 annotation",
                v1(Some(
                    r#"[{"type":"AbleToScale","status":"True","reason":"SucceededGetScale","message":"ok"}]"#,
                )),
                Some((Healthy, "ok")),
            ),
            (
                "v1 bad annotation",
                v1(Some("not json")),
                Some((
                    Unknown,
                    "HorizontalPodAutoscaler prod/web: field metadata.annotations[autoscaling.alpha.kubernetes.io/conditions] is not a JSON list of conditions",
                )),
            ),
        ]);
    }

    #[test]
    fn api_services_and_crds() {
        let api = |conditions: Value| {
            obj(
                "apiregistration.k8s.io/v1",
                "APIService",
                json!({"status": {"conditions": conditions}}),
            )
        };
        let crd = |conditions: Value| {
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                json!({"status": {"conditions": conditions}}),
            )
        };
        let established = json!({"type": "Established", "status": "True"});
        check(vec![
            (
                "available",
                api(
                    json!([{"type": "Available", "status": "True", "reason": "Passed", "message": "all checks passed"}]),
                ),
                Some((Healthy, "Passed: all checks passed")),
            ),
            (
                "unavailable",
                api(
                    json!([{"type": "Available", "status": "False", "reason": "MissingEndpoints", "message": "no endpoints"}]),
                ),
                Some((Progressing, "MissingEndpoints: no endpoints")),
            ),
            (
                "api not processed",
                api(json!([])),
                Some((Progressing, "Waiting to be processed")),
            ),
            (
                "crd without conditions",
                crd(json!([])),
                Some((Progressing, "Status conditions not found")),
            ),
            (
                "crd established",
                crd(json!([established])),
                Some((Healthy, "CRD is healthy")),
            ),
            (
                "crd terminating",
                crd(
                    json!([established, {"type": "Terminating", "status": "True", "message": "instances remain"}]),
                ),
                Some((Progressing, "CRD is being terminated: instances remain")),
            ),
            (
                "crd names rejected",
                crd(json!([{"type": "NamesAccepted", "status": "False", "message": "conflict"}])),
                Some((Degraded, "CRD names have not been accepted: conflict")),
            ),
            (
                "crd not established",
                crd(json!([{"type": "Established", "status": "False", "message": "installing"}])),
                Some((Degraded, "CRD is not established: installing")),
            ),
            (
                "crd non-structural",
                crd(
                    json!([established, {"type": "NonStructuralSchema", "status": "True", "message": "bad schema"}]),
                ),
                Some((Degraded, "Schema violations found: bad schema")),
            ),
        ]);
    }

    #[test]
    fn argo_kinds() {
        let app = |health: Value| {
            obj(
                "argoproj.io/v1alpha1",
                "Application",
                json!({"status": {"health": health}}),
            )
        };
        let wf = |phase: &str| {
            obj(
                "argoproj.io/v1alpha1",
                "Workflow",
                json!({"status": {"phase": phase, "message": "m"}}),
            )
        };
        check(vec![
            (
                "app healthy",
                app(json!({"status": "Healthy"})),
                Some((Healthy, "")),
            ),
            (
                "app suspended",
                app(json!({"status": "Suspended"})),
                Some((Suspended, "")),
            ),
            (
                "app missing",
                app(json!({"status": "Missing"})),
                Some((Missing, "")),
            ),
            (
                "app degraded",
                app(json!({"status": "Degraded", "message": "child failed"})),
                Some((Degraded, "child failed")),
            ),
            (
                "app not assessed",
                obj("argoproj.io/v1alpha1", "Application", json!({})),
                Some((Progressing, "")),
            ),
            (
                "app odd status",
                app(json!({"status": "Sleepy"})),
                Some((Unknown, "unknown health status \"Sleepy\"")),
            ),
            ("workflow running", wf("Running"), Some((Progressing, "m"))),
            ("workflow succeeded", wf("Succeeded"), Some((Healthy, "m"))),
            ("workflow failed", wf("Error"), Some((Degraded, "m"))),
            ("workflow odd phase", wf("Skipped"), Some((Unknown, "m"))),
        ]);
    }

    #[test]
    fn custom_resources() {
        let cr = |generation: i64, status: Value| {
            obj(
                "example.com/v1",
                "Widget",
                json!({"metadata": {"generation": generation}, "status": status}),
            )
        };
        check(vec![
            (
                "ready",
                cr(
                    2,
                    json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True", "message": "up"}]}),
                ),
                Some((Healthy, "up")),
            ),
            (
                "not ready",
                cr(
                    1,
                    json!({"conditions": [{"type": "Ready", "status": "False", "message": "bad credentials"}]}),
                ),
                Some((Degraded, "bad credentials")),
            ),
            (
                "ready unknown",
                cr(
                    1,
                    json!({"conditions": [{"type": "Ready", "status": "Unknown", "message": "reconciling"}]}),
                ),
                Some((Progressing, "reconciling")),
            ),
            (
                "ready without status",
                cr(1, json!({"conditions": [{"type": "Ready"}]})),
                Some((Progressing, "")),
            ),
            (
                "ready wins over available",
                cr(
                    1,
                    json!({"conditions": [{"type": "Available", "status": "True"}, {"type": "Ready", "status": "False", "message": "no"}]}),
                ),
                Some((Degraded, "no")),
            ),
            (
                "available",
                cr(
                    1,
                    json!({"conditions": [{"type": "Available", "status": "True", "message": "serving"}]}),
                ),
                Some((Healthy, "serving")),
            ),
            (
                "stale status",
                cr(
                    3,
                    json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}),
                ),
                Some((
                    Progressing,
                    "Waiting for the controller to observe the latest generation",
                )),
            ),
            (
                "stale condition",
                cr(
                    3,
                    json!({"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]}),
                ),
                Some((
                    Progressing,
                    "Waiting for the controller to observe the latest generation",
                )),
            ),
            (
                "other conditions only",
                cr(
                    1,
                    json!({"conditions": [{"type": "Synced", "status": "True"}]}),
                ),
                None,
            ),
            ("no status", cr(1, json!(null)), None),
            (
                "conditions not a list",
                cr(1, json!({"conditions": {"Ready": true}})),
                Some((
                    Unknown,
                    "Widget prod/web: field status.conditions is not a list",
                )),
            ),
            (
                "config map",
                obj("v1", "ConfigMap", json!({"data": {"a": "b"}})),
                None,
            ),
            ("secret", obj("v1", "Secret", json!({})), None),
            (
                "role",
                obj("rbac.authorization.k8s.io/v1", "Role", json!({"rules": []})),
                None,
            ),
            (
                "service account",
                obj("v1", "ServiceAccount", json!({})),
                None,
            ),
            ("not an object", json!("nonsense"), None),
        ]);
    }

    #[test]
    fn deletion_pending() {
        let deleting = |finalizers: Value| {
            obj(
                "v1",
                "ConfigMap",
                json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": finalizers}}),
            )
        };
        let mut hook = obj(
            "batch/v1",
            "Job",
            json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        );
        hook["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        hook["metadata"]["finalizers"] = json!([HOOK_FINALIZER]);
        check(vec![
            (
                "any kind",
                deleting(json!(["kubernetes"])),
                Some((Progressing, "Pending deletion")),
            ),
            ("hook finalizer", hook, Some((Healthy, ""))),
            (
                "hook finalizer on a health-less kind",
                deleting(json!([HOOK_FINALIZER])),
                None,
            ),
        ]);
    }

    #[test]
    fn order_and_names_follow_argo() {
        assert_eq!(worst([]), Healthy);
        assert_eq!(worst([Healthy, Suspended]), Suspended);
        assert_eq!(worst([Progressing, Suspended, Healthy]), Progressing);
        assert_eq!(worst([Missing, Progressing]), Missing);
        assert_eq!(worst([Degraded, Missing]), Degraded);
        assert_eq!(worst([Unknown, Degraded, Healthy]), Unknown);
        for code in HealthCode::ALL {
            assert_eq!(HealthCode::parse(code.as_str()), Some(code));
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
        assert_eq!(HealthCode::parse("healthy"), None);
    }
}

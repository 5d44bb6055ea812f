//! The core group (`v1`): Pod, Service, `PersistentVolumeClaim` and Namespace, and the
//! load balancer rule Ingress shares with Service.

use serde_json::Value;

use super::conditions::status_conditions;
use super::fields::{Malformed, field, int, list, string};
use super::verdict::{Health, HealthCode};

/// Pods carrying this annotation are judged like `restartPolicy: Always` pods.
const IGNORE_RESTART_POLICY: &str = "argocd.argoproj.io/ignore-restart-policy";

/// Healthy once the load balancer reports an address (Service type `LoadBalancer`, Ingress).
pub(super) fn load_balancer(obj: &Value) -> Result<Health, Malformed> {
    let code = if list(obj, "status.loadBalancer.ingress")?.is_empty() {
        HealthCode::Progressing
    } else {
        HealthCode::Healthy
    };
    Ok(Health::new(code, ""))
}

pub(super) fn service(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    if string(obj, "spec.type")? == "LoadBalancer" {
        load_balancer(obj)
    } else {
        Ok(Health::new(HealthCode::Healthy, ""))
    }
}

pub(super) fn pvc(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    let code = match string(obj, "status.phase")? {
        "Bound" => HealthCode::Healthy,
        "Pending" => HealthCode::Progressing,
        "Lost" => HealthCode::Degraded,
        _ => HealthCode::Unknown,
    };
    Ok(Health::new(code, ""))
}

pub(super) fn namespace(obj: &Value, _version: &str) -> Result<Health, Malformed> {
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

pub(super) fn pod(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::{Degraded, Healthy, Progressing, Unknown};
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

#[cfg(test)]
// The fixture builders take `json!` values by value so that the cases read as data.
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use crate::health::testing::{check, obj};
    use HealthCode::*;
    use serde_json::json;

    fn pod_obj(restart_policy: &str, status: Value) -> Value {
        obj(
            "v1",
            "Pod",
            json!({"spec": {"restartPolicy": restart_policy}, "status": status}),
        )
    }

    #[test]
    // One table of cases, one per line; splitting it would only scatter them.
    #[allow(clippy::too_many_lines)]
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
}

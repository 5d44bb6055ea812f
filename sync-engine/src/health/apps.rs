//! `apps`: Deployment, `StatefulSet`, `DaemonSet` and `ReplicaSet`, after gitops-engine's
//! `health_deployment.go`, `health_statefulset.go`, `health_daemonset.go` and
//! `health_replicaset.go` (kubectl's rollout-status rules).

use serde_json::Value;

use super::conditions::status_conditions;
use super::fields::{Malformed, boolean, field, int, name, opt_int, string};
use super::verdict::{Health, HealthCode};

pub(super) fn deployment(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::{Degraded, Healthy, Progressing, Suspended};
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

pub(super) fn stateful_set(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::{Healthy, Progressing};
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

pub(super) fn daemon_set(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::{Healthy, Progressing};
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

pub(super) fn replica_set(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::{Degraded, Healthy, Progressing};
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

#[cfg(test)]
// The fixture builders take `json!` values by value so that the cases read as data.
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use crate::health::testing::{check, obj};
    use HealthCode::*;
    use serde_json::json;

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
}

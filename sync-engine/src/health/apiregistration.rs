//! `apiregistration.k8s.io`: `APIService`.

use serde_json::Value;

use super::conditions::status_conditions;
use super::fields::Malformed;
use super::verdict::{Health, HealthCode};

pub(super) fn api_service(obj: &Value, _version: &str) -> Result<Health, Malformed> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::testing::{check, obj};
    use HealthCode::*;
    use serde_json::json;

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
}

//! Status conditions: the `conditions` lists most kinds report, and the generic check for
//! any other kind with a `Ready` (else `Available`) condition.

use serde_json::Value;

use super::fields::{Malformed, int, list, opt_int, string};
use super::verdict::{Health, HealthCode};

/// One entry of a `conditions` list; absent strings are empty.
pub(super) struct Condition<'a> {
    pub(super) type_: &'a str,
    pub(super) status: &'a str,
    pub(super) reason: &'a str,
    pub(super) message: &'a str,
    pub(super) observed_generation: Option<i64>,
}

impl Condition<'_> {
    pub(super) fn is_true(&self) -> bool {
        self.status == "True"
    }
}

pub(super) fn conditions<'a>(
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
pub(super) fn status_conditions(obj: &Value) -> Result<Vec<Condition<'_>>, Malformed> {
    conditions(list(obj, "status.conditions")?, "status.conditions")
}

/// Any other kind with the standard `Ready` (else `Available`) status condition; None
/// without one (no health notion). True is Healthy unless the status describes an older
/// generation, False Degraded, anything else Progressing.
pub(super) fn custom_resource(obj: &Value) -> Result<Option<Health>, Malformed> {
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
    use crate::health::testing::{check, obj};
    use HealthCode::*;
    use serde_json::json;

    #[test]
    // One table of cases, one per line; splitting it would only scatter them.
    #[allow(clippy::too_many_lines)]
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
}

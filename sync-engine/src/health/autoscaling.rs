//! `autoscaling`: `HorizontalPodAutoscaler`, v1 (conditions in an annotation) and v2.

use serde_json::Value;

use super::conditions::{Condition, conditions, status_conditions};
use super::fields::{Malformed, field};
use super::verdict::{Health, HealthCode};

/// Argo's message for an HPA that has not reported that it can scale.
const HPA_WAITING: &str = "Waiting to Autoscale";
/// Where `autoscaling/v1` HPAs keep their conditions (the v1 schema has no field for them).
const HPA_V1_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// [`HPA_V1_CONDITIONS`] as a path, for messages.
const PATH: &str = "metadata.annotations[autoscaling.alpha.kubernetes.io/conditions]";

pub(super) fn hpa(obj: &Value, version: &str) -> Result<Health, Malformed> {
    if version != "v1" {
        return Ok(hpa_conditions(&status_conditions(obj)?));
    }
    let annotation = field(obj, "metadata.annotations")?.and_then(|a| a.get(HPA_V1_CONDITIONS));
    let Some(annotation) = annotation else {
        return Ok(Health::new(HealthCode::Progressing, HPA_WAITING));
    };
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
    Ok(hpa_conditions(&conditions(entries, PATH)?))
}

/// Degraded on a scaling failure; Healthy when every condition is a True `AbleToScale` or
/// `ScalingLimited` (so also when there is none, as in Argo); otherwise still waiting.
fn hpa_conditions(conditions: &[Condition<'_>]) -> Health {
    const DEGRADED: [(&str, &str); 4] = [
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    ];
    let mut healthy = Vec::with_capacity(conditions.len());
    for c in conditions {
        if DEGRADED.contains(&(c.type_, c.reason)) {
            return Health::new(HealthCode::Degraded, c.message);
        }
        if matches!(c.type_, "AbleToScale" | "ScalingLimited") && c.is_true() {
            healthy.push(c.message);
        }
    }
    if healthy.len() == conditions.len() {
        Health::new(HealthCode::Healthy, healthy.join(","))
    } else {
        Health::new(HealthCode::Progressing, HPA_WAITING)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::testing::{check, obj};
    use HealthCode::*;
    use serde_json::json;

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
}

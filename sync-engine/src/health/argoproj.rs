//! `argoproj.io`: Application (its own aggregated health, for app-of-apps), Workflow, and
//! Argo Rollouts' Rollout and `AnalysisRun` as Argo CD's built-in Lua checks judge them
//! (`resource_customizations/argoproj.io/{Rollout,AnalysisRun}/health.lua`), ported with
//! Lua's semantics: absent is nil, any value but nil and false is true, `tonumber` reads
//! numeric strings, and a table never equals another value.

use serde_json::Value;

use super::fields::{Malformed, field, list, string};
use super::verdict::{Health, HealthCode};

/// A child Application reports its own aggregated health (Argo CD's documented Lua check
/// for app-of-apps); Progressing until it has one.
pub(super) fn application(obj: &Value, _version: &str) -> Result<Health, Malformed> {
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

pub(super) fn workflow(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    let message = string(obj, "status.message")?;
    let code = match string(obj, "status.phase")? {
        "" | "Pending" | "Running" => HealthCode::Progressing,
        "Succeeded" => HealthCode::Healthy,
        "Failed" | "Error" => HealthCode::Degraded,
        _ => HealthCode::Unknown,
    };
    Ok(Health::new(code, message))
}

/// Argo Rollouts' `AnalysisRun`: its phase, with the run's message when it has one.
pub(super) fn analysis_run(obj: &Value, _version: &str) -> Result<Option<Health>, Malformed> {
    if field(obj, "status")?.is_none() {
        return Ok(Some(Health::new(
            HealthCode::Progressing,
            "Waiting for analysis run to finish: status has not been reconciled.",
        )));
    }
    let message = field(obj, "status.message")?;
    let or_default = |default: &str| -> Result<String, Malformed> {
        Ok(match message {
            None => default.to_owned(),
            Some(_) => string(obj, "status.message")?.to_owned(),
        })
    };
    let (code, message) = match field(obj, "status.phase")?.and_then(Value::as_str) {
        Some("Pending" | "Running") => (
            HealthCode::Progressing,
            "Analysis run is running".to_owned(),
        ),
        Some("Successful") => (
            HealthCode::Healthy,
            or_default("Analysis run completed successfully")?,
        ),
        Some("Failed") => (HealthCode::Degraded, or_default("Analysis run failed")?),
        Some("Error") => (
            HealthCode::Degraded,
            or_default("Analysis run had an error")?,
        ),
        Some("Inconclusive") => (
            HealthCode::Unknown,
            or_default("Analysis run was inconclusive")?,
        ),
        // The script returns an empty table: an empty health, no verdict.
        _ => return Ok(None),
    };
    Ok(Some(Health::new(code, message)))
}

/// Argo Rollouts' Rollout: Suspended while paused (a canary at a pause step, a user's
/// pause), Degraded when invalid, aborted or past its progress deadline, Progressing until
/// every replica is updated and available and the stable `ReplicaSet` is the current one.
pub(super) fn rollout(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    let progressing = |message: &str| Ok(Health::new(HealthCode::Progressing, message));
    if !generation_observed(obj)? || !workload_generation_observed(obj)? {
        return progressing("Waiting for rollout spec update to be observed");
    }
    // Argo Rollouts v1.0+ records a phase and message Argo CD surfaces as they are.
    if let Some(phase) = field(obj, "status.phase")? {
        let message = string(obj, "status.message")?;
        let code = match phase.as_str() {
            Some("Paused") => Some(HealthCode::Suspended),
            Some(phase) => HealthCode::parse(phase),
            None => None,
        };
        return Ok(match code {
            Some(code) => Health::new(code, message),
            None => Health::new(HealthCode::Unknown, "Lua returned an invalid health status"),
        });
    }
    // The script iterates `status.conditions` with `ipairs`, which fails on nil.
    let Some(Value::Array(conditions)) = field(obj, "status.conditions")? else {
        return Err(Malformed {
            path: "status.conditions",
            expected: "a list",
        });
    };
    let conditions = super::conditions::conditions(conditions, "status.conditions")?;
    if let Some(failed) = conditions.iter().find(|c| {
        c.type_ == "InvalidSpec"
            || (c.type_ == "Progressing"
                && matches!(c.reason, "RolloutAborted" | "ProgressDeadlineExceeded"))
    }) {
        return Ok(Health::new(HealthCode::Degraded, failed.message));
    }
    let paused =
        !list(obj, "status.pauseConditions")?.is_empty() || truthy(field(obj, "spec.paused")?);
    if paused {
        return Ok(Health::new(HealthCode::Suspended, "Rollout is paused"));
    }
    let Some(current_hash) = field(obj, "status.currentPodHash")? else {
        return progressing("Waiting for rollout to finish: status has not been reconciled.");
    };
    let desired = number_or(obj, "spec.replicas", 1.0)?;
    let replicas = number_or(obj, "status.replicas", 0.0)?;
    let updated = number_or(obj, "status.updatedReplicas", 0.0)?;
    let available = number_or(obj, "status.availableReplicas", 0.0)?;
    if updated < desired {
        return progressing("Waiting for roll out to finish: More replicas need to be updated");
    }
    if available < updated {
        return progressing(
            "Waiting for roll out to finish: updated replicas are still becoming available",
        );
    }
    // `status.stableRS`, else the pre-v0.8 `status.canary.stableRS` (nil when `status.canary`
    // has none), else "" (`getStableRS`).
    let empty = Value::String(String::new());
    let stable = match (field(obj, "status.stableRS")?, field(obj, "status.canary")?) {
        (Some(stable), _) => Some(stable),
        (None, Some(_)) => field(obj, "status.canary.stableRS")?,
        (None, None) => Some(&empty),
    };
    let is_empty_string = stable.and_then(Value::as_str) == Some("");
    if field(obj, "spec.strategy.blueGreen")?.is_some() {
        if !lua_equal(
            field(obj, "status.blueGreen.activeSelector")?,
            Some(current_hash),
        ) {
            return progressing("active service cutover pending");
        }
        if !is_empty_string && !lua_equal(stable, Some(current_hash)) {
            return progressing("waiting for analysis to complete");
        }
    } else if field(obj, "spec.strategy.canary")?.is_some() {
        if replicas > updated {
            return progressing(
                "Waiting for roll out to finish: old replicas are pending termination",
            );
        }
        if is_empty_string || !lua_equal(stable, Some(current_hash)) {
            return progressing("Waiting for rollout to finish steps");
        }
    }
    Ok(Health::new(HealthCode::Healthy, ""))
}

/// `isGenerationObserved`: true for v0.9 Rollouts (no numeric observed generation, or one
/// ahead of the spec's), else whether the controller saw the current generation.
fn generation_observed(obj: &Value) -> Result<bool, Malformed> {
    if field(obj, "status")?.is_none() {
        return Ok(false);
    }
    let Some(observed) = to_number(field(obj, "status.observedGeneration")?) else {
        return Ok(true);
    };
    let generation = field(obj, "metadata.generation")?
        .and_then(Value::as_f64)
        .ok_or(Malformed {
            path: "metadata.generation",
            expected: "a number",
        })?;
    Ok(observed >= generation)
}

/// `isWorkloadGenerationObserved`: for a Rollout over a `workloadRef` (v1.1+), whether the
/// referenced workload's generation (annotation) is the one the controller observed.
fn workload_generation_observed(obj: &Value) -> Result<bool, Malformed> {
    let annotations = field(obj, "metadata.annotations")?;
    if field(obj, "spec.workloadRef")?.is_none() || annotations.is_none() {
        return Ok(true);
    }
    // The annotation's key has dots: read it from the map, not by a dotted path.
    let wanted =
        to_number(annotations.and_then(|a| a.get("rollout.argoproj.io/workload-generation")));
    let observed = to_number(field(obj, "status.workloadObservedGeneration")?);
    Ok(wanted == observed)
}

/// A number field with the script's default when absent (`getNumberValueOrDefault`).
fn number_or(obj: &Value, path: &'static str, default: f64) -> Result<f64, Malformed> {
    match field(obj, path)? {
        None => Ok(default),
        Some(v) => v.as_f64().ok_or(Malformed {
            path,
            expected: "a number",
        }),
    }
}

/// Lua's `tonumber`: numbers, and strings holding a decimal or `0x` hexadecimal number.
fn to_number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok().map(f64::from),
                None => s.parse::<f64>().ok().filter(|n| n.is_finite()),
            }
        }
        _ => None,
    }
}

/// Lua truthiness: anything but nil and false.
fn truthy(value: Option<&Value>) -> bool {
    !matches!(value, None | Some(Value::Bool(false)))
}

/// Lua's `==` between two decoded JSON values: nil equals nil, scalars by value, and a
/// table only itself (two fields never hold the same table).
fn lua_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(x @ (Value::String(_) | Value::Bool(_))), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::testing::{check, obj};
    use HealthCode::*;
    use serde_json::json;

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
}

//! `argoproj.io`: Application (its own aggregated health, for app-of-apps) and Workflow.

use serde_json::Value;

use super::fields::{Malformed, string};
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

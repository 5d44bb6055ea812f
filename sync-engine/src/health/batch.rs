//! `batch`: Job and `CronJob` (the latter as Argo CD's shipped Lua check).

use serde_json::Value;

use super::conditions::status_conditions;
use super::fields::{Malformed, boolean, list, opt_time};
use super::verdict::{Health, HealthCode};

pub(super) fn job(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::{Degraded, Healthy, Progressing, Suspended};
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

/// Argo CD's shipped `CronJob` check, with `spec.suspend` first (as its earlier check had).
pub(super) fn cron_job(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::{Degraded, Healthy, Progressing, Suspended};
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

#[cfg(test)]
// The fixture builders take `json!` values by value so that the cases read as data.
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use crate::health::testing::{check, obj};
    use HealthCode::*;
    use serde_json::json;

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
}

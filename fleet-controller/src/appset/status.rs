//! ApplicationSet status: conditions, the owned-Application list and its counts by sync
//! and health. Pure.
//!
//! Condition types and reasons follow Argo CD (`ErrorOccurred`, `ParametersGenerated`,
//! `ResourcesUpToDate`) so existing dashboards and `kubectl` habits keep working; Argosy
//! adds `DeletionsHeld` for the deletion budget. A condition's `lastTransitionTime` only
//! moves when its status flips, so recomputing an unchanged status is byte-identical and
//! costs no write. The counts change only when an owned Application's sync or health
//! does, which already changes `resources` (Applications are owned, so such a change
//! re-triggers the reconcile that writes them).

use argosy_crds::Application;
use argosy_crds::applicationset::{ApplicationSetCondition, ApplicationSetStatus, ResourceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

/// Annotation that approves deletions held by the budget, once.
pub const APPROVE_DELETIONS_ANNOTATION: &str = "argosy.io/approve-deletions";
/// Annotation that overrides the deletion budget for one ApplicationSet (`"10"` or `"30%"`).
pub const DELETION_BUDGET_ANNOTATION: &str = "argosy.io/deletion-budget";

/// Argo CD caps `status.resources`; Argosy does too, and always reports the full count.
pub const MAX_RESOURCES_IN_STATUS: usize = 5000;

/// What a reconcile found, as far as status is concerned.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Generation or rendering failed: nothing was written.
    GenerationFailed {
        reason: &'static str,
        message: &'a str,
    },
    /// Applications were planned (and, on the leader, written).
    Planned {
        validation_errors: &'a [String],
        /// The first write error, if any write failed.
        write_error: Option<&'a str>,
        held: &'a [String],
        held_limit: usize,
    },
}

/// Computes the new status from the previous one, the outcome and the owned Applications.
pub fn compute(
    previous: Option<&ApplicationSetStatus>,
    outcome: &Outcome<'_>,
    owned: &[&Application],
    now: &Time,
) -> ApplicationSetStatus {
    let prev_conditions = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let cond = |type_: &str, status: bool, reason: &str, message: &str| {
        condition(prev_conditions, type_, status, reason, message, now)
    };
    let mut conditions = Vec::new();
    match outcome {
        Outcome::GenerationFailed { reason, message } => {
            conditions.push(cond("ErrorOccurred", true, reason, message));
            conditions.push(cond("ParametersGenerated", false, "ErrorOccurred", message));
            conditions.push(cond("ResourcesUpToDate", false, "ErrorOccurred", message));
            // A generation error does not change what is held; keep the previous note.
            conditions.extend(
                prev_conditions
                    .iter()
                    .find(|c| c.type_ == "DeletionsHeld")
                    .cloned(),
            );
        }
        Outcome::Planned {
            validation_errors,
            write_error,
            held,
            held_limit,
        } => {
            conditions.push(cond(
                "ParametersGenerated",
                true,
                "ParametersGenerated",
                "Successfully generated parameters for all Applications",
            ));
            let error = validation_errors
                .first()
                .map(|first| {
                    let more = validation_errors.len() - 1;
                    let text = if more > 0 {
                        format!("{first} (and {more} more)")
                    } else {
                        first.clone()
                    };
                    ("ApplicationValidationError", text)
                })
                .or_else(|| write_error.map(|e| ("UpdateApplicationError", e.to_owned())));
            match &error {
                Some((reason, message)) => {
                    conditions.push(cond("ErrorOccurred", true, reason, message));
                    conditions.push(cond("ResourcesUpToDate", false, reason, message));
                }
                None => {
                    conditions.push(cond(
                        "ErrorOccurred",
                        false,
                        "ApplicationSetUpToDate",
                        "Successfully generated parameters for all Applications",
                    ));
                    if held.is_empty() {
                        conditions.push(cond(
                            "ResourcesUpToDate",
                            true,
                            "ApplicationSetUpToDate",
                            "All applications have been generated successfully",
                        ));
                    } else {
                        conditions.push(cond(
                            "ResourcesUpToDate",
                            false,
                            "DeletionBudgetExceeded",
                            &held_message(held, *held_limit),
                        ));
                    }
                }
            }
            if !held.is_empty() {
                conditions.push(cond(
                    "DeletionsHeld",
                    true,
                    "DeletionBudgetExceeded",
                    &held_message(held, *held_limit),
                ));
            }
        }
    }
    // The rollout's conditions are the rollout's to change (`with_rollout`); kept here.
    conditions.extend(
        prev_conditions
            .iter()
            .filter(|c| ROLLOUT_CONDITIONS.contains(&c.type_.as_str()))
            .cloned(),
    );
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));

    let mut names: Vec<&&Application> = owned.iter().collect();
    names.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let resources = names
        .iter()
        .take(MAX_RESOURCES_IN_STATUS)
        .map(|app| resource_status(app))
        .collect();
    ApplicationSetStatus {
        conditions,
        resources,
        resources_count: Some(owned.len() as i64),
        application_status_counts: Some(crate::fleet::count(owned)),
        application_status: previous
            .map(|p| p.application_status.clone())
            .unwrap_or_default(),
        rollout: previous.and_then(|p| p.rollout.clone()),
        extra: previous.map(|p| p.extra.clone()).unwrap_or_default(),
    }
}

/// The conditions a RollingSync sets (Argo CD's two, Argosy's `RolloutHalted`).
const ROLLOUT_CONDITIONS: [&str; 3] = [
    "InvalidRolloutConfig",
    "RolloutHalted",
    "RolloutProgressing",
];

/// `status` with a RollingSync's progress: `applicationStatus`, `rollout` and its
/// conditions (a condition the rollout no longer reports is removed).
pub(crate) fn with_rollout(
    status: &mut ApplicationSetStatus,
    progress: &super::rolling_sync::Progress,
    now: &Time,
) {
    let previous = std::mem::take(&mut status.conditions);
    status.conditions = previous
        .iter()
        .filter(|c| !ROLLOUT_CONDITIONS.contains(&c.type_.as_str()))
        .cloned()
        .chain(
            progress
                .conditions
                .iter()
                .map(|c| condition(&previous, c.type_, c.status, c.reason, &c.message, now)),
        )
        .collect();
    status.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    status.application_status = progress.application_status.clone();
    status.rollout = Some(progress.rollout.clone());
}

/// `status` without any RollingSync state (the strategy is not, or no longer, one), as
/// Argo CD clears `applicationStatus` when the strategy changes.
pub(crate) fn without_rollout(status: &mut ApplicationSetStatus) {
    status
        .conditions
        .retain(|c| !ROLLOUT_CONDITIONS.contains(&c.type_.as_str()));
    status.application_status.clear();
    status.rollout = None;
}

fn held_message(held: &[String], limit: usize) -> String {
    let shown: Vec<&str> = held.iter().take(5).map(String::as_str).collect();
    let more = held.len().saturating_sub(shown.len());
    let list = if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    };
    format!(
        "{} Applications would be deleted ({list}) but the deletion budget allows {limit} per reconcile; \
         nothing was deleted. If this is intended, annotate the ApplicationSet with {APPROVE_DELETIONS_ANNOTATION}=true",
        held.len()
    )
}

/// `status` with `ErrorOccurred` set to `message` (reason `ReconcileError`): what a
/// contained panic of the reconcile reports; the other conditions are kept as they were.
#[must_use]
pub fn with_internal_error(
    status: &ApplicationSetStatus,
    message: &str,
    now: &Time,
) -> ApplicationSetStatus {
    let mut out = status.clone();
    let cond = condition(
        &status.conditions,
        "ErrorOccurred",
        true,
        "ReconcileError",
        message,
        now,
    );
    out.conditions.retain(|c| c.type_ != "ErrorOccurred");
    out.conditions.push(cond);
    out
}

fn condition(
    previous: &[ApplicationSetCondition],
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &Time,
) -> ApplicationSetCondition {
    let status = if status { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    ApplicationSetCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: Some(since),
    }
}

fn resource_status(app: &Application) -> ResourceStatus {
    let status = app.status.as_ref();
    ResourceStatus {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        kind: "Application".into(),
        namespace: app.metadata.namespace.clone().unwrap_or_default(),
        name: app.metadata.name.clone().unwrap_or_default(),
        status: status
            .and_then(|s| s.sync.as_ref())
            .map(|s| s.status.clone()),
        health: status
            .and_then(|s| s.health.as_ref())
            .and_then(|h| serde_json::to_value(h).ok())
            .filter(|v: &Value| !v.is_null()),
        extra: Default::default(),
    }
}

/// True if the condition of `type_` is `True`.
pub fn is_true(status: &ApplicationSetStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn planned<'a>(held: &'a [String]) -> Outcome<'a> {
        Outcome::Planned {
            validation_errors: &[],
            write_error: None,
            held,
            held_limit: 5,
        }
    }

    #[test]
    fn success_sets_argo_conditions() {
        let s = compute(None, &planned(&[]), &[], &at(10));
        assert!(is_true(&s, "ResourcesUpToDate"));
        assert!(is_true(&s, "ParametersGenerated"));
        assert!(!is_true(&s, "ErrorOccurred"));
        assert_eq!(s.resources_count, Some(0));
    }

    #[test]
    fn recomputing_unchanged_status_is_identical() {
        let first = compute(None, &planned(&[]), &[], &at(10));
        let again = compute(Some(&first), &planned(&[]), &[], &at(99));
        assert_eq!(first, again, "no transition, no new timestamps");
    }

    #[test]
    fn generation_error_flips_conditions_and_times() {
        let ok = compute(None, &planned(&[]), &[], &at(10));
        let failed = compute(
            Some(&ok),
            &Outcome::GenerationFailed {
                reason: "RenderTemplateParamsError",
                message: "boom",
            },
            &[],
            &at(20),
        );
        assert!(is_true(&failed, "ErrorOccurred"));
        let err = failed
            .conditions
            .iter()
            .find(|c| c.type_ == "ErrorOccurred")
            .unwrap();
        assert_eq!(err.message, "boom");
        assert_eq!(err.last_transition_time, Some(at(20)));
        let params = failed
            .conditions
            .iter()
            .find(|c| c.type_ == "ParametersGenerated")
            .unwrap();
        assert_eq!(params.status, "False");
    }

    #[test]
    fn held_deletions_explain_themselves() {
        let held: Vec<String> = (0..8).map(|i| format!("app-{i}")).collect();
        let s = compute(None, &planned(&held), &[], &at(10));
        assert!(is_true(&s, "DeletionsHeld"));
        assert!(!is_true(&s, "ResourcesUpToDate"));
        let c = s
            .conditions
            .iter()
            .find(|c| c.type_ == "DeletionsHeld")
            .unwrap();
        assert!(
            c.message.contains("8 Applications would be deleted"),
            "{}",
            c.message
        );
        assert!(
            c.message
                .contains("app-0, app-1, app-2, app-3, app-4 and 3 more"),
            "{}",
            c.message
        );
        assert!(
            c.message.contains(APPROVE_DELETIONS_ANNOTATION),
            "{}",
            c.message
        );
    }

    #[test]
    fn counts_owned_apps_by_sync_and_health() {
        let app = |name: &str, sync: &str, health: &str| -> Application {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "argocd"},
                "status": {"sync": {"status": sync}, "health": {"status": health}},
            }))
            .unwrap()
        };
        let (a, b, c) = (
            app("a", "Synced", "Healthy"),
            app("b", "OutOfSync", "Healthy"),
            app("c", "Synced", "Degraded"),
        );
        let s = compute(None, &planned(&[]), &[&a, &b, &c], &at(10));
        let counts = s.application_status_counts.clone().unwrap();
        assert_eq!(counts.total, 3);
        assert_eq!(counts.by_sync["Synced"], 2);
        assert_eq!(counts.by_sync["OutOfSync"], 1);
        assert_eq!(counts.by_health["Healthy"], 2);
        assert_eq!(counts.by_health["Degraded"], 1);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["applicationStatusCounts"]["bySync"]["Synced"], 2);
        // Same apps, same counts: no write.
        let again = compute(Some(&s), &planned(&[]), &[&a, &b, &c], &at(99));
        assert_eq!(s, again);
    }
}

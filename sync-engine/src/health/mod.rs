//! Resource health: the pure assessment of one live object (Deployment, Pod, Service, ...)
//! and the aggregation order of health codes, following Argo CD's gitops-engine
//! (`pkg/health`) and the built-in Lua checks Argo CD ships for `CronJob`, Job and
//! `argoproj.io/Application`.
//!
//! It reads the object as JSON (no typed decode: this runs for every tracked object on
//! every status update and only needs a handful of fields). A field of the wrong type
//! makes the object `Unknown` with a message naming the field, as Argo does when its typed
//! conversion fails; absent fields take Go's zero values, as in Argo's typed structs.
//!
//! The checks live in one module per API group, as gitops-engine keeps one file per kind:
//! `apps`, `core`, `networking`, `batch`, `autoscaling`, `apiregistration`, `apiextensions`
//! and `argoproj` (with Argo Rollouts' Rollout and `AnalysisRun`); `conditions` holds the
//! status-condition reads and the generic check for any other kind, `fields` the typed
//! field reads they all share. This module keeps the public API, the dispatch by group and
//! kind, and the pending-deletion rule every kind goes through first.
//!
//! Beyond the native checks, Lua health scripts as Argo CD runs them: `lua` the runner
//! (Lua 5.1, Argo CD's library sets, time and memory limits), `scripts` which script judges
//! a kind ([`HealthChecks`], Argo CD's lookup order), `argocd_cm` the scripts users keep in
//! `argocd-cm` (pure), `script_dir` a directory in Argo CD's `resource_customizations`
//! layout. [`assess_with`] tries a script first, then the native checks.

mod apiextensions;
mod apiregistration;
mod apps;
pub mod argocd_cm;
mod argoproj;
mod autoscaling;
mod batch;
mod conditions;
mod core;
mod fields;
pub mod lua;
mod networking;
pub mod script_dir;
pub mod scripts;
mod verdict;

pub use scripts::HealthChecks;
pub use verdict::{Health, HealthCode, worst};

use serde_json::Value;

use conditions::custom_resource;
use fields::{Malformed, field, list};

/// Argo CD's hook finalizer: an object held by it is a hook still being watched, so its
/// deletion timestamp does not make it "Pending deletion".
const HOOK_FINALIZER: &str = "argocd.argoproj.io/hook-finalizer";

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
            Some(Check::Verdict(check)) => check(live, version).map(Some),
            Some(Check::MaybeVerdict(check)) => check(live, version),
            None => custom_resource(live),
        },
    });
    result.unwrap_or_else(|err| {
        Some(Health::new(
            HealthCode::Unknown,
            format!("{}: {err}", object_name(live, kind)),
        ))
    })
}

/// Health of one live object with the Lua health scripts of `checks` first (Argo CD's
/// order: a script for the kind wins over the native checks), then [`assess`]. A script
/// that fails makes the object `Unknown` with the script's error, as in Argo CD.
#[must_use]
pub fn assess_with(live: &Value, checks: &HealthChecks) -> Option<Health> {
    let (group, kind) = group_kind(live);
    if let (Some(script), Ok(None)) = (checks.script_for(group, kind), pending_deletion(live)) {
        return script
            .run(live, checks.limits())
            .unwrap_or_else(|err| Some(Health::new(HealthCode::Unknown, err.to_string())));
    }
    assess(live)
}

/// The object's API group and kind ("apps/v1" -> "apps"; core kinds have the empty group).
fn group_kind(live: &Value) -> (&str, &str) {
    let text = |key| live.get(key).and_then(Value::as_str).unwrap_or_default();
    let (group, _) = text("apiVersion").rsplit_once('/').unwrap_or_default();
    (group, text("kind"))
}

/// `Kind namespace/name` (or `Kind name`), for messages about the object.
fn object_name(live: &Value, kind: &str) -> String {
    let meta = live.get("metadata");
    let field = |name| {
        meta.and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (namespace, name) = (field("namespace"), field("name"));
    if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    }
}

/// A built-in check of the object and its API version (HPA v1 keeps conditions elsewhere):
/// most always give a verdict; a few, like the Lua scripts they port, may give none.
enum Check {
    Verdict(fn(&Value, &str) -> Result<Health, Malformed>),
    MaybeVerdict(fn(&Value, &str) -> Result<Option<Health>, Malformed>),
}

/// The built-in check for a group and kind, as gitops-engine's `GetHealthCheckFunc`
/// dispatches them, plus the kinds Argo CD covers with shipped Lua checks and Namespace.
fn check_for(group: &str, kind: &str) -> Option<Check> {
    if (group, kind) == ("argoproj.io", "AnalysisRun") {
        return Some(Check::MaybeVerdict(argoproj::analysis_run));
    }
    let check: fn(&Value, &str) -> Result<Health, Malformed> = match (group, kind) {
        ("apps", "Deployment") => apps::deployment,
        ("apps", "StatefulSet") => apps::stateful_set,
        ("apps", "ReplicaSet") => apps::replica_set,
        ("apps", "DaemonSet") => apps::daemon_set,
        ("extensions" | "networking.k8s.io", "Ingress") => networking::ingress,
        ("", "Service") => core::service,
        ("", "PersistentVolumeClaim") => core::pvc,
        ("", "Pod") => core::pod,
        ("", "Namespace") => core::namespace,
        ("batch", "Job") => batch::job,
        ("batch", "CronJob") => batch::cron_job,
        ("autoscaling", "HorizontalPodAutoscaler") => autoscaling::hpa,
        ("apiregistration.k8s.io", "APIService") => apiregistration::api_service,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => apiextensions::crd,
        ("argoproj.io", "Application") => argoproj::application,
        ("argoproj.io", "Workflow") => argoproj::workflow,
        ("argoproj.io", "Rollout") => argoproj::rollout,
        _ => return None,
    };
    Some(Check::Verdict(check))
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

/// Helpers for the tests of every kind's module.
#[cfg(test)]
mod testing {
    use super::*;
    use serde_json::json;

    /// An object of the given type named `web` in `prod`, with `body` merged on top.
    pub(super) fn obj(api_version: &str, kind: &str, body: Value) -> Value {
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
    pub(super) type Case<'a> = (&'a str, Value, Option<(HealthCode, &'a str)>);

    pub(super) fn check(cases: Vec<Case<'_>>) {
        for (name, live, expected) in cases {
            let got = assess(&live);
            let want = expected.map(|(code, message)| Health::new(code, message));
            assert_eq!(got, want, "case {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{check, obj};
    use super::*;
    use HealthCode::*;
    use serde_json::json;

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

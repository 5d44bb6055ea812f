//! The rollout of an ApplicationSet as people read it: its phase and step, why it waits
//! or stopped, its settings, and per Application its step, progress, destination (and
//! customer), the revision it runs and the one it is rolled out to. Pure.
//!
//! One view for `argosy rollout status` (which prints it as a table) and the dashboard
//! (`GET /api/v1/appsets/{ns}/{name}/rollout`, which sends it as JSON).

use std::borrow::Borrow;

use argosy_crds::applicationset::RolloutState;
use argosy_crds::cluster::Cluster;
use argosy_crds::operation::OperationPhase;
use argosy_crds::{Application, ApplicationSet, resolve_destination};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::appset::strategy::{BAKE_TIME_ANNOTATION, FAILURE_BUDGET_ANNOTATION, PAUSED_ANNOTATION};

/// Where one ApplicationSet's rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    pub namespace: String,
    pub name: String,
    /// Whether the ApplicationSet has a RollingSync with steps (else it updates every
    /// Application at once, and there is nothing more to show).
    pub rolling_sync: bool,
    /// The number of steps.
    pub steps: usize,
    /// `argosy.io/rollout-bake-time`, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake_time: Option<String>,
    /// `argosy.io/rollout-failure-budget`, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_budget: Option<String>,
    /// `argosy.io/rollout-paused`, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
    /// `status.rollout`; `None` before the controller reconciled the strategy.
    pub rollout: Option<RolloutState>,
    /// The rollout's Applications by step (step-less ones last), then name.
    pub applications: Vec<RolloutRow>,
}

/// One Application of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRow {
    /// The 1-based step; `None`: the Application matches no step (the rollout never syncs it).
    pub step: Option<u32>,
    pub application: String,
    /// Argo CD's progressive sync status: `Waiting`, `Pending`, `Progressing`, `Healthy`.
    pub progress: String,
    /// Why it has that status.
    pub message: String,
    /// `status.sync.status`; `None` when the Application is not in the cache.
    pub sync: Option<String>,
    /// `status.health.status`; `None` when the Application is not in the cache.
    pub health: Option<String>,
    /// The destination as written (its name, else its server).
    pub destination: Option<String>,
    /// The destination cluster's value of the grouping label (`customer`), if any.
    pub customer: Option<String>,
    /// The revision it runs: its last successful sync's, else its newest history entry's
    /// (empty when unknown).
    pub runs: String,
    /// The revisions the rollout takes it to.
    pub target: Vec<String>,
}

/// The view of `appset`'s rollout from its `owned` Applications and the registered
/// `clusters`, with customers read from the clusters' `group_by` label.
pub fn view<A: Borrow<Application>>(
    appset: &ApplicationSet,
    owned: &[A],
    clusters: &[Cluster],
    group_by: &str,
) -> RolloutView {
    let status = appset.status.clone().unwrap_or_default();
    let annotations = appset.metadata.annotations.clone().unwrap_or_default();
    let mut entries = status.application_status;
    entries.sort_by(|a, b| {
        (step_order(&a.step), &a.application).cmp(&(step_order(&b.step), &b.application))
    });
    let applications = entries
        .into_iter()
        .map(|entry| {
            let app = owned
                .iter()
                .map(Borrow::borrow)
                .find(|a| a.metadata.name.as_deref() == Some(entry.application.as_str()));
            let app_status = app.and_then(|a| a.status.as_ref());
            let destination = app.map(|a| {
                let d = &a.spec.destination;
                if d.name.is_empty() {
                    d.server.clone()
                } else {
                    d.name.clone()
                }
            });
            let customer = app
                .and_then(|a| resolve_destination(&a.spec.destination, clusters).ok())
                .and_then(|c| c.labels.get(group_by).cloned());
            RolloutRow {
                step: entry.step.parse::<u32>().ok().filter(|s| *s > 0),
                progress: entry.status,
                message: entry.message,
                sync: app.map(|_| {
                    app_status
                        .and_then(|s| s.sync.as_ref())
                        .map_or("Unknown", |s| s.status.as_str())
                        .to_owned()
                }),
                health: app.map(|_| {
                    app_status
                        .and_then(|s| s.health.as_ref())
                        .map_or("Unknown", |h| h.status.as_str())
                        .to_owned()
                }),
                destination,
                customer,
                runs: app.map(running_revision).unwrap_or_default(),
                target: entry.target_revisions,
                application: entry.application,
            }
        })
        .collect();
    RolloutView {
        namespace: appset.metadata.namespace.clone().unwrap_or_default(),
        name: appset.metadata.name.clone().unwrap_or_default(),
        rolling_sync: is_rolling_sync(appset),
        steps: step_count(appset),
        bake_time: annotations.get(BAKE_TIME_ANNOTATION).cloned(),
        failure_budget: annotations.get(FAILURE_BUDGET_ANNOTATION).cloned(),
        paused: annotations.get(PAUSED_ANNOTATION).cloned(),
        rollout: status.rollout,
        applications,
    }
}

/// Steps in order, step-less (`-1`) and unreadable ones last.
fn step_order(step: &str) -> i64 {
    step.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .unwrap_or(i64::MAX)
}

/// Whether `appset` has a RollingSync strategy with at least one step.
pub fn is_rolling_sync(appset: &ApplicationSet) -> bool {
    let strategy = appset.spec.strategy.as_ref();
    strategy.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("RollingSync")
        && step_count(appset) > 0
}

/// The number of steps of `appset`'s RollingSync (0 without one).
pub fn step_count(appset: &ApplicationSet) -> usize {
    appset
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.pointer("/rollingSync/steps"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// Whether ApplicationSet `appset` controls `app` (its controller owner reference).
pub fn owned_by(app: &Application, appset: &str) -> bool {
    crate::fleet::owning_appset(app) == Some(appset)
}

/// The revision an Application runs: its last successful sync's, else its newest
/// history entry's.
fn running_revision(app: &Application) -> String {
    let status = app.status.as_ref();
    let from_sync = status
        .and_then(|s| s.operation_state())
        .and_then(Result::ok)
        .filter(|s| s.phase == OperationPhase::Succeeded)
        .and_then(|s| s.sync_result)
        .map(|r| r.revision)
        .filter(|r| !r.is_empty());
    from_sync
        .or_else(|| {
            status
                .and_then(|s| s.history())
                .and_then(Result::ok)
                .and_then(|h| h.last().map(|e| e.revision.clone()))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_say_who_runs_what_where() {
        let appset: ApplicationSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "argocd", "annotations": {"argosy.io/rollout-bake-time": "5m"}},
            "spec": {"generators": [], "template": {}, "strategy": {"type": "RollingSync", "rollingSync": {"steps": [{}, {}]}}},
            "status": {
                "rollout": {"phase": "Baking", "step": 1, "message": "step 1 of 2 Healthy, baking"},
                "applicationStatus": [
                    {"application": "web-other", "status": "Waiting", "step": "-1", "message": "in no step"},
                    {"application": "web-globex", "status": "Waiting", "step": "2", "message": "m", "targetRevisions": ["bbbb"]},
                    {"application": "web-acme", "status": "Healthy", "step": "1", "message": "m", "targetRevisions": ["bbbb"]},
                ]},
        }))
        .unwrap();
        let acme: Application = serde_json::from_value(json!({
            "metadata": {"name": "web-acme", "namespace": "argocd"},
            "spec": {"project": "default", "destination": {"name": "acme-prod", "namespace": "web"}},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"},
                       "operationState": {"phase": "Succeeded", "operation": {"sync": {}},
                                          "syncResult": {"revision": "bbbb"}},
                       "history": [{"id": 1, "revision": "aaaa", "deployedAt": "2026-12-07T09:00:00Z"}]},
        }))
        .unwrap();
        let cluster = Cluster {
            name: "acme-prod".to_owned(),
            server: "https://acme.example".to_owned(),
            labels: [("customer".to_owned(), "acme".to_owned())].into(),
            ..Cluster::default()
        };
        let v = view(&appset, &[acme], &[cluster], "customer");
        assert!(v.rolling_sync);
        assert_eq!((v.steps, v.bake_time.as_deref()), (2, Some("5m")));
        assert_eq!(v.rollout.as_ref().map(|r| r.phase.as_str()), Some("Baking"));
        let names: Vec<&str> = v
            .applications
            .iter()
            .map(|r| r.application.as_str())
            .collect();
        assert_eq!(
            names,
            ["web-acme", "web-globex", "web-other"],
            "by step, step-less last"
        );
        let acme = &v.applications[0];
        assert_eq!(acme.step, Some(1));
        assert_eq!(acme.customer.as_deref(), Some("acme"));
        assert_eq!(acme.destination.as_deref(), Some("acme-prod"));
        assert_eq!(
            acme.runs, "bbbb",
            "the last sync's revision before the history's"
        );
        assert_eq!(
            (acme.sync.as_deref(), acme.health.as_deref()),
            (Some("Synced"), Some("Healthy"))
        );
        let globex = &v.applications[1];
        assert_eq!(
            (
                globex.sync.as_ref(),
                globex.customer.as_ref(),
                globex.runs.as_str()
            ),
            (None, None, "")
        );
        assert_eq!(v.applications[2].step, None);
    }

    #[test]
    fn an_all_at_once_appset_has_no_rollout() {
        let appset: ApplicationSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "argocd"},
            "spec": {"generators": [], "template": {}, "strategy": {"type": "RollingSync", "rollingSync": {"steps": []}}},
        }))
        .unwrap();
        let v = view::<Application>(&appset, &[], &[], "customer");
        assert!(!v.rolling_sync);
        assert!(v.rollout.is_none() && v.applications.is_empty());
    }
}

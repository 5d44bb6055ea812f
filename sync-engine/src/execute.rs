//! Cluster writes of a sync: server-side apply (field manager `argosy`), replace, prune
//! and hooks, step by step as [`crate::plan::steps`] ordered them.
//!
//! A step starts only when everything before it is healthy (hooks: complete), as Argo
//! CD's waves do; otherwise the executor stops and says what it waits for, and the next
//! reconcile continues. Applies inside a step run concurrently.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams,
    PropagationPolicy,
};
use serde_json::Value;

use crate::clients::{ClusterConn, Scope};
use crate::health::{self, HealthCode};
use crate::plan::{DesiredObject, SyncPlan};
use crate::resource::{ObjKey, Role};
use crate::ssa::FIELD_MANAGER;

/// Annotation put on hooks Argosy creates: the operation that created them.
pub const HOOK_OPERATION_ANNOTATION: &str = "argosy.io/sync-operation";

/// How an object kind is reached on its cluster.
#[derive(Clone, Debug)]
pub struct Reach {
    pub resource: ApiResource,
    pub scope: Scope,
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Applied(Value),
    Pruned,
    Failed(String),
    /// A hook of this operation completed (it never runs again in the operation).
    HookSucceeded,
}

/// The result of running (part of) a sync plan.
#[derive(Clone, Debug, Default)]
pub struct Executed {
    pub results: BTreeMap<ObjKey, Outcome>,
    /// Set when a step waits for an earlier one to become healthy / complete.
    pub waiting: Option<String>,
    /// A hook failed: the sync failed.
    pub hook_failed: Option<String>,
}

impl Executed {
    pub fn failures(&self) -> Vec<String> {
        self.results
            .iter()
            .filter_map(|(k, o)| match o {
                Outcome::Failed(e) => Some(format!("{k}: {e}")),
                _ => None,
            })
            .collect()
    }

    /// Why the sync failed (a hook, or resources that did not apply), if it did.
    pub fn failure(&self) -> Option<String> {
        if let Some(hook) = &self.hook_failed {
            return Some(format!("hook failed: {hook}"));
        }
        let failures = self.failures();
        (!failures.is_empty()).then(|| {
            format!(
                "{} resource(s) failed to sync: {}",
                failures.len(),
                failures
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    pub fn count(&self, pruned: bool) -> usize {
        self.results
            .values()
            .filter(|o| {
                if pruned {
                    matches!(o, Outcome::Pruned)
                } else {
                    matches!(o, Outcome::Applied(_))
                }
            })
            .count()
    }
}

/// Everything the executor needs.
pub struct Target<'a> {
    pub conn: &'a ClusterConn,
    pub desired: &'a [DesiredObject],
    /// Kind reach by `(group, kind)`.
    pub reach: &'a BTreeMap<(String, String), Reach>,
    /// Live objects (tracked or at desired keys), updated with apply results.
    pub live: &'a mut BTreeMap<ObjKey, Value>,
    /// Id of the running operation (hooks are labelled with it).
    pub operation_id: &'a str,
    /// Hooks this operation already completed (from its recorded state).
    pub done_hooks: &'a BTreeSet<ObjKey>,
    pub concurrency: usize,
}

fn api_for(conn: &ClusterConn, reach: &Reach, namespace: &str) -> Api<DynamicObject> {
    match reach.scope {
        Scope::Namespaced if !namespace.is_empty() => {
            Api::namespaced_with(conn.client.clone(), namespace, &reach.resource)
        }
        _ => Api::all_with(conn.client.clone(), &reach.resource),
    }
}

/// Runs the plan's steps in order until one must wait or everything is done.
pub async fn run(target: &mut Target<'_>, plan: &SyncPlan) -> Executed {
    let mut out = Executed::default();
    let mut earlier: Vec<usize> = Vec::new();
    let mut earlier_hooks: Vec<usize> = Vec::new();
    for step in &plan.steps {
        let has_work = !(step.apply.is_empty() && step.hooks.is_empty() && step.prune.is_empty());
        if has_work && let Some(why) = not_ready(target, &earlier, &earlier_hooks) {
            out.waiting = Some(why);
            return out;
        }
        for &i in &step.hooks {
            if target.done_hooks.contains(&target.desired[i].key) {
                continue;
            }
            match run_hook(target, &target.desired[i]).await {
                Ok(true) => {
                    out.results
                        .insert(target.desired[i].key.clone(), Outcome::HookSucceeded);
                }
                Ok(false) => {}
                Err(e) => {
                    out.hook_failed = Some(format!("{}: {e}", target.desired[i].key));
                    return out;
                }
            }
        }
        // Collected first: a lazily mapped stream of borrowing futures trips rustc's
        // higher-ranked `Send` inference for the reconcile future.
        let applies: Vec<_> = step
            .apply
            .iter()
            .map(|&i| {
                let d = &target.desired[i];
                let live = target.live.get(&d.key).cloned();
                Box::pin(apply_one(target.conn, target.reach, d, live))
            })
            .collect();
        let applied: Vec<(ObjKey, Outcome)> = futures::stream::iter(applies)
            .buffer_unordered(target.concurrency.max(1))
            .collect()
            .await;
        let failed = applied.iter().any(|(_, o)| matches!(o, Outcome::Failed(_)));
        for (key, outcome) in applied {
            if let Outcome::Applied(v) = &outcome {
                target.live.insert(key.clone(), v.clone());
            }
            out.results.insert(key, outcome);
        }
        if failed {
            // Later waves depend on this one; stop and let retry/backoff take over.
            return out;
        }
        for key in &step.prune {
            let outcome = prune_one(target, key).await;
            if outcome == Outcome::Pruned {
                target.live.remove(key);
            }
            out.results.insert(key.clone(), outcome);
        }
        earlier.extend(step.apply.iter().copied());
        earlier_hooks.extend(step.hooks.iter().copied());
        // Resources of this wave that were already in sync count for the health gate too.
        earlier.extend(
            target
                .desired
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    d.role == Role::Resource
                        && step.phase == Some(crate::plan::Phase::Sync)
                        && d.wave == step.wave
                })
                .map(|(i, _)| i),
        );
    }
    out
}

/// Where the `SyncFail` hooks of a failed sync are.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncFailHooks {
    /// Every one completed (or there are none).
    Done,
    /// Created; at least one has not completed yet.
    Running,
    /// One failed, or could not be created.
    Failed(String),
}

/// Runs the plan's `SyncFail` hooks once a sync has failed: creates those this operation
/// has not created yet and reports on the others (completed ones go into `out`). Called
/// again on each pass of the operation until they are done.
pub async fn run_sync_fail_hooks(
    target: &mut Target<'_>,
    plan: &SyncPlan,
    out: &mut Executed,
) -> SyncFailHooks {
    let mut running = false;
    for &i in &plan.sync_fail {
        let hook = &target.desired[i];
        if target.done_hooks.contains(&hook.key) {
            continue;
        }
        match run_hook(target, hook).await {
            Ok(true) => {
                out.results.insert(hook.key.clone(), Outcome::HookSucceeded);
            }
            Ok(false) => running = true,
            Err(e) => return SyncFailHooks::Failed(format!("{}: {e}", hook.key)),
        }
    }
    if running {
        SyncFailHooks::Running
    } else {
        SyncFailHooks::Done
    }
}

/// Why the next step cannot start yet: an earlier resource not healthy or hook running.
fn not_ready(target: &Target<'_>, earlier: &[usize], hooks: &[usize]) -> Option<String> {
    for &i in earlier {
        let d = &target.desired[i];
        let Some(live) = target.live.get(&d.key) else {
            return Some(format!("waiting for {} to exist", d.key));
        };
        if let Some(h) = health::assess(live)
            && matches!(h.code, HealthCode::Progressing | HealthCode::Missing)
        {
            return Some(format!("waiting for {} to become healthy", d.key));
        }
    }
    for &i in hooks {
        let d = &target.desired[i];
        if target.done_hooks.contains(&d.key) {
            continue;
        }
        match target.live.get(&d.key).map(hook_state) {
            Some(HookState::Succeeded) => {}
            _ => return Some(format!("waiting for hook {} to complete", d.key)),
        }
    }
    None
}

#[derive(Debug, PartialEq)]
enum HookState {
    Running,
    Succeeded,
    Failed(String),
}

/// Completion of a hook object: Jobs and Pods by their status, anything else at once.
fn hook_state(live: &Value) -> HookState {
    let kind = live.get("kind").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "Job" => {
            let conditions = live
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let is = |t: &str| {
                conditions.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some(t)
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            };
            if is("Complete") {
                HookState::Succeeded
            } else if is("Failed") {
                HookState::Failed("job failed".into())
            } else {
                HookState::Running
            }
        }
        "Pod" => match live.pointer("/status/phase").and_then(Value::as_str) {
            Some("Succeeded") => HookState::Succeeded,
            Some("Failed") => HookState::Failed("pod failed".into()),
            _ => HookState::Running,
        },
        _ => HookState::Succeeded,
    }
}

/// Creates a hook for this operation (deleting a previous run's copy first), or reports
/// on the one it already created: `Ok(true)` once it completed, `Ok(false)` while it runs.
async fn run_hook(target: &mut Target<'_>, hook: &DesiredObject) -> Result<bool, String> {
    let Role::Hook { delete_policy, .. } = &hook.role else {
        return Ok(true);
    };
    let Some(reach) = target
        .reach
        .get(&(hook.key.group.clone(), hook.key.kind.clone()))
    else {
        return Err("kind not served by the cluster".into());
    };
    let api = api_for(target.conn, reach, &hook.key.namespace);
    let current = target.live.get(&hook.key).cloned();
    let ours = current.as_ref().is_some_and(|c| {
        crate::resource::annotation(c, HOOK_OPERATION_ANNOTATION) == Some(target.operation_id)
    });
    tracing::debug!(hook = %hook.key, ours, exists = current.is_some(), "hook");
    if ours {
        let state = current.as_ref().map(hook_state);
        match state {
            Some(HookState::Succeeded) => {
                if delete_policy.on_success {
                    let _ = api
                        .delete(&hook.key.name, &background())
                        .await
                        .map_err(|e| e.to_string())?;
                }
                return Ok(true);
            }
            Some(HookState::Failed(why)) => {
                if delete_policy.on_failure {
                    let _ = api.delete(&hook.key.name, &background()).await;
                }
                return Err(why);
            }
            // Still running: the gate before the next step waits for it.
            _ => return Ok(false),
        }
    }
    if current.is_some() {
        // A previous operation's hook (BeforeHookCreation is the default policy).
        api.delete(&hook.key.name, &background())
            .await
            .map_err(|e| format!("deleting the previous hook: {e}"))?;
    }
    let mut object = hook.object.clone();
    object["metadata"]["annotations"][HOOK_OPERATION_ANNOTATION] =
        Value::String(target.operation_id.to_owned());
    let created: DynamicObject =
        serde_json::from_value(object).map_err(|e| format!("invalid hook manifest: {e}"))?;
    let created = api
        .create(&PostParams::default(), &created)
        .await
        .map_err(|e| format!("creating the hook: {e}"))?;
    if let Ok(v) = serde_json::to_value(&created) {
        target.live.insert(hook.key.clone(), v);
    }
    Ok(false)
}

fn background() -> DeleteParams {
    DeleteParams {
        // Foreground deletion waits on the garbage collector's finalizer; background
        // deletes at once and lets the collector clean up dependents.
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    }
}

async fn apply_one(
    conn: &ClusterConn,
    reach: &BTreeMap<(String, String), Reach>,
    d: &DesiredObject,
    live: Option<Value>,
) -> (ObjKey, Outcome) {
    let key = d.key.clone();
    let Some(reach) = reach.get(&(d.key.group.clone(), d.key.kind.clone())) else {
        return (
            key,
            Outcome::Failed("kind not served by the cluster".into()),
        );
    };
    let api = api_for(conn, reach, &d.key.namespace);
    let result = if d.options.replace {
        replace(&api, d, live).await
    } else {
        api.patch(
            &d.key.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&d.object),
        )
        .await
    };
    let outcome = match result {
        Ok(o) => match serde_json::to_value(&o) {
            Ok(v) => Outcome::Applied(v),
            Err(e) => Outcome::Failed(format!("reading the applied object: {e}")),
        },
        Err(e) => Outcome::Failed(api_error(&e)),
    };
    (key, outcome)
}

/// `Replace=true`: PUT over the live object (or create it), like `kubectl replace`.
async fn replace(
    api: &Api<DynamicObject>,
    d: &DesiredObject,
    live: Option<Value>,
) -> kube::Result<DynamicObject> {
    let mut object: DynamicObject =
        serde_json::from_value(d.object.clone()).map_err(kube::Error::SerdeError)?;
    match live.and_then(|l| {
        l.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) {
        Some(rv) => {
            object.metadata.resource_version = Some(rv);
            api.replace(&d.key.name, &PostParams::default(), &object)
                .await
        }
        None => api.create(&PostParams::default(), &object).await,
    }
}

async fn prune_one(target: &Target<'_>, key: &ObjKey) -> Outcome {
    let Some(reach) = target.reach.get(&(key.group.clone(), key.kind.clone())) else {
        return Outcome::Failed("kind not served by the cluster".into());
    };
    let api = api_for(target.conn, reach, &key.namespace);
    match api.delete(&key.name, &background()).await {
        Ok(_) => Outcome::Pruned,
        Err(kube::Error::Api(e)) if e.code == 404 => Outcome::Pruned,
        Err(e) => Outcome::Failed(api_error(&e)),
    }
}

/// Deletes every tracked object of a deleted Application (its finalizer), except those
/// marked `Delete=false`. Returns the objects still left.
pub async fn delete_all(
    conn: &ClusterConn,
    reach: &BTreeMap<(String, String), Reach>,
    tracked: &[(ObjKey, Value)],
) -> Vec<String> {
    let deletions: Vec<_> = tracked
        .iter()
        .filter(|(_, live)| !crate::resource::ResourceOptions::of(live, &[]).no_delete)
        .map(|(key, _)| Box::pin(delete_one(conn, reach, key)))
        .collect();
    let results: Vec<Option<String>> = futures::stream::iter(deletions)
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().flatten().collect()
}

async fn delete_one(
    conn: &ClusterConn,
    reach: &BTreeMap<(String, String), Reach>,
    key: &ObjKey,
) -> Option<String> {
    let Some(reach) = reach.get(&(key.group.clone(), key.kind.clone())) else {
        return Some(format!("{key}: kind not served"));
    };
    let api = api_for(conn, reach, &key.namespace);
    match api.delete(&key.name, &background()).await {
        Ok(_) => None,
        Err(kube::Error::Api(e)) if e.code == 404 => None,
        Err(e) => Some(format!("{key}: {}", api_error(&e))),
    }
}

/// Makes sure namespace `name` exists (`CreateNamespace=true`).
pub async fn ensure_namespace(conn: &ClusterConn, name: &str) -> Result<(), String> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(conn.client.clone());
    let ns =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    match api.get_opt(name).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => api
            .patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&ns))
            .await
            .map(|_| ())
            .map_err(|e| format!("creating namespace {name}: {}", api_error(&e))),
        Err(e) => Err(format!("reading namespace {name}: {}", api_error(&e))),
    }
}

/// A Kubernetes error as one line (the API's own message where there is one).
pub fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}
